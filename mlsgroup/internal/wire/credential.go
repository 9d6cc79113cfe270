package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// Certificate is one DER-encoded X.509 certificate of an x509 credential. RFC 9420, Section 5.3.
type Certificate struct {
	CertData []byte
}

// Marshal writes c.
func (c *Certificate) Marshal(b *cryptobyte.Builder) { codec.AddOpaque(b, c.CertData) }

// Unmarshal reads c.
func (c *Certificate) Unmarshal(s *cryptobyte.String) bool {
	var v Certificate
	if !codec.ReadOpaque(s, &v.CertData) {
		return false
	}
	*c = v
	return true
}

// Credential binds an identity to a signature key. Identity is set for basic credentials,
// Certificates (end-entity first) for x509 credentials. RFC 9420, Section 5.3.
type Credential struct {
	CredentialType CredentialType
	Identity       []byte        // basic
	Certificates   []Certificate // x509
}

// NewBasicCredential returns a basic credential for identity.
func NewBasicCredential(identity []byte) Credential {
	return Credential{CredentialType: CredentialTypeBasic, Identity: identity}
}

// Marshal writes c. An unknown credential type sets an error on b.
func (c *Credential) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(c.CredentialType))
	switch c.CredentialType {
	case CredentialTypeBasic:
		codec.AddOpaque(b, c.Identity)
	case CredentialTypeX509:
		codec.AddStructs(b, c.Certificates)
	default:
		b.SetError(errUnknown("credential type", c.CredentialType))
	}
}

// Unmarshal reads c. An unknown credential type is rejected: its body has no length prefix.
func (c *Credential) Unmarshal(s *cryptobyte.String) bool {
	var t uint16
	if !s.ReadUint16(&t) {
		return false
	}
	v := Credential{CredentialType: CredentialType(t)}
	switch v.CredentialType {
	case CredentialTypeBasic:
		if !codec.ReadOpaque(s, &v.Identity) {
			return false
		}
	case CredentialTypeX509:
		if !codec.ReadStructs(s, &v.Certificates) {
			return false
		}
	default:
		return false
	}
	*c = v
	return true
}
