package ratchettree

import (
	"bytes"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// FuzzTreeFromWire: decoding a ratchet tree, FromWire, Validate and the tree operations
// never panic; an accepted tree re-encodes to its input, and after Add, Update and Remove
// the cached hashes and resolutions equal those of the tree decoded afresh.
func FuzzTreeFromWire(f *testing.F) {
	for _, v := range validationTrees(f) {
		f.Add(uint16(v.Suite), v.Tree, v.GroupID)
	}
	f.Fuzz(func(t *testing.T, id uint16, data, groupID []byte) {
		cs, err := suite.Lookup(suite.ID(id))
		if err != nil {
			return
		}
		rt, err := wire.DecodeRatchetTree(data)
		if err != nil {
			return
		}
		tr, err := FromWire(cs, rt)
		if err != nil {
			return
		}
		w := tr.Wire()
		if enc, err := codec.Marshal(&w); err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("accepted tree does not re-encode to its input: %v", err)
		}
		_ = tr.Validate(tr.TreeHash(), &LeafNodeOptions{GroupID: groupID})
		_ = tr.VerifyParentHashes()
		if tr.Width() > 1<<10 {
			return
		}
		for x := range tr.Width() {
			tr.Resolution(NodeIndex(x))
		}
		var member *wire.LeafNode
		for l, ln := range tr.Leaves() {
			if _, err := tr.FilteredDirectPath(l); err != nil {
				t.Fatal(err)
			}
			member = ln
		}
		check := func(what string, tr *Tree) {
			w := tr.Wire()
			if len(w) == 0 {
				return
			}
			fresh, err := FromWire(cs, w)
			if err != nil {
				t.Fatalf("%s: tree no longer well formed: %v", what, err)
			}
			if !bytes.Equal(fresh.TreeHash(), tr.TreeHash()) {
				t.Fatalf("%s: cached tree hash is stale", what)
			}
		}
		if member == nil {
			return
		}
		// Operations with leaf nodes whose keys are new to the tree.
		newLeaf := func(tag string) *wire.LeafNode {
			ln := *member
			ln.EncryptionKey = []byte("fuzz encryption key " + tag)
			ln.SignatureKey = []byte("fuzz signature key " + tag)
			return &ln
		}
		for l := range tr.Leaves() {
			c := tr.Clone()
			if err := c.Remove(l); err != nil {
				t.Fatal(err)
			}
			check("remove", c)
			if _, err := c.AddLeaf(newLeaf("a")); err != nil {
				t.Fatal(err)
			}
			check("remove+add", c)
			c = tr.Clone()
			if err := c.Update(l, newLeaf("u")); err != nil {
				t.Fatal(err)
			}
			check("update", c)
			_ = c.ApplyUpdatePath(l, &wire.UpdatePath{LeafNode: *member}, &LeafNodeOptions{GroupID: groupID})
		}
		c := tr.Clone()
		if _, err := c.AddLeaf(newLeaf("b")); err != nil {
			t.Fatal(err)
		}
		check("add", c)
	})
}
