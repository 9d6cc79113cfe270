package ratchettree

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

const testSuite = suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

// groupOf returns a simulated group with n members, all merged by a final empty commit
// from leaf 0, then adds withoutPath more members without a path (unmerged leaves).
func groupOf(t *testing.T, n, withoutPath int) *simGroup {
	t.Helper()
	g := newSimGroup(t, mustSuite(t, testSuite))
	if n > 1 {
		g.commit(0, g.propose(nil, nil, n-1), true)
	}
	if withoutPath > 0 {
		g.commit(0, g.propose(nil, nil, withoutPath), false)
	}
	return g
}

// blanks lists which nodes of t are blank, as a string of '_' and 'x'.
func blanks(t *Tree) string {
	var b []byte
	for _, n := range t.nodes {
		if n == nil {
			b = append(b, '_')
		} else {
			b = append(b, 'x')
		}
	}
	return string(b)
}

func TestFromWireRejectsMalformed(t *testing.T) {
	g := groupOf(t, 3, 2) // 5 members, leaves 3 and 4 unmerged
	base := g.tree.Wire()
	cs := g.cs
	if _, err := FromWire(cs, base); err != nil {
		t.Fatalf("valid tree rejected: %v", err)
	}
	clone := func() wire.RatchetTree { return slices.Clone(base) }
	parentAt := func(rt wire.RatchetTree, x int) *wire.ParentNode {
		pn := *rt[x].ParentNode
		pn.UnmergedLeaves = slices.Clone(pn.UnmergedLeaves)
		rt[x] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &pn}
		return &pn
	}
	// Find a parent node listing unmerged leaves.
	withUnmerged := -1
	for i, n := range base {
		if n != nil && n.ParentNode != nil && len(n.ParentNode.UnmergedLeaves) > 0 {
			withUnmerged = i
			break
		}
	}
	if withUnmerged < 0 {
		t.Fatalf("test tree has no unmerged leaves: %s", blanks(g.tree))
	}

	cases := map[string]func() wire.RatchetTree{
		"empty":          func() wire.RatchetTree { return wire.RatchetTree{} },
		"trailing blank": func() wire.RatchetTree { return append(clone(), nil) },
		"leaf at odd":    func() wire.RatchetTree { rt := clone(); rt[1] = rt[0]; return rt },
		"parent at even": func() wire.RatchetTree { rt := clone(); rt[0] = base[1]; return rt },
		"leaf type, no leaf": func() wire.RatchetTree {
			rt := clone()
			rt[0] = &wire.Node{NodeType: wire.NodeTypeLeaf, ParentNode: base[1].ParentNode}
			return rt
		},
		"unknown node type": func() wire.RatchetTree {
			rt := clone()
			rt[0] = &wire.Node{NodeType: 7, LeafNode: base[0].LeafNode}
			return rt
		},
		"duplicate encryption key": func() wire.RatchetTree {
			rt := clone()
			ln := *rt[2].LeafNode
			ln.EncryptionKey = rt[0].LeafNode.EncryptionKey
			rt[2] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &ln}
			return rt
		},
		"parent with a leaf's key": func() wire.RatchetTree {
			rt := clone()
			parentAt(rt, 1).EncryptionKey = rt[0].LeafNode.EncryptionKey
			return rt
		},
		"duplicate signature key": func() wire.RatchetTree {
			rt := clone()
			ln := *rt[2].LeafNode
			ln.SignatureKey = rt[0].LeafNode.SignatureKey
			rt[2] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &ln}
			return rt
		},
		"unmerged leaf outside the subtree": func() wire.RatchetTree {
			rt := clone()
			pn := parentAt(rt, 1)
			pn.UnmergedLeaves = []uint32{3}
			return rt
		},
		"unmerged leaf out of range": func() wire.RatchetTree {
			rt := clone()
			pn := parentAt(rt, withUnmerged)
			pn.UnmergedLeaves = append(pn.UnmergedLeaves, 1<<31)
			return rt
		},
		"unmerged leaves unsorted": func() wire.RatchetTree {
			rt := clone()
			pn := parentAt(rt, withUnmerged)
			if len(pn.UnmergedLeaves) < 2 {
				pn.UnmergedLeaves = append(pn.UnmergedLeaves, pn.UnmergedLeaves[0])
			} else {
				slices.Reverse(pn.UnmergedLeaves)
			}
			return rt
		},
		"unmerged leaf blank": func() wire.RatchetTree {
			rt := clone()
			pn := parentAt(rt, withUnmerged)
			l := pn.UnmergedLeaves[0]
			rt[2*l] = nil
			return rt
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			if tr, err := FromWire(cs, build()); err == nil {
				t.Fatalf("accepted: %s", blanks(tr))
			}
		})
	}
	if _, err := FromWire(nil, base); err == nil {
		t.Fatal("accepted a nil suite")
	}
}

