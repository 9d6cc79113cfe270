package ratchettree

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// bigGroup is a full tree of n members whose parent nodes are all set (the usual state of a
// busy group), with each member's identity and private keys.
type bigGroup struct {
	cs      *suite.Suite
	tree    *Tree
	ids     []*identity
	leafKey []*suite.HPKEPrivateKey
	secrets map[NodeIndex][]byte // path secret of every parent node
}

func newBigGroup(tb testing.TB, cs *suite.Suite, n int) *bigGroup {
	tb.Helper()
	bg := &bigGroup{cs: cs, secrets: map[NodeIndex][]byte{}}
	w, _ := treemath.NodeWidth(uint32(n))
	rt := make(wire.RatchetTree, w)
	for l := range n {
		id := newIdentity(tb, cs, fmt.Sprintf("member %d", l))
		ln, priv := id.leafNode(tb, cs, wire.LeafNodeSourceKeyPackage, nil, 0)
		rt[2*l] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: ln}
		bg.ids = append(bg.ids, id)
		bg.leafKey = append(bg.leafKey, priv)
	}
	for x := 1; x < int(w); x += 2 {
		ps := make([]byte, cs.Nh())
		rand.Read(ps)
		k, err := deriveNodeKey(cs, ps)
		if err != nil {
			tb.Fatal(err)
		}
		bg.secrets[NodeIndex(x)] = ps
		rt[x] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNode{
			EncryptionKey: k.pub, ParentHash: []byte{}, UnmergedLeaves: []uint32{},
		}}
	}
	tree, err := FromWire(cs, rt)
	if err != nil {
		tb.Fatal(err)
	}
	tree.TreeHash()
	bg.tree = tree
	return bg
}

// privateKeys returns the private state of member l: its leaf key and every ancestor.
func (bg *bigGroup) privateKeys(tb testing.TB, l LeafIndex) *PrivateKeys {
	tb.Helper()
	p, err := NewPrivateKeys(bg.tree, l, bg.leafKey[l])
	if err != nil {
		tb.Fatal(err)
	}
	for _, x := range bg.tree.directPath(NodeIndex(2 * l)) {
		if err := p.SetPathSecret(bg.tree, x, bg.secrets[x]); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}

var benchSuites = []suite.ID{suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, suite.Default}

// BenchmarkTreeHash1024: the tree hash of a 1024-member tree after one leaf changed
// (an Update: the leaf and its blanked direct path are hashed again, nothing else).
func BenchmarkTreeHash1024(b *testing.B) {
	for _, id := range benchSuites {
		b.Run(id.String(), func(b *testing.B) {
			cs := mustSuite(b, id)
			bg := newBigGroup(b, cs, 1024)
			const l = 517
			var alt [2]*wire.LeafNode
			for i := range alt {
				alt[i], _ = bg.ids[l].leafNode(b, cs, wire.LeafNodeSourceUpdate, testGroupID, l)
			}
			tree := bg.tree
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := tree.Update(l, alt[i%2]); err != nil {
					b.Fatal(err)
				}
				tree.TreeHash()
			}
		})
	}
}

// BenchmarkTreeHash1024Full: the tree hash of a 1024-member tree from scratch, as a joiner
// computes it once.
func BenchmarkTreeHash1024Full(b *testing.B) {
	cs := mustSuite(b, suite.Default)
	bg := newBigGroup(b, cs, 1024)
	for b.Loop() {
		clear(bg.tree.hashes)
		bg.tree.TreeHash()
	}
}

// BenchmarkUpdatePath1024: a commit with a path in a full 1024-member tree. generate is
// the committer's side (clone, generate and merge, tree hash, encrypt to the 10 copath
// nodes); process is a receiver's (clone, validate and merge, tree hash, decrypt, derive
// and check the keys), for member 1, whose common ancestor with the committer is the
// lowest node, the most work.
func BenchmarkUpdatePath1024(b *testing.B) {
	for _, id := range benchSuites {
		cs := mustSuite(b, id)
		bg := newBigGroup(b, cs, 1024)
		const committer, receiver = 0, 1
		signer := bg.ids[committer].sig
		opts := &LeafNodeOptions{GroupID: testGroupID}
		generate := func(b *testing.B) (*Tree, *PendingPath, *wire.UpdatePath, []byte) {
			mine := bg.tree.Clone()
			pp, err := mine.GenerateUpdatePath(committer, nil, signer, testGroupID)
			if err != nil {
				b.Fatal(err)
			}
			gc := groupContextBytes(b, cs, 1, mine.TreeHash())
			path, err := pp.Encrypt(gc, nil)
			if err != nil {
				b.Fatal(err)
			}
			return mine, pp, path, gc
		}
		priv := bg.privateKeys(b, receiver)
		process := func(b *testing.B, path *wire.UpdatePath) []byte {
			theirs := bg.tree.Clone()
			if err := theirs.ApplyUpdatePath(committer, path, opts); err != nil {
				b.Fatal(err)
			}
			gc := groupContextBytes(b, cs, 1, theirs.TreeHash())
			d, err := priv.Clone().DecryptUpdatePath(theirs, committer, path, gc, nil)
			if err != nil {
				b.Fatal(err)
			}
			return d.CommitSecret
		}
		b.Run(id.String()+"/generate", func(b *testing.B) {
			for b.Loop() {
				generate(b)
			}
		})
		b.Run(id.String()+"/process", func(b *testing.B) {
			_, _, path, _ := generate(b)
			for b.Loop() {
				process(b, path)
			}
		})
		b.Run(id.String()+"/generate+process", func(b *testing.B) {
			for b.Loop() {
				_, pp, path, _ := generate(b)
				if cs := process(b, path); string(cs) != string(pp.CommitSecret()) {
					b.Fatal("commit secrets differ")
				}
			}
		})
		b.Run(id.String()+"/clone", func(b *testing.B) {
			for b.Loop() {
				bg.tree.Clone()
			}
		})
	}
}
