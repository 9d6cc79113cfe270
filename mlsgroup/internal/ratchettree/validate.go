package ratchettree

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/par"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// LeafNodeOptions is the group context a leaf node is validated in (RFC 9420, Section 7.3).
type LeafNodeOptions struct {
	// GroupID is signed by leaf nodes of source update and commit.
	GroupID []byte
	// RequiredCapabilities is the group's required_capabilities extension, nil if none.
	RequiredCapabilities *wire.RequiredCapabilities
	// Now, if not zero, must lie within the lifetime of key_package leaf nodes.
	Now time.Time
	// CheckCredential, if set, validates a leaf's credential against its signature key
	// (Section 5.3.1); the application decides what is acceptable.
	CheckCredential func(c *wire.Credential, signatureKey []byte) error
}

// isDefaultExtension reports whether t is one of the extension types of RFC 9420 that
// capabilities must not list (Section 7.2).
func isDefaultExtension(t wire.ExtensionType) bool {
	return t >= wire.ExtensionTypeApplicationID && t <= wire.ExtensionTypeExternalSenders
}

// isDefaultProposal reports whether t is one of the proposal types of RFC 9420 that
// capabilities must not list (Section 7.2).
func isDefaultProposal(t wire.ProposalType) bool { return t.Known() }

// checkLeafContent runs the checks of RFC 9420, Section 7.3 that concern the leaf node
// alone: keys well formed, signature (with group id and leaf index for the update and
// commit sources), credential, source, lifetime, capabilities of its own credential and
// extensions, and the group's required capabilities. source 0 accepts any source.
func (t *Tree) checkLeafContent(ln *wire.LeafNode, l LeafIndex, source wire.LeafNodeSource, opts *LeafNodeOptions) error {
	if opts == nil {
		opts = &LeafNodeOptions{}
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidLeafNode, fmt.Sprintf(format, args...))
	}
	if source != 0 && ln.LeafNodeSource != source {
		return bad("leaf_node_source is %d, want %d", ln.LeafNodeSource, source)
	}
	if !ln.LeafNodeSource.Known() {
		return bad("unknown leaf_node_source %d", ln.LeafNodeSource)
	}
	if err := t.cs.ValidateHPKEPublicKey(ln.EncryptionKey); err != nil {
		return bad("%v", err)
	}
	if err := t.cs.ValidateSignaturePublicKey(ln.SignatureKey); err != nil {
		return bad("%v", err)
	}
	if opts.CheckCredential != nil {
		if err := opts.CheckCredential(&ln.Credential, ln.SignatureKey); err != nil {
			return bad("credential: %v", err)
		}
	}
	caps := &ln.Capabilities
	if !slices.Contains(caps.Credentials, ln.Credential.CredentialType) {
		return bad("credential type %d not in its capabilities", ln.Credential.CredentialType)
	}
	for _, e := range ln.Extensions {
		if !isDefaultExtension(e.ExtensionType) && !slices.Contains(caps.Extensions, e.ExtensionType) {
			return bad("extension %d not in its capabilities", e.ExtensionType)
		}
	}
	if rc := opts.RequiredCapabilities; rc != nil {
		for _, e := range rc.ExtensionTypes {
			if !isDefaultExtension(e) && !slices.Contains(caps.Extensions, e) {
				return bad("required extension %d not supported", e)
			}
		}
		for _, p := range rc.ProposalTypes {
			if !isDefaultProposal(p) && !slices.Contains(caps.Proposals, p) {
				return bad("required proposal %d not supported", p)
			}
		}
		for _, c := range rc.CredentialTypes {
			if !slices.Contains(caps.Credentials, c) {
				return bad("required credential type %d not supported", c)
			}
		}
	}
	if ln.LeafNodeSource == wire.LeafNodeSourceKeyPackage && !opts.Now.IsZero() {
		now := opts.Now.Unix()
		if now < 0 || uint64(now) < ln.Lifetime.NotBefore || uint64(now) > ln.Lifetime.NotAfter {
			return bad("outside its lifetime")
		}
	}
	tbs, err := codec.Marshal(ln.TBS(opts.GroupID, uint32(l)))
	if err != nil {
		return bad("%v", err)
	}
	if err := t.cs.VerifyWithLabel(ln.SignatureKey, "LeafNodeTBS", tbs, ln.Signature); err != nil {
		return fmt.Errorf("%w: leaf %d: %w", ErrInvalidLeafNode, l, err)
	}
	return nil
}

