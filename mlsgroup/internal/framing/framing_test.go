package framing

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// pair is a sender and a receiver in the same epoch of a group of n leaves.
type pair struct {
	cs         *suite.Suite
	signer     *suite.SigningKey
	send, recv *Keys
}

func newPair(tb testing.TB, id suite.ID, n uint32) *pair {
	tb.Helper()
	cs, err := suite.Lookup(id)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := cs.GenerateSigningKey()
	if err != nil {
		tb.Fatal(err)
	}
	gc := &wire.GroupContext{
		Version: wire.ProtocolVersionMLS10, CipherSuite: wire.CipherSuite(id),
		GroupID: []byte("group"), Epoch: 7,
		TreeHash: bytes.Repeat([]byte{1}, cs.Nh()), ConfirmedTranscriptHash: bytes.Repeat([]byte{2}, cs.Nh()),
		Extensions: wire.Extensions{},
	}
	enc := bytes.Repeat([]byte{3}, cs.Nh())
	keys := func() *Keys {
		tree, err := schedule.NewSecretTree(cs, enc, n, nil)
		if err != nil {
			tb.Fatal(err)
		}
		return &Keys{Suite: cs, Context: gc, MembershipKey: bytes.Repeat([]byte{4}, cs.Nh()),
			SenderDataSecret: bytes.Repeat([]byte{5}, cs.Nh()), SecretTree: tree}
	}
	return &pair{cs: cs, signer: signer, send: keys(), recv: keys()}
}

func (p *pair) content(leaf uint32, data []byte) *wire.FramedContent {
	return &wire.FramedContent{
		GroupID: p.send.Context.GroupID, Epoch: p.send.Context.Epoch,
		Sender:            wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: leaf},
		AuthenticatedData: []byte{}, ContentType: wire.ContentTypeApplication, ApplicationData: data,
	}
}

// seal signs and encrypts data from leaf and returns the encoded MLSMessage.
func (p *pair) seal(tb testing.TB, leaf uint32, data []byte) []byte {
	ac, err := p.send.Sign(p.signer, wire.WireFormatPrivateMessage, p.content(leaf, data))
	if err != nil {
		tb.Fatal(err)
	}
	pm, err := p.send.ProtectPrivate(ac, 0)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: pm})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// open decodes, decrypts and verifies an encoded MLSMessage.
func (p *pair) open(msg []byte) ([]byte, error) {
	var m wire.MLSMessage
	if err := codec.Unmarshal(msg, &m); err != nil {
		return nil, err
	}
	if m.PrivateMessage == nil {
		return nil, errors.New("not a private message")
	}
	ac, err := p.recv.UnprotectPrivate(m.PrivateMessage)
	if err != nil {
		return nil, err
	}
	if err := p.recv.Verify(p.signer.PublicKey(), ac); err != nil {
		return nil, err
	}
	return ac.Content.ApplicationData, nil
}

func TestPrivateRoundTripOutOfOrder(t *testing.T) {
	p := newPair(t, suite.Default, 8)
	var msgs [][]byte
	for i := range 5 {
		msgs = append(msgs, p.seal(t, 3, fmt.Appendf(nil, "message %d", i)))
	}
	for _, i := range []int{4, 0, 2, 1, 3} {
		got, err := p.open(msgs[i])
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprintf("message %d", i); string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	for i, m := range msgs {
		if _, err := p.open(m); err == nil {
			t.Errorf("replay of message %d accepted", i)
		}
	}
}

// TestPrivateTamper flips every bit of a sealed message in turn: none may open, and the
// genuine message must still open afterwards (a forgery does not burn its key).
func TestPrivateTamper(t *testing.T) {
	p := newPair(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 4)
	msg := p.seal(t, 1, []byte("hello"))
	for i := range len(msg) * 8 {
		bad := bytes.Clone(msg)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := p.open(bad); err == nil {
			t.Fatalf("bit %d flipped: accepted", i)
		}
	}
	for n := range len(msg) {
		if _, err := p.open(msg[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
	}
	if got, err := p.open(msg); err != nil || string(got) != "hello" {
		t.Fatalf("genuine message after forgeries: %q, %v", got, err)
	}
}

func TestPrivateWrongEpochAndSigner(t *testing.T) {
	p := newPair(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 4)
	msg := p.seal(t, 1, []byte("hello"))

	// Another epoch's receiver refuses it before touching keys.
	other := *p.recv
	ctx := *p.recv.Context
	ctx.Epoch++
	other.Context = &ctx
	other.contextBytes = nil
	var m wire.MLSMessage
	if err := codec.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := other.UnprotectPrivate(m.PrivateMessage); !errors.Is(err, ErrWrongGroup) {
		t.Errorf("wrong epoch: %v", err)
	}

	// A signature by someone else fails verification with the same error as a bad MAC.
	ac, err := p.recv.UnprotectPrivate(m.PrivateMessage)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := p.cs.GenerateSigningKey()
	if err := p.recv.Verify(stranger.PublicKey(), ac); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong signer: %v", err)
	}
}

func TestPublicMessage(t *testing.T) {
	p := newPair(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 4)
	c := p.content(2, nil)
	c.ContentType = wire.ContentTypeProposal
	c.ApplicationData = nil
	c.Proposal = &wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: 1}}
	ac, err := p.send.Sign(p.signer, wire.WireFormatPublicMessage, c)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := p.send.ProtectPublic(ac)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.recv.UnprotectPublic(pm)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.recv.Verify(p.signer.PublicKey(), got); err != nil {
		t.Fatal(err)
	}
	pm.MembershipTag[0] ^= 1
	if _, err := p.recv.UnprotectPublic(pm); !errors.Is(err, ErrAuth) {
		t.Errorf("bad membership tag: %v", err)
	}

	// Application data never travels as a PublicMessage.
	app, err := p.send.Sign(p.signer, wire.WireFormatPublicMessage, p.content(2, []byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.send.ProtectPublic(app); err == nil {
		t.Error("application data protected as a public message")
	}
}

// BenchmarkPrivateMessage measures one seal plus one open (sign, encrypt, decrypt, verify,
// encode and decode) of an application message from a random sender of a 1024-member group.
func BenchmarkPrivateMessage(b *testing.B) {
	for _, id := range []suite.ID{suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, suite.Default} {
		for _, size := range []int{100, 1024} {
			b.Run(fmt.Sprintf("%04x/%dB", uint16(id), size), func(b *testing.B) {
				p := newPair(b, id, 1024)
				data := make([]byte, size)
				b.SetBytes(int64(size))
				i := uint32(0)
				for b.Loop() {
					leaf := (i * 7919) % 1024
					i++
					if _, err := p.open(p.seal(b, leaf, data)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// FuzzOpenPrivate feeds arbitrary bytes to the receive path of a PrivateMessage: it must
// never panic, and nothing but the one genuine message may open.
func FuzzOpenPrivate(f *testing.F) {
	p := newPair(f, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 4)
	genuine := p.seal(f, 1, []byte("genuine"))
	f.Add(genuine)
	f.Add(genuine[:len(genuine)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		// A fresh receiver each time, so the genuine message is always still unopened.
		q := *p
		q.recv = newPair(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 4).recv
		q.recv.MembershipKey, q.recv.SenderDataSecret = p.recv.MembershipKey, p.recv.SenderDataSecret
		got, err := q.open(data)
		if err == nil && (!bytes.Equal(data, genuine) || string(got) != "genuine") {
			t.Fatalf("forged message accepted: %x", data)
		}
	})
}
