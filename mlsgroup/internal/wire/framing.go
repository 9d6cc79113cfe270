package wire

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// Sender identifies who sent a FramedContent: LeafIndex for members, SenderIndex (into the
// external_senders extension) for external senders, nothing for new members.
// RFC 9420, Section 6.
type Sender struct {
	SenderType  SenderType
	LeafIndex   uint32 // member
	SenderIndex uint32 // external
}

// Marshal writes s. An unknown sender type sets an error on b.
func (snd *Sender) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(snd.SenderType))
	switch snd.SenderType {
	case SenderTypeMember:
		b.AddUint32(snd.LeafIndex)
	case SenderTypeExternal:
		b.AddUint32(snd.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		b.SetError(errUnknown("sender type", snd.SenderType))
	}
}

// Unmarshal reads s.
func (snd *Sender) Unmarshal(s *cryptobyte.String) bool {
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	v := Sender{SenderType: SenderType(t)}
	switch v.SenderType {
	case SenderTypeMember:
		if !s.ReadUint32(&v.LeafIndex) {
			return false
		}
	case SenderTypeExternal:
		if !s.ReadUint32(&v.SenderIndex) {
			return false
		}
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		return false
	}
	*snd = v
	return true
}

// signsGroupContext reports whether the FramedContentTBS of this sender includes the
// GroupContext (RFC 9420, Section 6.1).
func (snd *Sender) signsGroupContext() bool {
	return snd.SenderType == SenderTypeMember || snd.SenderType == SenderTypeNewMemberCommit
}

// marshalContent writes the `select (content_type)` shared by FramedContent and
// PrivateMessageContent.
func marshalContent(b *cryptobyte.Builder, ct ContentType, app []byte, p *Proposal, c *Commit) {
	switch ct {
	case ContentTypeApplication:
		codec.AddOpaque(b, app)
	case ContentTypeProposal:
		if p == nil {
			b.SetError(errMissingBranch)
			return
		}
		p.Marshal(b)
	case ContentTypeCommit:
		if c == nil {
			b.SetError(errMissingBranch)
			return
		}
		c.Marshal(b)
	default:
		b.SetError(errUnknown("content type", ct))
	}
}

// unmarshalContent reads the `select (content_type)` shared by FramedContent and
// PrivateMessageContent.
func unmarshalContent(s *cryptobyte.String, ct ContentType, app *[]byte, p **Proposal, c **Commit) bool {
	switch ct {
	case ContentTypeApplication:
		return codec.ReadOpaque(s, app)
	case ContentTypeProposal:
		*p = new(Proposal)
		return (*p).Unmarshal(s)
	case ContentTypeCommit:
		*c = new(Commit)
		return (*c).Unmarshal(s)
	}
	return false
}

// readContentType reads a ContentType and rejects unknown values.
func readContentType(s *cryptobyte.String, out *ContentType) bool {
	var t uint8
	if !s.ReadUint8(&t) || !ContentType(t).Known() {
		return false
	}
	*out = ContentType(t)
	return true
}

// addContentType writes a ContentType; an unknown value sets an error on b.
func addContentType(b *cryptobyte.Builder, ct ContentType) {
	if !ct.Known() {
		b.SetError(errUnknown("content type", ct))
		return
	}
	b.AddUint8(uint8(ct))
}

// FramedContent is the content of a handshake or application message with its framing.
// ApplicationData, Proposal or Commit is set according to ContentType. RFC 9420, Section 6.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte    // application
	Proposal          *Proposal // proposal
	Commit            *Commit   // commit
}

// Marshal writes c.
func (c *FramedContent) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, c.GroupID)
	b.AddUint64(c.Epoch)
	c.Sender.Marshal(b)
	codec.AddOpaque(b, c.AuthenticatedData)
	addContentType(b, c.ContentType)
	marshalContent(b, c.ContentType, c.ApplicationData, c.Proposal, c.Commit)
}