// checkCredentialSupport checks that ln's credential type is supported by every member
// other than the one at replaced, and that ln supports every credential type those members
// use (RFC 9420, Section 7.3). The counts make it O(number of credential types).
func (t *Tree) checkCredentialSupport(ln *wire.LeafNode, replaced *wire.LeafNode) error {
	others := t.members
	inUse := t.credInUse
	support := t.credSupport
	supportedBy := func(old *wire.LeafNode, ct wire.CredentialType) int {
		n := support[ct]
		if old != nil && slices.Contains(old.Capabilities.Credentials, ct) {
			n--
		}
		return n
	}
	if replaced != nil {
		others--
	}
	if supportedBy(replaced, ln.Credential.CredentialType) != others {
		return fmt.Errorf("%w: credential type %d is not supported by every member",
			ErrInvalidLeafNode, ln.Credential.CredentialType)
	}
	for ct, n := range inUse {
		if replaced != nil && replaced.Credential.CredentialType == ct {
			n--
		}
		if n > 0 && !slices.Contains(ln.Capabilities.Credentials, ct) {
			return fmt.Errorf("%w: does not support credential type %d used in the group", ErrInvalidLeafNode, ct)
		}
	}
	return nil
}

// ValidateLeafNode runs every check of RFC 9420, Section 7.3 on a leaf node that is to take
// leaf l (for an Add, LeftmostBlankLeaf(), which is LeafCount() when the tree is to be
// extended; the sender's leaf for an Update or a Commit): the
// content checks with source as the expected leaf_node_source (0 accepts any), the
// credential types against the other members, and uniqueness: its encryption key must not
// be in the tree, its signature key must not be another member's. For an Update or Commit
// this also ensures the encryption key differs from the one it replaces.
func (t *Tree) ValidateLeafNode(ln *wire.LeafNode, l LeafIndex, source wire.LeafNodeSource, opts *LeafNodeOptions) error {
	if uint64(l) > uint64(t.LeafCount()) {
		return fmt.Errorf("%w: leaf %d outside a tree of %d leaves", ErrLeafIndex, l, t.LeafCount())
	}
	if err := checkLeafEncodable(ln); err != nil {
		return err
	}
	if err := t.checkNewLeafKeys(ln, &l); err != nil {
		return err
	}
	if err := t.checkCredentialSupport(ln, t.Leaf(l)); err != nil {
		return err
	}
	return t.checkLeafContent(ln, l, source, opts)
}

// Validate runs every check a joiner makes of the group's tree (RFC 9420, Section
// 12.4.3.1): the structure (see FromWire), the root tree hash against treeHash (skipped if
// treeHash is nil), that every non-blank parent node is parent-hash valid, that every leaf
// node is valid (Section 7.3, with its leaf index and opts.GroupID; any source), that every
// member supports every credential type in use, and that every encryption key is a
// well-formed, unique public key.
func (t *Tree) Validate(treeHash []byte, opts *LeafNodeOptions) error {
	if t.members == 0 {
		return fmt.Errorf("%w: no member", ErrMalformedTree)
	}
	if err := t.checkUnmerged(); err != nil {
		return err
	}
	if treeHash != nil {
		if got := t.TreeHash(); !bytes.Equal(got, treeHash) {
			return fmt.Errorf("%w: got %x, want %x", ErrTreeHash, got, treeHash)
		}
	}
	if err := t.VerifyParentHashes(); err != nil {
		return err
	}
	for ct := range t.credInUse {
		if t.credSupport[ct] != t.members {
			return fmt.Errorf("%w: credential type %d is not supported by every member", ErrInvalidLeafNode, ct)
		}
	}
	// Each node's checks (mostly a signature per leaf) are independent and only read the
	// tree: run them in parallel.
	var present []NodeIndex
	for i, n := range t.nodes {
		if n != nil {
			present = append(present, NodeIndex(i))
		}
	}
	return par.Do(len(present), func(k int) error {
		x := present[k]
		n := t.nodes[x]
		if n.LeafNode != nil {
			return t.checkLeafContent(n.LeafNode, LeafIndex(x/2), 0, opts)
		}
		if err := t.cs.ValidateHPKEPublicKey(n.ParentNode.EncryptionKey); err != nil {
			return fmt.Errorf("%w: node %d: %v", ErrMalformedTree, x, err)
		}
		return nil
	})
}
