// Package treemath is the array-based tree arithmetic of RFC 9420, Appendix C.
//
// A ratchet tree with n leaves is stored as an array of NodeWidth(n) = 2n-1 nodes: leaf i is
// node 2i and parent nodes sit at odd indices. RFC 9420 trees are always full (Section 7.7):
// n is a power of two. A valid tree has 1 ≤ n ≤ MaxLeaves = 2^31 leaves, so every node index
// fits a uint32 (the largest is 2^32-2); the arithmetic is done in 64 bits and cannot
// overflow.
//
// No function panics. A function that takes a leaf count returns ok = false when the count is
// not a valid tree size or a node is not in that tree, and functions of a node alone (Left,
// Right) return ok = false when the node has no such relative in any valid tree.
package treemath

import "math/bits"

// LeafIndex is the index of a leaf among the leaves (RFC 9420, Section 4.1: "leaf index").
type LeafIndex uint32

// NodeIndex is the index of a node in the array representation (Appendix C).
type NodeIndex uint32

// MaxLeaves is the largest number of leaves a tree can have: 2^31, whose width 2^32-1 is
// the largest that uint32 node indices can address.
const MaxLeaves = 1 << 31

// ValidLeafCount reports whether a tree with n leaves is a valid RFC 9420 tree: 1 ≤ n ≤
// MaxLeaves and n a power of two (Section 7.7: "the tree is always full").
func ValidLeafCount(n uint32) bool {
	return n != 0 && n <= MaxLeaves && n&(n-1) == 0
}

// Level is level(x) of Appendix C: leaves are level 0, their parents level 1, and so on.
// It is the number of trailing one bits of x (32 for 0xffffffff, which is in no tree).
func Level(x NodeIndex) int {
	return bits.TrailingZeros32(^uint32(x))
}

// IsLeaf reports whether x is a leaf node: an even index (Appendix C).
func IsLeaf(x NodeIndex) bool { return x&1 == 0 }

// LeafNode converts a leaf index to its node index, 2*leaf (Appendix C). ok is false for
// leaf ≥ MaxLeaves, which no tree has.
func LeafNode(leaf LeafIndex) (x NodeIndex, ok bool) {
	if uint64(leaf) >= MaxLeaves {
		return 0, false
	}
	return NodeIndex(2 * uint64(leaf)), true
}

// NodeLeaf converts a node index to the leaf index it holds, x/2. ok is false for a parent
// node (an odd index).
func NodeLeaf(x NodeIndex) (leaf LeafIndex, ok bool) {
	if !IsLeaf(x) {
		return 0, false
	}
	return LeafIndex(x / 2), true
}

// NodeWidth is node_width(n) of Appendix C: the number of nodes of a tree with n leaves,
// 2(n-1)+1 (0 for n = 0). ok is false for n > MaxLeaves. Unlike the other functions it
// accepts any n, since it is also the size of an array prefix.
func NodeWidth(n uint32) (width uint32, ok bool) {
	if n > MaxLeaves {
		return 0, false
	}
	if n == 0 {
		return 0, true
	}
	return uint32(2*(uint64(n)-1) + 1), true
}

// LeafCount is the inverse of NodeWidth (Appendix C) for a full tree: the number of leaves of a tree of
// width nodes. ok is false if width is not the width of a valid tree.
func LeafCount(width uint32) (n uint32, ok bool) {
	if width&1 == 0 { // includes width 0
		return 0, false
	}
	n = uint32((uint64(width) + 1) / 2)
	if !ValidLeafCount(n) {
		return 0, false
	}
	return n, true
}

// InTree reports whether x is a node of a valid tree with n leaves: x < node_width(n)
// (Appendix C).
func InTree(x NodeIndex, n uint32) bool {
	if !ValidLeafCount(n) {
		return false
	}
	w, _ := NodeWidth(n)
	return uint32(x) < w
}

// LeafInTree reports whether leaf is a leaf of a valid tree with n leaves (Section 4.1).
func LeafInTree(leaf LeafIndex, n uint32) bool {
	return ValidLeafCount(n) && uint32(leaf) < n
}

