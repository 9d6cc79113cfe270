package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// ErrFutureEpoch is returned for an application message of an epoch this member has not
// reached yet: keep it and try again after the next commit.
var ErrFutureEpoch = errors.New("mls: message from a future epoch")

// ErrPastEpoch is returned (with ErrAuth) for an application message of a past epoch
// whose keys this member does not keep: one before it joined, or one older than the
// epochs kept. It will never open.
var ErrPastEpoch = errors.New("mls: message from an epoch not kept")

// The compact application format is a PrivateMessage (RFC 9420, Section 6.3) without what a
// transport that already names the group carries anyway: no MLSMessage header, no group id
// (the receiver's own is put back before decryption, and every AEAD in the message
// authenticates it), and an empty authenticated_data. tchat's cascade uses it, so that the
// MLS layer costs as few bytes as possible:
//
//	uint64 epoch; uint8 content_type (= application);
//	opaque encrypted_sender_data<V>; opaque ciphertext<V>;

// SealApplication is Seal in the compact format.
func (g *Group) SealApplication(data []byte) ([]byte, error) {
	full, err := g.Seal(data, nil)
	if err != nil {
		return nil, err
	}
	var m wire.MLSMessage
	if err := codec.Unmarshal(full, &m); err != nil {
		return nil, err
	}
	pm := m.PrivateMessage
	var b cryptobyte.Builder
	b.AddUint64(pm.Epoch)
	b.AddUint8(uint8(pm.ContentType))
	codec.AddOpaque(&b, pm.EncryptedSenderData)
	codec.AddOpaque(&b, pm.Ciphertext)
	return b.Bytes()
}

// parseCompact restores the PrivateMessage of a compact application message.
func (g *Group) parseCompact(sealed []byte) (*wire.PrivateMessage, error) {
	s := cryptobyte.String(sealed)
	pm := &wire.PrivateMessage{GroupID: g.cur.ctx.GroupID, AuthenticatedData: []byte{}}
	var ct uint8
	if !s.ReadUint64(&pm.Epoch) || !s.ReadUint8(&ct) || !codec.ReadOpaque(&s, &pm.EncryptedSenderData) ||
		!codec.ReadOpaque(&s, &pm.Ciphertext) || !s.Empty() {
		return nil, ErrAuth
	}
	pm.ContentType = wire.ContentType(ct)
	if pm.ContentType != wire.ContentTypeApplication {
		return nil, ErrAuth
	}
	return pm, nil
}

// Opened is an application message opened by OpenApplication.
type Opened struct {
	Data     []byte
	Epoch    uint64
	Sender   uint32 // leaf index
	Identity []byte // the sender's credential identity
	Late     bool   // from a past epoch
}

// OpenApplication opens a compact application message (see SealApplication) of the current
// epoch or of a kept past one, and verifies its sender's signature, without changing the
// group: the message's key generation is deleted only by the returned function, which the
// caller runs once it accepts the message (and which fails, with ErrAuth, if the message was
// accepted in between: a replay). Every failure is ErrAuth, except a message of a future
// epoch (ErrFutureEpoch).
func (g *Group) OpenApplication(sealed []byte) (*Opened, func() error, error) {
	pm, err := g.parseCompact(sealed)
	if err != nil {
		return nil, nil, err
	}
	keys := g.cur.keys
	member := func(l uint32) (pastMember, bool) {
		ln := g.cur.tree.Leaf(leafIndex(l))
		if ln == nil {
			return pastMember{}, false
		}
		return pastMember{ln.SignatureKey, ln.Credential.Identity}, true
	}
	late := false
	if pm.Epoch != g.cur.ctx.Epoch {
		if pm.Epoch > g.cur.ctx.Epoch {
			return nil, nil, fmt.Errorf("%w: epoch %d, current %d", ErrFutureEpoch, pm.Epoch, g.cur.ctx.Epoch)
		}
		found := false
		for i := range g.past {
			if p := &g.past[i]; p.epoch == pm.Epoch {
				keys, member, late, found = p.keys, p.member, true, true
				break
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("%w: %w (epoch %d)", ErrAuth, ErrPastEpoch, pm.Epoch)
		}
	}
	ac, consume, err := keys.PeekPrivate(pm)
	if err != nil {
		return nil, nil, ErrAuth
	}
	m, ok := member(ac.Content.Sender.LeafIndex)
	if !ok || keys.Verify(m.signatureKey, ac) != nil {
		return nil, nil, ErrAuth
	}
	return &Opened{
			Data: ac.Content.ApplicationData, Epoch: pm.Epoch, Sender: ac.Content.Sender.LeafIndex,
			Identity: bytes.Clone(m.identity), Late: late,
		}, func() error {
			if err := consume(); err != nil {
				return ErrAuth
			}
			return nil
		}, nil
}

// CheckHandshake reports whether msg is a proposal or a commit (an MLSMessage, public or
// private) of this group's current epoch, without processing it.
// CheckExternalCommit reports whether msg is the external Commit by which this member
// joined (JoinExternal): a PublicMessage commit from a new member, of this group, for the
// epoch before the current one.
func (g *Group) CheckExternalCommit(msg []byte) error {
	var m wire.MLSMessage
	if err := codec.Unmarshal(msg, &m); err != nil {
		return fmt.Errorf("mls: malformed message: %w", err)
	}
	if m.WireFormat != wire.WireFormatPublicMessage {
		return errors.New("mls: an external commit is a public message")
	}
	c := &m.PublicMessage.Content
	if !bytes.Equal(c.GroupID, g.cur.ctx.GroupID) || c.ContentType != wire.ContentTypeCommit ||
		c.Sender.SenderType != wire.SenderTypeNewMemberCommit || c.Epoch+1 != g.cur.ctx.Epoch {
		return errors.New("mls: not this member's external commit")
	}
	return nil
}

func (g *Group) CheckHandshake(msg []byte) error {
	var m wire.MLSMessage
	if err := codec.Unmarshal(msg, &m); err != nil {
		return fmt.Errorf("mls: malformed message: %w", err)
	}
	var groupID []byte
	var epoch uint64
	var ct wire.ContentType
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		groupID, epoch, ct = m.PublicMessage.Content.GroupID, m.PublicMessage.Content.Epoch, m.PublicMessage.Content.ContentType
	case wire.WireFormatPrivateMessage:
		groupID, epoch, ct = m.PrivateMessage.GroupID, m.PrivateMessage.Epoch, m.PrivateMessage.ContentType
	default:
		return fmt.Errorf("mls: wire format %d is not a handshake message", m.WireFormat)
	}
	if !bytes.Equal(groupID, g.cur.ctx.GroupID) {
		return errors.New("mls: handshake message of another group")
	}
	if ct != wire.ContentTypeProposal && ct != wire.ContentTypeCommit {
		return errors.New("mls: not a handshake message")
	}
	if epoch != g.cur.ctx.Epoch {
		return fmt.Errorf("%w: epoch %d, current %d", ErrWrongEpoch, epoch, g.cur.ctx.Epoch)
	}
	return nil
}
