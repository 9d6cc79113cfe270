package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/framing"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// Kind is what a processed message was.
type Kind int

const (
	// KindApplication: application data, in Processed.Data.
	KindApplication Kind = iota + 1
	// KindProposal: a proposal, now cached for a later Commit.
	KindProposal
	// KindCommit: a Commit, applied; the group is in a new epoch.
	KindCommit
)

// Processed is the outcome of processing one message.
type Processed struct {
	Kind Kind
	// Epoch is the epoch the message was sent in.
	Epoch uint64
	// Sender is the sender's leaf index; for an external sender or a new member it is
	// not meaningful (see SenderKind).
	Sender     uint32
	SenderKind SenderKind
	// Data is the application data (KindApplication).
	Data []byte
	// AuthenticatedData is the message's authenticated_data.
	AuthenticatedData []byte
	// Late reports application data from a past epoch.
	Late bool
	// Removed is, for a Remove proposal (KindProposal), the leaf it would remove.
	Removed *uint32
	// Extensions is set for a GroupContextExtensions proposal (KindProposal).
	Extensions bool
}

// SenderKind says who sent a message (RFC 9420, Section 6).
type SenderKind int

// The sender kinds of RFC 9420, Section 6.
const (
	SenderMember SenderKind = iota + 1
	SenderExternal
	SenderNewMemberProposal
	SenderNewMemberCommit
)

// ErrWrongEpoch is returned for a message of an epoch this member cannot process: a future
// epoch, or a handshake message of a past one.
var ErrWrongEpoch = errors.New("mls: message from another epoch")

// ErrUnknownProposal is returned for a Commit that refers to a proposal this member has
// not received (yet): the Commit may be processed again once the proposal is.
var ErrUnknownProposal = errors.New("mls: commit references an unknown proposal")

// Process processes one MLSMessage (a PublicMessage or a PrivateMessage) received in the
// group: it verifies and decrypts it, caches a proposal, applies a commit, or returns
// application data. On any error the group state is unchanged.
func (g *Group) Process(message []byte) (*Processed, error) {
	var m wire.MLSMessage
	if err := codec.Unmarshal(message, &m); err != nil {
		return nil, fmt.Errorf("mls: malformed message: %w", err)
	}
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		return g.processPublic(m.PublicMessage)
	case wire.WireFormatPrivateMessage:
		return g.processPrivate(m.PrivateMessage)
	}
	return nil, fmt.Errorf("mls: wire format %d is not a group message", m.WireFormat)
}

func (g *Group) processPublic(pm *wire.PublicMessage) (*Processed, error) {
	if !bytes.Equal(pm.Content.GroupID, g.cur.ctx.GroupID) {
		return nil, framing.ErrWrongGroup
	}
	if pm.Content.Epoch != g.cur.ctx.Epoch {
		return nil, fmt.Errorf("%w: epoch %d, current %d", ErrWrongEpoch, pm.Content.Epoch, g.cur.ctx.Epoch)
	}
	if g.status != Active {
		return nil, ErrNotActive
	}
	ac, err := g.cur.keys.UnprotectPublic(pm)
	if err != nil {
		return nil, g.authError(err)
	}
	return g.processContent(ac)
}

func (g *Group) processPrivate(pm *wire.PrivateMessage) (*Processed, error) {
	if !bytes.Equal(pm.GroupID, g.cur.ctx.GroupID) {
		return nil, framing.ErrWrongGroup
	}
	if pm.Epoch != g.cur.ctx.Epoch {
		if pm.ContentType == wire.ContentTypeApplication {
			return g.processLate(pm)
		}
		return nil, fmt.Errorf("%w: epoch %d, current %d", ErrWrongEpoch, pm.Epoch, g.cur.ctx.Epoch)
	}
	if g.status != Active && pm.ContentType != wire.ContentTypeApplication {
		return nil, ErrNotActive
	}
	// The key generation is used up only once the message is accepted: a commit refused
	// for now (ErrUnknownProposal) opens again when it is processed later.
	ac, consume, err := g.cur.keys.PeekPrivate(pm)
	if err != nil {
		return nil, g.authError(err)
	}
	p, err := g.processContent(ac)
	if err != nil {
		return nil, err
	}
	if err := consume(); err != nil {
		return nil, g.authError(err) // cannot happen: the key was there a moment ago
	}
	return p, nil
}

// processLate opens an application message of a past epoch that is still kept.
func (g *Group) processLate(pm *wire.PrivateMessage) (*Processed, error) {
	for i := range g.past {
		p := &g.past[i]
		if p.epoch != pm.Epoch {
			continue
		}
		ac, err := p.keys.UnprotectPrivate(pm)
		if err != nil {
			return nil, g.authError(err)
		}
		m, ok := p.member(ac.Content.Sender.LeafIndex)
		if !ok {
			return nil, ErrAuth
		}
		if err := p.keys.Verify(m.signatureKey, ac); err != nil {
			return nil, ErrAuth
		}
		return &Processed{Kind: KindApplication, Epoch: pm.Epoch, Sender: ac.Content.Sender.LeafIndex, SenderKind: SenderMember,
			Data: ac.Content.ApplicationData, AuthenticatedData: ac.Content.AuthenticatedData, Late: true}, nil
	}
	return nil, fmt.Errorf("%w: epoch %d is not kept", ErrWrongEpoch, pm.Epoch)
}

