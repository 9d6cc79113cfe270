// Package ratchettree is the MLS ratchet tree and TreeKEM (RFC 9420, Sections 4, 7 and the
// tree parts of 12): the public tree with its tree hashes and parent hashes, the
// Add/Update/Remove operations, validation of a tree received on joining, and the creation,
// merging and decryption of UpdatePaths together with the private keys a member holds.
//
// A Tree is always full in memory: its leaf count is a power of two and it stores
// 2n-1 nodes, nil for a blank node (Section 7.7); Wire truncates trailing blanks as
// Section 12.4.3.3 requires. Tree hashes are cached per node and only the path above a
// changed node is invalidated, so a commit in a large group costs O(log n) hashes.
// Encryption and signature keys are indexed, so the uniqueness checks of Section 7.3 cost a
// map lookup.
//
// Nodes handed to a Tree (FromWire, AddLeaf, Update) become the tree's: the caller must not
// modify them afterwards; nodes returned by Node, Leaf and Wire must not be modified either.
// The tree never modifies a node in place: a change replaces the node, so Clone is a
// shallow copy. A Tree is not safe for concurrent use, not even for reading (the hash
// cache is filled lazily).
//
// Every method that can fail leaves the tree unchanged when it returns an error.
//
// How the group state machine uses it:
//
//   - Joining (Section 12.4.3.1): FromWire on the ratchet_tree, Validate with the
//     GroupInfo's tree hash, FindLeaf for the KeyPackage's leaf node, NewPrivateKeys with
//     the leaf's private key, and InstallPathSecret at the common ancestor of the joiner and
//     the GroupInfo signer.
//   - Processing a Commit (Section 12.4.2): on a Clone, ValidateLeafNode then Update,
//     Remove and AddLeaf for the proposals (noting the added leaves), ReserveLeaf for an
//     external sender, ApplyUpdatePath, TreeHash for the provisional GroupContext, then
//     PrivateKeys.DecryptUpdatePath on a clone of the private keys, excluding the added
//     leaves, for the commit_secret.
//   - Creating a Commit (Section 12.4.1): on a Clone, the proposals as above, then
//     GenerateUpdatePath, TreeHash for the provisional GroupContext, PendingPath.Encrypt
//     excluding the added leaves, PendingPath.PathSecret for each new member's
//     GroupSecrets, and PendingPath.PrivateKeys as the committer's new private state.
package ratchettree

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// LeafIndex is the index of a leaf among the leaves (RFC 9420, Section 4.1).
type LeafIndex = treemath.LeafIndex

// NodeIndex is the index of a node in the array representation (RFC 9420, Appendix C).
type NodeIndex = treemath.NodeIndex

// Errors callers may branch on; the returned errors wrap them with details.
var (
	// ErrMalformedTree: the tree's structure is invalid (node types, blank last node,
	// unmerged leaves, size).
	ErrMalformedTree = errors.New("mls: malformed ratchet tree")
	// ErrTreeHash: the tree hash differs from the one the group agreed on.
	ErrTreeHash = errors.New("mls: tree hash mismatch")
	// ErrParentHash: a parent hash does not verify.
	ErrParentHash = errors.New("mls: parent hash mismatch")
	// ErrDuplicateKey: an encryption or signature key already appears in the tree.
	ErrDuplicateKey = errors.New("mls: duplicate key in ratchet tree")
	// ErrInvalidLeafNode: a leaf node fails the checks of Section 7.3.
	ErrInvalidLeafNode = errors.New("mls: invalid leaf node")
	// ErrLeafIndex: a leaf index is outside the tree, or names a blank leaf where a member
	// is required.
	ErrLeafIndex = errors.New("mls: invalid leaf index")
	// ErrInvalidUpdatePath: an UpdatePath does not fit the tree.
	ErrInvalidUpdatePath = errors.New("mls: invalid update path")
	// ErrNoPrivateKey: no private key known to this member decrypts the path secret, or a
	// private key does not match the tree.
	ErrNoPrivateKey = errors.New("mls: no matching private key")
)

