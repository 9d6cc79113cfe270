package ratchettree

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/par"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// updatePathLabel is the EncryptWithLabel label of path secrets (RFC 9420, Section 7.6).
const updatePathLabel = "UpdatePathNode"

// nodeKey is a private key with its public key, as stored in the tree.
type nodeKey struct {
	priv *suite.HPKEPrivateKey
	pub  []byte
}

// deriveNodeKey derives the key pair of a node from its path secret (RFC 9420, Section
// 7.4): node_secret = DeriveSecret(path_secret, "node"); KEM.DeriveKeyPair(node_secret).
func deriveNodeKey(cs *suite.Suite, pathSecret []byte) (nodeKey, error) {
	priv, err := cs.DeriveKeyPair(cs.DeriveSecret(pathSecret, "node"))
	if err != nil {
		return nodeKey{}, err
	}
	return nodeKey{priv: priv, pub: priv.PublicKey()}, nil
}

// nodeEncryptionKey returns the encryption key of a non-blank node.
func nodeEncryptionKey(n *wire.Node) []byte {
	if n.LeafNode != nil {
		return n.LeafNode.EncryptionKey
	}
	return n.ParentNode.EncryptionKey
}

// PrivateKeys is what one member knows of the tree's private keys (RFC 9420, Section 4.2):
// the key of its own leaf and of some nodes on its direct path, by node index. Every use
// checks that a key still matches the public key in the tree, so a key made stale by a
// blanked or replaced node is never used.
type PrivateKeys struct {
	leaf LeafIndex
	keys map[NodeIndex]nodeKey
}

// NewPrivateKeys starts the private state of the member at leaf with the private key of its
// leaf node, which must match the leaf's encryption key.
func NewPrivateKeys(t *Tree, leaf LeafIndex, leafKey *suite.HPKEPrivateKey) (*PrivateKeys, error) {
	if err := t.checkLeaf(leaf, true); err != nil {
		return nil, err
	}
	if leafKey == nil {
		return nil, fmt.Errorf("%w: no leaf key", ErrNoPrivateKey)
	}
	k := nodeKey{priv: leafKey, pub: leafKey.PublicKey()}
	if !bytes.Equal(k.pub, t.Leaf(leaf).EncryptionKey) {
		return nil, fmt.Errorf("%w: leaf key does not match leaf %d", ErrNoPrivateKey, leaf)
	}
	return &PrivateKeys{leaf: leaf, keys: map[NodeIndex]nodeKey{NodeIndex(2 * leaf): k}}, nil
}

// Leaf returns the member's leaf index.
func (p *PrivateKeys) Leaf() LeafIndex { return p.leaf }

// Clone returns an independent copy of p.
func (p *PrivateKeys) Clone() *PrivateKeys {
	return &PrivateKeys{leaf: p.leaf, keys: maps.Clone(p.keys)}
}

// Key returns the private key of node x, or nil if the member does not know it.
func (p *PrivateKeys) Key(x NodeIndex) *suite.HPKEPrivateKey {
	if k, ok := p.keys[x]; ok {
		return k.priv
	}
	return nil
}

// SetLeafKey replaces the member's leaf key, after its own Update proposal was committed
// (RFC 9420, Section 12.1.2); the key must match the leaf node now in t.
func (p *PrivateKeys) SetLeafKey(t *Tree, leafKey *suite.HPKEPrivateKey) error {
	if err := t.checkLeaf(p.leaf, true); err != nil {
		return err
	}
	if leafKey == nil {
		return fmt.Errorf("%w: no leaf key", ErrNoPrivateKey)
	}
	k := nodeKey{priv: leafKey, pub: leafKey.PublicKey()}
	if !bytes.Equal(k.pub, t.Leaf(p.leaf).EncryptionKey) {
		return fmt.Errorf("%w: leaf key does not match leaf %d", ErrNoPrivateKey, p.leaf)
	}
	p.keys[NodeIndex(2*p.leaf)] = k
	return nil
}

