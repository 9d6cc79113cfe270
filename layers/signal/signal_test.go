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

// refuseForGood is refuse for a message that can never open: the error is
// ErrAuth itself, not ErrNoKey (which asks the caller to wait for a key).
func refuseForGood(t *testing.T, to *member, from []byte, msg []byte, what string) {
	t.Helper()
	refuse(t, to, from, msg, testAD, what)
	if _, err := open(to, from, msg, testAD); err != layers.ErrAuth {
		t.Fatalf("%s: %v, want ErrAuth", what, err)
	}
}

// sealFails checks that from cannot seal for these recipients.
func sealFails(t *testing.T, from *member, to ...*member) {
	t.Helper()
	ctx := &layers.Context{Group: []byte("g"), Sender: from.id, AD: testAD}
	for _, m := range to {
		ctx.Recipients = append(ctx.Recipients, m.id)
	}
	if _, err := from.l.Seal(ctx, []byte("x")); err == nil {
		t.Fatalf("%s sealed for %d recipients with one removed", from.name, len(to))
	}
}

// TestRemovedMemberLateMessages: gossip may bring the commit that removes a
// member before the last messages it sent while a member (or sync may bring
// them long after). They still open, until ForgetRemoved: under the sender
// key we have from it, and on its sessions, new sender keys included (the
// mls layer outside this one opens only what was sealed in an epoch the
// sender was in). Nothing opens twice, and we seal nothing for it.
func TestRemovedMemberLateMessages(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave")
	alice, bob, carol, dave := ms[0], ms[1], ms[2], ms[3]
	rest := ms[:3]
	first := sealTo(t, dave, []byte("first"), rest...)
	mustOpen(t, alice, dave, first, []byte("first"))
	mustOpen(t, dave, alice, sealTo(t, alice, []byte("reply"), dave), []byte("reply"))
	var late [][]byte
	for i := range 3 {
		late = append(late, sealTo(t, dave, fmt.Appendf(nil, "late %d", i), rest...))
	}
	dave.l.ResendSenderKey(alice.id)
	resent := sealTo(t, dave, []byte("resent"), rest...) // the key alice has, again
	pairwise := sealTo(t, dave, []byte("pairwise"), alice)
	prekey := sealTo(t, dave, []byte("prekey"), bob) // bob has not answered dave yet
	dave.l.Rekey()
	newKey := sealTo(t, dave, []byte("new key"), rest...)
	for _, m := range rest {
		m.l.RemovePeer(dave.id)
	}

	mustOpen(t, alice, dave, late[0], []byte("late 0"))
	mustOpen(t, alice, dave, resent, []byte("resent"))
	mustOpen(t, alice, dave, pairwise, []byte("pairwise"))
	mustOpen(t, bob, dave, prekey, []byte("prekey"))
	mustOpen(t, alice, dave, newKey, []byte("new key"))
	mustOpen(t, carol, dave, first, []byte("first"))
	refuseForGood(t, alice, dave.id, pairwise, "pairwise from a removed member, again")
	refuseForGood(t, bob, dave.id, prekey, "prekey from a removed member, again")
	refuseForGood(t, alice, dave.id, newKey, "new sender key from a removed member, again")
	sealFails(t, alice, dave)
	sealFails(t, alice, bob, dave)

	var asked [][]byte
	alice.l.ForgetRemoved(func(m []byte) bool {
		asked = append(asked, m)
		return true
	})
	if len(asked) != 1 || !bytes.Equal(asked[0], dave.id) {
		t.Fatalf("ForgetRemoved asked about %q, want only dave", asked)
	}
	mustOpen(t, alice, dave, late[1], []byte("late 1"))
	alice.l.ForgetRemoved(func([]byte) bool { return false })
	if _, err := open(alice, dave.id, late[2], testAD); err != layers.ErrNoKey {
		t.Fatalf("after ForgetRemoved: %v, want ErrNoKey", err)
	}
	// The members are not forgotten.
	if len(alice.l.peers) != 2 {
		t.Fatalf("alice has %d peers after ForgetRemoved, want 2", len(alice.l.peers))
	}
	for _, from := range rest {
		pt := []byte("after " + from.name)
		msg := sealTo(t, from, pt, others(rest, from)...)
		for _, m := range others(rest, from) {
			mustOpen(t, m, from, msg, pt)
		}
	}
}