// authError maps every authentication failure to ErrAuth and keeps other errors.
func (g *Group) authError(err error) error {
	if errors.Is(err, framing.ErrAuth) {
		return ErrAuth
	}
	return err
}

// senderKey returns the signature key that must have signed ac (RFC 9420, Section 6.1),
// and checks the sender type is allowed for the content and wire format (Section 6).
func (g *Group) senderKey(ac *wire.AuthenticatedContent) ([]byte, error) {
	c := &ac.Content
	public := ac.WireFormat == wire.WireFormatPublicMessage
	switch c.Sender.SenderType {
	case wire.SenderTypeMember:
		ln := g.cur.tree.Leaf(leafIndex(c.Sender.LeafIndex))
		if ln == nil {
			return nil, fmt.Errorf("mls: sender leaf %d is not a member", c.Sender.LeafIndex)
		}
		return ln.SignatureKey, nil
	case wire.SenderTypeExternal:
		if !public || c.ContentType != wire.ContentTypeProposal {
			return nil, errors.New("mls: an external sender may only send proposals as public messages")
		}
		ext := g.cur.ctx.Extensions.Find(wire.ExtensionTypeExternalSenders)
		if ext == nil {
			return nil, errors.New("mls: external sender, but the group has no external_senders extension")
		}
		senders, err := ext.ExternalSenders()
		if err != nil {
			return nil, err
		}
		if uint64(c.Sender.SenderIndex) >= uint64(len(senders)) {
			return nil, fmt.Errorf("mls: unknown external sender %d", c.Sender.SenderIndex)
		}
		return senders[c.Sender.SenderIndex].SignatureKey, nil
	case wire.SenderTypeNewMemberProposal:
		if !public || c.ContentType != wire.ContentTypeProposal || c.Proposal.ProposalType != wire.ProposalTypeAdd {
			return nil, errors.New("mls: a new member may only propose to add itself, as a public message")
		}
		return c.Proposal.Add.KeyPackage.LeafNode.SignatureKey, nil
	case wire.SenderTypeNewMemberCommit:
		if !public || c.ContentType != wire.ContentTypeCommit || c.Commit.Path == nil {
			return nil, errors.New("mls: an external commit must be a public message with a path")
		}
		return c.Commit.Path.LeafNode.SignatureKey, nil
	}
	return nil, fmt.Errorf("mls: unknown sender type %d", c.Sender.SenderType)
}

// processContent verifies the signature of an unprotected message and acts on it.
func (g *Group) processContent(ac *wire.AuthenticatedContent) (*Processed, error) {
	key, err := g.senderKey(ac)
	if err != nil {
		return nil, err
	}
	if err := g.cur.keys.Verify(key, ac); err != nil {
		return nil, ErrAuth
	}
	c := &ac.Content
	out := &Processed{Epoch: c.Epoch, Sender: c.Sender.LeafIndex, SenderKind: SenderKind(c.Sender.SenderType), AuthenticatedData: c.AuthenticatedData}
	switch c.ContentType {
	case wire.ContentTypeApplication:
		if ac.WireFormat != wire.WireFormatPrivateMessage {
			return nil, errors.New("mls: application data must be a private message")
		}
		out.Kind, out.Data = KindApplication, c.ApplicationData
	case wire.ContentTypeProposal:
		if err := g.receiveProposal(ac); err != nil {
			return nil, err
		}
		out.Kind = KindProposal
		if r := c.Proposal.Remove; c.Proposal.ProposalType == wire.ProposalTypeRemove && r != nil {
			leaf := r.Removed
			out.Removed = &leaf
		}
		out.Extensions = c.Proposal.ProposalType == wire.ProposalTypeGroupContextExtensions
	case wire.ContentTypeCommit:
		if err := g.applyCommit(ac); err != nil {
			return nil, err
		}
		out.Kind = KindCommit
	default:
		return nil, fmt.Errorf("mls: unknown content type %d", c.ContentType)
	}
	return out, nil
}

// receiveProposal validates and caches a proposal for a later Commit (RFC 9420,
// Section 12.4).
func (g *Group) receiveProposal(ac *wire.AuthenticatedContent) error {
	enc, err := codec.Marshal(ac)
	if err != nil {
		return err
	}
	ref := g.suite.MakeProposalRef(enc)
	p := ac.Content.Proposal
	switch p.ProposalType {
	case wire.ProposalTypeExternalInit:
		return errors.New("mls: an ExternalInit proposal may only be sent by value in an external commit")
	case wire.ProposalTypeUpdate:
		if ac.Content.Sender.SenderType != wire.SenderTypeMember {
			return errors.New("mls: only a member can propose an Update")
		}
	}
	if slices.ContainsFunc(g.proposals, func(e proposalEntry) bool { return bytes.Equal(e.ref, ref) }) {
		return errors.New("mls: proposal received twice")
	}
	g.proposals = append(g.proposals, proposalEntry{ref: ref, proposal: p, sender: ac.Content.Sender})
	return nil
}