// SetKey sets the private key of node x, the member's leaf or an ancestor of it, as when
// restoring a saved state; it must match the public key of x in t.
func (p *PrivateKeys) SetKey(t *Tree, x NodeIndex, key *suite.HPKEPrivateKey) error {
	if x == NodeIndex(2*p.leaf) {
		return p.SetLeafKey(t, key)
	}
	if err := p.checkAncestor(t, x); err != nil {
		return err
	}
	if key == nil {
		return fmt.Errorf("%w: no key", ErrNoPrivateKey)
	}
	k := nodeKey{priv: key, pub: key.PublicKey()}
	if !bytes.Equal(k.pub, nodeEncryptionKey(t.nodes[x])) {
		return fmt.Errorf("%w: key does not match node %d", ErrNoPrivateKey, x)
	}
	p.keys[x] = k
	return nil
}

// Nodes returns the nodes whose private key p holds, in increasing order.
func (p *PrivateKeys) Nodes() []NodeIndex {
	return slices.Sorted(maps.Keys(p.keys))
}

// usable returns the key of x if it matches the node currently in t.
func (p *PrivateKeys) usable(t *Tree, x NodeIndex) (nodeKey, bool) {
	k, ok := p.keys[x]
	if !ok || uint64(x) >= uint64(len(t.nodes)) || t.nodes[x] == nil {
		return nodeKey{}, false
	}
	return k, bytes.Equal(k.pub, nodeEncryptionKey(t.nodes[x]))
}

// checkAncestor checks that x is a non-blank parent node on the member's direct path.
func (p *PrivateKeys) checkAncestor(t *Tree, x NodeIndex) error {
	if err := t.checkLeaf(p.leaf, true); err != nil {
		return err
	}
	if treemath.IsLeaf(x) || !treemath.InTree(x, t.LeafCount()) || !inSubtree(x, p.leaf) {
		return fmt.Errorf("%w: node %d is not above leaf %d", ErrNoPrivateKey, x, p.leaf)
	}
	if t.nodes[x] == nil {
		return fmt.Errorf("%w: node %d is blank", ErrNoPrivateKey, x)
	}
	return nil
}

// SetPathSecret sets the private key of node x, an ancestor of the member's leaf, to the
// one derived from pathSecret (RFC 9420, Section 7.4), which must match the node's public
// key.
func (p *PrivateKeys) SetPathSecret(t *Tree, x NodeIndex, pathSecret []byte) error {
	if err := p.checkAncestor(t, x); err != nil {
		return err
	}
	k, err := deriveNodeKey(t.cs, pathSecret)
	if err != nil {
		return err
	}
	if !bytes.Equal(k.pub, nodeEncryptionKey(t.nodes[x])) {
		return fmt.Errorf("%w: path secret does not match node %d", ErrNoPrivateKey, x)
	}
	p.keys[x] = k
	return nil
}

// InstallPathSecret installs the path secret a joiner receives in GroupSecrets (RFC 9420,
// Section 12.4.3.1): x is the lowest common ancestor of the joiner's leaf and the
// committer's; its key comes from pathSecret and each non-blank node above it (the rest of
// the committer's filtered direct path) from the next path secret. Every derived key must
// match the tree. On error p is unchanged.
func (p *PrivateKeys) InstallPathSecret(t *Tree, x NodeIndex, pathSecret []byte) error {
	if err := p.checkAncestor(t, x); err != nil {
		return err
	}
	derived := map[NodeIndex]nodeKey{}
	ps := pathSecret
	for y := x; ; {
		if t.nodes[y] != nil {
			k, err := deriveNodeKey(t.cs, ps)
			if err != nil {
				return err
			}
			if !bytes.Equal(k.pub, nodeEncryptionKey(t.nodes[y])) {
				return fmt.Errorf("%w: path secret does not match node %d", ErrNoPrivateKey, y)
			}
			derived[y] = k
			ps = t.cs.DeriveSecret(ps, "path")
		}
		next, ok := treemath.Parent(y, t.LeafCount())
		if !ok {
			break
		}
		y = next
	}
	maps.Copy(p.keys, derived)
	return nil
}

// Check verifies that every private key p holds belongs to its leaf or an ancestor, and
// matches the public key of that node in t.
func (p *PrivateKeys) Check(t *Tree) error {
	for x := range p.keys {
		if !inSubtree(x, p.leaf) {
			return fmt.Errorf("%w: key for node %d, not above leaf %d", ErrNoPrivateKey, x, p.leaf)
		}
		if _, ok := p.usable(t, x); !ok {
			return fmt.Errorf("%w: key for node %d does not match the tree", ErrNoPrivateKey, x)
		}
	}
	return nil
}

