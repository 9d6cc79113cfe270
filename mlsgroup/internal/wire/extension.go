package wire

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// Extension is a typed extension body; unknown types are kept as opaque data.
// RFC 9420, Section 7.2.
type Extension struct {
	ExtensionType ExtensionType
	ExtensionData []byte
}

// Marshal writes e.
func (e *Extension) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(e.ExtensionType))
	codec.AddOpaque(b, e.ExtensionData)
}

// Unmarshal reads e.
func (e *Extension) Unmarshal(s *cryptobyte.String) bool {
	var t uint16
	var v Extension
	if !s.ReadUint16(&t) || !codec.ReadOpaque(s, &v.ExtensionData) {
		return false
	}
	v.ExtensionType = ExtensionType(t)
	*e = v
	return true
}

// Extensions is `Extension extensions<V>`. RFC 9420, Section 7.2.
type Extensions []Extension

// Marshal writes the vector.
func (l *Extensions) Marshal(b *cryptobyte.Builder) { codec.AddStructs(b, *l) }

// Unmarshal reads the vector.
func (l *Extensions) Unmarshal(s *cryptobyte.String) bool {
	return codec.ReadStructs(s, (*[]Extension)(l))
}

// Find returns the first extension of type t, or nil.
func (l Extensions) Find(t ExtensionType) *Extension {
	for i := range l {
		if l[i].ExtensionType == t {
			return &l[i]
		}
	}
	return nil
}

// Types lists the extension types in order.
func (l Extensions) Types() []ExtensionType {
	out := make([]ExtensionType, len(l))
	for i := range l {
		out[i] = l[i].ExtensionType
	}
	return out
}

// errExtensionType is returned by the typed accessors for an extension of another type.
var errExtensionType = errors.New("mls: extension has another type")

// decodeBody decodes e's data as v, after checking its type.
func (e *Extension) decodeBody(t ExtensionType, v codec.Unmarshaler) error {
	if e.ExtensionType != t {
		return fmt.Errorf("%w: got %d, want %d", errExtensionType, e.ExtensionType, t)
	}
	return codec.Unmarshal(e.ExtensionData, v)
}

func newExtension(t ExtensionType, v codec.Marshaler) (Extension, error) {
	data, err := codec.Marshal(v)
	if err != nil {
		return Extension{}, err
	}
	return Extension{ExtensionType: t, ExtensionData: data}, nil
}

// ApplicationID is the body of the application_id extension (`opaque application_id<V>`).
// RFC 9420, Section 5.3.3.
type ApplicationID []byte

// Marshal writes the identifier.
func (a *ApplicationID) Marshal(b *cryptobyte.Builder) { codec.AddOpaque(b, *a) }

// Unmarshal reads the identifier.
func (a *ApplicationID) Unmarshal(s *cryptobyte.String) bool { return readBytes(s, a) }

// ExternalSenders is the body of the external_senders extension
// (`ExternalSender external_senders<V>`). RFC 9420, Section 12.1.8.1.
type ExternalSenders []ExternalSender

// Marshal writes the vector.
func (l *ExternalSenders) Marshal(b *cryptobyte.Builder) { codec.AddStructs(b, *l) }

// Unmarshal reads the vector.
func (l *ExternalSenders) Unmarshal(s *cryptobyte.String) bool {
	return codec.ReadStructs(s, (*[]ExternalSender)(l))
}

// ExternalSender is one entry of the external_senders extension. RFC 9420, Section 12.1.8.1.
type ExternalSender struct {
	SignatureKey SignaturePublicKey
	Credential   Credential
}

// Marshal writes e.
func (e *ExternalSender) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, e.SignatureKey)
	e.Credential.Marshal(b)
}

// Unmarshal reads e.
func (e *ExternalSender) Unmarshal(s *cryptobyte.String) bool {
	var v ExternalSender
	if !readBytes(s, &v.SignatureKey) || !v.Credential.Unmarshal(s) {
		return false
	}
	*e = v
	return true
}

// RequiredCapabilities is the body of the required_capabilities extension.
// RFC 9420, Section 11.1.
type RequiredCapabilities struct {
	ExtensionTypes  []ExtensionType
	ProposalTypes   []ProposalType
	CredentialTypes []CredentialType
}

// Marshal writes r.
func (r *RequiredCapabilities) Marshal(b *cryptobyte.Builder) {
	addUint16s(b, r.ExtensionTypes)
	addUint16s(b, r.ProposalTypes)
	addUint16s(b, r.CredentialTypes)
}

// Unmarshal reads r.
func (r *RequiredCapabilities) Unmarshal(s *cryptobyte.String) bool {
	var v RequiredCapabilities
	if !readUint16s(s, &v.ExtensionTypes) || !readUint16s(s, &v.ProposalTypes) ||
		!readUint16s(s, &v.CredentialTypes) {
		return false
	}
	*r = v
	return true
}

// ExternalPub is the body of the external_pub extension. RFC 9420, Section 12.4.3.2.
type ExternalPub struct {
	ExternalPub HPKEPublicKey
}

// Marshal writes p.
func (p *ExternalPub) Marshal(b *cryptobyte.Builder) { codec.AddOpaque(b, p.ExternalPub) }

// Unmarshal reads p.
func (p *ExternalPub) Unmarshal(s *cryptobyte.String) bool {
	var v ExternalPub
	if !readBytes(s, &v.ExternalPub) {
		return false
	}
	*p = v
	return true
}

// ApplicationID decodes an application_id extension.
func (e *Extension) ApplicationID() (ApplicationID, error) {
	var v ApplicationID
	if err := e.decodeBody(ExtensionTypeApplicationID, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// RatchetTree decodes a ratchet_tree extension.
func (e *Extension) RatchetTree() (RatchetTree, error) {
	var v RatchetTree
	if err := e.decodeBody(ExtensionTypeRatchetTree, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// RequiredCapabilities decodes a required_capabilities extension.
func (e *Extension) RequiredCapabilities() (*RequiredCapabilities, error) {
	var v RequiredCapabilities
	if err := e.decodeBody(ExtensionTypeRequiredCapabilities, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ExternalPub decodes an external_pub extension.
func (e *Extension) ExternalPub() (*ExternalPub, error) {
	var v ExternalPub
	if err := e.decodeBody(ExtensionTypeExternalPub, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ExternalSenders decodes an external_senders extension.
func (e *Extension) ExternalSenders() (ExternalSenders, error) {
	var v ExternalSenders
	if err := e.decodeBody(ExtensionTypeExternalSenders, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// NewApplicationIDExtension builds an application_id extension.
func NewApplicationIDExtension(id []byte) (Extension, error) {
	v := ApplicationID(id)
	return newExtension(ExtensionTypeApplicationID, &v)
}

// NewRatchetTreeExtension builds a ratchet_tree extension.
func NewRatchetTreeExtension(t RatchetTree) (Extension, error) {
	return newExtension(ExtensionTypeRatchetTree, &t)
}

// NewRequiredCapabilitiesExtension builds a required_capabilities extension.
func NewRequiredCapabilitiesExtension(r *RequiredCapabilities) (Extension, error) {
	return newExtension(ExtensionTypeRequiredCapabilities, r)
}

// NewExternalPubExtension builds an external_pub extension.
func NewExternalPubExtension(pub HPKEPublicKey) (Extension, error) {
	return newExtension(ExtensionTypeExternalPub, &ExternalPub{ExternalPub: pub})
}

// NewExternalSendersExtension builds an external_senders extension.
func NewExternalSendersExtension(senders ExternalSenders) (Extension, error) {
	return newExtension(ExtensionTypeExternalSenders, &senders)
}