// Tree is a ratchet tree of one cipher suite. The zero value is not usable; build one
// with New or FromWire.
type Tree struct {
	cs     *suite.Suite
	nodes  []*wire.Node // 2n-1 nodes, n a power of two; nil = blank
	hashes [][]byte     // tree hash of each node; nil = not computed yet

	// Indexes for the uniqueness checks of Sections 7.3 and 12.4.3.1.
	encKeys map[string]NodeIndex // every encryption key in the tree
	sigKeys map[string]LeafIndex // every leaf's signature key

	// Credential bookkeeping for Section 7.3: how many members use each credential type,
	// and how many list each type in their capabilities.
	members     int
	credInUse   map[wire.CredentialType]int
	credSupport map[wire.CredentialType]int
}

func newTree(cs *suite.Suite, leaves uint32) *Tree {
	w, _ := treemath.NodeWidth(leaves)
	return &Tree{
		cs:          cs,
		nodes:       make([]*wire.Node, w),
		hashes:      make([][]byte, w),
		encKeys:     make(map[string]NodeIndex),
		sigKeys:     make(map[string]LeafIndex),
		credInUse:   make(map[wire.CredentialType]int),
		credSupport: make(map[wire.CredentialType]int),
	}
}

// New returns a one-member tree holding leaf, as the creator of a group builds it
// (RFC 9420, Section 11).
func New(cs *suite.Suite, leaf *wire.LeafNode) (*Tree, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	if err := checkLeafEncodable(leaf); err != nil {
		return nil, err
	}
	t := newTree(cs, 1)
	t.setNode(0, &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: leaf})
	return t, nil
}

// FromWire builds a tree from the body of a ratchet_tree extension (RFC 9420, Section
// 12.4.3.3): it rejects an empty tree, a blank last node, a node whose type does not match
// its position (leaves at even indices, parents at odd ones), a parent node whose unmerged
// leaves are unsorted, outside its subtree, blank or missing from an intermediate node
// (Section 12.4.3.1), and duplicate encryption or signature keys; then it extends the tree
// with blanks to full width. It does not verify hashes or signatures: see Validate.
//
// The tree takes ownership of the nodes of rt.
func FromWire(cs *suite.Suite, rt wire.RatchetTree) (*Tree, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	if len(rt) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformedTree)
	}
	if rt[len(rt)-1] == nil {
		return nil, fmt.Errorf("%w: last node is blank", ErrMalformedTree)
	}
	// The smallest full tree holding len(rt) nodes.
	n := uint64(1)
	for 2*n-1 < uint64(len(rt)) {
		n *= 2
	}
	if n > treemath.MaxLeaves {
		return nil, fmt.Errorf("%w: too many nodes (%d)", ErrMalformedTree, len(rt))
	}
	t := newTree(cs, uint32(n))
	for i, node := range rt {
		if node == nil {
			continue
		}
		x := NodeIndex(i)
		if err := checkNodeShape(x, node); err != nil {
			return nil, err
		}
		if err := t.indexNode(x, node); err != nil {
			return nil, err
		}
		t.nodes[x] = node
	}
	if err := t.checkUnmerged(); err != nil {
		return nil, err
	}
	return t, nil
}

// checkNodeShape checks that node fits position x and can be encoded, so that hashing it
// later cannot fail.
func checkNodeShape(x NodeIndex, node *wire.Node) error {
	switch {
	case treemath.IsLeaf(x):
		if node.NodeType != wire.NodeTypeLeaf || node.LeafNode == nil || node.ParentNode != nil {
			return fmt.Errorf("%w: node %d is not a leaf node", ErrMalformedTree, x)
		}
		if err := checkLeafEncodable(node.LeafNode); err != nil {
			return fmt.Errorf("%w: node %d: %v", ErrMalformedTree, x, err)
		}
	default:
		if node.NodeType != wire.NodeTypeParent || node.ParentNode == nil || node.LeafNode != nil {
			return fmt.Errorf("%w: node %d is not a parent node", ErrMalformedTree, x)
		}
		if _, err := codec.Marshal(node.ParentNode); err != nil {
			return fmt.Errorf("%w: node %d: %v", ErrMalformedTree, x, err)
		}
	}
	return nil
}

func checkLeafEncodable(ln *wire.LeafNode) error {
	if ln == nil {
		return fmt.Errorf("%w: missing", ErrInvalidLeafNode)
	}
	if _, err := codec.Marshal(ln); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidLeafNode, err)
	}
	return nil
}

