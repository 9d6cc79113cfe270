package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/framing"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/ratchettree"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// externalInitLabel is the HPKE exporter label of an external join (RFC 9420, Section 8.3).
const externalInitLabel = "MLS 1.0 external init secret"

// GroupInfo returns a signed GroupInfo of the current epoch (RFC 9420, Section 12.4.3) as an
// MLSMessage. It carries the external_pub extension, so a holder can join with
// JoinExternal, and, if withTree, the ratchet tree.
func (g *Group) GroupInfo(withTree bool) ([]byte, error) {
	if g.status != Active {
		return nil, ErrNotActive
	}
	if g.signer == nil {
		return nil, errors.New("mls: this member has no signing key")
	}
	pub, err := g.cur.secrets.ExternalPub()
	if err != nil {
		return nil, err
	}
	ext, err := wire.NewExternalPubExtension(pub)
	if err != nil {
		return nil, err
	}
	info := wire.GroupInfo{
		GroupContext:    g.cur.ctx,
		Extensions:      wire.Extensions{ext},
		ConfirmationTag: g.cur.tag,
		Signer:          uint32(g.cur.priv.Leaf()),
	}
	if withTree {
		t, err := wire.NewRatchetTreeExtension(g.cur.tree.Wire())
		if err != nil {
			return nil, err
		}
		info.Extensions = append(info.Extensions, t)
	}
	tbs, err := codec.Marshal(info.TBS())
	if err != nil {
		return nil, err
	}
	if info.Signature, err = g.suite.SignWithLabel(g.signer, "GroupInfoTBS", tbs); err != nil {
		return nil, err
	}
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatGroupInfo, GroupInfo: &info})
}

// decodeGroupInfo accepts a GroupInfo bare or wrapped in an MLSMessage.
// GroupInfoRatchetTree returns the ratchet_tree extension of a GroupInfo (an MLSMessage
// or a bare GroupInfo) in the encoding Join takes, or ErrNoTree. The tree is not checked
// here: Join checks it against the GroupContext it joins.
func GroupInfoRatchetTree(groupInfo []byte) ([]byte, error) {
	info, err := decodeGroupInfo(groupInfo)
	if err != nil {
		return nil, err
	}
	ext := info.Extensions.Find(wire.ExtensionTypeRatchetTree)
	if ext == nil {
		return nil, ErrNoTree
	}
	return bytes.Clone(ext.ExtensionData), nil
}

func decodeGroupInfo(data []byte) (*wire.GroupInfo, error) {
	var m wire.MLSMessage
	if codec.Unmarshal(data, &m) == nil {
		if m.WireFormat != wire.WireFormatGroupInfo {
			return nil, fmt.Errorf("mls: message is not a group info (wire format %d)", m.WireFormat)
		}
		return m.GroupInfo, nil
	}
	var gi wire.GroupInfo
	if err := codec.Unmarshal(data, &gi); err != nil {
		return nil, fmt.Errorf("mls: malformed group info: %w", err)
	}
	return &gi, nil
}

// openGroupInfo decodes and verifies groupInfo and its tree (ratchetTree if the GroupInfo
// has none) for a client with key: it returns the client's group, yet without state.
func openGroupInfo(groupInfo []byte, key *SigningKey, ratchetTree []byte, opts Options) (*Group, *wire.GroupInfo, *ratchettree.Tree, error) {
	info, err := decodeGroupInfo(groupInfo)
	if err != nil {
		return nil, nil, nil, err
	}
	cs, err := suite.Lookup(suite.ID(info.GroupContext.CipherSuite))
	if err != nil {
		return nil, nil, nil, err
	}
	if cs.ID() != key.suite {
		return nil, nil, nil, fmt.Errorf("mls: group uses suite 0x%04x, the signing key 0x%04x", uint16(cs.ID()), uint16(key.suite))
	}
	g := &Group{suite: cs, opts: opts, signer: key.k, resumption: map[uint64][]byte{}}
	tree, err := g.loadTree(info, ratchetTree)
	if err != nil {
		return nil, nil, nil, err
	}
	return g, info, tree, nil
}

