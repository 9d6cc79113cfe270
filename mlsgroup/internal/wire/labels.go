package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// LabelPrefix is prepended to every label of ExpandWithLabel, SignWithLabel and
// EncryptWithLabel (RFC 9420, Section 5.1.2 and 5.1.3; Section 8 for KDFLabel).
const LabelPrefix = "MLS 1.0 "

// KDFLabel is the info input of ExpandWithLabel. Label holds the full label, prefix
// included. RFC 9420, Section 8.
type KDFLabel struct {
	Length  uint16
	Label   []byte
	Context []byte
}

// NewKDFLabel returns the KDFLabel for ExpandWithLabel(., label, context, length).
func NewKDFLabel(label string, context []byte, length uint16) *KDFLabel {
	return &KDFLabel{Length: length, Label: []byte(LabelPrefix + label), Context: context}
}

// Marshal writes l.
func (l *KDFLabel) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(l.Length)
	codec.AddOpaque(b, l.Label)
	codec.AddOpaque(b, l.Context)
}

// Unmarshal reads l.
func (l *KDFLabel) Unmarshal(s *cryptobyte.String) bool {
	var v KDFLabel
	if !s.ReadUint16(&v.Length) || !codec.ReadOpaque(s, &v.Label) || !codec.ReadOpaque(s, &v.Context) {
		return false
	}
	*l = v
	return true
}

// SignContent is what SignWithLabel signs. Label holds the full label, prefix included.
// RFC 9420, Section 5.1.2.
type SignContent struct {
	Label   []byte
	Content []byte
}

// NewSignContent returns the SignContent for SignWithLabel(., label, content).
func NewSignContent(label string, content []byte) *SignContent {
	return &SignContent{Label: []byte(LabelPrefix + label), Content: content}
}

// Marshal writes c.
func (c *SignContent) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, c.Label)
	codec.AddOpaque(b, c.Content)
}

// Unmarshal reads c.
func (c *SignContent) Unmarshal(s *cryptobyte.String) bool {
	var v SignContent
	if !codec.ReadOpaque(s, &v.Label) || !codec.ReadOpaque(s, &v.Content) {
		return false
	}
	*c = v
	return true
}

// EncryptContext is the HPKE info of EncryptWithLabel. Label holds the full label, prefix
// included. RFC 9420, Section 5.1.3.
type EncryptContext struct {
	Label   []byte
	Context []byte
}

// NewEncryptContext returns the EncryptContext for EncryptWithLabel(., label, context, .).
func NewEncryptContext(label string, context []byte) *EncryptContext {
	return &EncryptContext{Label: []byte(LabelPrefix + label), Context: context}
}

// Marshal writes c.
func (c *EncryptContext) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, c.Label)
	codec.AddOpaque(b, c.Context)
}

// Unmarshal reads c.
func (c *EncryptContext) Unmarshal(s *cryptobyte.String) bool {
	var v EncryptContext
	if !codec.ReadOpaque(s, &v.Label) || !codec.ReadOpaque(s, &v.Context) {
		return false
	}
	*c = v
	return true
}

// RefHashInput is what RefHash hashes. Unlike the other labels, Label is used as given
// (the callers pass "MLS 1.0 KeyPackage Reference" or "MLS 1.0 Proposal Reference").
// RFC 9420, Section 5.2.
type RefHashInput struct {
	Label []byte
	Value []byte
}

// Labels of RefHash (RFC 9420, Section 5.2).
const (
	KeyPackageRefLabel = "MLS 1.0 KeyPackage Reference"
	ProposalRefLabel   = "MLS 1.0 Proposal Reference"
)

// Marshal writes r.
func (r *RefHashInput) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, r.Label)
	codec.AddOpaque(b, r.Value)
}

// Unmarshal reads r.
func (r *RefHashInput) Unmarshal(s *cryptobyte.String) bool {
	var v RefHashInput
	if !codec.ReadOpaque(s, &v.Label) || !codec.ReadOpaque(s, &v.Value) {
		return false
	}
	*r = v
	return true
}

// PSKLabel binds a PSK to its position when psk_secret is computed. RFC 9420, Section 8.4.
type PSKLabel struct {
	ID    PreSharedKeyID
	Index uint16
	Count uint16
}

// Marshal writes l.
func (l *PSKLabel) Marshal(b *cryptobyte.Builder) {
	l.ID.Marshal(b)
	b.AddUint16(l.Index)
	b.AddUint16(l.Count)
}

// Unmarshal reads l.
func (l *PSKLabel) Unmarshal(s *cryptobyte.String) bool {
	var v PSKLabel
	if !v.ID.Unmarshal(s) || !s.ReadUint16(&v.Index) || !s.ReadUint16(&v.Count) {
		return false
	}
	*l = v
	return true
}
