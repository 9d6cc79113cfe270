package signal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/tchat-p2p/tchat/layers"
)

type member struct {
	name  string
	id    []byte
	ident *Identity
	l     *Layer
}

func newMember(t testing.TB, name string) *member {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ident, err := NewIdentity(priv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New([]byte(name), ident)
	if err != nil {
		t.Fatal(err)
	}
	return &member{name: name, id: []byte(name), ident: ident, l: l}
}

// group makes members that all know each other's bundles.
func group(t testing.TB, names ...string) []*member {
	t.Helper()
	ms := make([]*member, len(names))
	for i, n := range names {
		ms[i] = newMember(t, n)
	}
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				if err := a.l.SetPeer(b.id, b.ident.Bundle()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return ms
}

var testAD = []byte("envelope header and group id")

func sealTo(t testing.TB, from *member, pt []byte, to ...*member) []byte {
	t.Helper()
	ctx := &layers.Context{Group: []byte("g"), Sender: from.id, AD: testAD}
	for _, m := range to {
		ctx.Recipients = append(ctx.Recipients, m.id)
	}
	msg, err := from.l.Seal(ctx, pt)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// open opens and commits, as the Cascade does.
func open(to *member, from []byte, msg []byte, ad []byte) ([]byte, error) {
	ctx := &layers.Context{Group: []byte("g"), Sender: from, AD: ad}
	pt, commit, err := to.l.Open(ctx, msg)
	if err != nil {
		return nil, err
	}
	if commit != nil {
		if err := commit(); err != nil {
			return nil, err
		}
	}
	return pt, nil
}

func mustOpen(t testing.TB, to, from *member, msg, want []byte) {
	t.Helper()
	pt, err := open(to, from.id, msg, testAD)
	if err != nil {
		t.Fatalf("%s opening from %s: %v", to.name, from.name, err)
	}
	if !bytes.Equal(pt, want) {
		t.Fatalf("%s opened %q, want %q", to.name, pt, want)
	}
}

func state(t testing.TB, m *member) []byte {
	t.Helper()
	b, err := m.l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPairwiseConversation(t *testing.T) {
	ms := group(t, "alice", "bob")
	a, b := ms[0], ms[1]
	for round := range 5 {
		for i := range round + 1 {
			pt := fmt.Appendf(nil, "a->b %d.%d", round, i)
			msg := sealTo(t, a, pt, b)
			if wantPrekey := round == 0; (msg[0] == typePrekey) != wantPrekey {
				t.Fatalf("round %d: message type %d", round, msg[0])
			}
			mustOpen(t, b, a, msg, pt)
		}
		for i := range round + 1 {
			pt := fmt.Appendf(nil, "b->a %d.%d", round, i)
			mustOpen(t, a, b, sealTo(t, b, pt, a), pt)
		}
	}
}

func TestOutOfOrder(t *testing.T) {
	ms := group(t, "alice", "bob")
	a, b := ms[0], ms[1]
	mustOpen(t, b, a, sealTo(t, a, []byte("hello"), b), []byte("hello"))
	type sent struct {
		from, to *member
		msg, pt  []byte
	}
	var queue []sent
	for i := range 60 {
		from, to := a, b
		if i%7 >= 4 { // change direction now and then: DH ratchet steps
			from, to = b, a
		}
		pt := fmt.Appendf(nil, "message %d", i)
		queue = append(queue, sent{from, to, sealTo(t, from, pt, to), pt})
		if i%10 == 9 { // deliver in random order, a batch at a time
			mrand.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
			for _, s := range queue {
				mustOpen(t, s.to, s.from, s.msg, s.pt)
			}
			queue = queue[:0]
		}
	}
}

func TestSimultaneousInitiation(t *testing.T) {
	ms := group(t, "alice", "bob")
	a, b := ms[0], ms[1]
	ma := sealTo(t, a, []byte("from a"), b)
	mb := sealTo(t, b, []byte("from b"), a)
	mustOpen(t, b, a, ma, []byte("from a"))
	mustOpen(t, a, b, mb, []byte("from b"))
	// Both now send on the session alice (the lower id) started.
	for i := range 3 {
		m1 := sealTo(t, a, []byte("x"), b)
		m2 := sealTo(t, b, []byte("y"), a)
		if i > 0 && (m1[0] != typePairwise || m2[0] != typePairwise) {
			t.Fatalf("still sending prekey messages")
		}
		mustOpen(t, b, a, m1, []byte("x"))
		mustOpen(t, a, b, m2, []byte("y"))
	}
	if a.l.peers["bob"].sessions[0].id != b.l.peers["alice"].sessions[0].id {
		t.Fatal("members send on different sessions")
	}
}

func TestMaxSkip(t *testing.T) {
	ms := group(t, "alice", "bob")
	a, b := ms[0], ms[1]
	mustOpen(t, b, a, sealTo(t, a, []byte("0"), b), []byte("0"))
	var last []byte
	for range MaxSkip + 2 { // the last one skips MaxSkip+1 keys
		last = sealTo(t, a, []byte("n"), b)
	}
	before := state(t, b)
	if _, err := open(b, a.id, last, testAD); !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("skipping %d keys: %v", MaxSkip+1, err)
	}
	if !bytes.Equal(before, state(t, b)) {
		t.Fatal("state changed on a refused message")
	}
	// One less is fine.
	ms = group(t, "alice", "bob")
	a, b = ms[0], ms[1]
	mustOpen(t, b, a, sealTo(t, a, []byte("0"), b), []byte("0"))
	for range MaxSkip + 1 { // the last one skips MaxSkip keys
		last = sealTo(t, a, []byte("n"), b)
	}
	mustOpen(t, b, a, last, []byte("n"))
}

func TestGroupConversation(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave")
	for round := range 3 {
		for _, from := range ms {
			var to []*member
			for _, m := range ms {
				if m != from {
					to = append(to, m)
				}
			}
			pt := fmt.Appendf(nil, "%s round %d", from.name, round)
			msg := sealTo(t, from, pt, to...)
			for _, m := range to {
				mustOpen(t, m, from, msg, pt)
			}
		}
	}
}

// others returns the members other than m.
func others(ms []*member, m *member) []*member {
	var out []*member
	for _, x := range ms {
		if x != m {
			out = append(out, x)
		}
	}
	return out
}

func TestRemovedMemberReadsNothingNew(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave")
	alice, dave := ms[0], ms[3]
	for _, from := range ms {
		msg := sealTo(t, from, []byte("before"), others(ms, from)...)
		for _, m := range others(ms, from) {
			mustOpen(t, m, from, msg, []byte("before"))
		}
	}
	// Dave is removed: every remaining member forgets him.
	rest := ms[:3]
	for _, m := range rest {
		m.l.RemovePeer(dave.id)
	}
	for _, from := range rest {
		pt := []byte("after " + from.name)
		msg := sealTo(t, from, pt, others(rest, from)...)
		for _, m := range others(rest, from) {
			mustOpen(t, m, from, msg, pt)
		}
		before := state(t, dave)
		if _, err := open(dave, from.id, msg, testAD); !errors.Is(err, layers.ErrAuth) {
			t.Fatalf("removed member opened a message from %s: %v", from.name, err)
		}
		if !bytes.Equal(before, state(t, dave)) {
			t.Fatal("removed member's state changed")
		}
	}
	// Without RemovePeer, leaving dave out of the recipients rekeys too.
	ms = group(t, "alice", "bob", "carol", "dave")
	alice, dave = ms[0], ms[3]
	msg := sealTo(t, alice, []byte("all"), others(ms, alice)...)
	mustOpen(t, dave, alice, msg, []byte("all"))
	msg = sealTo(t, alice, []byte("not dave"), ms[1], ms[2])
	mustOpen(t, ms[1], alice, msg, []byte("not dave"))
	if _, err := open(dave, alice.id, msg, testAD); !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("left-out member opened: %v", err)
	}
}

func TestRekeyAndResend(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	m1 := sealTo(t, a, []byte("1"), b, c)
	mustOpen(t, b, a, m1, []byte("1"))
	// Carol missed m1 and with it alice's sender key.
	m2 := sealTo(t, a, []byte("2"), b, c)
	if _, err := open(c, a.id, m2, testAD); !errors.Is(err, layers.ErrNoKey) || !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("message without key: %v", err)
	}
	a.l.ResendSenderKey(c.id)
	m3 := sealTo(t, a, []byte("3"), b, c)
	mustOpen(t, c, a, m3, []byte("3"))
	mustOpen(t, b, a, m3, []byte("3"))
	mustOpen(t, b, a, m2, []byte("2")) // late, out of order
	a.l.Rekey()
	m4 := sealTo(t, a, []byte("4"), b, c)
	mustOpen(t, b, a, m4, []byte("4"))
	mustOpen(t, c, a, m4, []byte("4"))
}

func TestStateSurvivesRestart(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	mustOpen(t, b, a, sealTo(t, a, []byte("pair"), b), []byte("pair"))
	g := sealTo(t, a, []byte("group"), b, c)
	mustOpen(t, b, a, g, []byte("group"))
	late := sealTo(t, a, []byte("late"), b) // delivered after the restart
	skipped := sealTo(t, a, []byte("skipped"), b)
	mustOpen(t, b, a, sealTo(t, a, []byte("next"), b), []byte("next"))

	saved := state(t, b)
	identity, err := b.ident.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	signer := b.ident.signer
	ident, err := UnmarshalIdentity(identity, signer)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(b.id, ident)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	if again, _ := l.MarshalBinary(); !bytes.Equal(again, saved) {
		t.Fatal("state does not encode the same after a round trip")
	}
	b2 := &member{name: "bob", id: b.id, ident: ident, l: l}
	mustOpen(t, b2, a, skipped, []byte("skipped"))
	mustOpen(t, b2, a, late, []byte("late"))
	mustOpen(t, b2, a, sealTo(t, a, []byte("group 2"), b, c), []byte("group 2"))
	mustOpen(t, a, b2, sealTo(t, b2, []byte("reply"), a), []byte("reply"))
	if _, err := open(b2, a.id, g, testAD); !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("replay after restart: %v", err)
	}
}