func TestRemovedMemberSurvivesRestart(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	mustOpen(t, b, a, sealTo(t, a, []byte("key"), b, c), []byte("key"))
	late := sealTo(t, a, []byte("late"), b, c)
	b.l.RemovePeer(a.id)
	saved := state(t, b)
	b2 := restored(t, b)
	l := b2.l
	if !l.peers["alice"].removed || l.peers["carol"].removed {
		t.Fatal("removed flags lost in a round trip")
	}
	sealFails(t, b2, a)
	mustOpen(t, b2, a, late, []byte("late"))
	l.ForgetRemoved(nil)
	if l.peers["alice"] != nil || l.peers["carol"] == nil {
		t.Fatal("ForgetRemoved(nil) did not forget exactly the removed member")
	}

	// Bob's state ends with carol's: her flag, no sessions, no sender keys.
	if !bytes.HasSuffix(saved, []byte{0, 0, 0}) {
		t.Fatalf("state ends with %x", saved[len(saved)-3:])
	}
	bad := bytes.Clone(saved)
	bad[len(bad)-3] = 2
	if err := l.UnmarshalBinary(bad); err != errState {
		t.Fatalf("removed flag 2: %v", err)
	}
	// A removed peer keeps its sessions through a restart: its pairwise
	// message, sealed before the removal, opens after.
	ms = group(t, "alice", "bob")
	mustOpen(t, ms[1], ms[0], sealTo(t, ms[0], []byte("x"), ms[1]), []byte("x"))
	reply := sealTo(t, ms[1], []byte("reply"), ms[0])
	ms[0].l.RemovePeer(ms[1].id)
	a2 := restored(t, ms[0])
	if p := a2.l.peers["bob"]; !p.removed || len(p.sessions) != 1 {
		t.Fatalf("removed bob restored with %d sessions", len(p.sessions))
	}
	mustOpen(t, a2, ms[1], reply, []byte("reply"))
	sealFails(t, a2, ms[1])
}

// TestStateVersion1 loads a state saved by the code of version 1, before
// removed members were kept (testdata: bob's state as FuzzUnmarshalState
// makes it, with sessions and a sender key from alice, then a pairwise and a
// group message alice sealed after the save).
func TestStateVersion1(t *testing.T) {
	saved := readFile(t, "testdata/state-v1")
	if saved[0] != 1 {
		t.Fatalf("fixture of version %d", saved[0])
	}
	// Opening on sessions and sender keys we have needs no identity.
	b := newMember(t, "bob")
	if err := b.l.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	if len(b.l.peers) != 2 {
		t.Fatalf("%d peers, want 2", len(b.l.peers))
	}
	for _, p := range b.l.peers {
		if p.removed {
			t.Fatalf("peer %s removed", p.id)
		}
	}
	// Saved again, it is a state of the current version: two flag bytes more
	// per peer (removed, earlier state), a base more per sender key.
	savedAgain(t, b, saved, 2*len(b.l.peers)+4*senderKeys(b.l))
	alice := &member{name: "alice", id: []byte("alice")}
	mustOpen(t, b, alice, readFile(t, "testdata/state-v1-pairwise"), []byte("pairwise after save"))
	mustOpen(t, b, alice, readFile(t, "testdata/state-v1-group"), []byte("group after save"))
}

