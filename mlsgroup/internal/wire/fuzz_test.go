package wire

import (
	"bytes"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// seed adds the given fields of every messages.json entry to the corpus, without their
// first skip bytes (4 strips the MLSMessage version and wire format).
func seed(f *testing.F, skip int, fields ...string) {
	f.Helper()
	for _, e := range messagesEntries(f) {
		for _, field := range fields {
			data, ok := e[field]
			if !ok || len(data) < skip {
				f.Fatalf("messages.json: field %s missing or short", field)
			}
			f.Add(bytes.Clone(data[skip:]))
		}
	}
}

// checkRoundTrip is the property of every fuzz target: input that decodes re-encodes to
// exactly the same bytes.
func checkRoundTrip(t *testing.T, data []byte, v wireValue) bool {
	if codec.Unmarshal(data, v) != nil {
		return false
	}
	out, err := codec.Marshal(v)
	if err != nil {
		t.Fatalf("decoded %T does not re-encode: %v", v, err)
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("%T re-encodes differently\n got %x\nwant %x", v, out, data)
	}
	return true
}

// checkDerived encodes the structures derived from decoded values (TBS, AuthenticatedContent)
// and decodes typed extensions: none of it may fail or panic on decoded input.
func checkDerived(t *testing.T, v any) {
	encode := func(m codec.Marshaler) {
		if _, err := codec.Marshal(m); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
	}
	exts := func(l Extensions) {
		for _, e := range l {
			var m codec.Marshaler
			var err error
			switch e.ExtensionType {
			case ExtensionTypeApplicationID:
				var x ApplicationID
				x, err = e.ApplicationID()
				m = &x
			case ExtensionTypeRatchetTree:
				var x RatchetTree
				x, err = e.RatchetTree()
				m = &x
			case ExtensionTypeRequiredCapabilities:
				m, err = e.RequiredCapabilities()
			case ExtensionTypeExternalPub:
				m, err = e.ExternalPub()
			case ExtensionTypeExternalSenders:
				var x ExternalSenders
				x, err = e.ExternalSenders()
				m = &x
			default:
				continue
			}
			if err != nil {
				continue // malformed extension bodies are the caller's to reject
			}
			if out, err := codec.Marshal(m); err != nil || !bytes.Equal(out, e.ExtensionData) {
				t.Fatalf("extension %d: re-encoding %x, %v; want %x", e.ExtensionType, out, err, e.ExtensionData)
			}
		}
	}
	leaf := func(n *LeafNode) {
		encode(n.TBS([]byte{1}, 1))
		exts(n.Extensions)
	}
	kp := func(k *KeyPackage) {
		encode(k.TBS())
		exts(k.Extensions)
		leaf(&k.LeafNode)
	}
	var content func(p *Proposal, c *Commit)
	content = func(p *Proposal, c *Commit) {
		if p != nil {
			switch {
			case p.Add != nil:
				kp(&p.Add.KeyPackage)
			case p.Update != nil:
				leaf(&p.Update.LeafNode)
			case p.ReInit != nil:
				exts(p.ReInit.Extensions)
			case p.GroupContextExtensions != nil:
				exts(p.GroupContextExtensions.Extensions)
			}
		}
		if c != nil {
			for _, r := range c.Proposals {
				if r.Proposal != nil {
					content(r.Proposal, nil)
				}
			}
			if c.Path != nil {
				leaf(&c.Path.LeafNode)
			}
		}
	}
	switch v := v.(type) {
	case *MLSMessage:
		switch v.WireFormat {
		case WireFormatPublicMessage:
			ac := v.PublicMessage.AuthenticatedContent()
			encode(ac)
			encode(ac.TBS(&GroupContext{}))
			encode(ac.ConfirmedTranscriptHashInput())
			content(v.PublicMessage.Content.Proposal, v.PublicMessage.Content.Commit)
		case WireFormatPrivateMessage:
			encode(v.PrivateMessage.SenderDataAAD())
			encode(v.PrivateMessage.ContentAAD())
		case WireFormatKeyPackage:
			checkDerived(t, v.KeyPackage)
		case WireFormatGroupInfo:
			checkDerived(t, v.GroupInfo)
		}
	case *KeyPackage:
		kp(v)
	case *GroupInfo:
		encode(v.TBS())
		exts(v.Extensions)
		exts(v.GroupContext.Extensions)
	case *Commit:
		content(nil, v)
	case *RatchetTree:
		for _, n := range *v {
			if n != nil && n.LeafNode != nil {
				leaf(n.LeafNode)
			}
		}
	}
}

func FuzzMLSMessage(f *testing.F) {
	seed(f, 0, "mls_welcome", "mls_group_info", "mls_key_package", "public_message_application",
		"public_message_proposal", "public_message_commit", "private_message")
	f.Fuzz(func(t *testing.T, data []byte) {
		var m MLSMessage
		if checkRoundTrip(t, data, &m) {
			checkDerived(t, &m)
		}
	})
}

func FuzzWelcome(f *testing.F) {
	seed(f, 4, "mls_welcome")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip(t, data, new(Welcome))
	})
}

func FuzzKeyPackage(f *testing.F) {
	seed(f, 4, "mls_key_package")
	seed(f, 0, "add_proposal") // an Add is exactly a KeyPackage
	f.Fuzz(func(t *testing.T, data []byte) {
		var k KeyPackage
		if checkRoundTrip(t, data, &k) {
			checkDerived(t, &k)
		}
	})
}

func FuzzGroupInfo(f *testing.F) {
	seed(f, 4, "mls_group_info")
	f.Fuzz(func(t *testing.T, data []byte) {
		var g GroupInfo
		if checkRoundTrip(t, data, &g) {
			checkDerived(t, &g)
		}
	})
}

func FuzzRatchetTree(f *testing.F) {
	seed(f, 0, "ratchet_tree")
	f.Fuzz(func(t *testing.T, data []byte) {
		var r RatchetTree
		if checkRoundTrip(t, data, &r) {
			checkDerived(t, &r)
		}
	})
}

func FuzzCommit(f *testing.F) {
	seed(f, 0, "commit")
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Commit
		if checkRoundTrip(t, data, &c) {
			checkDerived(t, &c)
		}
	})
}

// FuzzPrivateMessageContent checks the padding rule: decoded content re-encodes, with its
// padding length, to the input.
func FuzzPrivateMessageContent(f *testing.F) {
	f.Add(uint8(ContentTypeApplication), []byte{2, 'h', 'i', 1, 9, 0, 0, 0})
	f.Add(uint8(ContentTypeCommit), []byte{0, 0, 1, 9, 2, 8, 8})
	f.Add(uint8(ContentTypeProposal), []byte{0, 3, 0, 0, 0, 1, 0, 0})
	for _, e := range messagesEntries(f)[:20] {
		// A public message's content and auth, read as a plaintext with no padding.
		var m MLSMessage
		if err := codec.Unmarshal(e["public_message_commit"], &m); err != nil {
			f.Fatal(err)
		}
		pmc := &PrivateMessageContent{ContentType: ContentTypeCommit, Commit: m.PublicMessage.Content.Commit, Auth: m.PublicMessage.Auth}
		f.Add(uint8(ContentTypeCommit), codec.MustMarshal(pmc))
	}
	f.Fuzz(func(t *testing.T, ct uint8, data []byte) {
		c, err := UnmarshalPrivateMessageContent(data, ContentType(ct))
		if err != nil {
			return
		}
		out, err := codec.Marshal(c)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("re-encoding %x, %v; want %x", out, err, data)
		}
	})
}