// Prune forgets the keys of nodes that are blank or hold another public key in t, as
// RFC 9420, Section 7.5 asks after a node is replaced.
func (p *PrivateKeys) Prune(t *Tree) {
	for x := range p.keys {
		if _, ok := p.usable(t, x); !ok {
			delete(p.keys, x)
		}
	}
}

// PendingPath is an UpdatePath being created by a committer (RFC 9420, Sections 7.5 and
// 12.4.1): its public part is already merged into the tree, and Encrypt produces the
// UpdatePath once the provisional GroupContext, which depends on the new tree hash, is
// known.
type PendingPath struct {
	cs           *suite.Suite
	sender       LeafIndex
	leafNode     *wire.LeafNode
	leafKey      nodeKey
	steps        []pendingStep
	commitSecret []byte
}

type pendingStep struct {
	node       NodeIndex
	pathSecret []byte
	key        nodeKey
	resolution []resolved // of the copath child, captured before the merge
}

type resolved struct {
	node NodeIndex
	pub  []byte
}

func randomSecret(cs *suite.Suite) ([]byte, error) {
	b := make([]byte, cs.Nh())
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// GenerateUpdatePath refreshes the path of leaf sender as a committer does (RFC 9420,
// Sections 7.4, 7.5 and 7.9): it draws a fresh leaf key and path secrets, derives the
// keys of the filtered direct path, computes the parent hashes, signs the new leaf node
// (source commit, with groupID and sender's index) and merges it all into the tree: the
// direct path is blanked, then the filtered direct path gets the new keys with no unmerged
// leaves.
//
// template gives the new leaf node's credential, signature key, capabilities and
// extensions; nil keeps those of the sender's current leaf. signer must be the private key
// of the template's signature key. sender may be a blank leaf (an external Commit; see
// ReserveLeaf), then template is required. On error the tree is unchanged.
func (t *Tree) GenerateUpdatePath(sender LeafIndex, template *wire.LeafNode, signer *suite.SigningKey, groupID []byte) (*PendingPath, error) {
	if err := t.checkLeaf(sender, false); err != nil {
		return nil, err
	}
	if template == nil {
		if template = t.Leaf(sender); template == nil {
			return nil, fmt.Errorf("%w: leaf %d is blank and no leaf node was given", ErrLeafIndex, sender)
		}
	}
	if signer == nil || !bytes.Equal(signer.PublicKey(), template.SignatureKey) {
		return nil, fmt.Errorf("%w: signing key does not match the leaf's signature key", ErrInvalidLeafNode)
	}
	if l, dup := t.sigKeys[string(template.SignatureKey)]; dup && l != sender {
		return nil, fmt.Errorf("%w: signature key already used by leaf %d", ErrDuplicateKey, l)
	}
	cs := t.cs
	fdp := t.filteredPath(sender)

	leafSecret, err := randomSecret(cs)
	if err != nil {
		return nil, err
	}
	leafKey, err := deriveNodeKey(cs, leafSecret)
	if err != nil {
		return nil, err
	}
	ps, err := randomSecret(cs)
	if err != nil {
		return nil, err
	}
	pp := &PendingPath{cs: cs, sender: sender, leafKey: leafKey, steps: make([]pendingStep, len(fdp))}
	fresh := map[string]bool{string(leafKey.pub): true}
	for i, st := range fdp {
		k, err := deriveNodeKey(cs, ps)
		if err != nil {
			return nil, err
		}
		if fresh[string(k.pub)] {
			return nil, fmt.Errorf("%w: derived key repeats", ErrDuplicateKey)
		}
		fresh[string(k.pub)] = true
		var res []resolved
		for _, y := range t.appendResolution(nil, st.copath) {
			res = append(res, resolved{node: y, pub: nodeEncryptionKey(t.nodes[y])})
		}
		pp.steps[i] = pendingStep{node: st.node, pathSecret: ps, key: k, resolution: res}
		ps = cs.DeriveSecret(ps, "path")
	}
	pp.commitSecret = ps
	for pub := range fresh {
		if _, dup := t.encKeys[pub]; dup {
			return nil, fmt.Errorf("%w: fresh key already in the tree", ErrDuplicateKey)
		}
	}

	parents, leafParentHash := t.pathParentHashes(fdp, func(i int) []byte { return pp.steps[i].key.pub })
	leaf := *template
	leaf.EncryptionKey = leafKey.pub
	leaf.LeafNodeSource = wire.LeafNodeSourceCommit
	leaf.Lifetime = wire.Lifetime{}
	leaf.ParentHash = leafParentHash
	leaf.Signature = nil
	tbs, err := codec.Marshal(leaf.TBS(groupID, uint32(sender)))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidLeafNode, err)
	}
	if leaf.Signature, err = cs.SignWithLabel(signer, "LeafNodeTBS", tbs); err != nil {
		return nil, err
	}
	if _, err := codec.Marshal(&leaf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidLeafNode, err)
	}
	pp.leafNode = &leaf
	t.mergePath(sender, &leaf, fdp, parents)
	return pp, nil
}

