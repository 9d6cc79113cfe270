// Package framing protects and unprotects MLS messages (RFC 9420, Section 6): the signature
// over FramedContentTBS, the membership tag of a PublicMessage, and the sender-data and
// content encryption of a PrivateMessage with keys from the epoch's secret tree.
//
// Signature verification is separate from unprotection: the receiver learns the sender from
// the message, then looks up the sender's signature key in its ratchet tree and calls Verify.
package framing

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// ErrAuth is the one error for every message that fails authentication: a bad membership
// tag, a ciphertext or sender data that does not decrypt, or a bad signature. Callers must not
// tell these apart to the sender.
var ErrAuth = errors.New("mls: message authentication failed")

// ErrWrongGroup is returned for a message of another group or another epoch.
var ErrWrongGroup = errors.New("mls: message is not for this group and epoch")

// reuseGuardSize is the size of the reuse guard (RFC 9420, Section 6.3.1).
const reuseGuardSize = 4

// Keys holds what one epoch needs to protect and unprotect messages.
type Keys struct {
	Suite *suite.Suite
	// Context is the epoch's GroupContext; GroupID and Epoch of every message must match it.
	Context *wire.GroupContext
	// MembershipKey is membership_key of the epoch (PublicMessage).
	MembershipKey []byte
	// SenderDataSecret is sender_data_secret of the epoch (PrivateMessage).
	SenderDataSecret []byte
	// SecretTree is the epoch's secret tree (PrivateMessage).
	SecretTree *schedule.SecretTree

	contextBytes []byte // Context, encoded once
}

// encodedContext returns the encoded GroupContext, computing it on first use.
func (k *Keys) encodedContext() ([]byte, error) {
	if k.contextBytes == nil {
		b, err := codec.Marshal(k.Context)
		if err != nil {
			return nil, err
		}
		k.contextBytes = b
	}
	return k.contextBytes, nil
}

// signsContext reports whether the FramedContentTBS of a sender includes the GroupContext
// (RFC 9420, Section 6.1).
func signsContext(s wire.SenderType) bool {
	return s == wire.SenderTypeMember || s == wire.SenderTypeNewMemberCommit
}

// tbs encodes FramedContentTBS (RFC 9420, Section 6.1). The GroupContext is spliced in
// already encoded, so that it is not re-encoded for every message.
func tbs(wf wire.WireFormat, content *wire.FramedContent, encodedContext []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(uint16(wire.ProtocolVersionMLS10))
	b.AddUint16(uint16(wf))
	content.Marshal(&b)
	if signsContext(content.Sender.SenderType) {
		if encodedContext == nil {
			return nil, errors.New("mls: signing a member message without a group context")
		}
		b.AddBytes(encodedContext)
	}
	return b.Bytes()
}

// Sign builds the AuthenticatedContent of content for wire format wf, signed with key
// (RFC 9420, Section 6.1). The confirmation tag of a commit is left for the caller to set.
func (k *Keys) Sign(key *suite.SigningKey, wf wire.WireFormat, content *wire.FramedContent) (*wire.AuthenticatedContent, error) {
	var ctx []byte
	if signsContext(content.Sender.SenderType) {
		var err error
		if ctx, err = k.encodedContext(); err != nil {
			return nil, err
		}
	}
	msg, err := tbs(wf, content, ctx)
	if err != nil {
		return nil, err
	}
	sig, err := k.Suite.SignWithLabel(key, "FramedContentTBS", msg)
	if err != nil {
		return nil, err
	}
	return &wire.AuthenticatedContent{WireFormat: wf, Content: *content, Auth: wire.FramedContentAuthData{Signature: sig}}, nil
}

// Verify checks the signature of ac against the sender's signature public key
// (RFC 9420, Section 6.1). Every failure is ErrAuth.
func (k *Keys) Verify(signaturePub []byte, ac *wire.AuthenticatedContent) error {
	var ctx []byte
	if signsContext(ac.Content.Sender.SenderType) {
		var err error
		if ctx, err = k.encodedContext(); err != nil {
			return err
		}
	}
	msg, err := tbs(ac.WireFormat, &ac.Content, ctx)
	if err != nil {
		return ErrAuth
	}
	if k.Suite.VerifyWithLabel(signaturePub, "FramedContentTBS", msg, ac.Auth.Signature) != nil {
		return ErrAuth
	}
	return nil
}

// checkEpoch checks that a message names this group and epoch.
func (k *Keys) checkEpoch(groupID []byte, epoch uint64) error {
	if epoch != k.Context.Epoch || !bytes.Equal(groupID, k.Context.GroupID) {
		return fmt.Errorf("%w: epoch %d", ErrWrongGroup, epoch)
	}
	return nil
}

// membershipTag computes MAC(membership_key, AuthenticatedContentTBM) (RFC 9420, Section 6.2).
func (k *Keys) membershipTag(ac *wire.AuthenticatedContent) ([]byte, error) {
	ctx, err := k.encodedContext()
	if err != nil {
		return nil, err
	}
	msg, err := tbs(wire.WireFormatPublicMessage, &ac.Content, ctx)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddBytes(msg)
	ac.Auth.MarshalFor(&b, ac.Content.ContentType)
	tbm, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	return k.Suite.MAC(k.MembershipKey, tbm), nil
}