// Resyncs reports whether JoinExternal with key would be a resync: whether the tree of
// groupInfo (or ratchetTree) already holds a leaf with key's signature key. A client that
// has none there is not a member of that epoch, however it remembers the group.
func Resyncs(groupInfo []byte, key *SigningKey, ratchetTree []byte, opts Options) (bool, error) {
	_, _, tree, err := openGroupInfo(groupInfo, key, ratchetTree, opts)
	if err != nil {
		return false, err
	}
	_, ok := tree.LeafBySignatureKey(key.PublicKey())
	return ok, nil
}

// JoinExternal joins a group by an external Commit (RFC 9420, Section 12.4.3.2) from a
// GroupInfo that carries external_pub. ratchetTree is the encoded tree if the GroupInfo has no
// ratchet_tree extension. If the tree already holds a leaf with key's signature key (an old
// appearance of this client), the Commit removes it (a "resync"). It returns the new member's
// group, already in the new epoch, and the Commit to send to the group as a PublicMessage.
func JoinExternal(groupInfo []byte, key *SigningKey, identity []byte, ratchetTree []byte, opts Options) (*Group, []byte, error) {
	g, info, tree, err := openGroupInfo(groupInfo, key, ratchetTree, opts)
	if err != nil {
		return nil, nil, err
	}
	cs := g.suite
	extPubExt := info.Extensions.Find(wire.ExtensionTypeExternalPub)
	if extPubExt == nil {
		return nil, nil, errors.New("mls: the group info has no external_pub: external joins are not allowed")
	}
	extPub, err := extPubExt.ExternalPub()
	if err != nil {
		return nil, nil, err
	}
	ctx := info.GroupContext
	kemOutput, initSecret, err := cs.ExportSender(extPub.ExternalPub, nil, externalInitLabel, cs.Nh())
	if err != nil {
		return nil, nil, err
	}
	props := []wire.ProposalOrRef{{Type: wire.ProposalOrRefTypeProposal, Proposal: &wire.Proposal{
		ProposalType: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: kemOutput}}}}
	work := tree.Clone()
	if old, ok := work.LeafBySignatureKey(key.PublicKey()); ok {
		props = append(props, wire.ProposalOrRef{Type: wire.ProposalOrRefTypeProposal, Proposal: &wire.Proposal{
			ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(old)}}})
		if err := work.Remove(old); err != nil {
			return nil, nil, err
		}
	}
	me, err := work.ReserveLeaf()
	if err != nil {
		return nil, nil, err
	}
	template, err := newLeafNode(cs, key, identity, nil, KeyPackageOptions{SupportedExtensions: opts.SupportedExtensions, Extensions: opts.LeafExtensions})
	if err != nil {
		return nil, nil, err
	}
	path, err := work.GenerateUpdatePath(me, template, key.k, ctx.GroupID)
	if err != nil {
		return nil, nil, err
	}
	provisional := ctx
	provisional.Epoch++
	provisional.TreeHash = work.TreeHash()
	encProvisional, err := codec.Marshal(&provisional)
	if err != nil {
		return nil, nil, err
	}
	commit := &wire.Commit{Proposals: props}
	if commit.Path, err = path.Encrypt(encProvisional, nil); err != nil {
		return nil, nil, err
	}

	oldKeys := &framing.Keys{Suite: cs, Context: &ctx}
	ac, err := oldKeys.Sign(key.k, wire.WireFormatPublicMessage, &wire.FramedContent{
		GroupID: ctx.GroupID, Epoch: ctx.Epoch, Sender: wire.Sender{SenderType: wire.SenderTypeNewMemberCommit},
		AuthenticatedData: []byte{}, ContentType: wire.ContentTypeCommit, Commit: commit,
	})
	if err != nil {
		return nil, nil, err
	}
	interimBefore, err := schedule.InterimTranscriptHash(cs, ctx.ConfirmedTranscriptHash, info.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	next, epoch, err := nextEpoch(cs, interimBefore, ac, ctx, work, initSecret, path.CommitSecret(), nil)
	clear(initSecret)
	if err != nil {
		return nil, nil, err
	}
	epoch.ForgetJoiner()
	ac.Auth.ConfirmationTag = epoch.ConfirmationTag(next.ConfirmedTranscriptHash)
	interim, err := schedule.InterimTranscriptHash(cs, next.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	pm, err := oldKeys.ProtectPublic(ac)
	if err != nil {
		return nil, nil, err
	}
	msg, err := codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
	if err != nil {
		return nil, nil, err
	}
	if err := g.install(epochState{ctx: next, tree: work, priv: path.PrivateKeys(), secrets: epoch, interim: interim, tag: ac.Auth.ConfirmationTag}); err != nil {
		return nil, nil, err
	}
	return g, msg, nil
}

// Propose sends a proposal to the group without committing it (RFC 9420, Section 12.1);
// any member can later commit it by reference. The proposal is also kept by this member.
// Remove proposes removing a member; Add proposes adding the client of a KeyPackage.
type Proposal struct {
	Remove *uint32
	Add    []byte
	// Update proposes a fresh leaf key for this member (RFC 9420, Section 12.1.2).
	Update bool
	// Extensions proposes these GroupContext extensions in place of the current ones
	// (RFC 9420, Section 12.1.7); every member must support their types.
	Extensions map[uint16][]byte
}

// Propose creates a proposal message (a PrivateMessage, or a PublicMessage if public).
func (g *Group) Propose(p Proposal, public bool) ([]byte, error) {
	if g.status != Active {
		return nil, ErrNotActive
	}
	if g.signer == nil {
		return nil, errors.New("mls: this member has no signing key")
	}
	var wp wire.Proposal
	n := 0
	for _, set := range []bool{p.Remove != nil, p.Add != nil, p.Update, p.Extensions != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("mls: a proposal is exactly one of Add, Remove, Update and Extensions")
	}
	var updateKey *suite.HPKEPrivateKey
	switch {
	case p.Update:
		me := g.cur.priv.Leaf()
		key, err := g.suite.GenerateHPKEKey()
		if err != nil {
			return nil, err
		}
		ln := *g.cur.tree.Leaf(me)
		ln.EncryptionKey = key.PublicKey()
		ln.LeafNodeSource = wire.LeafNodeSourceUpdate
		ln.Lifetime = wire.Lifetime{}
		ln.ParentHash = nil
		if err := signLeafNode(g.suite, g.signer, &ln, g.cur.ctx.GroupID, uint32(me)); err != nil {
			return nil, err
		}
		wp = wire.Proposal{ProposalType: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: ln}}
		updateKey = key
	case p.Remove != nil:
		if g.cur.tree.Leaf(leafIndex(*p.Remove)) == nil {
			return nil, fmt.Errorf("mls: leaf %d is not a member", *p.Remove)
		}
		wp = wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: *p.Remove}}
	case p.Add != nil:
		kp, _, err := decodeKeyPackage(p.Add)
		if err != nil {
			return nil, err
		}
		if err := g.validateKeyPackage(kp, g.cur.tree.Clone(), g.leafOptions(&g.cur.ctx)); err != nil {
			return nil, err
		}
		wp = wire.Proposal{ProposalType: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}}
	case p.Extensions != nil:
		exts := sortedExtensions(p.Extensions)
		if err := g.checkGroupContextExtensions(&exts); err != nil {
			return nil, err
		}
		if err := checkMembersSupport(g.cur.tree, exts); err != nil {
			return nil, err
		}
		wp = wire.Proposal{ProposalType: wire.ProposalTypeGroupContextExtensions,
			GroupContextExtensions: &wire.GroupContextExtensions{Extensions: exts}}
	}
	wf := wire.WireFormatPrivateMessage
	if public {
		wf = wire.WireFormatPublicMessage
	}
	ac, err := g.cur.keys.Sign(g.signer, wf, &wire.FramedContent{
		GroupID: g.cur.ctx.GroupID, Epoch: g.cur.ctx.Epoch,
		Sender:            wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: uint32(g.cur.priv.Leaf())},
		AuthenticatedData: []byte{}, ContentType: wire.ContentTypeProposal, Proposal: &wp,
	})
	if err != nil {
		return nil, err
	}
	msg := &wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wf}
	if public {
		msg.PublicMessage, err = g.cur.keys.ProtectPublic(ac)
	} else {
		msg.PrivateMessage, err = g.cur.keys.ProtectPrivate(ac, 0)
	}
	if err != nil {
		return nil, err
	}
	out, err := codec.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if err := g.receiveProposal(ac); err != nil {
		return nil, err
	}
	if updateKey != nil {
		if g.updateKeys == nil {
			g.updateKeys = map[string]*suite.HPKEPrivateKey{}
		}
		g.updateKeys[string(updateKey.PublicKey())] = updateKey
	}
	return out, nil
}