// Unmarshal reads c.
func (c *FramedContent) Unmarshal(s *cryptobyte.String) bool {
	var v FramedContent
	if !codec.ReadOpaque(s, &v.GroupID) || !s.ReadUint64(&v.Epoch) || !v.Sender.Unmarshal(s) ||
		!codec.ReadOpaque(s, &v.AuthenticatedData) || !readContentType(s, &v.ContentType) ||
		!unmarshalContent(s, v.ContentType, &v.ApplicationData, &v.Proposal, &v.Commit) {
		return false
	}
	*c = v
	return true
}

// FramedContentAuthData authenticates a FramedContent: the signature, and for commits the
// confirmation tag. Its layout depends on the content type of the enclosing content, so it
// is encoded with MarshalFor and UnmarshalFor. RFC 9420, Section 6.1.
type FramedContentAuthData struct {
	// Signature is SignWithLabel(., "FramedContentTBS", FramedContentTBS).
	Signature []byte
	// ConfirmationTag is present only when the content type is commit.
	ConfirmationTag MAC
}

// MarshalFor writes a for content of type ct.
func (a *FramedContentAuthData) MarshalFor(b *cryptobyte.Builder, ct ContentType) {
	codec.AddOpaque(b, a.Signature)
	switch ct {
	case ContentTypeCommit:
		codec.AddOpaque(b, a.ConfirmationTag)
	case ContentTypeApplication, ContentTypeProposal:
	default:
		b.SetError(errUnknown("content type", ct))
	}
}

// UnmarshalFor reads a for content of type ct.
func (a *FramedContentAuthData) UnmarshalFor(s *cryptobyte.String, ct ContentType) bool {
	var v FramedContentAuthData
	if !codec.ReadOpaque(s, &v.Signature) {
		return false
	}
	switch ct {
	case ContentTypeCommit:
		if !readBytes(s, &v.ConfirmationTag) {
			return false
		}
	case ContentTypeApplication, ContentTypeProposal:
	default:
		return false
	}
	*a = v
	return true
}

// addVersionMLS10 writes the constant `ProtocolVersion version = mls10` of MLSMessage,
// FramedContentTBS and GroupContext. The zero value stands for mls10; any other value
// sets an error on b.
func addVersionMLS10(b *cryptobyte.Builder, v ProtocolVersion) {
	if v != ProtocolVersionReserved && v != ProtocolVersionMLS10 {
		b.SetError(fmt.Errorf("mls: protocol version %d is not mls10", v))
		return
	}
	b.AddUint16(uint16(ProtocolVersionMLS10))
}

// readVersionMLS10 reads the constant `ProtocolVersion version = mls10` and rejects any
// other value: the layout of other versions is unknown.
func readVersionMLS10(s *cryptobyte.String, out *ProtocolVersion) bool {
	var v uint16
	if !s.ReadUint16(&v) || ProtocolVersion(v) != ProtocolVersionMLS10 {
		return false
	}
	*out = ProtocolVersionMLS10
	return true
}

// FramedContentTBS is what the signature of a FramedContent covers. Context is included
// only for member and new_member_commit senders (RFC 9420, Section 6.1); it is ignored
// for other senders. Version is always mls10 (the zero value encodes as mls10).
type FramedContentTBS struct {
	Version    ProtocolVersion
	WireFormat WireFormat
	Content    FramedContent
	Context    *GroupContext // member, new_member_commit
}

// Marshal writes t. A member or new_member_commit sender without Context sets an error on b.
func (t *FramedContentTBS) Marshal(b *cryptobyte.Builder) {
	addVersionMLS10(b, t.Version)
	b.AddUint16(uint16(t.WireFormat))
	t.Content.Marshal(b)
	if t.Content.Sender.signsGroupContext() {
		if t.Context == nil {
			b.SetError(errors.New("mls: FramedContentTBS of a member sender needs the GroupContext"))
			return
		}
		t.Context.Marshal(b)
	}
}

// Unmarshal reads t.
func (t *FramedContentTBS) Unmarshal(s *cryptobyte.String) bool {
	var v FramedContentTBS
	var wf uint16
	if !readVersionMLS10(s, &v.Version) || !s.ReadUint16(&wf) || !v.Content.Unmarshal(s) {
		return false
	}
	v.WireFormat = WireFormat(wf)
	if v.Content.Sender.signsGroupContext() {
		v.Context = new(GroupContext)
		if !v.Context.Unmarshal(s) {
			return false
		}
	}
	*t = v
	return true
}

