package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// KeyPackage is a client's pre-published offer to be added to groups. RFC 9420, Section 10.
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite CipherSuite
	InitKey     HPKEPublicKey
	LeafNode    LeafNode
	Extensions  Extensions
	// Signature is SignWithLabel(., "KeyPackageTBS", KeyPackageTBS).
	Signature []byte
}

// Marshal writes k.
func (k *KeyPackage) Marshal(b *cryptobyte.Builder) {
	k.TBS().Marshal(b)
	codec.AddOpaque(b, k.Signature)
}

// Unmarshal reads k.
func (k *KeyPackage) Unmarshal(s *cryptobyte.String) bool {
	var t KeyPackageTBS
	var sig []byte
	if !t.Unmarshal(s) || !codec.ReadOpaque(s, &sig) {
		return false
	}
	*k = KeyPackage{
		Version:     t.Version,
		CipherSuite: t.CipherSuite,
		InitKey:     t.InitKey,
		LeafNode:    t.LeafNode,
		Extensions:  t.Extensions,
		Signature:   sig,
	}
	return true
}

// TBS returns the KeyPackageTBS that k's signature covers.
func (k *KeyPackage) TBS() *KeyPackageTBS {
	return &KeyPackageTBS{
		Version:     k.Version,
		CipherSuite: k.CipherSuite,
		InitKey:     k.InitKey,
		LeafNode:    k.LeafNode,
		Extensions:  k.Extensions,
	}
}

// KeyPackageTBS is the content a KeyPackage's signature covers. RFC 9420, Section 10.
type KeyPackageTBS struct {
	Version     ProtocolVersion
	CipherSuite CipherSuite
	InitKey     HPKEPublicKey
	LeafNode    LeafNode
	Extensions  Extensions
}

// Marshal writes t.
func (t *KeyPackageTBS) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(t.Version))
	b.AddUint16(uint16(t.CipherSuite))
	codec.AddOpaque(b, t.InitKey)
	t.LeafNode.Marshal(b)
	t.Extensions.Marshal(b)
}

// Unmarshal reads t.
func (t *KeyPackageTBS) Unmarshal(s *cryptobyte.String) bool {
	var v KeyPackageTBS
	var version, suite uint16
	if !s.ReadUint16(&version) || !s.ReadUint16(&suite) || !readBytes(s, &v.InitKey) ||
		!v.LeafNode.Unmarshal(s) || !v.Extensions.Unmarshal(s) {
		return false
	}
	v.Version = ProtocolVersion(version)
	v.CipherSuite = CipherSuite(suite)
	*t = v
	return true
}

// DecodeKeyPackage decodes a bare KeyPackage (not wrapped in an MLSMessage).
func DecodeKeyPackage(data []byte) (*KeyPackage, error) {
	var k KeyPackage
	if err := codec.Unmarshal(data, &k); err != nil {
		return nil, err
	}
	return &k, nil
}
