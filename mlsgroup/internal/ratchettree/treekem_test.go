package ratchettree

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// commitFrom generates and encrypts an UpdatePath from committer on a copy of g's tree.
func commitFrom(t *testing.T, g *simGroup, committer LeafIndex) (*Tree, *PendingPath, *wire.UpdatePath, []byte) {
	t.Helper()
	mine := g.tree.Clone()
	pp, err := mine.GenerateUpdatePath(committer, nil, g.members[committer].id.sig, testGroupID)
	if err != nil {
		t.Fatal(err)
	}
	gc := groupContextBytes(t, g.cs, g.epoch+1, mine.TreeHash())
	path, err := pp.Encrypt(gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mine, pp, path, gc
}

// clonePath deep-copies the parts of an UpdatePath the tests modify.
func clonePath(p *wire.UpdatePath) *wire.UpdatePath {
	c := *p
	c.Nodes = slices.Clone(p.Nodes)
	for i := range c.Nodes {
		c.Nodes[i].EncryptedPathSecret = slices.Clone(c.Nodes[i].EncryptedPathSecret)
	}
	return &c
}

func TestApplyUpdatePathErrors(t *testing.T) {
	g := groupOf(t, 6, 0)
	const committer = 2
	sig := g.members[committer].id.sig
	_, _, path, _ := commitFrom(t, g, committer)
	fresh, _ := g.cs.GenerateHPKEKey()
	resigned := func(f func(ln *wire.LeafNode)) *wire.UpdatePath {
		p := clonePath(path)
		f(&p.LeafNode)
		resign(t, g.cs, sig, &p.LeafNode, testGroupID, committer)
		return p
	}
	cases := map[string]struct {
		sender LeafIndex
		path   *wire.UpdatePath
		opts   *LeafNodeOptions
		want   error
	}{
		"nil path":           {committer, nil, g.opts(), ErrInvalidUpdatePath},
		"sender outside":     {8, path, g.opts(), ErrLeafIndex},
		"huge sender":        {1 << 31, path, g.opts(), ErrLeafIndex},
		"other sender index": {3, path, g.opts(), ErrDuplicateKey},
		"other group id":     {committer, path, &LeafNodeOptions{GroupID: []byte("x")}, suite.ErrSignature},
		"too short": {committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.Nodes = p.Nodes[:len(p.Nodes)-1]
			return p
		}(), g.opts(), ErrInvalidUpdatePath},
		"too long": {committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.Nodes = append(p.Nodes, p.Nodes[0])
			return p
		}(), g.opts(), ErrInvalidUpdatePath},
		"bad signature": {committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.LeafNode.Signature = slices.Clone(p.LeafNode.Signature)
			p.LeafNode.Signature[0] ^= 1
			return p
		}(), g.opts(), suite.ErrSignature},
		"source update": {committer, resigned(func(ln *wire.LeafNode) {
			ln.LeafNodeSource = wire.LeafNodeSourceUpdate
		}), g.opts(), ErrInvalidLeafNode},
		"signed wrong parent hash": {committer, resigned(func(ln *wire.LeafNode) {
			ln.ParentHash = append(slices.Clone(ln.ParentHash), 0)
		}), g.opts(), ErrParentHash},
		"node key replaced": {committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.Nodes[len(p.Nodes)-1].EncryptionKey = fresh.PublicKey()
			return p
		}(), g.opts(), ErrParentHash},
		"node key already in the tree": {committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.Nodes[0].EncryptionKey = g.tree.Leaf(5).EncryptionKey
			return p
		}(), g.opts(), ErrDuplicateKey},
		"node key repeated": {committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.Nodes[1].EncryptionKey = p.Nodes[0].EncryptionKey
			return p
		}(), g.opts(), ErrDuplicateKey},
		"node key malformed": {committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.Nodes[0].EncryptionKey = []byte{1}
			return p
		}(), g.opts(), ErrInvalidUpdatePath},
		"leaf key unchanged": {committer, resigned(func(ln *wire.LeafNode) {
			ln.EncryptionKey = g.tree.Leaf(committer).EncryptionKey
		}), g.opts(), ErrDuplicateKey},
		"leaf key of a path node": {committer, resigned(func(ln *wire.LeafNode) {
			ln.EncryptionKey = path.Nodes[0].EncryptionKey
		}), g.opts(), ErrDuplicateKey},
		"signature key of another member": {committer, resigned(func(ln *wire.LeafNode) {
			ln.SignatureKey = g.tree.Leaf(0).SignatureKey
		}), g.opts(), ErrDuplicateKey},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tr := g.tree.Clone()
			before := encoding(t, tr)
			err := tr.ApplyUpdatePath(c.sender, c.path, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !bytes.Equal(encoding(t, tr), before) {
				t.Fatal("tree changed")
			}
		})
	}
	// The signature covers the leaf index: the same path at another (free) leaf fails.
	moved := g.tree.Clone()
	if err := moved.Remove(committer); err != nil {
		t.Fatal(err)
	}
	before := encoding(t, moved)
	if err := moved.ApplyUpdatePath(6, path, g.opts()); !errors.Is(err, suite.ErrSignature) {
		t.Fatalf("path moved to leaf 6: got %v", err)
	}
	if !bytes.Equal(encoding(t, moved), before) {
		t.Fatal("tree changed")
	}
	// And the untouched path applies.
	if err := g.tree.Clone().ApplyUpdatePath(committer, path, g.opts()); err != nil {
		t.Fatal(err)
	}
}