// indexNode adds the keys of node, to be placed at x, to the indexes, failing (with the
// indexes unchanged) on a duplicate.
func (t *Tree) indexNode(x NodeIndex, node *wire.Node) error {
	var enc []byte
	if node.LeafNode != nil {
		enc = node.LeafNode.EncryptionKey
		sig := string(node.LeafNode.SignatureKey)
		if _, dup := t.sigKeys[sig]; dup {
			return fmt.Errorf("%w: signature key of node %d", ErrDuplicateKey, x)
		}
		if _, dup := t.encKeys[string(enc)]; dup {
			return fmt.Errorf("%w: encryption key of node %d", ErrDuplicateKey, x)
		}
		t.sigKeys[sig] = LeafIndex(x / 2)
		t.encKeys[string(enc)] = x
		t.countLeaf(node.LeafNode, +1)
		return nil
	}
	enc = node.ParentNode.EncryptionKey
	if _, dup := t.encKeys[string(enc)]; dup {
		return fmt.Errorf("%w: encryption key of node %d", ErrDuplicateKey, x)
	}
	t.encKeys[string(enc)] = x
	return nil
}

// unindexNode removes the keys of the node at x from the indexes.
func (t *Tree) unindexNode(x NodeIndex) {
	node := t.nodes[x]
	if node == nil {
		return
	}
	if node.LeafNode != nil {
		delete(t.sigKeys, string(node.LeafNode.SignatureKey))
		delete(t.encKeys, string(node.LeafNode.EncryptionKey))
		t.countLeaf(node.LeafNode, -1)
		return
	}
	delete(t.encKeys, string(node.ParentNode.EncryptionKey))
}

// countLeaf updates the credential bookkeeping for a member joining (+1) or leaving (-1).
func (t *Tree) countLeaf(ln *wire.LeafNode, d int) {
	t.members += d
	bump(t.credInUse, ln.Credential.CredentialType, d)
	for _, ct := range distinct(ln.Capabilities.Credentials) {
		bump(t.credSupport, ct, d)
	}
}

func bump[K comparable](m map[K]int, k K, d int) {
	if v := m[k] + d; v != 0 {
		m[k] = v
	} else {
		delete(m, k)
	}
}

// distinct returns the values of list without repetitions, sorted.
func distinct[T ~uint16](list []T) []T {
	if len(list) < 2 {
		return list
	}
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Compact(out)
}

// setNode replaces the node at x, keeping the indexes and the hash cache up to date. The
// caller has checked that the new node's keys are not in the tree (apart from the node it
// replaces) and that it fits position x.
func (t *Tree) setNode(x NodeIndex, node *wire.Node) {
	t.unindexNode(x)
	if node != nil {
		if err := t.indexNode(x, node); err != nil {
			panic("mls: internal error: " + err.Error())
		}
	}
	t.nodes[x] = node
	t.invalidate(x)
}

// invalidate drops the cached tree hashes of x and its ancestors.
func (t *Tree) invalidate(x NodeIndex) {
	n := t.LeafCount()
	for {
		t.hashes[x] = nil
		p, ok := treemath.Parent(x, n)
		if !ok {
			return
		}
		x = p
	}
}

// Clone returns an independent copy of t. Nodes are shared, which is safe since the tree
// never modifies a node in place.
func (t *Tree) Clone() *Tree {
	return &Tree{
		cs:          t.cs,
		nodes:       slices.Clone(t.nodes),
		hashes:      slices.Clone(t.hashes),
		encKeys:     maps.Clone(t.encKeys),
		sigKeys:     maps.Clone(t.sigKeys),
		members:     t.members,
		credInUse:   maps.Clone(t.credInUse),
		credSupport: maps.Clone(t.credSupport),
	}
}

// Suite returns the tree's cipher suite.
func (t *Tree) Suite() *suite.Suite { return t.cs }

// Wire returns the tree as the body of a ratchet_tree extension, without trailing blank
// nodes (RFC 9420, Section 12.4.3.3). The nodes are the tree's own: do not modify them.
func (t *Tree) Wire() wire.RatchetTree {
	end := len(t.nodes)
	for end > 0 && t.nodes[end-1] == nil {
		end--
	}
	return slices.Clone(wire.RatchetTree(t.nodes[:end]))
}

