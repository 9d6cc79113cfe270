package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// PathSecret is the path secret a Welcome gives a new member. RFC 9420, Section 12.4.3.1.
type PathSecret struct {
	PathSecret []byte
}

// Marshal writes p.
func (p *PathSecret) Marshal(b *cryptobyte.Builder) { codec.AddOpaque(b, p.PathSecret) }

// Unmarshal reads p.
func (p *PathSecret) Unmarshal(s *cryptobyte.String) bool {
	var v PathSecret
	if !codec.ReadOpaque(s, &v.PathSecret) {
		return false
	}
	*p = v
	return true
}

// GroupSecrets is what a Welcome encrypts to each new member; PathSecret is nil when
// absent. RFC 9420, Section 12.4.3.1.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   *PathSecret
	PSKs         []PreSharedKeyID
}

// Marshal writes g.
func (g *GroupSecrets) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, g.JoinerSecret)
	writeOptional(b, g.PathSecret)
	codec.AddStructs(b, g.PSKs)
}

// Unmarshal reads g.
func (g *GroupSecrets) Unmarshal(s *cryptobyte.String) bool {
	var v GroupSecrets
	if !codec.ReadOpaque(s, &v.JoinerSecret) || !readOptional(s, &v.PathSecret) ||
		!codec.ReadStructs(s, &v.PSKs) {
		return false
	}
	*g = v
	return true
}

// DecodeGroupSecrets decodes a GroupSecrets.
func DecodeGroupSecrets(data []byte) (*GroupSecrets, error) {
	var g GroupSecrets
	if err := codec.Unmarshal(data, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// EncryptedGroupSecrets is the GroupSecrets of one new member, encrypted to the init key of
// its KeyPackage. RFC 9420, Section 12.4.3.1.
type EncryptedGroupSecrets struct {
	NewMember             KeyPackageRef
	EncryptedGroupSecrets HPKECiphertext
}

// Marshal writes e.
func (e *EncryptedGroupSecrets) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, e.NewMember)
	e.EncryptedGroupSecrets.Marshal(b)
}

// Unmarshal reads e.
func (e *EncryptedGroupSecrets) Unmarshal(s *cryptobyte.String) bool {
	var v EncryptedGroupSecrets
	if !readBytes(s, &v.NewMember) || !v.EncryptedGroupSecrets.Unmarshal(s) {
		return false
	}
	*e = v
	return true
}

// Welcome brings new members into a group. RFC 9420, Section 12.4.3.1.
type Welcome struct {
	CipherSuite        CipherSuite
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// Marshal writes w.
func (w *Welcome) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(w.CipherSuite))
	codec.AddStructs(b, w.Secrets)
	codec.AddOpaque(b, w.EncryptedGroupInfo)
}

// Unmarshal reads w.
func (w *Welcome) Unmarshal(s *cryptobyte.String) bool {
	var v Welcome
	var suite uint16
	if !s.ReadUint16(&suite) || !codec.ReadStructs(s, &v.Secrets) ||
		!codec.ReadOpaque(s, &v.EncryptedGroupInfo) {
		return false
	}
	v.CipherSuite = CipherSuite(suite)
	*w = v
	return true
}

// Find returns the EncryptedGroupSecrets for the KeyPackage with reference ref, or nil.
func (w *Welcome) Find(ref KeyPackageRef) *EncryptedGroupSecrets {
	for i := range w.Secrets {
		if string(w.Secrets[i].NewMember) == string(ref) {
			return &w.Secrets[i]
		}
	}
	return nil
}

// DecodeWelcome decodes a bare Welcome (not wrapped in an MLSMessage).
func DecodeWelcome(data []byte) (*Welcome, error) {
	var w Welcome
	if err := codec.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	return &w, nil
}