func TestDecryptUpdatePathErrors(t *testing.T) {
	g := groupOf(t, 6, 0)
	const committer, receiver = 1, 4
	mine, _, path, gc := commitFrom(t, g, committer)
	theirs := g.tree.Clone()
	if err := theirs.ApplyUpdatePath(committer, path, g.opts()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(theirs.TreeHash(), mine.TreeHash()) {
		t.Fatal("trees differ")
	}
	// A second path from the same committer, encrypted under the first one's context:
	// its ciphertexts decrypt, to secrets that do not derive the first path's keys.
	mine2 := g.tree.Clone()
	pp2, err := mine2.GenerateUpdatePath(committer, nil, g.members[committer].id.sig, testGroupID)
	if err != nil {
		t.Fatal(err)
	}
	path2, err := pp2.Encrypt(gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Node of the path whose copath child holds the receiver: the root here.
	top := len(path.Nodes) - 1

	cases := map[string]struct {
		tree    *Tree
		sender  LeafIndex
		path    *wire.UpdatePath
		gc      []byte
		exclude []LeafIndex
		member  LeafIndex
		want    error
	}{
		"wrong group context": {theirs, committer, path, append(slices.Clone(gc), 0), nil, receiver, suite.ErrDecrypt},
		"missing ciphertext": {theirs, committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.Nodes[0].EncryptedPathSecret = p.Nodes[0].EncryptedPathSecret[:0]
			return p
		}(), gc, nil, receiver, ErrInvalidUpdatePath},
		"extra ciphertext": {theirs, committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.Nodes[top].EncryptedPathSecret = append(p.Nodes[top].EncryptedPathSecret, p.Nodes[top].EncryptedPathSecret[0])
			return p
		}(), gc, nil, receiver, ErrInvalidUpdatePath},
		"tampered ciphertext": {theirs, committer, func() *wire.UpdatePath {
			p := clonePath(path)
			ct := p.Nodes[top].EncryptedPathSecret[0]
			ct.Ciphertext = slices.Clone(ct.Ciphertext)
			ct.Ciphertext[0] ^= 1
			p.Nodes[top].EncryptedPathSecret[0] = ct
			return p
		}(), gc, nil, receiver, suite.ErrDecrypt},
		"secret of another path": {theirs, committer, func() *wire.UpdatePath {
			p := clonePath(path)
			p.Nodes[top].EncryptedPathSecret = path2.Nodes[top].EncryptedPathSecret
			return p
		}(), gc, nil, receiver, ErrInvalidUpdatePath},
		"not merged":        {g.tree, committer, path, gc, nil, receiver, ErrInvalidUpdatePath},
		"receiver excluded": {theirs, committer, path, gc, []LeafIndex{receiver}, receiver, ErrNoPrivateKey},
		"excluded count":    {theirs, committer, path, gc, []LeafIndex{5}, receiver, ErrInvalidUpdatePath},
		"own path":          {theirs, committer, path, gc, nil, committer, nil},
		"sender outside":    {theirs, 9, path, gc, nil, receiver, ErrLeafIndex},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := g.members[c.member].priv.Clone()
			keys := len(p.keys)
			_, err := p.DecryptUpdatePath(c.tree, c.sender, c.path, c.gc, c.exclude)
			if err == nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if len(p.keys) != keys || p.Check(g.tree) != nil {
				t.Fatal("private keys changed")
			}
		})
	}
	p := g.members[receiver].priv.Clone()
	d, err := p.DecryptUpdatePath(theirs, committer, path, gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(theirs); err != nil {
		t.Fatal(err)
	}
	if d.Node != theirs.Root() {
		t.Fatalf("decrypted at node %d, want the root", d.Node)
	}
	// The keys of the old tree that the commit replaced are gone.
	if p.Check(g.tree) == nil {
		t.Fatal("private keys still match the old tree")
	}
}