// AuthenticatedContent is a FramedContent with its authentication data and the wire format
// it is sent in. RFC 9420, Section 6.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

// Marshal writes a.
func (a *AuthenticatedContent) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(a.WireFormat))
	a.Content.Marshal(b)
	a.Auth.MarshalFor(b, a.Content.ContentType)
}

// Unmarshal reads a.
func (a *AuthenticatedContent) Unmarshal(s *cryptobyte.String) bool {
	var v AuthenticatedContent
	var wf uint16
	if !s.ReadUint16(&wf) || !v.Content.Unmarshal(s) || !v.Auth.UnmarshalFor(s, v.Content.ContentType) {
		return false
	}
	v.WireFormat = WireFormat(wf)
	*a = v
	return true
}

// TBS returns the FramedContentTBS that a's signature covers; ctx is the group context of
// the current epoch, used only for member and new_member_commit senders.
func (a *AuthenticatedContent) TBS(ctx *GroupContext) *FramedContentTBS {
	t := &FramedContentTBS{Version: ProtocolVersionMLS10, WireFormat: a.WireFormat, Content: a.Content}
	if a.Content.Sender.signsGroupContext() {
		t.Context = ctx
	}
	return t
}

// ConfirmedTranscriptHashInput returns the part of a (a commit) that the confirmed
// transcript hash covers.
func (a *AuthenticatedContent) ConfirmedTranscriptHashInput() *ConfirmedTranscriptHashInput {
	return &ConfirmedTranscriptHashInput{WireFormat: a.WireFormat, Content: a.Content, Signature: a.Auth.Signature}
}

// DecodeAuthenticatedContent decodes an AuthenticatedContent.
func DecodeAuthenticatedContent(data []byte) (*AuthenticatedContent, error) {
	var a AuthenticatedContent
	if err := codec.Unmarshal(data, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AuthenticatedContentTBM is what the membership tag of a PublicMessage covers.
// RFC 9420, Section 6.2.
type AuthenticatedContentTBM struct {
	ContentTBS FramedContentTBS
	Auth       FramedContentAuthData
}

// Marshal writes t.
func (t *AuthenticatedContentTBM) Marshal(b *cryptobyte.Builder) {
	t.ContentTBS.Marshal(b)
	t.Auth.MarshalFor(b, t.ContentTBS.Content.ContentType)
}

// Unmarshal reads t.
func (t *AuthenticatedContentTBM) Unmarshal(s *cryptobyte.String) bool {
	var v AuthenticatedContentTBM
	if !v.ContentTBS.Unmarshal(s) || !v.Auth.UnmarshalFor(s, v.ContentTBS.Content.ContentType) {
		return false
	}
	*t = v
	return true
}

// ConfirmedTranscriptHashInput is what the confirmed transcript hash covers.
// RFC 9420, Section 8.2.
type ConfirmedTranscriptHashInput struct {
	WireFormat WireFormat
	Content    FramedContent // with content_type == commit
	Signature  []byte
}

// Marshal writes h.
func (h *ConfirmedTranscriptHashInput) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(h.WireFormat))
	h.Content.Marshal(b)
	codec.AddOpaque(b, h.Signature)
}

// Unmarshal reads h.
func (h *ConfirmedTranscriptHashInput) Unmarshal(s *cryptobyte.String) bool {
	var v ConfirmedTranscriptHashInput
	var wf uint16
	if !s.ReadUint16(&wf) || !v.Content.Unmarshal(s) || !codec.ReadOpaque(s, &v.Signature) {
		return false
	}
	v.WireFormat = WireFormat(wf)
	*h = v
	return true
}

// InterimTranscriptHashInput is what the interim transcript hash adds to the confirmed one.
// RFC 9420, Section 8.2.
type InterimTranscriptHashInput struct {
	ConfirmationTag MAC
}

// Marshal writes h.
func (h *InterimTranscriptHashInput) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, h.ConfirmationTag)
}

