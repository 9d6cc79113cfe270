package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// Add asks to add the client of a KeyPackage to the group. RFC 9420, Section 12.1.1.
type Add struct {
	KeyPackage KeyPackage
}

// Marshal writes a.
func (a *Add) Marshal(b *cryptobyte.Builder) { a.KeyPackage.Marshal(b) }

// Unmarshal reads a.
func (a *Add) Unmarshal(s *cryptobyte.String) bool { return a.KeyPackage.Unmarshal(s) }

// Update replaces the sender's leaf node. RFC 9420, Section 12.1.2.
type Update struct {
	LeafNode LeafNode
}

// Marshal writes u.
func (u *Update) Marshal(b *cryptobyte.Builder) { u.LeafNode.Marshal(b) }

// Unmarshal reads u.
func (u *Update) Unmarshal(s *cryptobyte.String) bool { return u.LeafNode.Unmarshal(s) }

// Remove asks to remove the member at leaf index Removed. RFC 9420, Section 12.1.3.
type Remove struct {
	Removed uint32
}

// Marshal writes r.
func (r *Remove) Marshal(b *cryptobyte.Builder) { b.AddUint32(r.Removed) }

// Unmarshal reads r.
func (r *Remove) Unmarshal(s *cryptobyte.String) bool { return s.ReadUint32(&r.Removed) }

// PreSharedKeyID names a pre-shared key: PSKID for external PSKs; Usage, PSKGroupID and
// PSKEpoch for resumption PSKs. RFC 9420, Section 8.4.
type PreSharedKeyID struct {
	PSKType    PSKType
	PSKID      []byte             // external
	Usage      ResumptionPSKUsage // resumption
	PSKGroupID []byte             // resumption
	PSKEpoch   uint64             // resumption
	PSKNonce   []byte
}

// Marshal writes p. An unknown PSK type sets an error on b.
func (p *PreSharedKeyID) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.PSKType))
	switch p.PSKType {
	case PSKTypeExternal:
		codec.AddOpaque(b, p.PSKID)
	case PSKTypeResumption:
		b.AddUint8(uint8(p.Usage))
		codec.AddOpaque(b, p.PSKGroupID)
		b.AddUint64(p.PSKEpoch)
	default:
		b.SetError(errUnknown("psk type", p.PSKType))
		return
	}
	codec.AddOpaque(b, p.PSKNonce)
}

// Unmarshal reads p. The resumption usage is kept as read.
func (p *PreSharedKeyID) Unmarshal(s *cryptobyte.String) bool {
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	v := PreSharedKeyID{PSKType: PSKType(t)}
	switch v.PSKType {
	case PSKTypeExternal:
		if !codec.ReadOpaque(s, &v.PSKID) {
			return false
		}
	case PSKTypeResumption:
		var usage uint8
		if !s.ReadUint8(&usage) || !codec.ReadOpaque(s, &v.PSKGroupID) ||
			!s.ReadUint64(&v.PSKEpoch) {
			return false
		}
		v.Usage = ResumptionPSKUsage(usage)
	default:
		return false
	}
	if !codec.ReadOpaque(s, &v.PSKNonce) {
		return false
	}
	*p = v
	return true
}

// PreSharedKey asks to inject a PSK into the key schedule. RFC 9420, Section 12.1.4.
type PreSharedKey struct {
	PSK PreSharedKeyID
}

// Marshal writes p.
func (p *PreSharedKey) Marshal(b *cryptobyte.Builder) { p.PSK.Marshal(b) }

// Unmarshal reads p.
func (p *PreSharedKey) Unmarshal(s *cryptobyte.String) bool { return p.PSK.Unmarshal(s) }

// ReInit asks to reinitialize the group with new parameters. RFC 9420, Section 12.1.5.
type ReInit struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite CipherSuite
	Extensions  Extensions
}

// Marshal writes r.
func (r *ReInit) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, r.GroupID)
	b.AddUint16(uint16(r.Version))
	b.AddUint16(uint16(r.CipherSuite))
	r.Extensions.Marshal(b)
}

// Unmarshal reads r.
func (r *ReInit) Unmarshal(s *cryptobyte.String) bool {
	var v ReInit
	var version, suite uint16
	if !codec.ReadOpaque(s, &v.GroupID) || !s.ReadUint16(&version) || !s.ReadUint16(&suite) ||
		!v.Extensions.Unmarshal(s) {
		return false
	}
	v.Version = ProtocolVersion(version)
	v.CipherSuite = CipherSuite(suite)
	*r = v
	return true
}

// ExternalInit carries the KEM output of an external commit. RFC 9420, Section 12.1.6.
type ExternalInit struct {
	KEMOutput []byte
}

// Marshal writes e.
func (e *ExternalInit) Marshal(b *cryptobyte.Builder) { codec.AddOpaque(b, e.KEMOutput) }