// TestReaddedMember: SetPeer for a removed member, added again, makes it a
// peer afresh, and the next group message goes under a new sender key. What
// it sent before still opens, after a restart too, until ForgetRemoved.
func TestReaddedMember(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave")
	a, b := ms[0], ms[1]
	mustOpen(t, a, b, sealTo(t, b, []byte("old key"), others(ms, b)...), []byte("old key"))
	var late [][]byte
	for i := range 3 {
		late = append(late, sealTo(t, b, fmt.Appendf(nil, "late %d", i), others(ms, b)...))
	}
	b.l.Rekey()
	lateKey := sealTo(t, b, []byte("late, new key"), others(ms, b)...) // the key only in it
	a.l.RemovePeer(b.id)
	sealTo(t, a, []byte("without bob"), ms[2], ms[3]) // uses up the rekey
	if err := a.l.SetPeer(b.id, b.ident.Bundle()); err != nil {
		t.Fatal(err)
	}
	if p := a.l.peers["bob"]; p.removed || len(p.keys) != 0 || len(p.sessions) != 0 || p.prev == nil {
		t.Fatal("re-added member kept its old state, or lost it")
	}
	if !a.l.rekey {
		t.Fatal("no rekey after a member was added again")
	}
	mustOpen(t, a, b, late[0], []byte("late 0"))
	mustOpen(t, a, b, lateKey, []byte("late, new key"))
	refuse(t, a, b.id, late[0], testAD, "a message from before the re-add, again")
	a2 := restored(t, a)
	mustOpen(t, a2, b, late[1], []byte("late 1"))
	a2.l.ForgetRemoved(func([]byte) bool { return true })
	if a2.l.peers["bob"].prev == nil {
		t.Fatal("ForgetRemoved dropped what keep kept")
	}
	a2.l.ForgetRemoved(func([]byte) bool { return false })
	if p := a2.l.peers["bob"]; p == nil || p.prev != nil {
		t.Fatal("ForgetRemoved did not drop just the earlier state")
	}
	if _, err := open(a2, b.id, late[2], testAD); err != layers.ErrNoKey {
		t.Fatalf("message from before the re-add, after ForgetRemoved: %v", err)
	}
	mustOpen(t, b, a, sealTo(t, a, []byte("welcome back"), b), []byte("welcome back"))
	msg := sealTo(t, a, []byte("all again"), others(ms, a)...)
	for _, m := range others(ms, a) {
		mustOpen(t, m, a, msg, []byte("all again"))
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

// TestStateVersion3 loads a state saved by the code of version 3, before
// earlier states of members added again were kept (testdata: bob's state
// with sessions with alice and her sender key, and carol removed; then a
// pairwise and a group message alice sealed after the save).
func TestStateVersion3(t *testing.T) {
	saved := readFile(t, "testdata/state-v3")
	if saved[0] != 3 {
		t.Fatalf("fixture of version %d", saved[0])
	}
	b := newMember(t, "bob")
	if err := b.l.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	if len(b.l.peers) != 2 || b.l.peers["alice"].removed || !b.l.peers["carol"].removed || senderKeys(b.l) != 1 {
		t.Fatal("the peers are not the ones saved")
	}
	// Saved again: a flag byte more per peer (no earlier state).
	savedAgain(t, b, saved, len(b.l.peers))
	alice := &member{name: "alice", id: []byte("alice")}
	mustOpen(t, b, alice, readFile(t, "testdata/state-v3-pairwise"), []byte("pairwise after save"))
	mustOpen(t, b, alice, readFile(t, "testdata/state-v3-group"), []byte("group after save"))
}

// TestStateVersion4 loads a state saved by the code of version 4, before hand-outs owed
// were kept (testdata: bob's state with sessions with alice and her sender key, and
// carol removed and added again with another identity; then a pairwise and a group
// message alice sealed after the save).
func TestStateVersion4(t *testing.T) {
	saved := readFile(t, "testdata/state-v4")
	if saved[0] != 4 {
		t.Fatalf("fixture of version %d", saved[0])
	}
	b := newMember(t, "bob")
	if err := b.l.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	if len(b.l.peers) != 2 || b.l.peers["alice"].removed || b.l.peers["carol"].prev == nil || senderKeys(b.l) != 1 ||
		len(b.l.handing) != 0 {
		t.Fatal("the peers are not the ones saved")
	}
	savedAgain(t, b, saved, 0)
	alice := &member{name: "alice", id: []byte("alice")}
	mustOpen(t, b, alice, readFile(t, "testdata/state-v4-pairwise"), []byte("pairwise after save"))
	mustOpen(t, b, alice, readFile(t, "testdata/state-v4-group"), []byte("group after save"))
}

// TestMarshalAheadCoversSends saves a member's state ahead of its sender key's chain, lets
// it send group messages without saving, and restores it as after a crash: its next
// message must use a message number it never used, so members open it. The state saved
// the plain way at the same moment uses one again, which members refuse. The mark covers
// the messages until one changes more than the chain, or the chain passes the encoding.
func TestMarshalAheadCoversSends(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	mustOpen(t, b, a, sealTo(t, a, []byte("first"), b, c), []byte("first")) // carries the key
	plain := state(t, a)
	ahead, mark, err := a.l.MarshalBinaryAhead(4) // message 1 is next: 1 to 4 are covered
	if err != nil {
		t.Fatal(err)
	}
	if !mark.Covers(a.l) {
		t.Fatal("a fresh mark does not cover the layer")
	}
	for i := range 3 {
		mustOpen(t, b, a, sealTo(t, a, []byte("covered"), b, c), []byte("covered"))
		mustOpen(t, a, c, sealTo(t, c, []byte("reply"), a, b), []byte("reply")) // Opens change nothing we send with
		if !mark.Covers(a.l) {
			t.Fatalf("message %d, sealed within the encoding's reach, not covered", i+2)
		}
	}
	for _, tc := range []struct {
		name  string
		saved []byte
		opens bool
	}{{"plain", plain, false}, {"ahead", ahead, true}} {
		l, err := New(a.id, a.ident)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.UnmarshalBinary(tc.saved); err != nil {
			t.Fatal(err)
		}
		a2 := &member{name: "alice", id: a.id, ident: a.ident, l: l}
		msg := sealTo(t, a2, []byte("after the crash"), b, c)
		_, err = open(b, a.id, msg, testAD)
		if tc.opens && err != nil {
			t.Fatalf("%s: the message after the restart does not open: %v", tc.name, err)
		}
		if !tc.opens && err == nil {
			t.Fatalf("%s: a reused message key opened", tc.name)
		}
		if mark.Covers(l) {
			t.Fatalf("%s: the mark covers another layer", tc.name)
		}
	}
	sealTo(t, a, []byte("4"), b, c)
	if !mark.Covers(a.l) {
		t.Fatal("the last message number within the encoding's reach is not covered")
	}
	sealTo(t, a, []byte("5"), b, c)
	if mark.Covers(a.l) {
		t.Fatal("a message past the encoding's reach is covered")
	}
	for name, change := range map[string]func(){
		"pairwise message": func() { sealTo(t, a, []byte("pair"), b) },
		"rekey":            func() { a.l.Rekey(); sealTo(t, a, []byte("new key"), b, c) },
		"key resent":       func() { a.l.ResendSenderKey(b.id); sealTo(t, a, []byte("carries the key"), b, c) },
		"key handed out": func() {
			a.l.ResendSenderKey(b.id)
			if _, _, err := a.l.SealSenderKey(b.id, testAD); err != nil {
				t.Fatal(err)
			}
		},
	} {
		_, mark, err := a.l.MarshalBinaryAhead(1000)
		if err != nil {
			t.Fatal(err)
		}
		change()
		if mark.Covers(a.l) {
			t.Fatalf("covered after a %s", name)
		}
	}
}

// TestHandOutOnNewSessionCovered: a hand-out on a session made since the state was
// encoded needs no save: a layer restored from the encoding does not have the session and
// starts another, with keys of its own, which the member opens too. A hand-out on a
// session the encoding holds does need one.
func TestHandOutOnNewSessionCovered(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave")
	a, b, c, d := ms[0], ms[1], ms[2], ms[3]
	mustOpen(t, b, a, sealTo(t, a, []byte("first"), b, c), []byte("first")) // sessions with bob and carol
	saved, mark, err := a.l.MarshalBinaryAhead(sendAheadTest)
	if err != nil {
		t.Fatal(err)
	}
	km, _ := sealKey(t, a, d)
	if !mark.Covers(a.l) {
		t.Fatal("a hand-out on a new session is not covered")
	}
	again, _ := sealKey(t, a, d) // the same session, still not in any encoding
	if !mark.Covers(a.l) {
		t.Fatal("a second hand-out on the new session is not covered")
	}
	l, err := New(a.id, a.ident)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	restored := &member{name: "alice restored", id: a.id, ident: a.ident, l: l}
	other, _ := sealKey(t, restored, d)
	for _, msg := range [][]byte{km, again, other} {
		mustOpenKey(t, d, a, msg)
	}
	if _, mark, err = a.l.MarshalBinaryAhead(sendAheadTest); err != nil {
		t.Fatal(err)
	}
	sealKey(t, a, d)
	if mark.Covers(a.l) {
		t.Fatal("a hand-out on a session the encoding holds is covered")
	}
}

const sendAheadTest = 32
