// Package wire holds every wire structure of RFC 9420 (MLS) with an exact codec.
//
// Each structure is a Go struct named as the RFC names it, with Marshal and Unmarshal
// methods in cryptobyte's style: Unmarshal consumes exactly one structure and returns false
// on any malformed input, Marshal records an error on the builder for a value that cannot be
// encoded (a missing select branch, an unknown discriminant, an over-long vector). Decoding
// followed by encoding gives back the input bytes exactly: every length is a minimal
// variable-length integer and no field is normalized.
//
// Enumerations whose value decides the layout of what follows (wire format, content type,
// sender type, node type, leaf node source, PSK type, proposal type, credential type) are
// checked while decoding and an unknown value is rejected, since nothing tells how long the
// unknown branch would be. Values that merely appear in lists (capabilities, extension types,
// cipher suites, protocol versions) are kept as read so that GREASE values (RFC 9420,
// Section 13.5) survive a round trip.
//
// None of these structures is recursive, so decoding depth is bounded by the code itself.
package wire

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// ProtocolVersion is an MLS protocol version. RFC 9420, Section 6.
type ProtocolVersion uint16

// Protocol versions.
const (
	ProtocolVersionReserved ProtocolVersion = 0
	ProtocolVersionMLS10    ProtocolVersion = 1
)

// CipherSuite is an MLS cipher suite code point. RFC 9420, Section 5.1 and 17.1.
type CipherSuite uint16

// Cipher suites registered by RFC 9420, Section 17.1.
const (
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519        CipherSuite = 0x0001
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256             CipherSuite = 0x0002
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 CipherSuite = 0x0003
	MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448            CipherSuite = 0x0004
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521             CipherSuite = 0x0005
	MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448     CipherSuite = 0x0006
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384             CipherSuite = 0x0007
)

// WireFormat says which message an MLSMessage carries. RFC 9420, Section 6 and 17.2.
type WireFormat uint16

// Wire formats.
const (
	WireFormatReserved       WireFormat = 0
	WireFormatPublicMessage  WireFormat = 1 // mls_public_message
	WireFormatPrivateMessage WireFormat = 2 // mls_private_message
	WireFormatWelcome        WireFormat = 3 // mls_welcome
	WireFormatGroupInfo      WireFormat = 4 // mls_group_info
	WireFormatKeyPackage     WireFormat = 5 // mls_key_package
)

// Known reports whether f is one of the wire formats of RFC 9420.
func (f WireFormat) Known() bool { return f >= WireFormatPublicMessage && f <= WireFormatKeyPackage }

func (f WireFormat) String() string {
	switch f {
	case WireFormatPublicMessage:
		return "mls_public_message"
	case WireFormatPrivateMessage:
		return "mls_private_message"
	case WireFormatWelcome:
		return "mls_welcome"
	case WireFormatGroupInfo:
		return "mls_group_info"
	case WireFormatKeyPackage:
		return "mls_key_package"
	}
	return fmt.Sprintf("wire_format(0x%04x)", uint16(f))
}

// ContentType is the kind of content a FramedContent carries. RFC 9420, Section 6.
type ContentType uint8