// TestUnmergedIntermediate: an unmerged leaf of a parent must also be listed by every
// non-blank node between them.
func TestUnmergedIntermediate(t *testing.T) {
	g := groupOf(t, 4, 0) // leaves 0..3, all parents set by leaf 0's commit
	g.commit(3, g.propose(nil, []LeafIndex{2}, 0), true)
	g.commit(1, g.propose(nil, nil, 0), true)  // nodes 1 and 3 set
	g.commit(1, g.propose(nil, nil, 1), false) // leaf 2 added: unmerged at 3 (5 is blank)
	rt := g.tree.Wire()
	if pn := rt[3].ParentNode; !slices.Equal(pn.UnmergedLeaves, []uint32{2}) {
		t.Fatalf("unmerged at root: %v (%s)", pn.UnmergedLeaves, blanks(g.tree))
	}
	// Give node 5 a key without the unmerged leaf.
	rt = slices.Clone(rt)
	other, _ := g.cs.GenerateHPKEKey()
	rt[5] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNode{
		EncryptionKey: other.PublicKey(), ParentHash: []byte{}, UnmergedLeaves: []uint32{},
	}}
	if _, err := FromWire(g.cs, rt); !errors.Is(err, ErrMalformedTree) {
		t.Fatalf("got %v, want ErrMalformedTree", err)
	}
	rt[5].ParentNode.UnmergedLeaves = []uint32{2}
	tr, err := FromWire(g.cs, rt)
	if err != nil {
		t.Fatal(err)
	}
	// Structurally fine now, but node 5 is not parent-hash valid.
	if err := tr.Validate(nil, g.opts()); !errors.Is(err, ErrParentHash) {
		t.Fatalf("got %v, want ErrParentHash", err)
	}
}

