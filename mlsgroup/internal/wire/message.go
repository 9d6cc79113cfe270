package wire

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// MLSMessage is the envelope of every message sent over the wire. Exactly the field
// matching WireFormat is set. Version is always mls10 (the zero value encodes as mls10;
// decoding rejects any other version). RFC 9420, Section 6.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage  // mls_public_message
	PrivateMessage *PrivateMessage // mls_private_message
	Welcome        *Welcome        // mls_welcome
	GroupInfo      *GroupInfo      // mls_group_info
	KeyPackage     *KeyPackage     // mls_key_package
}

// body returns the select branch for m.WireFormat, nil if it is unset, and whether the wire
// format is known.
func (m *MLSMessage) body() (codec.Marshaler, bool) {
	var v codec.Marshaler
	switch m.WireFormat {
	case WireFormatPublicMessage:
		if m.PublicMessage != nil {
			v = m.PublicMessage
		}
	case WireFormatPrivateMessage:
		if m.PrivateMessage != nil {
			v = m.PrivateMessage
		}
	case WireFormatWelcome:
		if m.Welcome != nil {
			v = m.Welcome
		}
	case WireFormatGroupInfo:
		if m.GroupInfo != nil {
			v = m.GroupInfo
		}
	case WireFormatKeyPackage:
		if m.KeyPackage != nil {
			v = m.KeyPackage
		}
	default:
		return nil, false
	}
	return v, true
}

// Marshal writes m. A missing branch or an unknown wire format sets an error on b.
func (m *MLSMessage) Marshal(b *cryptobyte.Builder) {
	addVersionMLS10(b, m.Version)
	b.AddUint16(uint16(m.WireFormat))
	v, known := m.body()
	switch {
	case !known:
		b.SetError(errUnknown("wire format", m.WireFormat))
	case v == nil:
		b.SetError(errMissingBranch)
	default:
		v.Marshal(b)
	}
}

// Unmarshal reads m. An unknown wire format is rejected.
func (m *MLSMessage) Unmarshal(s *cryptobyte.String) bool {
	var v MLSMessage
	var wf uint16
	if !readVersionMLS10(s, &v.Version) || !s.ReadUint16(&wf) {
		return false
	}
	v.WireFormat = WireFormat(wf)
	var u codec.Unmarshaler
	switch v.WireFormat {
	case WireFormatPublicMessage:
		v.PublicMessage = new(PublicMessage)
		u = v.PublicMessage
	case WireFormatPrivateMessage:
		v.PrivateMessage = new(PrivateMessage)
		u = v.PrivateMessage
	case WireFormatWelcome:
		v.Welcome = new(Welcome)
		u = v.Welcome
	case WireFormatGroupInfo:
		v.GroupInfo = new(GroupInfo)
		u = v.GroupInfo
	case WireFormatKeyPackage:
		v.KeyPackage = new(KeyPackage)
		u = v.KeyPackage
	default:
		return false
	}
	if !u.Unmarshal(s) {
		return false
	}
	*m = v
	return true
}

// NewPublicMessageMLS wraps p in an MLSMessage.
func NewPublicMessageMLS(p *PublicMessage) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: p}
}

// NewPrivateMessageMLS wraps p in an MLSMessage.
func NewPrivateMessageMLS(p *PrivateMessage) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: p}
}

// NewWelcomeMLS wraps w in an MLSMessage.
func NewWelcomeMLS(w *Welcome) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatWelcome, Welcome: w}
}

// NewGroupInfoMLS wraps g in an MLSMessage.
func NewGroupInfoMLS(g *GroupInfo) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatGroupInfo, GroupInfo: g}
}

// NewKeyPackageMLS wraps k in an MLSMessage.
func NewKeyPackageMLS(k *KeyPackage) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatKeyPackage, KeyPackage: k}
}

// DecodeMLSMessage decodes an MLSMessage, which must use all of data.
func DecodeMLSMessage(data []byte) (*MLSMessage, error) {
	var m MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// DecodeMLSMessageAs decodes an MLSMessage and checks that its wire format is want.
func DecodeMLSMessageAs(data []byte, want WireFormat) (*MLSMessage, error) {
	m, err := DecodeMLSMessage(data)
	if err != nil {
		return nil, err
	}
	if m.WireFormat != want {
		return nil, fmt.Errorf("mls: message has wire format %v, want %v", m.WireFormat, want)
	}
	return m, nil
}