// pathParentHashes builds the new parent nodes of a filtered direct path from their
// public keys and computes their parent hashes from the root down (RFC 9420, Section 7.9):
// the root's parent_hash is empty, each other node's is the parent hash of the next node
// on the path with its copath child, and the leaf's is that of the first node. The copath
// children are not on the path, so their tree hashes are those of the current tree.
func (t *Tree) pathParentHashes(fdp []pathStep, pub func(i int) []byte) ([]*wire.Node, []byte) {
	nodes := make([]*wire.Node, len(fdp))
	ph := []byte{}
	for i := len(fdp) - 1; i >= 0; i-- {
		pn := &wire.ParentNode{EncryptionKey: pub(i), ParentHash: ph, UnmergedLeaves: []uint32{}}
		nodes[i] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: pn}
		ph = t.parentHash(pn.EncryptionKey, pn.ParentHash, t.hash(fdp[i].copath))
	}
	return nodes, ph
}

// mergePath installs a new leaf node and path (RFC 9420, Section 7.5): blank the direct
// path, then set the filtered direct path. The keys were checked to be new.
func (t *Tree) mergePath(sender LeafIndex, leaf *wire.LeafNode, fdp []pathStep, parents []*wire.Node) {
	x := NodeIndex(2 * sender)
	t.setNode(x, &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: leaf})
	t.blankDirectPath(x)
	for i, st := range fdp {
		t.setNode(st.node, parents[i])
	}
}

// LeafNode returns the committer's new leaf node.
func (pp *PendingPath) LeafNode() *wire.LeafNode { return pp.leafNode }

// CommitSecret returns the commit_secret: the path secret derived after the last node of
// the path (RFC 9420, Section 12.4.1). With an empty filtered direct path it is a fresh
// random secret that no other member needs.
func (pp *PendingPath) CommitSecret() []byte { return bytes.Clone(pp.commitSecret) }

// PathSecret returns the path secret of the lowest common ancestor of the committer and
// leaf l, which the committer sends to a new member at l in its GroupSecrets (RFC 9420,
// Section 12.4.3.1).
func (pp *PendingPath) PathSecret(l LeafIndex) ([]byte, error) {
	for _, st := range pp.steps {
		if inSubtree(st.node, l) {
			return bytes.Clone(st.pathSecret), nil
		}
	}
	return nil, fmt.Errorf("%w: leaf %d shares no node of the committer's path", ErrLeafIndex, l)
}

// PrivateKeys returns the committer's private state after the commit: its new leaf key and
// the keys of its filtered direct path.
func (pp *PendingPath) PrivateKeys() *PrivateKeys {
	p := &PrivateKeys{leaf: pp.sender, keys: map[NodeIndex]nodeKey{NodeIndex(2 * pp.sender): pp.leafKey}}
	for _, st := range pp.steps {
		p.keys[st.node] = st.key
	}
	return p
}

