package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// TestTruncationsFail checks that every strict prefix of a few vector messages, and the
// message with one byte appended, fails to decode.
func TestTruncationsFail(t *testing.T) {
	entries := messagesEntries(t)
	for _, i := range []int{0, 1, 150, 299} {
		for field, data := range entries[i] {
			newV := messagesTypes[field]
			for n := 0; n < len(data); n++ {
				if err := codec.Unmarshal(data[:n], newV()); err == nil {
					t.Fatalf("entry %d %s: prefix of %d/%d bytes decoded", i, field, n, len(data))
				} else if !errors.Is(err, codec.ErrDecode) {
					t.Fatalf("entry %d %s: error %v does not wrap ErrDecode", i, field, err)
				}
			}
			long := append(bytes.Clone(data), 0)
			if err := codec.Unmarshal(long, newV()); err == nil {
				t.Fatalf("entry %d %s: trailing byte accepted", i, field)
			}
		}
	}
}

// nonMinimal re-encodes the one-byte varint at data[off] in two bytes.
func nonMinimal(t *testing.T, data []byte, off int) []byte {
	t.Helper()
	if data[off] >= 0x40 {
		t.Fatalf("byte %d (%#x) is not a one-byte varint", off, data[off])
	}
	out := append([]byte{}, data[:off]...)
	out = append(out, 0x40, data[off])
	return append(out, data[off+1:]...)
}

// TestNonMinimalVarintFails re-encodes a length prefix non-minimally in messages that
// otherwise decode.
func TestNonMinimalVarintFails(t *testing.T) {
	e := messagesEntries(t)[0]
	for _, c := range []struct {
		field string
		off   int // offset of a one-byte length prefix
	}{
		{"external_init_proposal", 0},     // kem_output
		{"re_init_proposal", 0},           // group_id
		{"public_message_application", 4}, // group_id of the FramedContent
		{"private_message", 4},            // group_id
		{"mls_welcome", 6},                // secrets<V> is long: use its inner new_member
	} {
		data := e[c.field]
		if c.field == "mls_welcome" {
			// version(2) wire_format(2) cipher_suite(2) secrets-length(?) new_member-length.
			off := 6
			switch {
			case data[off] < 0x40:
				off++
			case data[off] < 0x80:
				off += 2
			default:
				off += 4
			}
			c.off = off
		}
		if err := codec.Unmarshal(data, messagesTypes[c.field]()); err != nil {
			t.Fatalf("%s: original does not decode: %v", c.field, err)
		}
		bad := nonMinimal(t, data, c.off)
		if err := codec.Unmarshal(bad, messagesTypes[c.field]()); err == nil {
			t.Errorf("%s: non-minimal length at byte %d accepted", c.field, c.off)
		}
	}
	// A minimal two-byte length, made four bytes long.
	gce := []byte{0x00}
	if err := codec.Unmarshal(gce, new(GroupContextExtensions)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{{0x40, 0x00}, {0x80, 0x00, 0x00, 0x00}, {0xc0, 0, 0, 0, 0, 0, 0, 0}} {
		if err := codec.Unmarshal(bad, new(GroupContextExtensions)); err == nil {
			t.Errorf("empty extension list encoded as %x accepted", bad)
		}
	}
}

// TestHostileLengths checks that huge length prefixes fail without allocating.
func TestHostileLengths(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
		v    func() wireValue
	}{
		{"ratchet tree", []byte{0xbf, 0xff, 0xff, 0xff, 1, 1}, func() wireValue { return new(RatchetTree) }},
		{"commit", []byte{0xbf, 0xff, 0xff, 0xff, 1}, func() wireValue { return new(Commit) }},
		{"welcome", []byte{0, 1, 0xbf, 0xff, 0xff, 0xff}, func() wireValue { return new(Welcome) }},
		{"external init", []byte{0xbf, 0xff, 0xff, 0xff, 0}, func() wireValue { return new(ExternalInit) }},
	} {
		allocs := testing.AllocsPerRun(20, func() {
			if codec.Unmarshal(c.data, c.v()) == nil {
				t.Fatalf("%s: accepted", c.name)
			}
		})
		if allocs > 8 {
			t.Errorf("%s: %v allocations for a hostile length", c.name, allocs)
		}
	}
}