// ProtectPublic wraps a signed AuthenticatedContent (wire format mls_public_message) in a
// PublicMessage, adding the membership tag for member senders (RFC 9420, Section 6.2).
// Application data may not be sent as a PublicMessage.
func (k *Keys) ProtectPublic(ac *wire.AuthenticatedContent) (*wire.PublicMessage, error) {
	if ac.WireFormat != wire.WireFormatPublicMessage {
		return nil, fmt.Errorf("mls: content signed for wire format %d, not a public message", ac.WireFormat)
	}
	if ac.Content.ContentType == wire.ContentTypeApplication {
		return nil, errors.New("mls: application data cannot be sent as a public message")
	}
	pm := &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.SenderType == wire.SenderTypeMember {
		tag, err := k.membershipTag(ac)
		if err != nil {
			return nil, err
		}
		pm.MembershipTag = tag
	}
	return pm, nil
}

// UnprotectPublic checks that pm belongs to this group and epoch and, for a member sender,
// that its membership tag is valid (RFC 9420, Section 6.2), and returns its content. The
// signature is the caller's to verify (Verify), once it knows the sender's key.
func (k *Keys) UnprotectPublic(pm *wire.PublicMessage) (*wire.AuthenticatedContent, error) {
	if err := k.checkEpoch(pm.Content.GroupID, pm.Content.Epoch); err != nil {
		return nil, err
	}
	if pm.Content.ContentType == wire.ContentTypeApplication {
		return nil, errors.New("mls: application data in a public message")
	}
	ac := pm.AuthenticatedContent()
	if pm.Content.Sender.SenderType == wire.SenderTypeMember {
		tag, err := k.membershipTag(ac)
		if err != nil {
			return nil, ErrAuth
		}
		if subtle.ConstantTimeCompare(tag, pm.MembershipTag) != 1 {
			return nil, ErrAuth
		}
	}
	return ac, nil
}

// ratchetFor picks the hash ratchet of a content type (RFC 9420, Section 9.1).
func ratchetFor(ct wire.ContentType) schedule.RatchetType {
	if ct == wire.ContentTypeApplication {
		return schedule.ApplicationRatchet
	}
	return schedule.HandshakeRatchet
}

// applyReuseGuard XORs the reuse guard into the first bytes of nonce (RFC 9420, Section 6.3.1).
func applyReuseGuard(nonce []byte, guard [reuseGuardSize]byte) []byte {
	out := append([]byte(nil), nonce...)
	for i := range guard {
		out[i] ^= guard[i]
	}
	return out
}

// ProtectPrivate encrypts a signed AuthenticatedContent (wire format mls_private_message) from
// a member as a PrivateMessage (RFC 9420, Section 6.3), with padding zero octets of padding.
// The key generation used is consumed from the secret tree before anything leaves, so it is
// never used twice.
func (k *Keys) ProtectPrivate(ac *wire.AuthenticatedContent, padding int) (*wire.PrivateMessage, error) {
	c := &ac.Content
	if ac.WireFormat != wire.WireFormatPrivateMessage {
		return nil, fmt.Errorf("mls: content signed for wire format %d, not a private message", ac.WireFormat)
	}
	if c.Sender.SenderType != wire.SenderTypeMember {
		return nil, errors.New("mls: only members send private messages")
	}
	if err := k.checkEpoch(c.GroupID, c.Epoch); err != nil {
		return nil, err
	}
	kn, err := k.SecretTree.Next(treemath.LeafIndex(c.Sender.LeafIndex), ratchetFor(c.ContentType))
	if err != nil {
		return nil, err
	}
	defer kn.Zero()

	var guard [reuseGuardSize]byte
	if _, err := rand.Read(guard[:]); err != nil {
		return nil, err
	}

	plain, err := codec.Marshal(&wire.PrivateMessageContent{
		ContentType:     c.ContentType,
		ApplicationData: c.ApplicationData,
		Proposal:        c.Proposal,
		Commit:          c.Commit,
		Auth:            ac.Auth,
		PaddingLength:   padding,
	})
	if err != nil {
		return nil, err
	}
	pm := &wire.PrivateMessage{
		GroupID:           c.GroupID,
		Epoch:             c.Epoch,
		ContentType:       c.ContentType,
		AuthenticatedData: c.AuthenticatedData,
	}
	aad, err := codec.Marshal(pm.ContentAAD())
	if err != nil {
		return nil, err
	}
	aead, err := k.Suite.NewAEAD(kn.Key)
	if err != nil {
		return nil, err
	}
	pm.Ciphertext = aead.Seal(nil, applyReuseGuard(kn.Nonce, guard), plain, aad)

	sd, err := codec.Marshal(&wire.SenderData{LeafIndex: c.Sender.LeafIndex, Generation: kn.Generation, ReuseGuard: guard})
	if err != nil {
		return nil, err
	}
	sdAAD, err := codec.Marshal(pm.SenderDataAAD())
	if err != nil {
		return nil, err
	}
	key, nonce, err := schedule.SenderDataKeyNonce(k.Suite, k.SenderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, err
	}
	sdAEAD, err := k.Suite.NewAEAD(key)
	if err != nil {
		return nil, err
	}
	pm.EncryptedSenderData = sdAEAD.Seal(nil, nonce, sd, sdAAD)
	return pm, nil
}