// Content types.
const (
	ContentTypeReserved    ContentType = 0
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

// Known reports whether t is one of the content types of RFC 9420.
func (t ContentType) Known() bool { return t >= ContentTypeApplication && t <= ContentTypeCommit }

func (t ContentType) String() string {
	switch t {
	case ContentTypeApplication:
		return "application"
	case ContentTypeProposal:
		return "proposal"
	case ContentTypeCommit:
		return "commit"
	}
	return fmt.Sprintf("content_type(%d)", uint8(t))
}

// SenderType is the kind of sender of a FramedContent. RFC 9420, Section 6.
type SenderType uint8

// Sender types.
const (
	SenderTypeReserved          SenderType = 0
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

// Known reports whether t is one of the sender types of RFC 9420.
func (t SenderType) Known() bool { return t >= SenderTypeMember && t <= SenderTypeNewMemberCommit }

func (t SenderType) String() string {
	switch t {
	case SenderTypeMember:
		return "member"
	case SenderTypeExternal:
		return "external"
	case SenderTypeNewMemberProposal:
		return "new_member_proposal"
	case SenderTypeNewMemberCommit:
		return "new_member_commit"
	}
	return fmt.Sprintf("sender_type(%d)", uint8(t))
}

// ProposalType is the kind of a Proposal. RFC 9420, Section 12.1 and 17.4.
type ProposalType uint16

// Proposal types.
const (
	ProposalTypeReserved               ProposalType = 0
	ProposalTypeAdd                    ProposalType = 1
	ProposalTypeUpdate                 ProposalType = 2
	ProposalTypeRemove                 ProposalType = 3
	ProposalTypePSK                    ProposalType = 4
	ProposalTypeReInit                 ProposalType = 5
	ProposalTypeExternalInit           ProposalType = 6
	ProposalTypeGroupContextExtensions ProposalType = 7
)

// Known reports whether t is one of the proposal types of RFC 9420.
func (t ProposalType) Known() bool {
	return t >= ProposalTypeAdd && t <= ProposalTypeGroupContextExtensions
}

func (t ProposalType) String() string {
	switch t {
	case ProposalTypeAdd:
		return "add"
	case ProposalTypeUpdate:
		return "update"
	case ProposalTypeRemove:
		return "remove"
	case ProposalTypePSK:
		return "psk"
	case ProposalTypeReInit:
		return "reinit"
	case ProposalTypeExternalInit:
		return "external_init"
	case ProposalTypeGroupContextExtensions:
		return "group_context_extensions"
	}
	return fmt.Sprintf("proposal_type(0x%04x)", uint16(t))
}

// ProposalOrRefType says whether a ProposalOrRef holds a proposal or a reference.
// RFC 9420, Section 12.4.
type ProposalOrRefType uint8

// ProposalOrRef types.
const (
	ProposalOrRefTypeReserved  ProposalOrRefType = 0
	ProposalOrRefTypeProposal  ProposalOrRefType = 1
	ProposalOrRefTypeReference ProposalOrRefType = 2
)

// CredentialType is the kind of a Credential. RFC 9420, Section 5.3 and 17.5.
type CredentialType uint16

// Credential types.
const (
	CredentialTypeReserved CredentialType = 0
	CredentialTypeBasic    CredentialType = 1
	CredentialTypeX509     CredentialType = 2
)

// Known reports whether t is one of the credential types of RFC 9420.
func (t CredentialType) Known() bool { return t == CredentialTypeBasic || t == CredentialTypeX509 }

// ExtensionType identifies an Extension. RFC 9420, Section 7.2 and 17.3.
type ExtensionType uint16

// Extension types.
const (
	ExtensionTypeReserved             ExtensionType = 0
	ExtensionTypeApplicationID        ExtensionType = 1
	ExtensionTypeRatchetTree          ExtensionType = 2
	ExtensionTypeRequiredCapabilities ExtensionType = 3
	ExtensionTypeExternalPub          ExtensionType = 4
	ExtensionTypeExternalSenders      ExtensionType = 5
)

// LeafNodeSource says why a LeafNode was created. RFC 9420, Section 7.2.
type LeafNodeSource uint8

// Leaf node sources.
const (
	LeafNodeSourceReserved   LeafNodeSource = 0
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// Known reports whether s is one of the leaf node sources of RFC 9420.
func (s LeafNodeSource) Known() bool {
	return s >= LeafNodeSourceKeyPackage && s <= LeafNodeSourceCommit
}

// NodeType says whether a ratchet tree node is a leaf or a parent. RFC 9420, Section 7.8.
type NodeType uint8

// Node types.
const (
	NodeTypeReserved NodeType = 0
	NodeTypeLeaf     NodeType = 1
	NodeTypeParent   NodeType = 2
)

// PSKType is the kind of a pre-shared key. RFC 9420, Section 8.4.
type PSKType uint8

// PSK types.
const (
	PSKTypeReserved   PSKType = 0
	PSKTypeExternal   PSKType = 1
	PSKTypeResumption PSKType = 2
)

// ResumptionPSKUsage says what a resumption PSK is used for. RFC 9420, Section 8.4.
type ResumptionPSKUsage uint8

// Resumption PSK usages.
const (
	ResumptionPSKUsageReserved    ResumptionPSKUsage = 0
	ResumptionPSKUsageApplication ResumptionPSKUsage = 1
	ResumptionPSKUsageReInit      ResumptionPSKUsage = 2
	ResumptionPSKUsageBranch      ResumptionPSKUsage = 3
)

// IsGREASE reports whether v is one of the GREASE values reserved in every MLS registry
// with two-octet code points (RFC 9420, Section 13.5): 0x0A0A, 0x1A1A, ..., 0xEAEA.
func IsGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>12 == (v>>4)&0x0f && v>>12 <= 0x0e
}

// HPKEPublicKey is an encoded HPKE public key (`opaque HPKEPublicKey<V>`). RFC 9420, Section 5.1.1.
type HPKEPublicKey []byte

// SignaturePublicKey is an encoded signature public key (`opaque SignaturePublicKey<V>`).
// RFC 9420, Section 5.1.1.
type SignaturePublicKey []byte

// MAC is a message authentication code (`opaque MAC<V>`). RFC 9420, Section 6.1.
type MAC []byte

// HashReference is a hash-based identifier (`opaque HashReference<V>`). RFC 9420, Section 5.2.
type HashReference []byte

// KeyPackageRef identifies a KeyPackage by hash. RFC 9420, Section 5.2.
type KeyPackageRef = HashReference

// ProposalRef identifies a proposal by the hash of its AuthenticatedContent. RFC 9420, Section 5.2.
type ProposalRef = HashReference

// Errors for values that cannot be encoded.
var (
	errMissingBranch = errors.New("mls: select branch for the discriminant is nil")
	errNegativePad   = errors.New("mls: negative padding length")
)

func errUnknown(what string, v any) error {
	return fmt.Errorf("mls: cannot encode unknown %s %v", what, v)
}

// readUint16s reads a `T v<V>` whose elements are two-octet code points, as read.
func readUint16s[T ~uint16](s *cryptobyte.String, out *[]T) bool {
	list := []T{}
	ok := codec.ReadList(s, func(s *cryptobyte.String) bool {
		var v uint16
		if !s.ReadUint16(&v) {
			return false
		}
		list = append(list, T(v))
		return true
	})
	if ok {
		*out = list
	}
	return ok
}

// addUint16s writes a `T v<V>` of two-octet code points.
func addUint16s[T ~uint16](b *cryptobyte.Builder, list []T) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, v := range list {
			b.AddUint16(uint16(v))
		}
	})
}

// readUint32s reads `uint32 v<V>`.
func readUint32s(s *cryptobyte.String, out *[]uint32) bool {
	list := []uint32{}
	ok := codec.ReadList(s, func(s *cryptobyte.String) bool {
		var v uint32
		if !s.ReadUint32(&v) {
			return false
		}
		list = append(list, v)
		return true
	})
	if ok {
		*out = list
	}
	return ok
}

// addUint32s writes `uint32 v<V>`.
func addUint32s(b *cryptobyte.Builder, list []uint32) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, v := range list {
			b.AddUint32(v)
		}
	})
}

// readBytes reads `opaque v<V>` into a named byte-slice type.
func readBytes[T ~[]byte](s *cryptobyte.String, out *T) bool {
	var v []byte
	if !codec.ReadOpaque(s, &v) {
		return false
	}
	*out = v
	return true
}

// readFixed reads `opaque v[n]` into a fresh copy.
func readFixed(s *cryptobyte.String, n int, out *[]byte) bool {
	var v []byte
	if !s.ReadBytes(&v, n) {
		return false
	}
	*out = append(make([]byte, 0, n), v...)
	return true
}