// TestUnknownDiscriminantsRejected checks that every enum whose value decides the layout
// is checked while decoding.
func TestUnknownDiscriminantsRejected(t *testing.T) {
	basic := []byte{0x00, 0x01, 0x01, 'a'}
	for _, c := range []struct {
		name string
		good []byte // must decode
		bad  []byte // same with the discriminant changed
		v    func() wireValue
	}{
		{"credential", basic, []byte{0x0a, 0x0a, 0x01, 'a'}, func() wireValue { return new(Credential) }},
		{"credential 0", basic, []byte{0x00, 0x00, 0x01, 'a'}, func() wireValue { return new(Credential) }},
		{"sender", []byte{1, 0, 0, 0, 3}, []byte{5, 0, 0, 0, 3}, func() wireValue { return new(Sender) }},
		{"sender 0", []byte{3}, []byte{0}, func() wireValue { return new(Sender) }},
		{"proposal", []byte{0, 3, 0, 0, 0, 1}, []byte{0x0a, 0x0a, 0, 0, 0, 1}, func() wireValue { return new(Proposal) }},
		{"proposal 0", []byte{0, 3, 0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 1}, func() wireValue { return new(Proposal) }},
		{"proposal or ref", []byte{2, 1, 0xaa}, []byte{3, 1, 0xaa}, func() wireValue { return new(ProposalOrRef) }},
		{"psk", []byte{1, 1, 'x', 1, 'n'}, []byte{3, 1, 'x', 1, 'n'}, func() wireValue { return new(PreSharedKeyID) }},
		{"node", []byte{2, 1, 'k', 0, 0}, []byte{3, 1, 'k', 0, 0}, func() wireValue { return new(Node) }},
		{"optional", []byte{1, 0}, []byte{1, 2}, func() wireValue { return new(RatchetTree) }},
		{"private message content type", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0},
			[]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0}, func() wireValue { return new(PrivateMessage) }},
		{"mls message wire format", []byte{0, 1, 0, 3, 0, 1, 0, 0}, []byte{0, 1, 0, 6, 0, 1, 0, 0},
			func() wireValue { return new(MLSMessage) }},
		{"mls message version", []byte{0, 1, 0, 3, 0, 1, 0, 0}, []byte{0, 2, 0, 3, 0, 1, 0, 0},
			func() wireValue { return new(MLSMessage) }},
	} {
		if err := codec.Unmarshal(c.good, c.v()); err != nil {
			t.Errorf("%s: good encoding %x rejected: %v", c.name, c.good, err)
		}
		if err := codec.Unmarshal(c.bad, c.v()); err == nil {
			t.Errorf("%s: bad encoding %x accepted", c.name, c.bad)
		}
	}

	// Leaf node source: take a vector leaf node and change its source.
	e := messagesEntries(t)[0]
	var u Update
	if err := codec.Unmarshal(e["update_proposal"], &u); err != nil {
		t.Fatal(err)
	}
	u.LeafNode.LeafNodeSource = 4
	if _, err := codec.Marshal(&u); err == nil {
		t.Error("leaf node source 4 encoded")
	}
	// Content type of a public message.
	data := bytes.Clone(e["public_message_application"])
	var m MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	pm := m.PublicMessage
	// Offset of content_type: version, wire_format, group_id, epoch, sender, authenticated_data.
	off := 4 + opaqueLen(pm.Content.GroupID) + 8 + 5 + opaqueLen(pm.Content.AuthenticatedData)
	if data[off] != byte(ContentTypeApplication) {
		t.Fatalf("content type not at offset %d", off)
	}
	data[off] = 0
	if codec.Unmarshal(data, new(MLSMessage)) == nil {
		t.Error("content type 0 accepted")
	}
}

