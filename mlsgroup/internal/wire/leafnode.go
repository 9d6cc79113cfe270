package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// Capabilities lists what a client supports. The lists are kept as read, including GREASE
// and other unknown values. RFC 9420, Section 7.2.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []CipherSuite
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

// Marshal writes c.
func (c *Capabilities) Marshal(b *cryptobyte.Builder) {
	addUint16s(b, c.Versions)
	addUint16s(b, c.CipherSuites)
	addUint16s(b, c.Extensions)
	addUint16s(b, c.Proposals)
	addUint16s(b, c.Credentials)
}

// Unmarshal reads c.
func (c *Capabilities) Unmarshal(s *cryptobyte.String) bool {
	var v Capabilities
	if !readUint16s(s, &v.Versions) || !readUint16s(s, &v.CipherSuites) ||
		!readUint16s(s, &v.Extensions) || !readUint16s(s, &v.Proposals) ||
		!readUint16s(s, &v.Credentials) {
		return false
	}
	*c = v
	return true
}

// Lifetime is the validity period of a KeyPackage's leaf node, in seconds since the Unix
// epoch. RFC 9420, Section 7.2.
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// Marshal writes l.
func (l *Lifetime) Marshal(b *cryptobyte.Builder) {
	b.AddUint64(l.NotBefore)
	b.AddUint64(l.NotAfter)
}

// Unmarshal reads l.
func (l *Lifetime) Unmarshal(s *cryptobyte.String) bool {
	var v Lifetime
	if !s.ReadUint64(&v.NotBefore) || !s.ReadUint64(&v.NotAfter) {
		return false
	}
	*l = v
	return true
}

// leafNodeContent is the part common to LeafNode and LeafNodeTBS.
type leafNodeContent struct {
	EncryptionKey  HPKEPublicKey
	SignatureKey   SignaturePublicKey
	Credential     Credential
	Capabilities   Capabilities
	LeafNodeSource LeafNodeSource
	Lifetime       Lifetime // key_package source only
	ParentHash     []byte   // commit source only
	Extensions     Extensions
}

func (c *leafNodeContent) marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, c.EncryptionKey)
	codec.AddOpaque(b, c.SignatureKey)
	c.Credential.Marshal(b)
	c.Capabilities.Marshal(b)
	b.AddUint8(uint8(c.LeafNodeSource))
	switch c.LeafNodeSource {
	case LeafNodeSourceKeyPackage:
		c.Lifetime.Marshal(b)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		codec.AddOpaque(b, c.ParentHash)
	default:
		b.SetError(errUnknown("leaf node source", c.LeafNodeSource))
	}
	c.Extensions.Marshal(b)
}

func (c *leafNodeContent) unmarshal(s *cryptobyte.String) bool {
	var src uint8
	if !readBytes(s, &c.EncryptionKey) || !readBytes(s, &c.SignatureKey) ||
		!c.Credential.Unmarshal(s) || !c.Capabilities.Unmarshal(s) || !s.ReadUint8(&src) {
		return false
	}
	c.LeafNodeSource = LeafNodeSource(src)
	switch c.LeafNodeSource {
	case LeafNodeSourceKeyPackage:
		if !c.Lifetime.Unmarshal(s) {
			return false
		}
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		if !codec.ReadOpaque(s, &c.ParentHash) {
			return false
		}
	default:
		return false
	}
	return c.Extensions.Unmarshal(s)
}

// LeafNode describes one member in the ratchet tree or in a KeyPackage. Lifetime is
// meaningful only for the key_package source, ParentHash only for the commit source.
// RFC 9420, Section 7.2.
type LeafNode struct {
	EncryptionKey  HPKEPublicKey
	SignatureKey   SignaturePublicKey
	Credential     Credential
	Capabilities   Capabilities
	LeafNodeSource LeafNodeSource
	Lifetime       Lifetime // key_package
	ParentHash     []byte   // commit
	Extensions     Extensions
	// Signature is SignWithLabel(., "LeafNodeTBS", LeafNodeTBS).
	Signature []byte
}

func (n *LeafNode) content() *leafNodeContent {
	return &leafNodeContent{
		EncryptionKey:  n.EncryptionKey,
		SignatureKey:   n.SignatureKey,
		Credential:     n.Credential,
		Capabilities:   n.Capabilities,
		LeafNodeSource: n.LeafNodeSource,
		Lifetime:       n.Lifetime,
		ParentHash:     n.ParentHash,
		Extensions:     n.Extensions,
	}
}