func TestInstallPathSecretErrors(t *testing.T) {
	g := newSimGroup(t, mustSuite(t, testSuite))
	g.commit(0, g.propose(nil, nil, 3), true) // leaves 1..3 joined with path secrets
	p := g.members[3].priv
	if err := p.InstallPathSecret(g.tree, 5, make([]byte, 32)); !errors.Is(err, ErrNoPrivateKey) {
		t.Fatalf("node 5 is blank: %v", err)
	}
	if err := p.InstallPathSecret(g.tree, 1, make([]byte, 32)); !errors.Is(err, ErrNoPrivateKey) {
		t.Fatalf("node 1 is not above leaf 3: %v", err)
	}
	if err := p.InstallPathSecret(g.tree, 6, make([]byte, 32)); !errors.Is(err, ErrNoPrivateKey) {
		t.Fatalf("node 6 is a leaf: %v", err)
	}
	keys := p.Clone()
	if err := p.InstallPathSecret(g.tree, 3, make([]byte, 32)); !errors.Is(err, ErrNoPrivateKey) {
		t.Fatalf("wrong secret: %v", err)
	}
	if len(keys.keys) != len(p.keys) || p.Check(g.tree) != nil {
		t.Fatal("keys changed")
	}
	if err := p.SetPathSecret(g.tree, 99, make([]byte, 32)); err == nil {
		t.Fatal("node outside the tree accepted")
	}
	if _, err := NewPrivateKeys(g.tree, 3, g.members[2].priv.Key(4)); !errors.Is(err, ErrNoPrivateKey) {
		t.Fatalf("another leaf's key: %v", err)
	}
}

