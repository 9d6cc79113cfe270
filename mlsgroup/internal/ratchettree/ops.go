package ratchettree

import (
	"fmt"
	"slices"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// LeftmostBlankLeaf returns the leaf an Add (or an external joiner) would take: the leftmost
// blank leaf, or LeafCount() if every leaf is taken and the tree must be extended
// (RFC 9420, Sections 7.7 and 12.1.1).
func (t *Tree) LeftmostBlankLeaf() LeafIndex {
	for x := 0; x < len(t.nodes); x += 2 {
		if t.nodes[x] == nil {
			return LeafIndex(x / 2)
		}
	}
	return LeafIndex(t.LeafCount())
}

// extend doubles the tree: a new blank root whose left subtree is the old tree and whose
// right subtree is blank (RFC 9420, Section 7.7). Cached hashes of the old tree stay valid.
func (t *Tree) extend() error {
	n := t.LeafCount()
	if uint64(n)*2 > treemath.MaxLeaves {
		return fmt.Errorf("%w: tree is full", ErrLeafIndex)
	}
	w, _ := treemath.NodeWidth(2 * n)
	t.nodes = append(t.nodes, make([]*wire.Node, int(w)-len(t.nodes))...)
	t.hashes = append(t.hashes, make([][]byte, int(w)-len(t.hashes))...)
	return nil
}

// truncate removes the right half of the tree while it holds no non-blank leaf
// (RFC 9420, Sections 7.7 and 12.1.3): the result has 2^d leaves for the smallest d with
// 2^d greater than the rightmost non-blank leaf. The cached hashes of the left part stay
// valid.
func (t *Tree) truncate() {
	last := -1
	for x := len(t.nodes) - 1; x >= 0; x -= 2 {
		if t.nodes[x] != nil {
			last = x / 2
			break
		}
	}
	n := t.LeafCount()
	for n > 1 && uint64(last) < uint64(n/2) {
		n /= 2
	}
	w, _ := treemath.NodeWidth(n)
	for x := int(w); x < len(t.nodes); x++ {
		t.unindexNode(NodeIndex(x)) // blank in a consistent tree; kept safe otherwise
		t.nodes[x] = nil
		t.hashes[x] = nil
	}
	t.nodes = t.nodes[:w:w]
	t.hashes = t.hashes[:w:w]
}

// ReserveLeaf returns the leftmost blank leaf, extending the tree first if there is none,
// as done for the sender of an external Commit before its UpdatePath is merged (RFC 9420,
// Section 12.4.2). The leaf stays blank until the path is merged.
func (t *Tree) ReserveLeaf() (LeafIndex, error) {
	l := t.LeftmostBlankLeaf()
	if uint64(l) == uint64(t.LeafCount()) {
		if err := t.extend(); err != nil {
			return 0, err
		}
	}
	return l, nil
}

// AddLeaf adds a member (RFC 9420, Section 12.1.1): it takes the leftmost blank leaf,
// extending the tree if there is none, adds that leaf to the unmerged_leaves of every
// non-blank parent on its direct path and stores ln there. It fails if ln's encryption or
// signature key is already in the tree. The caller validates ln (KeyPackage validation,
// ValidateLeafNode) before.
func (t *Tree) AddLeaf(ln *wire.LeafNode) (LeafIndex, error) {
	if err := checkLeafEncodable(ln); err != nil {
		return 0, err
	}
	if err := t.checkNewLeafKeys(ln, nil); err != nil {
		return 0, err
	}
	l := t.LeftmostBlankLeaf()
	if uint64(l) == uint64(t.LeafCount()) {
		if err := t.extend(); err != nil {
			return 0, err
		}
	}
	x := NodeIndex(2 * l)
	for _, p := range t.directPath(x) {
		pn := t.parent(p)
		if pn == nil {
			continue
		}
		unmerged := make([]uint32, 0, len(pn.UnmergedLeaves)+1)
		i, _ := slices.BinarySearch(pn.UnmergedLeaves, uint32(l))
		unmerged = append(unmerged, pn.UnmergedLeaves[:i]...)
		unmerged = append(unmerged, uint32(l))
		unmerged = append(unmerged, pn.UnmergedLeaves[i:]...)
		t.nodes[p] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNode{
			EncryptionKey:  pn.EncryptionKey,
			ParentHash:     pn.ParentHash,
			UnmergedLeaves: unmerged,
		}}
		t.hashes[p] = nil // the ancestors are invalidated with the leaf below
	}
	t.setNode(x, &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: ln})
	return l, nil
}

// checkNewLeafKeys checks that ln's encryption key is nowhere in the tree and that its
// signature key belongs to no member other than the one at replaced (nil for a new leaf).
func (t *Tree) checkNewLeafKeys(ln *wire.LeafNode, replaced *LeafIndex) error {
	if x, dup := t.encKeys[string(ln.EncryptionKey)]; dup {
		return fmt.Errorf("%w: encryption key already used by node %d", ErrDuplicateKey, x)
	}
	if l, dup := t.sigKeys[string(ln.SignatureKey)]; dup && (replaced == nil || l != *replaced) {
		return fmt.Errorf("%w: signature key already used by leaf %d", ErrDuplicateKey, l)
	}
	return nil
}

// Update replaces the leaf node of member l and blanks its direct path (RFC 9420, Section
// 12.1.2). It fails if l is not a member, if ln's encryption key is already in the tree
// (including the leaf being replaced) or if its signature key is another member's. The
// caller validates ln (ValidateLeafNode with source update) before.
func (t *Tree) Update(l LeafIndex, ln *wire.LeafNode) error {
	if err := t.checkLeaf(l, true); err != nil {
		return err
	}
	if err := checkLeafEncodable(ln); err != nil {
		return err
	}
	if err := t.checkNewLeafKeys(ln, &l); err != nil {
		return err
	}
	x := NodeIndex(2 * l)
	t.setNode(x, &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: ln})
	t.blankDirectPath(x)
	return nil
}

// Remove removes member l (RFC 9420, Section 12.1.3): it blanks the leaf and its direct
// path, then truncates the tree while its right half is blank.
func (t *Tree) Remove(l LeafIndex) error {
	if err := t.checkLeaf(l, true); err != nil {
		return err
	}
	x := NodeIndex(2 * l)
	t.setNode(x, nil)
	t.blankDirectPath(x)
	t.truncate()
	return nil
}

func (t *Tree) blankDirectPath(x NodeIndex) {
	for _, p := range t.directPath(x) {
		if t.nodes[p] != nil {
			t.setNode(p, nil)
		}
	}
}
