package ratchettree

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// TreeHash returns the tree hash of the root (RFC 9420, Section 7.8), the tree_hash of the
// GroupContext.
func (t *Tree) TreeHash() []byte { return t.hash(t.Root()) }

// NodeHash returns the tree hash of the subtree under x (RFC 9420, Section 7.8), or nil for
// a node outside the tree.
func (t *Tree) NodeHash(x NodeIndex) []byte {
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil
	}
	return t.hash(x)
}

// hash returns the tree hash of x from the cache, computing what is missing. Only the
// nodes whose subtree changed since the last call are hashed again.
func (t *Tree) hash(x NodeIndex) []byte {
	if h := t.hashes[x]; h != nil {
		return h
	}
	var in wire.TreeHashInput
	if treemath.IsLeaf(x) {
		in = wire.TreeHashInput{NodeType: wire.NodeTypeLeaf, LeafNode: &wire.LeafNodeHashInput{
			LeafIndex: uint32(x / 2),
		}}
		if n := t.nodes[x]; n != nil {
			in.LeafNode.LeafNode = n.LeafNode
		}
	} else {
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		in = wire.TreeHashInput{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNodeHashInput{
			ParentNode: t.parent(x),
			LeftHash:   t.hash(l),
			RightHash:  t.hash(r),
		}}
	}
	// Every node was checked to be encodable when it entered the tree.
	h := t.cs.Hash(codec.MustMarshal(&in))
	t.hashes[x] = h
	return h
}

// hashExcluding is the tree hash of x in the tree where the leaves in excluded are blank
// and removed from every unmerged_leaves list: the "original sibling tree hash" of RFC
// 9420, Section 7.9. Subtrees without an excluded leaf use the cache.
func (t *Tree) hashExcluding(x NodeIndex, excluded []uint32) []byte {
	touched := false
	for _, l := range excluded {
		if inSubtree(x, LeafIndex(l)) {
			touched = true
			break
		}
	}
	if !touched {
		return t.hash(x)
	}
	var in wire.TreeHashInput
	if treemath.IsLeaf(x) {
		// The excluded leaf itself: hashed as blank.
		in = wire.TreeHashInput{NodeType: wire.NodeTypeLeaf, LeafNode: &wire.LeafNodeHashInput{
			LeafIndex: uint32(x / 2),
		}}
	} else {
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		pn := t.parent(x)
		if pn != nil {
			kept := make([]uint32, 0, len(pn.UnmergedLeaves))
			for _, u := range pn.UnmergedLeaves {
				if !slices.Contains(excluded, u) {
					kept = append(kept, u)
				}
			}
			pn = &wire.ParentNode{EncryptionKey: pn.EncryptionKey, ParentHash: pn.ParentHash, UnmergedLeaves: kept}
		}
		in = wire.TreeHashInput{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNodeHashInput{
			ParentNode: pn,
			LeftHash:   t.hashExcluding(l, excluded),
			RightHash:  t.hashExcluding(r, excluded),
		}}
	}
	return t.cs.Hash(codec.MustMarshal(&in))
}

// parentHash is the parent hash of a parent node with the given encryption key and
// parent_hash field, whose copath child has tree hash siblingHash (RFC 9420, Section 7.9).
func (t *Tree) parentHash(encryptionKey, parentHash, siblingHash []byte) []byte {
	in := wire.ParentHashInput{
		EncryptionKey:           encryptionKey,
		ParentHash:              parentHash,
		OriginalSiblingTreeHash: siblingHash,
	}
	return t.cs.Hash(codec.MustMarshal(&in))
}

// nodeParentHash returns the parent_hash field of a non-blank node, and whether it has one
// (leaves have one only with leaf_node_source commit).
func nodeParentHash(n *wire.Node) ([]byte, bool) {
	switch {
	case n.ParentNode != nil:
		return n.ParentNode.ParentHash, true
	case n.LeafNode != nil && n.LeafNode.LeafNodeSource == wire.LeafNodeSourceCommit:
		return n.LeafNode.ParentHash, true
	}
	return nil, false
}

// VerifyParentHashes checks that every non-blank parent node is parent-hash valid
// (RFC 9420, Section 7.9.2), top down: each non-blank parent P must have exactly one
// descendant D whose parent_hash is the parent hash of P with copath child S, where D is in
// the resolution of P's other child C and P's unmerged leaves under C are exactly the rest
// of that resolution. Since D is itself a non-blank parent (checked in turn) or a leaf,
// every parent chains down to a leaf.
func (t *Tree) VerifyParentHashes() error {
	for i := 1; i < len(t.nodes); i += 2 {
		x := NodeIndex(i)
		pn := t.parent(x)
		if pn == nil {
			continue
		}
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		found := 0
		for _, pair := range [2][2]NodeIndex{{l, r}, {r, l}} {
			c, s := pair[0], pair[1]
			ph := t.parentHash(pn.EncryptionKey, pn.ParentHash, t.hashExcluding(s, pn.UnmergedLeaves))
			res := t.appendResolution(nil, c)
			for _, d := range res {
				dh, ok := nodeParentHash(t.nodes[d])
				if !ok || !bytes.Equal(dh, ph) {
					continue
				}
				if t.unmergedMatch(pn.UnmergedLeaves, c, res, d) {
					found++
				}
			}
		}
		if found != 1 {
			return fmt.Errorf("%w: node %d is linked from %d descendants, want 1", ErrParentHash, x, found)
		}
	}
	return nil
}

// unmergedMatch reports whether the unmerged leaves under c equal res without d, as sets.
func (t *Tree) unmergedMatch(unmerged []uint32, c NodeIndex, res []NodeIndex, d NodeIndex) bool {
	var under []NodeIndex
	for _, l := range unmerged {
		if inSubtree(c, LeafIndex(l)) {
			under = append(under, NodeIndex(2*l))
		}
	}
	rest := make([]NodeIndex, 0, len(res))
	for _, y := range res {
		if y != d {
			rest = append(rest, y)
		}
	}
	if len(rest) != len(under) {
		return false
	}
	slices.Sort(rest)
	slices.Sort(under)
	return slices.Equal(rest, under)
}