// UnprotectPrivate decrypts a PrivateMessage of this group and epoch (RFC 9420, Section 6.3.2)
// and returns its AuthenticatedContent. The key generation is consumed only if the content
// decrypts, so a forgery cannot burn a genuine message's key; a replay finds its generation
// consumed and fails. The signature is the caller's to verify (Verify) with the key of the
// sender's leaf, which the caller must also check is not blank.
func (k *Keys) UnprotectPrivate(pm *wire.PrivateMessage) (*wire.AuthenticatedContent, error) {
	ac, _, err := k.unprotectPrivate(pm, true)
	return ac, err
}

// Consume is the second half of PeekPrivate: it deletes the key generation a peeked
// message used. It fails with ErrAuth if the generation is gone (the message was consumed
// in between: a replay).
type Consume func() error

// PeekPrivate is UnprotectPrivate without the state change: the message's key generation
// stays in the secret tree until the returned Consume is called. A caller that must decide
// later whether to accept the message (the cascade opens every layer before any commits)
// uses it.
func (k *Keys) PeekPrivate(pm *wire.PrivateMessage) (*wire.AuthenticatedContent, Consume, error) {
	return k.unprotectPrivate(pm, false)
}

// errPeek makes SecretTree.Open leave a key in place after using it.
var errPeek = errors.New("peek")

func (k *Keys) unprotectPrivate(pm *wire.PrivateMessage, consume bool) (*wire.AuthenticatedContent, Consume, error) {
	if err := k.checkEpoch(pm.GroupID, pm.Epoch); err != nil {
		return nil, nil, err
	}
	if !pm.ContentType.Known() {
		return nil, nil, fmt.Errorf("mls: unknown content type %d", pm.ContentType)
	}
	key, nonce, err := schedule.SenderDataKeyNonce(k.Suite, k.SenderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, nil, err
	}
	sdAEAD, err := k.Suite.NewAEAD(key)
	if err != nil {
		return nil, nil, err
	}
	sdAAD, err := codec.Marshal(pm.SenderDataAAD())
	if err != nil {
		return nil, nil, err
	}
	sdPlain, err := sdAEAD.Open(nil, nonce, pm.EncryptedSenderData, sdAAD)
	if err != nil {
		return nil, nil, ErrAuth
	}
	var sd wire.SenderData
	if codec.Unmarshal(sdPlain, &sd) != nil {
		return nil, nil, ErrAuth
	}
	if sd.LeafIndex >= k.SecretTree.LeafCount() {
		return nil, nil, ErrAuth
	}

	aad, err := codec.Marshal(pm.ContentAAD())
	if err != nil {
		return nil, nil, err
	}
	var content *wire.PrivateMessageContent
	err = k.SecretTree.Open(treemath.LeafIndex(sd.LeafIndex), ratchetFor(pm.ContentType), sd.Generation, func(kn schedule.KeyNonce) error {
		aead, err := k.Suite.NewAEAD(kn.Key)
		if err != nil {
			return err
		}
		plain, err := aead.Open(nil, applyReuseGuard(kn.Nonce, sd.ReuseGuard), pm.Ciphertext, aad)
		if err != nil {
			return ErrAuth
		}
		content, err = wire.UnmarshalPrivateMessageContent(plain, pm.ContentType)
		if err != nil {
			// An authenticated plaintext that does not parse came from a member that
			// holds the key; it is still refused, and its key stays unused.
			return ErrAuth
		}
		if !consume {
			return errPeek
		}
		return nil
	})
	if errors.Is(err, errPeek) {
		err = nil
	}
	if err != nil {
		if errors.Is(err, ErrAuth) {
			return nil, nil, ErrAuth
		}
		return nil, nil, err
	}
	var consumeFn Consume
	if !consume {
		leaf, typ, gen := treemath.LeafIndex(sd.LeafIndex), ratchetFor(pm.ContentType), sd.Generation
		consumeFn = func() error {
			kn, err := k.SecretTree.Key(leaf, typ, gen)
			if err != nil {
				return ErrAuth
			}
			kn.Zero()
			return nil
		}
	}
	ac := &wire.AuthenticatedContent{
		WireFormat: wire.WireFormatPrivateMessage,
		Content: wire.FramedContent{
			GroupID:           pm.GroupID,
			Epoch:             pm.Epoch,
			Sender:            wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: sd.LeafIndex},
			AuthenticatedData: pm.AuthenticatedData,
			ContentType:       pm.ContentType,
			ApplicationData:   content.ApplicationData,
			Proposal:          content.Proposal,
			Commit:            content.Commit,
		},
		Auth: content.Auth,
	}
	return ac, consumeFn, nil
}