func TestOneTimePrekey(t *testing.T) {
	ms := group(t, "alice", "bob")
	a, b := ms[0], ms[1]
	otb, err := b.ident.OneTimeBundle()
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := otb.MarshalBinary()
	parsed, err := ParseBundle(enc)
	if err != nil || !parsed.HasOneTimePrekey() {
		t.Fatalf("one-time bundle: %v", err)
	}
	if err := a.l.SetPeer(b.id, parsed); err != nil {
		t.Fatal(err)
	}
	a.l.peers["bob"].sessions = nil // start afresh with the new bundle
	msg := sealTo(t, a, []byte("otk"), b)
	mustOpen(t, b, a, msg, []byte("otk"))
	if b.ident.oneTimePrekey(parsed.otkID) != nil {
		t.Fatal("one-time prekey not consumed")
	}
}

func TestPrekeyRotation(t *testing.T) {
	ms := group(t, "alice", "bob")
	a, b := ms[0], ms[1]
	msg := sealTo(t, a, []byte("to old prekey"), b)
	if err := b.ident.RotatePrekeys(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, b, a, msg, []byte("to old prekey"))
	// Two rotations later the old prekeys are gone.
	c := newMember(t, "carol")
	c.l.SetPeer(b.id, b.ident.Bundle())
	b.l.SetPeer(c.id, c.ident.Bundle())
	msg = sealTo(t, c, []byte("x"), b)
	b.ident.RotatePrekeys()
	b.ident.RotatePrekeys()
	if _, err := open(b, c.id, msg, testAD); !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("handshake to a dropped prekey: %v", err)
	}
}