func TestAddLeaf(t *testing.T) {
	g := groupOf(t, 4, 0)
	tr := g.tree
	if tr.LeafCount() != 4 || tr.LeftmostBlankLeaf() != 4 {
		t.Fatalf("leaves %d, leftmost blank %d", tr.LeafCount(), tr.LeftmostBlankLeaf())
	}
	add := func(tr *Tree) LeafIndex {
		id := newIdentity(t, g.cs, "new")
		ln, _ := id.leafNode(t, g.cs, wire.LeafNodeSourceKeyPackage, nil, 0)
		l, err := tr.AddLeaf(ln)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// A full tree is extended: the new root is blank, the old tree its left subtree.
	oldRoot := tr.NodeHash(tr.Root())
	tr2 := tr.Clone()
	if l := add(tr2); l != 4 || tr2.LeafCount() != 8 {
		t.Fatalf("added at %d in %d leaves", l, tr2.LeafCount())
	}
	if tr2.Node(7) != nil || !bytes.Equal(tr2.NodeHash(3), oldRoot) {
		t.Fatal("the old tree is not the left subtree of a blank root")
	}
	if got := tr2.Node(3).ParentNode.UnmergedLeaves; len(got) != 0 {
		t.Fatalf("old root got unmerged leaves %v", got)
	}
	if tr.LeafCount() != 4 {
		t.Fatal("Clone shares state")
	}
	// Leaf 4 joins, leaf 1 leaves: leaf 0's path skips node 1 (its copath child is blank)
	// and sets 3 and 7. Then adds reuse leaf 1 (leftmost blank) and take leaf 5; each is
	// unmerged at the non-blank nodes of its direct path.
	g.commit(0, g.propose(nil, nil, 1), true)
	g.commit(0, g.propose(nil, []LeafIndex{1}, 0), true)
	if blanks(g.tree) != "x__xx_xxx______" {
		t.Fatalf("tree %s", blanks(g.tree))
	}
	tr3 := g.tree.Clone()
	if l := add(tr3); l != 1 {
		t.Fatalf("added at %d, want leftmost blank 1", l)
	}
	if l := add(tr3); l != 5 {
		t.Fatalf("added at %d, want 5", l)
	}
	for x, want := range map[NodeIndex][]uint32{3: {1}, 7: {1, 5}} {
		if n := tr3.Node(x); n == nil || !slices.Equal(n.ParentNode.UnmergedLeaves, want) {
			t.Fatalf("node %d: %v, want unmerged %v (%s)", x, n, want, blanks(tr3))
		}
	}
	if got := tr3.Resolution(7); !slices.Equal(got, []NodeIndex{7, 2, 10}) {
		t.Fatalf("resolution of the root: %v", got)
	}
	if err := tr3.Validate(tr3.TreeHash(), g.opts()); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveTruncates(t *testing.T) {
	cases := []struct {
		members int
		remove  []LeafIndex
		leaves  uint32
	}{
		{5, []LeafIndex{4}, 4},             // right half empties: 8 -> 4
		{5, []LeafIndex{3}, 8},             // leaf 4 keeps the right half
		{9, []LeafIndex{8, 7, 6}, 8},       // 16 -> 8
		{9, []LeafIndex{8, 4, 5, 6, 7}, 4}, // 16 -> 4 at once
		{3, []LeafIndex{2, 1}, 1},          // down to one leaf
		{2, []LeafIndex{0}, 2},             // the left leaf: nothing to truncate
	}
	for _, c := range cases {
		g := groupOf(t, c.members, 0)
		tr := g.tree.Clone()
		for _, r := range c.remove {
			if err := tr.Remove(r); err != nil {
				t.Fatal(err)
			}
		}
		if tr.LeafCount() != c.leaves {
			t.Errorf("%d members, remove %v: %d leaves, want %d", c.members, c.remove, tr.LeafCount(), c.leaves)
		}
		if w := tr.Wire(); w[len(w)-1] == nil {
			t.Errorf("Wire ends with a blank node")
		}
		// The cached hashes must equal a fresh computation.
		fresh := roundTrip(t, tr)
		if !bytes.Equal(fresh.TreeHash(), tr.TreeHash()) {
			t.Errorf("%d members, remove %v: cached tree hash is stale", c.members, c.remove)
		}
		for x := range tr.Width() {
			if !slices.Equal(fresh.Resolution(NodeIndex(x)), tr.Resolution(NodeIndex(x))) {
				t.Errorf("resolution of %d differs after round trip", x)
			}
		}
	}
}

func TestUpdate(t *testing.T) {
	g := groupOf(t, 4, 0)
	tr := g.tree.Clone()
	ln, _ := g.members[2].id.leafNode(t, g.cs, wire.LeafNodeSourceUpdate, testGroupID, 2)
	if err := tr.Update(2, ln); err != nil {
		t.Fatal(err)
	}
	if blanks(tr) != "xxx_x_x" {
		t.Fatalf("after update of leaf 2: %s, want direct path 5 and 3 blank", blanks(tr))
	}
	if l, ok := tr.FindLeaf(ln); !ok || l != 2 {
		t.Fatal("FindLeaf does not find the new leaf node")
	}
	if l, ok := tr.LeafBySignatureKey(ln.SignatureKey); !ok || l != 2 {
		t.Fatal("signature key index is stale")
	}
	if _, ok := tr.NodeByEncryptionKey(g.tree.Leaf(2).EncryptionKey); ok {
		t.Fatal("the old encryption key is still indexed")
	}
	if !bytes.Equal(roundTrip(t, tr).TreeHash(), tr.TreeHash()) {
		t.Fatal("cached tree hash is stale")
	}
}

// TestErrorsLeaveTreeUnchanged checks every failing tree operation returns an error and
// leaves the tree exactly as it was.
func TestErrorsLeaveTreeUnchanged(t *testing.T) {
	g := groupOf(t, 5, 0) // leaves 0..4 of 8
	cs := g.cs
	fresh := func() (*wire.LeafNode, *identity) {
		id := newIdentity(t, cs, "x")
		ln, _ := id.leafNode(t, cs, wire.LeafNodeSourceKeyPackage, nil, 0)
		return ln, id
	}
	withKeys := func(enc, sig []byte) *wire.LeafNode {
		ln, _ := fresh()
		c := *ln
		if enc != nil {
			c.EncryptionKey = enc
		}
		if sig != nil {
			c.SignatureKey = sig
		}
		return &c
	}
	leaf0 := g.tree.Leaf(0)
	parentKey := g.tree.Node(3).ParentNode.EncryptionKey
	updateNode := func(l LeafIndex) *wire.LeafNode {
		ln, _ := g.members[l].id.leafNode(t, cs, wire.LeafNodeSourceUpdate, testGroupID, l)
		return ln
	}
	unknownSource := withKeys(nil, nil)
	unknownSource.LeafNodeSource = 9

	ops := map[string]func(tr *Tree) error{
		"add: encryption key of a leaf":   func(tr *Tree) error { _, err := tr.AddLeaf(withKeys(leaf0.EncryptionKey, nil)); return err },
		"add: encryption key of a parent": func(tr *Tree) error { _, err := tr.AddLeaf(withKeys(parentKey, nil)); return err },
		"add: signature key of a member":  func(tr *Tree) error { _, err := tr.AddLeaf(withKeys(nil, leaf0.SignatureKey)); return err },
		"add: nil":                        func(tr *Tree) error { _, err := tr.AddLeaf(nil); return err },
		"add: unencodable":                func(tr *Tree) error { _, err := tr.AddLeaf(unknownSource); return err },
		"update: out of range":            func(tr *Tree) error { return tr.Update(8, updateNode(1)) },
		"update: huge index":              func(tr *Tree) error { return tr.Update(1<<31, updateNode(1)) },
		"update: blank leaf":              func(tr *Tree) error { return tr.Update(6, updateNode(1)) },
		"update: same encryption key": func(tr *Tree) error {
			return tr.Update(1, withKeys(tr.Leaf(1).EncryptionKey, tr.Leaf(1).SignatureKey))
		},
		"update: another member's signature key": func(tr *Tree) error {
			return tr.Update(1, withKeys(nil, leaf0.SignatureKey))
		},
		"remove: out of range": func(tr *Tree) error { return tr.Remove(8) },
		"remove: blank leaf":   func(tr *Tree) error { return tr.Remove(5) },
		"remove: huge index":   func(tr *Tree) error { return tr.Remove(^LeafIndex(0)) },
		"generate: wrong signer": func(tr *Tree) error {
			_, err := tr.GenerateUpdatePath(1, nil, g.members[0].id.sig, testGroupID)
			return err
		},
		"generate: blank leaf without template": func(tr *Tree) error {
			_, err := tr.GenerateUpdatePath(6, nil, g.members[0].id.sig, testGroupID)
			return err
		},
		"generate: out of range": func(tr *Tree) error {
			_, err := tr.GenerateUpdatePath(8, nil, g.members[0].id.sig, testGroupID)
			return err
		},
		"generate: signature key of another member": func(tr *Tree) error {
			_, err := tr.GenerateUpdatePath(6, tr.Leaf(0), g.members[0].id.sig, testGroupID)
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			tr := g.tree.Clone()
			before := encoding(t, tr)
			if err := op(tr); err == nil {
				t.Fatal("no error")
			}
			if !bytes.Equal(encoding(t, tr), before) {
				t.Fatal("tree changed")
			}
			if err := tr.Validate(tr.TreeHash(), g.opts()); err != nil {
				t.Fatalf("tree no longer valid: %v", err)
			}
		})
	}
}

// TestValidateVectorsTampered: the tree-validation trees pass Validate, and fail it once
// a signature, the group id, a parent hash or the tree hash is wrong.
func TestValidateVectorsTampered(t *testing.T) {
	for i, v := range validationTrees(t) {
		tr := loadTree(t, v)
		opts := &LeafNodeOptions{GroupID: v.GroupID}
		if err := tr.Validate(tr.TreeHash(), opts); err != nil {
			t.Fatalf("tree %d: %v", i, err)
		}
		if err := tr.Validate(append(tr.TreeHash(), 0), opts); !errors.Is(err, ErrTreeHash) {
			t.Fatalf("tree %d: wrong tree hash: got %v", i, err)
		}

		// Each leaf signature: the leaf fails its checks, and the tree fails Validate
		// (possibly first on a parent hash, which covers the leaf's tree hash).
		rt := tr.Wire()
		for x, n := range rt {
			if n == nil || n.LeafNode == nil {
				continue
			}
			ln := *n.LeafNode
			ln.Signature = slices.Clone(ln.Signature)
			ln.Signature[len(ln.Signature)/2] ^= 1
			bad := slices.Clone(rt)
			bad[x] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &ln}
			t2, err := FromWire(tr.cs, bad)
			if err != nil {
				t.Fatal(err)
			}
			if err := t2.checkLeafContent(&ln, LeafIndex(x/2), 0, opts); !errors.Is(err, suite.ErrSignature) || !errors.Is(err, ErrInvalidLeafNode) {
				t.Fatalf("tree %d: bad signature at node %d: got %v", i, x, err)
			}
			if err := t2.Validate(nil, opts); err == nil {
				t.Fatalf("tree %d: bad signature at node %d accepted", i, x)
			}
		}

		// The group id, if some leaf signs it.
		signsGroup := false
		for _, ln := range tr.Leaves() {
			signsGroup = signsGroup || ln.LeafNodeSource != wire.LeafNodeSourceKeyPackage
		}
		if err := tr.Validate(nil, &LeafNodeOptions{GroupID: []byte("other")}); signsGroup != (err != nil) {
			t.Fatalf("tree %d: other group id: got %v", i, err)
		}

		// Each parent's parent hash.
		for x, n := range rt {
			if n == nil || n.ParentNode == nil {
				continue
			}
			pn := *n.ParentNode
			pn.ParentHash = append(slices.Clone(pn.ParentHash), 1)
			bad := slices.Clone(rt)
			bad[x] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &pn}
			t2, err := FromWire(tr.cs, bad)
			if err != nil {
				t.Fatal(err)
			}
			if err := t2.VerifyParentHashes(); !errors.Is(err, ErrParentHash) {
				t.Fatalf("tree %d: bad parent hash at node %d: got %v", i, x, err)
			}
		}
	}
}

