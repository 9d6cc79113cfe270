package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

func init() {
	register("messages", runMessages)
	register("deserialization", runDeserialization)
}

// messagesVector is one entry of messages.json (test-vectors.md, "Messages").
type messagesVector struct {
	MLSWelcome   hexBytes `json:"mls_welcome"`
	MLSGroupInfo hexBytes `json:"mls_group_info"`
	MLSKeyPkg    hexBytes `json:"mls_key_package"`

	RatchetTree  hexBytes `json:"ratchet_tree"`
	GroupSecrets hexBytes `json:"group_secrets"`

	AddProposal                    hexBytes `json:"add_proposal"`
	UpdateProposal                 hexBytes `json:"update_proposal"`
	RemoveProposal                 hexBytes `json:"remove_proposal"`
	PreSharedKeyProposal           hexBytes `json:"pre_shared_key_proposal"`
	ReInitProposal                 hexBytes `json:"re_init_proposal"`
	ExternalInitProposal           hexBytes `json:"external_init_proposal"`
	GroupContextExtensionsProposal hexBytes `json:"group_context_extensions_proposal"`

	Commit hexBytes `json:"commit"`

	PublicMessageApplication hexBytes `json:"public_message_application"`
	PublicMessageProposal    hexBytes `json:"public_message_proposal"`
	PublicMessageCommit      hexBytes `json:"public_message_commit"`
	PrivateMessage           hexBytes `json:"private_message"`
}

// roundTrip decodes data as v (all of it) and checks that v encodes back to data.
func roundTrip(field string, data hexBytes, v interface {
	codec.Marshaler
	codec.Unmarshaler
}) error {
	if data == nil {
		return fmt.Errorf("%s: missing from the vector", field)
	}
	if err := codec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: decoding: %w", field, err)
	}
	got, err := codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: re-encoding: %w", field, err)
	}
	if !bytes.Equal(got, data) {
		return mismatch(field+": re-encoding", got, data)
	}
	return nil
}

// mlsMessage round-trips an MLSMessage and checks its wire format.
func mlsMessage(field string, data hexBytes, wf wire.WireFormat) (*wire.MLSMessage, error) {
	var m wire.MLSMessage
	if err := roundTrip(field, data, &m); err != nil {
		return nil, err
	}
	if m.WireFormat != wf {
		return nil, fmt.Errorf("%s: wire format %v, want %v", field, m.WireFormat, wf)
	}
	return &m, nil
}

func runMessages(raw json.RawMessage) error {
	var v messagesVector
	if err := decode(raw, &v); err != nil {
		return err
	}

	for _, c := range []struct {
		field string
		data  hexBytes
		wf    wire.WireFormat
	}{
		{"mls_welcome", v.MLSWelcome, wire.WireFormatWelcome},
		{"mls_group_info", v.MLSGroupInfo, wire.WireFormatGroupInfo},
		{"mls_key_package", v.MLSKeyPkg, wire.WireFormatKeyPackage},
		{"private_message", v.PrivateMessage, wire.WireFormatPrivateMessage},
	} {
		if _, err := mlsMessage(c.field, c.data, c.wf); err != nil {
			return err
		}
	}

	for _, c := range []struct {
		field string
		data  hexBytes
		ct    wire.ContentType
	}{
		{"public_message_application", v.PublicMessageApplication, wire.ContentTypeApplication},
		{"public_message_proposal", v.PublicMessageProposal, wire.ContentTypeProposal},
		{"public_message_commit", v.PublicMessageCommit, wire.ContentTypeCommit},
	} {
		m, err := mlsMessage(c.field, c.data, wire.WireFormatPublicMessage)
		if err != nil {
			return err
		}
		if got := m.PublicMessage.Content.ContentType; got != c.ct {
			return fmt.Errorf("%s: content type %v, want %v", c.field, got, c.ct)
		}
	}

	for _, c := range []struct {
		field string
		data  hexBytes
		v     interface {
			codec.Marshaler
			codec.Unmarshaler
		}
	}{
		{"ratchet_tree", v.RatchetTree, new(wire.RatchetTree)},
		{"group_secrets", v.GroupSecrets, new(wire.GroupSecrets)},
		{"add_proposal", v.AddProposal, new(wire.Add)},
		{"update_proposal", v.UpdateProposal, new(wire.Update)},
		{"remove_proposal", v.RemoveProposal, new(wire.Remove)},
		{"pre_shared_key_proposal", v.PreSharedKeyProposal, new(wire.PreSharedKey)},
		{"re_init_proposal", v.ReInitProposal, new(wire.ReInit)},
		{"external_init_proposal", v.ExternalInitProposal, new(wire.ExternalInit)},
		{"group_context_extensions_proposal", v.GroupContextExtensionsProposal, new(wire.GroupContextExtensions)},
		{"commit", v.Commit, new(wire.Commit)},
	} {
		if err := roundTrip(c.field, c.data, c.v); err != nil {
			return err
		}
	}
	return nil
}

// deserializationVector is one entry of deserialization.json (test-vectors.md,
// "Vector Deserialization").
type deserializationVector struct {
	VLBytesHeader hexBytes `json:"vlbytes_header"`
	Length        uint64   `json:"length"`
}

func runDeserialization(raw json.RawMessage) error {
	var v deserializationVector
	if err := decode(raw, &v); err != nil {
		return err
	}
	if v.VLBytesHeader == nil {
		return fmt.Errorf("vlbytes_header: missing from the vector")
	}
	s := cryptobyte.String(v.VLBytesHeader)
	var n uint32
	if !codec.ReadVarint(&s, &n) {
		return fmt.Errorf("vlbytes_header: %x does not decode as a variable-length integer", []byte(v.VLBytesHeader))
	}
	if !s.Empty() {
		return fmt.Errorf("vlbytes_header: %d bytes left after the length", len(s))
	}
	if uint64(n) != v.Length {
		return fmt.Errorf("vlbytes_header: decoded length %d, want %d", n, v.Length)
	}
	var b cryptobyte.Builder
	codec.AddVarint(&b, v.Length)
	enc, err := b.Bytes()
	if err != nil {
		return fmt.Errorf("length: encoding %d: %w", v.Length, err)
	}
	if !bytes.Equal(enc, v.VLBytesHeader) {
		return mismatch("length: encoding", enc, v.VLBytesHeader)
	}
	return nil
}