// Unmarshal reads h.
func (h *InterimTranscriptHashInput) Unmarshal(s *cryptobyte.String) bool {
	var v InterimTranscriptHashInput
	if !readBytes(s, &v.ConfirmationTag) {
		return false
	}
	*h = v
	return true
}

// PublicMessage is a signed, unencrypted message. MembershipTag is present only for member
// senders. RFC 9420, Section 6.2.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag MAC // member
}

// Marshal writes p.
func (p *PublicMessage) Marshal(b *cryptobyte.Builder) {
	p.Content.Marshal(b)
	p.Auth.MarshalFor(b, p.Content.ContentType)
	if p.Content.Sender.SenderType == SenderTypeMember {
		codec.AddOpaque(b, p.MembershipTag)
	}
}

// Unmarshal reads p.
func (p *PublicMessage) Unmarshal(s *cryptobyte.String) bool {
	var v PublicMessage
	if !v.Content.Unmarshal(s) || !v.Auth.UnmarshalFor(s, v.Content.ContentType) {
		return false
	}
	if v.Content.Sender.SenderType == SenderTypeMember && !readBytes(s, &v.MembershipTag) {
		return false
	}
	*p = v
	return true
}

// AuthenticatedContent returns the AuthenticatedContent that p carries.
func (p *PublicMessage) AuthenticatedContent() *AuthenticatedContent {
	return &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: p.Content, Auth: p.Auth}
}

// PrivateMessage is an encrypted message. RFC 9420, Section 6.3.
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// Marshal writes p.
func (p *PrivateMessage) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, p.GroupID)
	b.AddUint64(p.Epoch)
	addContentType(b, p.ContentType)
	codec.AddOpaque(b, p.AuthenticatedData)
	codec.AddOpaque(b, p.EncryptedSenderData)
	codec.AddOpaque(b, p.Ciphertext)
}

// Unmarshal reads p.
func (p *PrivateMessage) Unmarshal(s *cryptobyte.String) bool {
	var v PrivateMessage
	if !codec.ReadOpaque(s, &v.GroupID) || !s.ReadUint64(&v.Epoch) ||
		!readContentType(s, &v.ContentType) || !codec.ReadOpaque(s, &v.AuthenticatedData) ||
		!codec.ReadOpaque(s, &v.EncryptedSenderData) || !codec.ReadOpaque(s, &v.Ciphertext) {
		return false
	}
	*p = v
	return true
}

// SenderDataAAD returns the additional data for the encryption of p's sender data.
func (p *PrivateMessage) SenderDataAAD() *SenderDataAAD {
	return &SenderDataAAD{GroupID: p.GroupID, Epoch: p.Epoch, ContentType: p.ContentType}
}

// ContentAAD returns the additional data for the encryption of p's content.
func (p *PrivateMessage) ContentAAD() *PrivateContentAAD {
	return &PrivateContentAAD{
		GroupID:           p.GroupID,
		Epoch:             p.Epoch,
		ContentType:       p.ContentType,
		AuthenticatedData: p.AuthenticatedData,
	}
}

// PrivateMessageContent is the plaintext of PrivateMessage.ciphertext. Its layout depends on
// PrivateMessage.content_type, which is not part of its encoding: ContentType must be set
// before Marshal, and UnmarshalPrivateMessageContent takes it as an argument. Padding is
// PaddingLength zero octets. RFC 9420, Section 6.3.1.
type PrivateMessageContent struct {
	ContentType     ContentType // from PrivateMessage.content_type; not encoded
	ApplicationData []byte      // application
	Proposal        *Proposal   // proposal
	Commit          *Commit     // commit
	Auth            FramedContentAuthData
	PaddingLength   int
}

// maxPadding bounds the padding Marshal writes: the whole plaintext has to fit a
// PrivateMessage ciphertext, an `opaque<V>` of at most 2^30-1 octets.
const maxPadding = codec.MaxVarint