// TestMarshalRejectsWhatUnmarshalRejects checks that values the decoder would refuse cannot
// be encoded either, so Marshal never emits bytes this package cannot read back.
func TestMarshalRejectsWhatUnmarshalRejects(t *testing.T) {
	for name, v := range map[string]codec.Marshaler{
		"proposal without body":     &Proposal{ProposalType: ProposalTypeAdd},
		"grease proposal type":      &Proposal{ProposalType: 0x0a0a},
		"unknown credential":        &Credential{CredentialType: 0x0a0a},
		"unknown sender":            &Sender{SenderType: 9},
		"unknown psk":               &PreSharedKeyID{},
		"node without leaf":         &Node{NodeType: NodeTypeLeaf},
		"unknown node":              &Node{},
		"mls message without body":  &MLSMessage{WireFormat: WireFormatWelcome},
		"mls message unknown":       &MLSMessage{WireFormat: 9, Welcome: &Welcome{}},
		"mls message version 2":     &MLSMessage{Version: 2, WireFormat: WireFormatWelcome, Welcome: &Welcome{}},
		"framed content no commit":  &FramedContent{Sender: Sender{SenderType: SenderTypeMember}, ContentType: ContentTypeCommit},
		"framed content type 0":     &FramedContent{Sender: Sender{SenderType: SenderTypeMember}},
		"tbs without context":       &FramedContentTBS{Content: FramedContent{Sender: Sender{SenderType: SenderTypeMember}, ContentType: ContentTypeApplication}},
		"private content bad pad":   &PrivateMessageContent{ContentType: ContentTypeApplication, PaddingLength: -1},
		"private content type 0":    &PrivateMessageContent{},
		"proposal or ref no body":   &ProposalOrRef{Type: ProposalOrRefTypeProposal},
		"proposal or ref unknown":   &ProposalOrRef{},
		"tree hash input no branch": &TreeHashInput{NodeType: NodeTypeParent},
	} {
		if out, err := codec.Marshal(v); err == nil {
			t.Errorf("%s: encoded as %x", name, out)
		}
	}
	// A nil node inside a ratchet tree is a blank node, not an error.
	if out, err := codec.Marshal(&RatchetTree{nil, nil}); err != nil || !bytes.Equal(out, []byte{2, 0, 0}) {
		t.Errorf("blank tree: %x, %v", out, err)
	}
}

func TestPrivateMessageContentPadding(t *testing.T) {
	c := &PrivateMessageContent{
		ContentType:     ContentTypeApplication,
		ApplicationData: []byte("hello"),
		Auth:            FramedContentAuthData{Signature: []byte{1, 2, 3}},
		PaddingLength:   7,
	}
	enc := codec.MustMarshal(c)
	want := append([]byte{5, 'h', 'e', 'l', 'l', 'o', 3, 1, 2, 3}, make([]byte, 7)...)
	if !bytes.Equal(enc, want) {
		t.Fatalf("encoding %x, want %x", enc, want)
	}
	got, err := UnmarshalPrivateMessageContent(enc, ContentTypeApplication)
	if err != nil {
		t.Fatal(err)
	}
	if got.PaddingLength != 7 || string(got.ApplicationData) != "hello" || !bytes.Equal(codec.MustMarshal(got), enc) {
		t.Fatalf("round trip gave %+v", got)
	}
	for i := 10; i < len(enc); i++ {
		bad := bytes.Clone(enc)
		bad[i] = 0x80
		if _, err := UnmarshalPrivateMessageContent(bad, ContentTypeApplication); !errors.Is(err, errPadding) {
			t.Errorf("non-zero padding byte %d: err %v", i, err)
		}
	}
	// Truncated auth, unknown content type.
	if _, err := UnmarshalPrivateMessageContent(enc[:8], ContentTypeApplication); err == nil {
		t.Error("truncated content accepted")
	}
	if _, err := UnmarshalPrivateMessageContent(enc, 0); err == nil {
		t.Error("content type 0 accepted")
	}
	// A commit carries a confirmation tag.
	cc := &PrivateMessageContent{
		ContentType: ContentTypeCommit,
		Commit:      &Commit{},
		Auth:        FramedContentAuthData{Signature: []byte{9}, ConfirmationTag: MAC{8, 8}},
	}
	enc = codec.MustMarshal(cc)
	if want := []byte{0, 0, 1, 9, 2, 8, 8}; !bytes.Equal(enc, want) {
		t.Fatalf("commit content %x, want %x", enc, want)
	}
	got, err = UnmarshalPrivateMessageContent(enc, ContentTypeCommit)
	if err != nil || !bytes.Equal(got.Auth.ConfirmationTag, MAC{8, 8}) || got.PaddingLength != 0 {
		t.Fatalf("commit content: %+v, %v", got, err)
	}
	// Read as a proposal, the same bytes do not parse.
	if _, err := UnmarshalPrivateMessageContent(enc, ContentTypeProposal); err == nil {
		t.Error("commit content accepted as a proposal")
	}
}