// LeafCount returns the number of leaves, blank or not: a power of two.
func (t *Tree) LeafCount() uint32 { return uint32((len(t.nodes) + 1) / 2) }

// Width returns the number of nodes, 2*LeafCount()-1.
func (t *Tree) Width() uint32 { return uint32(len(t.nodes)) }

// MemberCount returns the number of non-blank leaves.
func (t *Tree) MemberCount() int { return t.members }

// Root returns the index of the root node.
func (t *Tree) Root() NodeIndex {
	r, _ := treemath.Root(t.LeafCount())
	return r
}

// Node returns the node at x, or nil if it is blank or outside the tree.
func (t *Tree) Node(x NodeIndex) *wire.Node {
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil
	}
	return t.nodes[x]
}

// Leaf returns the leaf node of leaf l, or nil if it is blank or outside the tree.
func (t *Tree) Leaf(l LeafIndex) *wire.LeafNode {
	if uint64(l) >= uint64(t.LeafCount()) {
		return nil
	}
	if n := t.nodes[2*uint64(l)]; n != nil {
		return n.LeafNode
	}
	return nil
}

// parent returns the parent node at x, or nil if it is blank. x must be a parent index
// inside the tree.
func (t *Tree) parent(x NodeIndex) *wire.ParentNode {
	if n := t.nodes[x]; n != nil {
		return n.ParentNode
	}
	return nil
}

// Leaves iterates over the non-blank leaves in order.
func (t *Tree) Leaves() iter.Seq2[LeafIndex, *wire.LeafNode] {
	return func(yield func(LeafIndex, *wire.LeafNode) bool) {
		for x := 0; x < len(t.nodes); x += 2 {
			if n := t.nodes[x]; n != nil && !yield(LeafIndex(x/2), n.LeafNode) {
				return
			}
		}
	}
}

// FindLeaf returns the leaf whose leaf node is identical to ln, as a joiner looks for its
// own leaf (RFC 9420, Section 12.4.3.1).
func (t *Tree) FindLeaf(ln *wire.LeafNode) (LeafIndex, bool) {
	if ln == nil {
		return 0, false
	}
	x, ok := t.encKeys[string(ln.EncryptionKey)]
	if !ok || !treemath.IsLeaf(x) {
		return 0, false
	}
	want, err := codec.Marshal(ln)
	if err != nil {
		return 0, false
	}
	if !bytes.Equal(codec.MustMarshal(t.nodes[x].LeafNode), want) {
		return 0, false
	}
	return LeafIndex(x / 2), true
}

// LeafBySignatureKey returns the leaf whose signature key is key.
func (t *Tree) LeafBySignatureKey(key []byte) (LeafIndex, bool) {
	l, ok := t.sigKeys[string(key)]
	return l, ok
}

// NodeByEncryptionKey returns the node whose encryption key is key.
func (t *Tree) NodeByEncryptionKey(key []byte) (NodeIndex, bool) {
	x, ok := t.encKeys[string(key)]
	return x, ok
}

// leafInRange reports an error unless l is a leaf of the tree; member additionally requires
// it to be non-blank.
func (t *Tree) checkLeaf(l LeafIndex, member bool) error {
	if uint64(l) >= uint64(t.LeafCount()) {
		return fmt.Errorf("%w: leaf %d outside a tree of %d leaves", ErrLeafIndex, l, t.LeafCount())
	}
	if member && t.nodes[2*uint64(l)] == nil {
		return fmt.Errorf("%w: leaf %d is blank", ErrLeafIndex, l)
	}
	return nil
}

// inSubtree reports whether leaf l is under node x (x itself for a leaf).
func inSubtree(x NodeIndex, l LeafIndex) bool {
	k := treemath.Level(x)
	if k > 31 {
		return false
	}
	half := uint64(1)<<k - 1
	y := 2 * uint64(l)
	return uint64(x)-half <= y && y <= uint64(x)+half
}