// Marshal writes n.
func (n *LeafNode) Marshal(b *cryptobyte.Builder) {
	n.content().marshal(b)
	codec.AddOpaque(b, n.Signature)
}

// Unmarshal reads n.
func (n *LeafNode) Unmarshal(s *cryptobyte.String) bool {
	var c leafNodeContent
	var sig []byte
	if !c.unmarshal(s) || !codec.ReadOpaque(s, &sig) {
		return false
	}
	*n = LeafNode{
		EncryptionKey:  c.EncryptionKey,
		SignatureKey:   c.SignatureKey,
		Credential:     c.Credential,
		Capabilities:   c.Capabilities,
		LeafNodeSource: c.LeafNodeSource,
		Lifetime:       c.Lifetime,
		ParentHash:     c.ParentHash,
		Extensions:     c.Extensions,
		Signature:      sig,
	}
	return true
}

// TBS returns the LeafNodeTBS that n's signature covers. groupID and leafIndex are used only
// for the update and commit sources.
func (n *LeafNode) TBS(groupID []byte, leafIndex uint32) *LeafNodeTBS {
	t := &LeafNodeTBS{
		EncryptionKey:  n.EncryptionKey,
		SignatureKey:   n.SignatureKey,
		Credential:     n.Credential,
		Capabilities:   n.Capabilities,
		LeafNodeSource: n.LeafNodeSource,
		Lifetime:       n.Lifetime,
		ParentHash:     n.ParentHash,
		Extensions:     n.Extensions,
	}
	if n.LeafNodeSource == LeafNodeSourceUpdate || n.LeafNodeSource == LeafNodeSourceCommit {
		t.GroupID = groupID
		t.LeafIndex = leafIndex
	}
	return t
}

// LeafNodeTBS is the content a LeafNode's signature covers: the LeafNode without its
// signature, plus group_id and leaf_index for the update and commit sources.
// RFC 9420, Section 7.2.
type LeafNodeTBS struct {
	EncryptionKey  HPKEPublicKey
	SignatureKey   SignaturePublicKey
	Credential     Credential
	Capabilities   Capabilities
	LeafNodeSource LeafNodeSource
	Lifetime       Lifetime // key_package
	ParentHash     []byte   // commit
	Extensions     Extensions
	GroupID        []byte // update, commit
	LeafIndex      uint32 // update, commit
}

func (t *LeafNodeTBS) content() *leafNodeContent {
	return &leafNodeContent{
		EncryptionKey:  t.EncryptionKey,
		SignatureKey:   t.SignatureKey,
		Credential:     t.Credential,
		Capabilities:   t.Capabilities,
		LeafNodeSource: t.LeafNodeSource,
		Lifetime:       t.Lifetime,
		ParentHash:     t.ParentHash,
		Extensions:     t.Extensions,
	}
}

// Marshal writes t.
func (t *LeafNodeTBS) Marshal(b *cryptobyte.Builder) {
	t.content().marshal(b)
	switch t.LeafNodeSource {
	case LeafNodeSourceUpdate, LeafNodeSourceCommit:
		codec.AddOpaque(b, t.GroupID)
		b.AddUint32(t.LeafIndex)
	}
}

// Unmarshal reads t.
func (t *LeafNodeTBS) Unmarshal(s *cryptobyte.String) bool {
	var c leafNodeContent
	if !c.unmarshal(s) {
		return false
	}
	v := LeafNodeTBS{
		EncryptionKey:  c.EncryptionKey,
		SignatureKey:   c.SignatureKey,
		Credential:     c.Credential,
		Capabilities:   c.Capabilities,
		LeafNodeSource: c.LeafNodeSource,
		Lifetime:       c.Lifetime,
		ParentHash:     c.ParentHash,
		Extensions:     c.Extensions,
	}
	switch v.LeafNodeSource {
	case LeafNodeSourceUpdate, LeafNodeSourceCommit:
		if !codec.ReadOpaque(s, &v.GroupID) || !s.ReadUint32(&v.LeafIndex) {
			return false
		}
	}
	*t = v
	return true
}