func TestBundleEncoding(t *testing.T) {
	m := newMember(t, "alice")
	for _, withOTK := range []bool{false, true} {
		b := m.ident.Bundle()
		if withOTK {
			var err error
			if b, err = m.ident.OneTimeBundle(); err != nil {
				t.Fatal(err)
			}
		}
		enc, err := b.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !withOTK && len(enc) != BundleSize {
			t.Fatalf("bundle of %d bytes, want %d", len(enc), BundleSize)
		}
		p, err := ParseBundle(enc)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := p.MarshalBinary()
		if !bytes.Equal(again, enc) {
			t.Fatal("bundle does not re-encode the same")
		}
		for n := range len(enc) {
			if _, err := ParseBundle(enc[:n]); err == nil {
				t.Fatalf("truncated to %d bytes: parsed", n)
			}
		}
		if _, err := ParseBundle(append(enc, 0)); err == nil {
			t.Fatal("trailing byte: parsed")
		}
		// Every bit of the signed part and the signature matters.
		for i := range signedSize + ed25519.SignatureSize {
			bad := bytes.Clone(enc)
			bad[i] ^= 1 << (i % 8)
			if _, err := ParseBundle(bad); err == nil {
				t.Fatalf("bit flipped in byte %d: parsed", i)
			}
		}
	}
	if _, err := NewIdentity(fakeSigner{}); err == nil {
		t.Fatal("non-Ed25519 signer accepted")
	}
}

func TestCommitAfterStateMoved(t *testing.T) {
	ms := group(t, "alice", "bob")
	a, b := ms[0], ms[1]
	mustOpen(t, b, a, sealTo(t, a, []byte("0"), b), []byte("0"))
	mustOpen(t, a, b, sealTo(t, b, []byte("1"), a), []byte("1"))
	// Bob stages a message that makes him take a DH ratchet step, then
	// seals on his old chain before committing: the commit redoes the step
	// on the moved state.
	m := sealTo(t, a, []byte("2"), b)
	ctx := &layers.Context{Group: []byte("g"), Sender: a.id, AD: testAD}
	pt, commit, err := b.l.Open(ctx, m)
	if err != nil || string(pt) != "2" {
		t.Fatal(err)
	}
	between := sealTo(t, b, []byte("sealed between"), a)
	// The same message staged twice: only one commit may succeed.
	_, commit2, err := b.l.Open(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := commit(); err != nil {
		t.Fatalf("commit after a seal: %v", err)
	}
	if err := commit2(); err != layers.ErrAuth {
		t.Fatalf("second commit of one message: %v", err)
	}
	mustOpen(t, a, b, between, []byte("sealed between"))
	mustOpen(t, a, b, sealTo(t, b, []byte("3"), a), []byte("3"))
	mustOpen(t, b, a, sealTo(t, a, []byte("4"), b), []byte("4"))
}