// Resolution returns the resolution of node x (RFC 9420, Section 4.1.1): the node itself
// followed by its unmerged leaves if it is not blank, nothing for a blank leaf, and the
// resolutions of its children for a blank parent. It returns nil for a node outside the
// tree.
func (t *Tree) Resolution(x NodeIndex) []NodeIndex {
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil
	}
	return t.appendResolution(nil, x)
}

func (t *Tree) appendResolution(dst []NodeIndex, x NodeIndex) []NodeIndex {
	if n := t.nodes[x]; n != nil {
		dst = append(dst, x)
		if n.ParentNode != nil {
			for _, l := range n.ParentNode.UnmergedLeaves {
				dst = append(dst, NodeIndex(2*l))
			}
		}
		return dst
	}
	if treemath.IsLeaf(x) {
		return dst
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	return t.appendResolution(t.appendResolution(dst, l), r)
}

// resolutionEmpty reports whether the subtree under x holds no non-blank node.
func (t *Tree) resolutionEmpty(x NodeIndex) bool {
	if t.nodes[x] != nil {
		return false
	}
	if treemath.IsLeaf(x) {
		return true
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	return t.resolutionEmpty(l) && t.resolutionEmpty(r)
}

// pathStep is one node of a filtered direct path with its child on the copath.
type pathStep struct {
	node, copath NodeIndex
}

// filteredPath returns the filtered direct path of leaf l (RFC 9420, Section 4.1.2): its
// direct path without the nodes whose copath child has an empty resolution. l must be in
// the tree.
func (t *Tree) filteredPath(l LeafIndex) []pathStep {
	n := t.LeafCount()
	x := NodeIndex(2 * l)
	var out []pathStep
	for {
		p, ok := treemath.Parent(x, n)
		if !ok {
			return out
		}
		s, _ := treemath.Sibling(x, n)
		if !t.resolutionEmpty(s) {
			out = append(out, pathStep{node: p, copath: s})
		}
		x = p
	}
}

// FilteredDirectPath returns the filtered direct path of leaf l, from the leaf's parent
// side up to the root (RFC 9420, Section 4.1.2).
func (t *Tree) FilteredDirectPath(l LeafIndex) ([]NodeIndex, error) {
	if err := t.checkLeaf(l, false); err != nil {
		return nil, err
	}
	steps := t.filteredPath(l)
	out := make([]NodeIndex, len(steps))
	for i, s := range steps {
		out[i] = s.node
	}
	return out, nil
}

// directPath returns the direct path of x (RFC 9420, Section 4.1.2), x inside the tree.
func (t *Tree) directPath(x NodeIndex) []NodeIndex {
	p, _ := treemath.DirectPath(x, t.LeafCount())
	return p
}

// checkUnmerged checks every parent node's unmerged_leaves (RFC 9420, Sections 7.1 and
// 12.4.3.1): strictly increasing, each a non-blank leaf under the parent, and listed by
// every non-blank intermediate node between that leaf and the parent.
func (t *Tree) checkUnmerged() error {
	n := t.LeafCount()
	for i := 1; i < len(t.nodes); i += 2 {
		pn := t.parent(NodeIndex(i))
		if pn == nil {
			continue
		}
		x := NodeIndex(i)
		for j, l := range pn.UnmergedLeaves {
			if j > 0 && pn.UnmergedLeaves[j-1] >= l {
				return fmt.Errorf("%w: unmerged leaves of node %d are not sorted", ErrMalformedTree, x)
			}
			if !inSubtree(x, LeafIndex(l)) {
				return fmt.Errorf("%w: unmerged leaf %d is not under node %d", ErrMalformedTree, l, x)
			}
			if t.nodes[2*uint64(l)] == nil {
				return fmt.Errorf("%w: unmerged leaf %d of node %d is blank", ErrMalformedTree, l, x)
			}
			for y, _ := treemath.Parent(NodeIndex(2*l), n); y != x; y, _ = treemath.Parent(y, n) {
				if q := t.parent(y); q != nil {
					if _, found := slices.BinarySearch(q.UnmergedLeaves, l); !found {
						return fmt.Errorf("%w: node %d lacks unmerged leaf %d of its ancestor %d",
							ErrMalformedTree, y, l, x)
					}
				}
			}
		}
	}
	return nil
}