// Encrypt encrypts each path secret to the resolution of its copath child, leaving out the
// leaves in exclude (the members added by the same Commit), under the encoded provisional
// GroupContext (RFC 9420, Sections 7.5, 7.6 and 12.4.1), and returns the UpdatePath.
func (pp *PendingPath) Encrypt(groupContext []byte, exclude []LeafIndex) (*wire.UpdatePath, error) {
	skip := excludedNodes(exclude)
	up := &wire.UpdatePath{LeafNode: *pp.leafNode, Nodes: make([]wire.UpdatePathNode, len(pp.steps))}
	// The encryptions are independent; after a large Add (a mostly blank tree) there is one
	// per member, so they run in parallel.
	type job struct {
		step int
		r    resolved
		out  *wire.HPKECiphertext
	}
	var jobs []job
	for i, st := range pp.steps {
		n := 0
		for _, r := range st.resolution {
			if !skip[r.node] {
				n++
			}
		}
		cts := make([]wire.HPKECiphertext, n)
		n = 0
		for _, r := range st.resolution {
			if !skip[r.node] {
				jobs = append(jobs, job{step: i, r: r, out: &cts[n]})
				n++
			}
		}
		up.Nodes[i] = wire.UpdatePathNode{EncryptionKey: st.key.pub, EncryptedPathSecret: cts}
	}
	err := par.Do(len(jobs), func(k int) error {
		j := jobs[k]
		kem, ct, err := pp.cs.EncryptWithLabel(j.r.pub, updatePathLabel, groupContext, pp.steps[j.step].pathSecret)
		if err != nil {
			return fmt.Errorf("mls: encrypting path secret to node %d: %w", j.r.node, err)
		}
		*j.out = wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return up, nil
}

func excludedNodes(exclude []LeafIndex) map[NodeIndex]bool {
	skip := make(map[NodeIndex]bool, len(exclude))
	for _, l := range exclude {
		if uint64(l) < treemath.MaxLeaves {
			skip[NodeIndex(2*uint64(l))] = true
		}
	}
	return skip
}

// ApplyUpdatePath validates the UpdatePath of a Commit from leaf sender and merges it into
// the tree, which already reflects the Commit's proposals (RFC 9420, Sections 7.5, 7.9.2
// and 12.4.2): the leaf node must be valid (Section 7.3) with source commit, signed with
// opts.GroupID and sender's index; no key of the path may already be in the tree (so the
// leaf's encryption key differs from the one it replaces); the path must have one node
// per node of the filtered direct path; and the leaf's parent_hash must be the parent hash
// of the new first node. sender may be a blank leaf reserved for an external joiner.
// Decrypting the path secret is a second step, DecryptUpdatePath, once the provisional
// GroupContext is known. On error the tree is unchanged.
func (t *Tree) ApplyUpdatePath(sender LeafIndex, path *wire.UpdatePath, opts *LeafNodeOptions) error {
	if path == nil {
		return fmt.Errorf("%w: missing", ErrInvalidUpdatePath)
	}
	if err := t.checkLeaf(sender, false); err != nil {
		return err
	}
	leaf := &path.LeafNode
	if err := t.ValidateLeafNode(leaf, sender, wire.LeafNodeSourceCommit, opts); err != nil {
		return err
	}
	fdp := t.filteredPath(sender)
	if len(path.Nodes) != len(fdp) {
		return fmt.Errorf("%w: %d nodes for a filtered direct path of %d", ErrInvalidUpdatePath, len(path.Nodes), len(fdp))
	}
	seen := map[string]bool{string(leaf.EncryptionKey): true}
	for i := range path.Nodes {
		pub := path.Nodes[i].EncryptionKey
		if err := t.cs.ValidateHPKEPublicKey(pub); err != nil {
			return fmt.Errorf("%w: node %d: %v", ErrInvalidUpdatePath, i, err)
		}
		if _, dup := t.encKeys[string(pub)]; dup || seen[string(pub)] {
			return fmt.Errorf("%w: encryption key of path node %d", ErrDuplicateKey, i)
		}
		seen[string(pub)] = true
	}
	parents, ph := t.pathParentHashes(fdp, func(i int) []byte { return path.Nodes[i].EncryptionKey })
	if !bytes.Equal(ph, leaf.ParentHash) {
		return fmt.Errorf("%w: leaf parent_hash %x, want %x", ErrParentHash, leaf.ParentHash, ph)
	}
	ln := *leaf
	t.mergePath(sender, &ln, fdp, parents)
	return nil
}

// Decrypted is the result of decrypting an UpdatePath.
type Decrypted struct {
	Node         NodeIndex // the node whose path secret was decrypted
	PathSecret   []byte    // its path secret
	CommitSecret []byte    // the commit_secret
}

// DecryptUpdatePath decrypts the path secret of an UpdatePath from leaf sender that
// ApplyUpdatePath has merged into t (RFC 9420, Sections 7.5 and 12.4.2): it checks that
// every node carries one ciphertext per node of its copath child's resolution without the
// leaves in exclude (the members added by the same Commit), decrypts the path secret of the
// lowest node above both the sender and this member with a key this member holds, derives
// the path secrets and keys above it, checks them against the tree, and returns the
// commit_secret. p then holds the new keys and forgets the replaced and blanked ones.
// On error p is unchanged.
func (p *PrivateKeys) DecryptUpdatePath(t *Tree, sender LeafIndex, path *wire.UpdatePath, groupContext []byte, exclude []LeafIndex) (*Decrypted, error) {
	if path == nil {
		return nil, fmt.Errorf("%w: missing", ErrInvalidUpdatePath)
	}
	if err := t.checkLeaf(sender, true); err != nil {
		return nil, err
	}
	if err := t.checkLeaf(p.leaf, true); err != nil {
		return nil, err
	}
	if p.leaf == sender {
		return nil, errors.New("mls: cannot decrypt one's own update path")
	}
	skip := excludedNodes(exclude)
	if skip[NodeIndex(2*p.leaf)] {
		return nil, fmt.Errorf("%w: leaf %d was added by this commit", ErrNoPrivateKey, p.leaf)
	}
	fdp := t.filteredPath(sender)
	if len(path.Nodes) != len(fdp) {
		return nil, fmt.Errorf("%w: %d nodes for a filtered direct path of %d", ErrInvalidUpdatePath, len(path.Nodes), len(fdp))
	}
	start := -1
	var startRes []NodeIndex
	for i, st := range fdp {
		if pn := t.parent(st.node); pn == nil || !bytes.Equal(pn.EncryptionKey, path.Nodes[i].EncryptionKey) {
			return nil, fmt.Errorf("%w: not merged into the tree", ErrInvalidUpdatePath)
		}
		var res []NodeIndex
		for _, y := range t.appendResolution(nil, st.copath) {
			if !skip[y] {
				res = append(res, y)
			}
		}
		if n := len(path.Nodes[i].EncryptedPathSecret); n != len(res) {
			return nil, fmt.Errorf("%w: node %d has %d ciphertexts for a resolution of %d", ErrInvalidUpdatePath, st.node, n, len(res))
		}
		if start < 0 && inSubtree(st.copath, p.leaf) {
			start, startRes = i, res
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: leaf %d is under no node of the path of leaf %d", ErrNoPrivateKey, p.leaf, sender)
	}
	for j, y := range startRes {
		k, ok := p.usable(t, y)
		if !ok {
			continue
		}
		ct := &path.Nodes[start].EncryptedPathSecret[j]
		ps, err := t.cs.DecryptWithLabel(k.priv, updatePathLabel, groupContext, ct.KEMOutput, ct.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("mls: decrypting path secret of node %d: %w", fdp[start].node, err)
		}
		return p.finishDecrypt(t, sender, fdp, start, ps)
	}
	return nil, fmt.Errorf("%w: for any node of the resolution of node %d", ErrNoPrivateKey, fdp[start].copath)
}

// finishDecrypt derives the keys of fdp[i] and the nodes above it from path secret ps,
// checks them against the tree and installs them.
func (p *PrivateKeys) finishDecrypt(t *Tree, sender LeafIndex, fdp []pathStep, i int, ps []byte) (*Decrypted, error) {
	out := &Decrypted{Node: fdp[i].node, PathSecret: ps}
	derived := make(map[NodeIndex]nodeKey, len(fdp)-i)
	for j := i; j < len(fdp); j++ {
		k, err := deriveNodeKey(t.cs, ps)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(k.pub, t.parent(fdp[j].node).EncryptionKey) {
			return nil, fmt.Errorf("%w: derived key of node %d differs from the update path", ErrInvalidUpdatePath, fdp[j].node)
		}
		derived[fdp[j].node] = k
		ps = t.cs.DeriveSecret(ps, "path")
	}
	out.CommitSecret = ps
	// Nodes above the common ancestor were blanked or replaced by the merge.
	for _, y := range t.directPath(NodeIndex(2 * sender)) {
		if inSubtree(y, p.leaf) {
			delete(p.keys, y)
		}
	}
	maps.Copy(p.keys, derived)
	p.Prune(t)
	return out, nil
}
