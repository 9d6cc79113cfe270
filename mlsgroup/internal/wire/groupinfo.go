package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// GroupContext summarizes the state of the group in an epoch. Version is always mls10 (the
// zero value encodes as mls10; decoding rejects any other version). RFC 9420, Section 8.1.
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             CipherSuite
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              Extensions
}

// Marshal writes g.
func (g *GroupContext) Marshal(b *cryptobyte.Builder) {
	addVersionMLS10(b, g.Version)
	b.AddUint16(uint16(g.CipherSuite))
	codec.AddOpaque(b, g.GroupID)
	b.AddUint64(g.Epoch)
	codec.AddOpaque(b, g.TreeHash)
	codec.AddOpaque(b, g.ConfirmedTranscriptHash)
	g.Extensions.Marshal(b)
}

// Unmarshal reads g.
func (g *GroupContext) Unmarshal(s *cryptobyte.String) bool {
	var v GroupContext
	var suite uint16
	if !readVersionMLS10(s, &v.Version) || !s.ReadUint16(&suite) ||
		!codec.ReadOpaque(s, &v.GroupID) || !s.ReadUint64(&v.Epoch) ||
		!codec.ReadOpaque(s, &v.TreeHash) || !codec.ReadOpaque(s, &v.ConfirmedTranscriptHash) ||
		!v.Extensions.Unmarshal(s) {
		return false
	}
	v.CipherSuite = CipherSuite(suite)
	*g = v
	return true
}

// DecodeGroupContext decodes a GroupContext.
func DecodeGroupContext(data []byte) (*GroupContext, error) {
	var g GroupContext
	if err := codec.Unmarshal(data, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// GroupInfo describes the group to joiners. RFC 9420, Section 12.4.3.
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      Extensions
	ConfirmationTag MAC
	Signer          uint32
	// Signature is SignWithLabel(., "GroupInfoTBS", GroupInfoTBS).
	Signature []byte
}

// Marshal writes g.
func (g *GroupInfo) Marshal(b *cryptobyte.Builder) {
	g.TBS().Marshal(b)
	codec.AddOpaque(b, g.Signature)
}

// Unmarshal reads g.
func (g *GroupInfo) Unmarshal(s *cryptobyte.String) bool {
	var t GroupInfoTBS
	var sig []byte
	if !t.Unmarshal(s) || !codec.ReadOpaque(s, &sig) {
		return false
	}
	*g = GroupInfo{
		GroupContext:    t.GroupContext,
		Extensions:      t.Extensions,
		ConfirmationTag: t.ConfirmationTag,
		Signer:          t.Signer,
		Signature:       sig,
	}
	return true
}

// TBS returns the GroupInfoTBS that g's signature covers.
func (g *GroupInfo) TBS() *GroupInfoTBS {
	return &GroupInfoTBS{
		GroupContext:    g.GroupContext,
		Extensions:      g.Extensions,
		ConfirmationTag: g.ConfirmationTag,
		Signer:          g.Signer,
	}
}

// GroupInfoTBS is the content a GroupInfo's signature covers. RFC 9420, Section 12.4.3.
type GroupInfoTBS struct {
	GroupContext    GroupContext
	Extensions      Extensions
	ConfirmationTag MAC
	Signer          uint32
}

// Marshal writes t.
func (t *GroupInfoTBS) Marshal(b *cryptobyte.Builder) {
	t.GroupContext.Marshal(b)
	t.Extensions.Marshal(b)
	codec.AddOpaque(b, t.ConfirmationTag)
	b.AddUint32(t.Signer)
}

// Unmarshal reads t.
func (t *GroupInfoTBS) Unmarshal(s *cryptobyte.String) bool {
	var v GroupInfoTBS
	if !v.GroupContext.Unmarshal(s) || !v.Extensions.Unmarshal(s) ||
		!readBytes(s, &v.ConfirmationTag) || !s.ReadUint32(&v.Signer) {
		return false
	}
	*t = v
	return true
}

// DecodeGroupInfo decodes a bare GroupInfo (as in a Welcome's encrypted_group_info).
func DecodeGroupInfo(data []byte) (*GroupInfo, error) {
	var g GroupInfo
	if err := codec.Unmarshal(data, &g); err != nil {
		return nil, err
	}
	return &g, nil
}