// Marshal writes c followed by c.PaddingLength zero octets.
func (c *PrivateMessageContent) Marshal(b *cryptobyte.Builder) {
	marshalContent(b, c.ContentType, c.ApplicationData, c.Proposal, c.Commit)
	c.Auth.MarshalFor(b, c.ContentType)
	switch {
	case c.PaddingLength < 0:
		b.SetError(errNegativePad)
	case c.PaddingLength > maxPadding:
		b.SetError(fmt.Errorf("mls: padding length %d too large", c.PaddingLength))
	default:
		b.AddBytes(make([]byte, c.PaddingLength))
	}
}

// errPadding is returned for a PrivateMessageContent whose padding has a non-zero octet.
var errPadding = errors.New("mls: non-zero padding in private message content")

// UnmarshalPrivateMessageContent decodes the plaintext of a PrivateMessage whose
// content_type is ct. The octets after the auth field are the padding; it must be all
// zeros (RFC 9420, Section 6.3.1).
func UnmarshalPrivateMessageContent(data []byte, ct ContentType) (*PrivateMessageContent, error) {
	if !ct.Known() {
		return nil, fmt.Errorf("%w: unknown content type %d", codec.ErrDecode, ct)
	}
	s := cryptobyte.String(data)
	c := PrivateMessageContent{ContentType: ct}
	if !unmarshalContent(&s, ct, &c.ApplicationData, &c.Proposal, &c.Commit) ||
		!c.Auth.UnmarshalFor(&s, ct) {
		return nil, fmt.Errorf("%w: %T", codec.ErrDecode, &c)
	}
	var nonZero byte
	for _, x := range s {
		nonZero |= x
	}
	if nonZero != 0 {
		return nil, fmt.Errorf("%w: %w", codec.ErrDecode, errPadding)
	}
	c.PaddingLength = len(s)
	return &c, nil
}

// SenderData identifies the sender and key generation of a PrivateMessage.
// RFC 9420, Section 6.3.2.
type SenderData struct {
	LeafIndex  uint32
	Generation uint32
	ReuseGuard [4]byte
}

// Marshal writes d.
func (d *SenderData) Marshal(b *cryptobyte.Builder) {
	b.AddUint32(d.LeafIndex)
	b.AddUint32(d.Generation)
	b.AddBytes(d.ReuseGuard[:])
}

// Unmarshal reads d.
func (d *SenderData) Unmarshal(s *cryptobyte.String) bool {
	var v SenderData
	if !s.ReadUint32(&v.LeafIndex) || !s.ReadUint32(&v.Generation) || !s.CopyBytes(v.ReuseGuard[:]) {
		return false
	}
	*d = v
	return true
}

// SenderDataAAD is the additional data for the encryption of SenderData.
// RFC 9420, Section 6.3.2.
type SenderDataAAD struct {
	GroupID     []byte
	Epoch       uint64
	ContentType ContentType
}

// Marshal writes a.
func (a *SenderDataAAD) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, a.GroupID)
	b.AddUint64(a.Epoch)
	addContentType(b, a.ContentType)
}

// Unmarshal reads a.
func (a *SenderDataAAD) Unmarshal(s *cryptobyte.String) bool {
	var v SenderDataAAD
	if !codec.ReadOpaque(s, &v.GroupID) || !s.ReadUint64(&v.Epoch) || !readContentType(s, &v.ContentType) {
		return false
	}
	*a = v
	return true
}

// PrivateContentAAD is the additional data for the encryption of PrivateMessageContent.
// RFC 9420, Section 6.3.1.
type PrivateContentAAD struct {
	GroupID           []byte
	Epoch             uint64
	ContentType       ContentType
	AuthenticatedData []byte
}

// Marshal writes a.
func (a *PrivateContentAAD) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, a.GroupID)
	b.AddUint64(a.Epoch)
	addContentType(b, a.ContentType)
	codec.AddOpaque(b, a.AuthenticatedData)
}

// Unmarshal reads a.
func (a *PrivateContentAAD) Unmarshal(s *cryptobyte.String) bool {
	var v PrivateContentAAD
	if !codec.ReadOpaque(s, &v.GroupID) || !s.ReadUint64(&v.Epoch) ||
		!readContentType(s, &v.ContentType) || !codec.ReadOpaque(s, &v.AuthenticatedData) {
		return false
	}
	*a = v
	return true
}