func TestLeafNodeChecks(t *testing.T) {
	g := groupOf(t, 3, 0)
	cs := g.cs
	tr := g.tree
	id := newIdentity(t, cs, "new")
	kp, _ := id.leafNode(t, cs, wire.LeafNodeSourceKeyPackage, nil, 0)
	at := tr.LeftmostBlankLeaf()
	if err := tr.ValidateLeafNode(kp, at, wire.LeafNodeSourceKeyPackage, g.opts()); err != nil {
		t.Fatal(err)
	}
	if err := tr.ValidateLeafNode(kp, at, wire.LeafNodeSourceUpdate, g.opts()); !errors.Is(err, ErrInvalidLeafNode) {
		t.Fatalf("wrong source: %v", err)
	}
	mod := func(f func(ln *wire.LeafNode)) *wire.LeafNode {
		c := *kp
		f(&c)
		resign(t, cs, id.sig, &c, nil, 0)
		return &c
	}
	bad := map[string]*wire.LeafNode{
		"credential type not in capabilities": mod(func(ln *wire.LeafNode) {
			ln.Capabilities.Credentials = []wire.CredentialType{wire.CredentialTypeX509}
		}),
		"extension not in capabilities": mod(func(ln *wire.LeafNode) {
			ln.Extensions = wire.Extensions{{ExtensionType: 0xff00, ExtensionData: []byte{}}}
		}),
		"lifetime over": mod(func(ln *wire.LeafNode) { ln.Lifetime.NotAfter = 1 }),
		"bad encryption key": mod(func(ln *wire.LeafNode) {
			ln.EncryptionKey = []byte{1, 2, 3}
		}),
		"unsigned": func() *wire.LeafNode { c := *kp; c.Signature = []byte{}; return &c }(),
		"does not support the group's credential type": mod(func(ln *wire.LeafNode) {
			ln.Credential = wire.Credential{CredentialType: wire.CredentialTypeX509, Certificates: []wire.Certificate{}}
			ln.Capabilities.Credentials = []wire.CredentialType{wire.CredentialTypeX509}
		}),
		"encryption key in the tree": mod(func(ln *wire.LeafNode) { ln.EncryptionKey = tr.Leaf(1).EncryptionKey }),
	}
	opts := g.opts()
	opts.Now = timeAt(1000)
	for name, ln := range bad {
		if err := tr.ValidateLeafNode(ln, at, wire.LeafNodeSourceKeyPackage, opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An extension listed in the capabilities is fine, a default one needs no listing.
	good := mod(func(ln *wire.LeafNode) {
		ln.Capabilities.Extensions = []wire.ExtensionType{0xff00}
		ln.Extensions = wire.Extensions{{ExtensionType: 0xff00, ExtensionData: []byte{}}, {ExtensionType: wire.ExtensionTypeApplicationID, ExtensionData: []byte{0}}}
	})
	if err := tr.ValidateLeafNode(good, at, wire.LeafNodeSourceKeyPackage, opts); err != nil {
		t.Fatal(err)
	}
	// Required capabilities.
	opts.RequiredCapabilities = &wire.RequiredCapabilities{ExtensionTypes: []wire.ExtensionType{0xff01}}
	if err := tr.ValidateLeafNode(good, at, wire.LeafNodeSourceKeyPackage, opts); err == nil {
		t.Fatal("missing required extension accepted")
	}
	opts.RequiredCapabilities = &wire.RequiredCapabilities{
		ExtensionTypes:  []wire.ExtensionType{0xff00, wire.ExtensionTypeRatchetTree},
		ProposalTypes:   []wire.ProposalType{wire.ProposalTypeAdd},
		CredentialTypes: []wire.CredentialType{wire.CredentialTypeBasic},
	}
	if err := tr.ValidateLeafNode(good, at, wire.LeafNodeSourceKeyPackage, opts); err != nil {
		t.Fatal(err)
	}
	// The credential hook.
	opts.CheckCredential = func(c *wire.Credential, _ []byte) error {
		if string(c.Identity) == "new" {
			return errors.New("revoked")
		}
		return nil
	}
	if err := tr.ValidateLeafNode(good, at, wire.LeafNodeSourceKeyPackage, opts); err == nil {
		t.Fatal("credential hook ignored")
	}
}