// Root is root(n) of Appendix C: the root of a tree with n leaves, 2^k - 1 for the largest
// power of two 2^k not above the width. ok is false if n is not a valid tree size.
func Root(n uint32) (NodeIndex, bool) {
	if !ValidLeafCount(n) {
		return 0, false
	}
	w, _ := NodeWidth(n)
	k := bits.Len32(w) - 1 // log2(w)
	return NodeIndex(uint64(1)<<k - 1), true
}

// Left is left(x) of Appendix C: the left child of the parent node x. ok is false for a leaf
// and for 0xffffffff, the one index that is not a node of any valid tree.
func Left(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 || k > 31 {
		return 0, false
	}
	return NodeIndex(uint64(x) ^ uint64(1)<<(k-1)), true
}

// Right is right(x) of Appendix C: the right child of the parent node x. ok is false for a
// leaf and for 0xffffffff. In a full tree the right child of an in-tree node is in the tree.
func Right(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 || k > 31 {
		return 0, false
	}
	return NodeIndex(uint64(x) ^ uint64(3)<<(k-1)), true
}

// Parent is parent(x, n) of Appendix C: the parent of x in a tree with n leaves. ok is false
// for the root, for a node outside the tree and for an invalid n.
func Parent(x NodeIndex, n uint32) (NodeIndex, bool) {
	r, ok := Root(n)
	if !ok || x == r || !InTree(x, n) {
		return 0, false
	}
	k := Level(x) // < 31 since x is not the root
	v := uint64(x)
	b := (v >> (k + 1)) & 1
	return NodeIndex((v | 1<<k) ^ b<<(k+1)), true
}

// Sibling is sibling(x, n) of Appendix C: the other child of x's parent. ok is false for the
// root, for a node outside the tree and for an invalid n.
func Sibling(x NodeIndex, n uint32) (NodeIndex, bool) {
	p, ok := Parent(x, n)
	if !ok {
		return 0, false
	}
	if x < p {
		return Right(p)
	}
	return Left(p)
}

// DirectPath is direct_path(x, n) of Section 4.1 and Appendix C: the ancestors of x from its
// parent up to the root, empty for the root. ok is false for a node outside the tree.
func DirectPath(x NodeIndex, n uint32) ([]NodeIndex, bool) {
	r, ok := Root(n)
	if !ok || !InTree(x, n) {
		return nil, false
	}
	path := make([]NodeIndex, 0, Level(r)-Level(x))
	for x != r {
		x, _ = Parent(x, n)
		path = append(path, x)
	}
	return path, true
}

// Copath is copath(x, n) of Section 4.1 and Appendix C: the sibling of x followed by the
// siblings of every node of its direct path except the root, ordered from leaf to root.
// ok is false for a node outside the tree.
func Copath(x NodeIndex, n uint32) ([]NodeIndex, bool) {
	r, ok := Root(n)
	if !ok || !InTree(x, n) {
		return nil, false
	}
	path := make([]NodeIndex, 0, Level(r)-Level(x))
	for x != r {
		s, _ := Sibling(x, n)
		path = append(path, s)
		x, _ = Parent(x, n)
	}
	return path, true
}

// CommonAncestor is common_ancestor(x, y) of Appendix C: the lowest node that is x or y or
// in both of their direct paths. ok is false if x or y is outside the tree.
//
// The subtree of a node p at level k is the 2^(k+1)-1 indices that share p's bits above
// bit k, so the ancestor is at the smallest level k ≥ level(x), level(y) at which x and y
// agree above bit k.
func CommonAncestor(x, y NodeIndex, n uint32) (NodeIndex, bool) {
	if !InTree(x, n) || !InTree(y, n) {
		return 0, false
	}
	k := max(Level(x), Level(y), bits.Len32(uint32(x^y))-1)
	base := uint64(x) >> (k + 1) << (k + 1)
	return NodeIndex(base | (uint64(1)<<k - 1)), true
}

// IsAncestor reports whether a is x or in x's direct path (Section 4.1) in a tree with n
// leaves.
func IsAncestor(a, x NodeIndex, n uint32) bool {
	c, ok := CommonAncestor(a, x, n)
	return ok && c == a
}