// TestSingleMemberPath: a lone member's path is empty and its commit secret fresh.
func TestSingleMemberPath(t *testing.T) {
	g := newSimGroup(t, mustSuite(t, testSuite))
	mine, pp, path, _ := commitFrom(t, g, 0)
	if len(path.Nodes) != 0 || len(pp.CommitSecret()) != g.cs.Nh() {
		t.Fatalf("%d nodes, commit secret %x", len(path.Nodes), pp.CommitSecret())
	}
	if len(path.LeafNode.ParentHash) != 0 {
		t.Fatal("parent hash of a lone leaf is not empty")
	}
	theirs := g.tree.Clone()
	if err := theirs.ApplyUpdatePath(0, path, g.opts()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(theirs.TreeHash(), mine.TreeHash()) {
		t.Fatal("trees differ")
	}
	if err := mine.Validate(mine.TreeHash(), g.opts()); err != nil {
		t.Fatal(err)
	}
	if _, err := pp.PathSecret(1); err == nil {
		t.Fatal("path secret for a leaf outside the tree")
	}
}

// TestExternalCommit: a joiner takes the leftmost blank leaf (extending a full tree) and
// commits with a path from there.
func TestExternalCommit(t *testing.T) {
	for _, size := range []int{3, 4, 7} {
		g := groupOf(t, size, 0)
		joiner := newIdentity(t, g.cs, "external")
		template, _ := joiner.leafNode(t, g.cs, wire.LeafNodeSourceKeyPackage, nil, 0)
		mine := g.tree.Clone()
		at, err := mine.ReserveLeaf()
		if err != nil {
			t.Fatal(err)
		}
		if at != LeafIndex(size) {
			t.Fatalf("reserved leaf %d, want %d", at, size)
		}
		pp, err := mine.GenerateUpdatePath(at, template, joiner.sig, testGroupID)
		if err != nil {
			t.Fatal(err)
		}
		gc := groupContextBytes(t, g.cs, g.epoch+1, mine.TreeHash())
		path, err := pp.Encrypt(gc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := mine.Validate(mine.TreeHash(), g.opts()); err != nil {
			t.Fatal(err)
		}
		for l, m := range g.members {
			theirs := g.tree.Clone()
			if got, _ := theirs.ReserveLeaf(); got != at {
				t.Fatal("members reserve another leaf")
			}
			if err := theirs.ApplyUpdatePath(at, path, g.opts()); err != nil {
				t.Fatalf("leaf %d: %v", l, err)
			}
			d, err := m.priv.Clone().DecryptUpdatePath(theirs, at, path, gc, nil)
			if err != nil {
				t.Fatalf("leaf %d: %v", l, err)
			}
			if !bytes.Equal(d.CommitSecret, pp.CommitSecret()) {
				t.Fatalf("leaf %d: commit secret differs", l)
			}
		}
	}
}

// TestPrivateKeysRestore: a member's keys saved (Nodes, Key) and restored (SetKey) on a
// tree decoded afresh give the same state; mismatching keys are refused.
func TestPrivateKeysRestore(t *testing.T) {
	g := groupOf(t, 5, 0)
	g.commit(3, g.propose(nil, nil, 0), true)
	src := g.members[1].priv
	if src.Leaf() != 1 {
		t.Fatal("wrong leaf")
	}
	tr := roundTrip(t, g.tree)
	nodes := src.Nodes()
	if len(nodes) < 2 || nodes[0] != 1 && nodes[0] != 2 {
		t.Fatalf("nodes %v", nodes)
	}
	p, err := NewPrivateKeys(tr, 1, src.Key(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range nodes {
		raw, err := src.Key(x).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		k, err := g.cs.ParseHPKEPrivateKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SetKey(tr, x, k); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(p.Nodes(), nodes) || p.Check(tr) != nil {
		t.Fatal("restored state differs")
	}
	if err := p.SetKey(tr, nodes[len(nodes)-1], src.Key(2)); !errors.Is(err, ErrNoPrivateKey) {
		t.Fatalf("mismatching key: %v", err)
	}
	if err := p.SetKey(tr, 2, nil); err == nil {
		t.Fatal("nil key accepted")
	}
	if err := p.SetPathSecret(tr, tr.Root(), make([]byte, g.cs.Nh())); !errors.Is(err, ErrNoPrivateKey) {
		t.Fatalf("wrong path secret: %v", err)
	}
	if p.Check(tr) != nil || !slices.Equal(p.Nodes(), nodes) {
		t.Fatal("a failed call changed the keys")
	}
	// The committer's pending path exposes its new leaf node.
	_, pp, path, _ := commitFrom(t, g, 0)
	if pp.LeafNode().LeafNodeSource != wire.LeafNodeSourceCommit || !bytes.Equal(pp.LeafNode().Signature, path.LeafNode.Signature) {
		t.Fatal("LeafNode differs from the path's")
	}
}