// Unmarshal reads e.
func (e *ExternalInit) Unmarshal(s *cryptobyte.String) bool {
	var v ExternalInit
	if !codec.ReadOpaque(s, &v.KEMOutput) {
		return false
	}
	*e = v
	return true
}

// GroupContextExtensions replaces the group context's extensions. RFC 9420, Section 12.1.7.
type GroupContextExtensions struct {
	Extensions Extensions
}

// Marshal writes g.
func (g *GroupContextExtensions) Marshal(b *cryptobyte.Builder) { g.Extensions.Marshal(b) }

// Unmarshal reads g.
func (g *GroupContextExtensions) Unmarshal(s *cryptobyte.String) bool {
	return g.Extensions.Unmarshal(s)
}

// Proposal is a proposed change to the group. Exactly the field matching ProposalType is
// set. RFC 9420, Section 12.1.
type Proposal struct {
	ProposalType           ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
}

// body returns the select branch for p.ProposalType (nil if unset or unknown) and whether
// the type is known.
func (p *Proposal) body() (codec.Marshaler, bool) {
	var m codec.Marshaler
	switch p.ProposalType {
	case ProposalTypeAdd:
		if p.Add != nil {
			m = p.Add
		}
	case ProposalTypeUpdate:
		if p.Update != nil {
			m = p.Update
		}
	case ProposalTypeRemove:
		if p.Remove != nil {
			m = p.Remove
		}
	case ProposalTypePSK:
		if p.PreSharedKey != nil {
			m = p.PreSharedKey
		}
	case ProposalTypeReInit:
		if p.ReInit != nil {
			m = p.ReInit
		}
	case ProposalTypeExternalInit:
		if p.ExternalInit != nil {
			m = p.ExternalInit
		}
	case ProposalTypeGroupContextExtensions:
		if p.GroupContextExtensions != nil {
			m = p.GroupContextExtensions
		}
	default:
		return nil, false
	}
	return m, true
}

// Marshal writes p. A missing branch or an unknown proposal type sets an error on b.
func (p *Proposal) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(p.ProposalType))
	m, known := p.body()
	switch {
	case !known:
		b.SetError(errUnknown("proposal type", p.ProposalType))
	case m == nil:
		b.SetError(errMissingBranch)
	default:
		m.Marshal(b)
	}
}

// Unmarshal reads p. An unknown proposal type is rejected: its body has no length prefix.
func (p *Proposal) Unmarshal(s *cryptobyte.String) bool {
	var t uint16
	if !s.ReadUint16(&t) {
		return false
	}
	v := Proposal{ProposalType: ProposalType(t)}
	var u codec.Unmarshaler
	switch v.ProposalType {
	case ProposalTypeAdd:
		v.Add = new(Add)
		u = v.Add
	case ProposalTypeUpdate:
		v.Update = new(Update)
		u = v.Update
	case ProposalTypeRemove:
		v.Remove = new(Remove)
		u = v.Remove
	case ProposalTypePSK:
		v.PreSharedKey = new(PreSharedKey)
		u = v.PreSharedKey
	case ProposalTypeReInit:
		v.ReInit = new(ReInit)
		u = v.ReInit
	case ProposalTypeExternalInit:
		v.ExternalInit = new(ExternalInit)
		u = v.ExternalInit
	case ProposalTypeGroupContextExtensions:
		v.GroupContextExtensions = new(GroupContextExtensions)
		u = v.GroupContextExtensions
	default:
		return false
	}
	if !u.Unmarshal(s) {
		return false
	}
	*p = v
	return true
}

// ProposalOrRef is a proposal in a Commit, by value or by reference. Proposal is set for
// type proposal, Reference for type reference. RFC 9420, Section 12.4.
type ProposalOrRef struct {
	Type      ProposalOrRefType
	Proposal  *Proposal   // proposal
	Reference ProposalRef // reference
}

// Marshal writes r. A missing proposal or an unknown type sets an error on b.
func (r *ProposalOrRef) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(r.Type))
	switch r.Type {
	case ProposalOrRefTypeProposal:
		if r.Proposal == nil {
			b.SetError(errMissingBranch)
			return
		}
		r.Proposal.Marshal(b)
	case ProposalOrRefTypeReference:
		codec.AddOpaque(b, r.Reference)
	default:
		b.SetError(errUnknown("proposal-or-ref type", r.Type))
	}
}

// Unmarshal reads r.
func (r *ProposalOrRef) Unmarshal(s *cryptobyte.String) bool {
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	v := ProposalOrRef{Type: ProposalOrRefType(t)}
	switch v.Type {
	case ProposalOrRefTypeProposal:
		v.Proposal = new(Proposal)
		if !v.Proposal.Unmarshal(s) {
			return false
		}
	case ProposalOrRefTypeReference:
		if !readBytes(s, &v.Reference) {
			return false
		}
	default:
		return false
	}
	*r = v
	return true
}
