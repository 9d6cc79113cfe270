package signal

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/layers"
)

// sealKey seals from's sender key for to alone.
func sealKey(t testing.TB, from, to *member) ([]byte, uint32) {
	t.Helper()
	msg, keyID, err := from.l.SealSenderKey(to.id, testAD)
	if err != nil {
		t.Fatal(err)
	}
	return msg, keyID
}

func mustOpenKey(t testing.TB, to, from *member, msg []byte) {
	t.Helper()
	if err := to.l.OpenSenderKey(from.id, testAD, msg); err != nil {
		t.Fatalf("%s opening the sender key of %s: %v", to.name, from.name, err)
	}
}

// refuseKey checks that OpenSenderKey refuses msg with ErrAuth (or ErrNoKey,
// which is ErrAuth too) and changes no state.
func refuseKey(t *testing.T, to *member, from, msg, ad []byte, what string) {
	t.Helper()
	before := state(t, to)
	err := to.l.OpenSenderKey(from, ad, msg)
	if !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("%s: %v, want a refusal", what, err)
	}
	if err != layers.ErrAuth && err != layers.ErrNoKey {
		t.Fatalf("%s: error %v is not the one auth error", what, err)
	}
	if !bytes.Equal(before, state(t, to)) {
		t.Fatalf("%s: state changed", what)
	}
}

// carried returns the members a group message carries a distribution for.
func carried(t testing.TB, msg []byte) []string {
	t.Helper()
	if len(msg) < GroupOverhead || msg[0] != typeGroup {
		t.Fatalf("not a group message")
	}
	s := cryptobyte.String(msg[9:])
	var n uint16
	if !s.ReadUint16(&n) {
		t.Fatal("no count")
	}
	var ids []string
	for range n {
		var id, pm cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&id) || !s.ReadUint16LengthPrefixed(&pm) {
			t.Fatal("malformed distributions")
		}
		ids = append(ids, string(id))
	}
	return ids
}

// entryFor returns the pairwise message a group message carries for member.
func entryFor(t testing.TB, msg []byte, member string) []byte {
	t.Helper()
	s := cryptobyte.String(msg[9:])
	var n uint16
	s.ReadUint16(&n)
	for range n {
		var id, pm cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&id) || !s.ReadUint16LengthPrefixed(&pm) {
			t.Fatal("malformed distributions")
		}
		if string(id) == member {
			return bytes.Clone(pm)
		}
	}
	t.Fatalf("no distribution for %s", member)
	return nil
}

// sealEntry seals pt from from to to as a pairwise message under ad and
// label, as sealGroup and SealSenderKey do inside.
func sealEntry(t testing.TB, from, to *member, ad []byte, label string, pt []byte) []byte {
	t.Helper()
	from.l.mu.Lock()
	defer from.l.mu.Unlock()
	msg, err := from.l.sealPairwise(nil, from.l.peers[string(to.id)], ad, label, pt)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// groupWith seals from's next group message as sealGroup does, under its
// current sender key, but carrying entry as the one pairwise message, for
// member to.
func groupWith(t testing.TB, from *member, to, entry, pt []byte) []byte {
	t.Helper()
	l := from.l
	l.mu.Lock()
	defer l.mu.Unlock()
	own := l.own
	out := []byte{typeGroup}
	out = appendUint32(out, own.keyID)
	out = appendUint32(out, own.iteration)
	out = append(out, 0, 1, byte(len(to)))
	out = append(out, to...)
	out = append(out, byte(len(entry)>>8), byte(len(entry)))
	out = append(out, entry...)
	_, mk, err := own.next()
	if err != nil {
		t.Fatal(err)
	}
	out = sealMK(out, &mk, senderKeyLabel, pt, groupAD(testAD, l.self, out[:9]))
	return append(out, ed25519.Sign(own.sign, signedDigest(testAD, l.self, out))...)
}

// TestSenderKeyAlone: alice hands bob her sender key on its own; once she
// notes it delivered, her group messages carry it only for the others.
func TestSenderKeyAlone(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	km, keyID := sealKey(t, a, b)
	if km[0] != typePrekey {
		t.Fatalf("first sender key message of type %d, want a prekey message", km[0])
	}
	if a.l.own == nil || a.l.own.keyID != keyID || a.l.own.sentTo["bob"] {
		t.Fatal("SealSenderKey: no own key of that id, or bob marked as having it")
	}
	mustOpenKey(t, b, a, km)
	if k := b.l.peers["alice"].senderKey(keyID); k == nil || len(b.l.peers["alice"].keys) != 1 {
		t.Fatal("bob has not installed alice's sender key")
	}
	a.l.SenderKeySent(b.id, keyID)
	g := sealTo(t, a, []byte("to all"), b, c)
	if got := carried(t, g); len(got) != 1 || got[0] != "carol" || g[9] != 0 || g[10] != 1 {
		t.Fatalf("group message carries distributions for %q, want carol's only", got)
	}
	mustOpen(t, b, a, g, []byte("to all"))
	mustOpen(t, c, a, g, []byte("to all"))
	g = sealTo(t, a, []byte("again"), b, c)
	if got := carried(t, g); len(got) != 0 || len(g) != GroupOverhead+len("again") {
		t.Fatalf("second group message carries distributions for %q", got)
	}
	mustOpen(t, b, a, g, []byte("again"))
	mustOpen(t, c, a, g, []byte("again"))
	// The session the sender key message started carries the rest.
	mustOpen(t, a, b, sealTo(t, b, []byte("reply"), a), []byte("reply"))
	mustOpen(t, b, a, sealTo(t, a, []byte("pairwise"), b), []byte("pairwise"))

	// A key made by SealSenderKey when there was none, for one member
	// only: the rekey-free path.
	ms = group(t, "alice", "bob", "carol")
	a, b, c = ms[0], ms[1], ms[2]
	kb, idB := sealKey(t, a, b)
	kc, idC := sealKey(t, a, c)
	if idB != idC {
		t.Fatal("a second SealSenderKey made a new key")
	}
	mustOpenKey(t, c, a, kc)
	mustOpenKey(t, b, a, kb)
	a.l.SenderKeySent(b.id, idB)
	a.l.SenderKeySent(c.id, idC)
	g = sealTo(t, a, []byte("nothing carried"), b, c)
	if got := carried(t, g); len(got) != 0 {
		t.Fatalf("group message carries distributions for %q", got)
	}
	mustOpen(t, b, a, g, []byte("nothing carried"))
	mustOpen(t, c, a, g, []byte("nothing carried"))
}

// TestSenderKeyOnItsWay: while alice's hand-out to bob is on its way, her group
// messages carry the key for carol only; bob opens them once it arrives.
func TestSenderKeyOnItsWay(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	km, keyID := sealKey(t, a, b)
	if a.l.SenderKeyOwed(b.id) {
		t.Fatal("owed before any message skipped bob")
	}
	var gs [][]byte
	for i := range 3 {
		g := sealTo(t, a, fmt.Appendf(nil, "m%d", i), b, c)
		if got := carried(t, g); (i == 0 && (len(got) != 1 || got[0] != "carol")) || (i > 0 && len(got) != 0) {
			t.Fatalf("message %d carries distributions for %q, want carol's in the first only", i, got)
		}
		mustOpen(t, c, a, g, fmt.Appendf(nil, "m%d", i))
		gs = append(gs, g)
	}
	if got := a.l.SenderKeyLacking([][]byte{b.id, c.id}); len(got) != 1 || !bytes.Equal(got[0], b.id) {
		t.Fatalf("lacking %q, want bob (the hand-out is not known to have arrived)", got)
	}
	if !a.l.SenderKeyOwed(b.id) || a.l.SenderKeyOwed(c.id) {
		t.Fatal("not owed to bob, whom messages skipped, or owed to carol")
	}
	refuse(t, b, a.id, gs[1], testAD, "a group message before the key")
	mustOpenKey(t, b, a, km)
	for i := 2; i >= 0; i-- {
		mustOpen(t, b, a, gs[i], fmt.Appendf(nil, "m%d", i))
	}
	a.l.SenderKeySent(b.id, keyID)
	if got := a.l.SenderKeyLacking([][]byte{b.id, c.id}); len(got) != 0 || a.l.SenderKeyOwed(b.id) {
		t.Fatalf("lacking %q, or still owed to bob, after the hand-out arrived", got)
	}
	g := sealTo(t, a, []byte("after"), b, c)
	if got := carried(t, g); len(got) != 0 {
		t.Fatalf("carries distributions for %q after both have the key", got)
	}
	mustOpen(t, b, a, g, []byte("after"))
}

// TestSenderKeyNotSent: alice's hand-out to bob did not arrive (or its answer did not):
// her next group message carries the key for bob from where the hand-out had it, so
// bob opens the messages that skipped him; and SealSenderKey seals that same key again.
func TestSenderKeyNotSent(t *testing.T) {
	for _, how := range []string{"in a group message", "sealed again", "both, arriving late"} {
		ms := group(t, "alice", "bob", "carol")
		a, b, c := ms[0], ms[1], ms[2]
		lost, keyID := sealKey(t, a, b)
		skipped := sealTo(t, a, []byte("skipped bob"), b, c)
		a.l.SenderKeyNotSent(b.id, keyID)
		var again []byte
		if how != "in a group message" {
			var id uint32
			again, id = sealKey(t, a, b)
			if id != keyID {
				t.Fatalf("%s: sealed key %d again, want %d", how, id, keyID)
			}
		}
		if how == "sealed again" {
			mustOpenKey(t, b, a, again)
			a.l.SenderKeySent(b.id, keyID)
		}
		g := sealTo(t, a, []byte("next"), b, c)
		got := carried(t, g)
		switch how {
		case "in a group message":
			if len(got) != 1 || got[0] != "bob" {
				t.Fatalf("%s: carries distributions for %q, want bob's", how, got)
			}
			mustOpen(t, b, a, g, []byte("next"))
		case "sealed again":
			if len(got) != 0 {
				t.Fatalf("%s: carries distributions for %q", how, got)
			}
			mustOpen(t, b, a, g, []byte("next"))
		default: // the second hand-out is on its way: nothing carried, both arrive after
			if len(got) != 0 {
				t.Fatalf("%s: carries distributions for %q", how, got)
			}
			mustOpenKey(t, b, a, lost)
			mustOpenKey(t, b, a, again)
			mustOpen(t, b, a, g, []byte("next"))
		}
		mustOpen(t, b, a, skipped, []byte("skipped bob"))
		if n := len(b.l.peers["alice"].keys); n != 1 {
			t.Fatalf("%s: bob has %d keys of alice's", how, n)
		}
	}
}

// TestSenderKeyOwedAcrossRekey: a hand-out that group messages skipped outlives a
// rekey; one that none skipped does not.
func TestSenderKeyOwedAcrossRekey(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave")
	a, b, c, d := ms[0], ms[1], ms[2], ms[3]
	_, old := sealKey(t, a, b)
	_, _ = sealKey(t, a, c)
	skipped := sealTo(t, a, []byte("under the old key"), b, d) // skips bob; carol had none
	mustOpen(t, d, a, skipped, []byte("under the old key"))
	a.l.SenderKeyNotSent(b.id, old)
	a.l.SenderKeyNotSent(c.id, old)
	a.l.RemovePeer(d.id)
	g := sealTo(t, a, []byte("new key"), b, c)
	if got := carried(t, g); len(got) != 2 {
		t.Fatalf("first message of the new key carries distributions for %q, want bob's and carol's", got)
	}
	mustOpen(t, b, a, g, []byte("new key"))
	mustOpen(t, c, a, g, []byte("new key"))
	if got := a.l.SenderKeyLacking([][]byte{b.id, c.id}); len(got) != 1 || !bytes.Equal(got[0], b.id) {
		t.Fatalf("lacking %q, want bob (owed the old key)", got)
	}
	km, id := sealKey(t, a, b)
	if id != old {
		t.Fatalf("sealed key %d for bob, want the old one %d", id, old)
	}
	mustOpenKey(t, b, a, km)
	mustOpen(t, b, a, skipped, []byte("under the old key"))
	a.l.SenderKeySent(b.id, old)
	if got := a.l.SenderKeyLacking([][]byte{b.id, c.id}); len(got) != 0 {
		t.Fatalf("lacking %q after the old key arrived", got)
	}
	if len(a.l.handing) != 0 {
		t.Fatalf("hand-outs left: %d", len(a.l.handing))
	}
}

// TestSenderKeyHandOutState: a hand-out owed survives a save and load, as not on its
// way (what was on its way when we stopped is not known to have arrived).
func TestSenderKeyHandOutState(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	_, keyID := sealKey(t, a, b)
	skipped := sealTo(t, a, []byte("skipped bob"), b, c)
	a2 := restored(t, a) // (which checks that it encodes the same again)
	g := sealTo(t, a2, []byte("after restart"), b, c)
	if got := carried(t, g); len(got) != 1 || got[0] != "bob" {
		t.Fatalf("after restart: carries distributions for %q, want bob's", got)
	}
	mustOpen(t, b, a2, g, []byte("after restart"))
	mustOpen(t, b, a2, skipped, []byte("skipped bob"))
	if a2.l.handOut(b.id, keyID) != nil {
		t.Fatal("hand-out still owed after a group message carried it")
	}
}

// TestSenderKeySentStale: SenderKeySent for a key we have replaced marks
// nothing, nor does it for a member that is not a peer or was removed.
func TestSenderKeySentStale(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave")
	a, b, c, d := ms[0], ms[1], ms[2], ms[3]
	a.l.SenderKeySent(b.id, 1) // no key yet: nothing to mark
	km, old := sealKey(t, a, b)
	mustOpenKey(t, b, a, km)
	a.l.Rekey()
	nk := sealTo(t, a, []byte("new key"), c, d)
	mustOpen(t, c, a, nk, []byte("new key"))
	mustOpen(t, d, a, nk, []byte("new key"))
	if a.l.own.keyID == old {
		t.Fatal("no new key")
	}
	a.l.SenderKeySent(b.id, old) // delivered late: the key is gone
	if a.l.own.sentTo["bob"] {
		t.Fatal("SenderKeySent marked bob for a stale key id")
	}
	g := sealTo(t, a, []byte("to all"), b, c, d)
	if got := carried(t, g); len(got) != 1 || got[0] != "bob" {
		t.Fatalf("group message carries distributions for %q, want bob's", got)
	}
	for _, m := range []*member{b, c, d} {
		mustOpen(t, m, a, g, []byte("to all"))
	}

	// Not a peer, or removed: no mark, which would make the next group
	// message rekey as for a member left out.
	cur := a.l.own.keyID
	a.l.RemovePeer(d.id)
	a.l.own.sentTo = map[string]bool{"bob": true, "carol": true} // dave had it from the group message
	a.l.SenderKeySent([]byte("mallory"), cur)
	a.l.SenderKeySent(d.id, cur)
	if len(a.l.own.sentTo) != 2 {
		t.Fatalf("SenderKeySent marked a non-peer or a removed member: %v", a.l.own.sentTo)
	}
}

// TestSenderKeyDomainSeparation: a sender key message opens only with
// OpenSenderKey, which opens nothing else: not an application message with
// a distribution in it, not the distribution a group message carries, not
// a group message; nor does a sender key message stand in for the
// distribution in a group message.
func TestSenderKeyDomainSeparation(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	km, keyID := sealKey(t, a, b)
	refuse(t, b, a.id, km, testAD, "sender key message as an application message")

	// An application message whose plaintext is a distribution.
	fake := newOwnSenderKey()
	pm := sealTo(t, a, fake.distribution(), b)
	refuseKey(t, b, a.id, pm, testAD, "application message as a sender key message")

	// The distribution a group message carries for bob (the hand-out did not arrive).
	a.l.SenderKeyNotSent(b.id, keyID)
	g := sealTo(t, a, []byte("group"), b, c)
	refuseKey(t, b, a.id, entryFor(t, g, "bob"), testAD, "a group message's distribution as a sender key message")
	refuseKey(t, b, a.id, g, testAD, "group message as a sender key message")

	// The sender key message in place of the distribution in a group
	// message, under the very key and iteration it carries; the genuine
	// distribution, sealed the same way, opens (so the splice is sound).
	spliced := groupWith(t, a, b.id, km, []byte("spliced"))
	refuse(t, b, a.id, spliced, testAD, "sender key message in a group message")
	genuine := sealEntry(t, a, b, testAD, messageLabel, a.l.own.distribution())
	mustOpen(t, b, a, groupWith(t, a, b.id, genuine, []byte("genuine")), []byte("genuine"))

	// Each half of the separation on its own: the label in the AD, and the
	// label of the AEAD key.
	dist := a.l.own.distribution()
	refuseKey(t, b, a.id, sealEntry(t, a, b, testAD, keyMessageLabel, dist), testAD,
		"sender key message without the label in its AD")
	refuseKey(t, b, a.id, sealEntry(t, a, b, keyMessageAD(testAD), messageLabel, dist), testAD,
		"sender key message under the message label")

	refuseKey(t, b, a.id, km, []byte("another group"), "wrong ad")
	refuseKey(t, b, a.id, km, nil, "no ad")
	refuseKey(t, c, a.id, km, testAD, "for another member")
	refuseKey(t, b, c.id, km, testAD, "wrong sender")
	if err := b.l.OpenSenderKey([]byte("mallory"), testAD, km); err != layers.ErrNoKey {
		t.Fatalf("unknown sender: %v, want ErrNoKey", err)
	}
	mustOpenKey(t, b, a, km)
	if b.l.peers["alice"].senderKey(keyID) == nil {
		t.Fatal("key not installed")
	}
	// Replay: refused by the ratchet (its message key is gone), nothing
	// changes.
	refuseKey(t, b, a.id, km, testAD, "replay")
	if n := len(b.l.peers["alice"].keys); n != 1 {
		t.Fatalf("bob has %d keys from alice after a replay", n)
	}
	mustOpen(t, b, a, sealTo(t, a, []byte("after"), b, c), []byte("after"))
}

// TestSenderKeyNotADistribution: a well-sealed sender key message whose
// plaintext is no distribution is refused, and its ratchet step is not
// taken.
func TestSenderKeyNotADistribution(t *testing.T) {
	ms := group(t, "alice", "bob")
	a, b := ms[0], ms[1]
	km, _ := sealKey(t, a, b)
	mustOpenKey(t, b, a, km)
	bad := sealEntry(t, a, b, keyMessageAD(testAD), keyMessageLabel, []byte("not a distribution"))
	refuseKey(t, b, a.id, bad, testAD, "no distribution inside")
	refuseKey(t, b, a.id, bad, testAD, "no distribution inside, again")
}

// TestSenderKeyBadInput: every corruption of a sender key message (a prekey
// one, then a pairwise one) is refused with bob's state unchanged.
func TestSenderKeyBadInput(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b := ms[0], ms[1]
	km, _ := sealKey(t, a, b)
	runBadKey(t, b, a, km, "prekey")
	mustOpen(t, a, b, sealTo(t, b, []byte("ack"), a), []byte("ack"))
	a.l.Rekey()
	km, _ = sealKey(t, a, b)
	if km[0] != typePairwise {
		t.Fatalf("sender key message of type %d on an answered session", km[0])
	}
	runBadKey(t, b, a, km, "pairwise")
	for _, garbage := range [][]byte{nil, {}, {0}, {typeGroup}, {typePairwise}, {typePrekey},
		bytes.Repeat([]byte{typePairwise}, 200), bytes.Repeat([]byte{typeGroup}, 200)} {
		refuseKey(t, b, a.id, garbage, testAD, fmt.Sprintf("garbage %x", garbage))
	}
	refuseKey(t, b, a.id, km, make([]byte, maxAD+1), "ad too long")
	refuseKey(t, b, nil, km, testAD, "no sender")
}

func runBadKey(t *testing.T, to, from *member, msg []byte, name string) {
	t.Helper()
	step := 1
	if len(msg) > 256 && testing.Short() {
		step = 7
	}
	for bit := 0; bit < 8*len(msg); bit += step {
		bad := bytes.Clone(msg)
		bad[bit/8] ^= 1 << (bit % 8)
		refuseKey(t, to, from.id, bad, testAD, name+": flipped bit")
	}
	for n := range len(msg) {
		refuseKey(t, to, from.id, msg[:n], testAD, name+": truncated")
	}
	refuseKey(t, to, from.id, append(bytes.Clone(msg), 0), testAD, name+": extended")
	mustOpenKey(t, to, from, msg)
	refuseKey(t, to, from.id, msg, testAD, name+": replay")
}

// TestSenderKeyRemoved: no sender key message for or from a removed member.
func TestSenderKeyRemoved(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	km, _ := sealKey(t, a, b)
	b.l.RemovePeer(a.id)
	refuseKey(t, b, a.id, km, testAD, "from a removed member")
	if err := b.l.OpenSenderKey(a.id, testAD, km); err != layers.ErrAuth {
		t.Fatalf("from a removed member: %v, want ErrAuth", err)
	}
	if n := len(b.l.peers["alice"].keys); n != 0 {
		t.Fatalf("removed member installed %d keys", n)
	}
	// The same on a session bob has answered.
	ms = group(t, "alice", "bob", "carol")
	a, b, c = ms[0], ms[1], ms[2]
	mustOpen(t, b, a, sealTo(t, a, []byte("hello"), b), []byte("hello"))
	km, _ = sealKey(t, a, b)
	b.l.RemovePeer(a.id)
	if err := b.l.OpenSenderKey(a.id, testAD, km); err != layers.ErrAuth {
		t.Fatalf("from a removed member, on a session: %v, want ErrAuth", err)
	}

	a.l.RemovePeer(c.id)
	for _, to := range [][]byte{c.id, []byte("mallory"), a.id} {
		if _, _, err := a.l.SealSenderKey(to, testAD); err == nil {
			t.Fatalf("sealed a sender key for %q", to)
		}
	}
	if _, _, err := a.l.SealSenderKey(b.id, make([]byte, maxAD+1)); err == nil {
		t.Fatal("sealed a sender key with an ad over maxAD")
	}
	if _, _, err := a.l.SealSenderKey(b.id, make([]byte, maxAD)); err != nil {
		t.Fatalf("ad of maxAD bytes: %v", err)
	}
}

// TestSenderKeyRekeys: SealSenderKey makes a new key when a rekey is
// pending, and bob keeps at most maxSenderKeysPerPeer of alice's keys, the
// newest.
func TestSenderKeyRekeys(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	var ids []uint32
	for i := range maxSenderKeysPerPeer + 2 {
		if i > 0 {
			a.l.Rekey()
		}
		km, keyID := sealKey(t, a, b)
		if a.l.rekey || len(ids) > 0 && keyID == ids[len(ids)-1] {
			t.Fatal("SealSenderKey did not rekey")
		}
		ids = append(ids, keyID)
		mustOpenKey(t, b, a, km)
	}
	p := b.l.peers["alice"]
	if len(p.keys) != maxSenderKeysPerPeer {
		t.Fatalf("bob keeps %d of alice's keys", len(p.keys))
	}
	for i, k := range p.keys {
		if k.keyID != ids[len(ids)-maxSenderKeysPerPeer+i] {
			t.Fatalf("bob keeps the wrong keys")
		}
	}
	// RemovePeer asks for a rekey too.
	a.l.RemovePeer(c.id)
	if _, keyID := sealKey(t, a, b); keyID == ids[len(ids)-1] {
		t.Fatal("SealSenderKey after RemovePeer kept the key")
	}
}

// TestSenderKeyCommitAfter: a staged Open is redone after an OpenSenderKey
// moved the same session, so the sender key message is not opened twice.
func TestSenderKeyCommitAfter(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b := ms[0], ms[1]
	mustOpen(t, b, a, sealTo(t, a, []byte("0"), b), []byte("0"))
	mustOpen(t, a, b, sealTo(t, b, []byte("1"), a), []byte("1"))
	m := sealTo(t, a, []byte("2"), b)
	km, _ := sealKey(t, a, b)
	ctx := &layers.Context{Group: []byte("g"), Sender: a.id, AD: testAD}
	pt, commit, err := b.l.Open(ctx, m)
	if err != nil || string(pt) != "2" {
		t.Fatal(err)
	}
	mustOpenKey(t, b, a, km)
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	refuseKey(t, b, a.id, km, testAD, "replay after a commit staged before")
}

// TestSenderKeyState: our key made by SealSenderKey and the SenderKeySent
// marks, and the key bob installed, survive a save and load.
func TestSenderKeyState(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	km, keyID := sealKey(t, a, b)
	mustOpenKey(t, b, a, km)
	a.l.SenderKeySent(b.id, keyID)

	a2, b2 := restored(t, a), restored(t, b)
	if a2.l.own == nil || a2.l.own.keyID != keyID || !a2.l.own.sentTo["bob"] || a2.l.rekey {
		t.Fatal("own sender key or its marks lost in a round trip")
	}
	g := sealTo(t, a2, []byte("after restart"), b2, c)
	if got := carried(t, g); len(got) != 1 || got[0] != "carol" {
		t.Fatalf("group message after restart carries distributions for %q", got)
	}
	mustOpen(t, b2, a2, g, []byte("after restart"))
	mustOpen(t, c, a2, g, []byte("after restart"))
	refuseKey(t, b2, a.id, km, testAD, "replay after restart")
}

// TestSenderKeyExchange: two members hand each other their keys, one in
// answer to the other (the answer goes on the session the first started)
// or both at once (crossing handshakes); group messages then carry neither.
func TestSenderKeyExchange(t *testing.T) {
	for _, crossing := range []bool{false, true} {
		ms := group(t, "alice", "bob", "carol")
		a, b := ms[0], ms[1]
		ka, idA := sealKey(t, a, b)
		var kb []byte
		var idB uint32
		if crossing {
			kb, idB = sealKey(t, b, a)
			mustOpenKey(t, a, b, kb)
			mustOpenKey(t, b, a, ka)
		} else {
			mustOpenKey(t, b, a, ka)
			kb, idB = sealKey(t, b, a)
			if kb[0] != typePairwise {
				t.Fatalf("answer of type %d, want a pairwise message", kb[0])
			}
			mustOpenKey(t, a, b, kb)
		}
		a.l.SenderKeySent(b.id, idA)
		b.l.SenderKeySent(a.id, idB)
		for _, from := range []*member{a, b} {
			to := others(ms, from)
			g := sealTo(t, from, []byte("hi from "+from.name), to...)
			if got := carried(t, g); len(got) != 1 || got[0] != "carol" {
				t.Fatalf("crossing %v: %s's group message carries distributions for %q", crossing, from.name, got)
			}
			for _, m := range to {
				mustOpen(t, m, from, g, []byte("hi from "+from.name))
			}
		}
		for range 2 {
			mustOpen(t, b, a, sealTo(t, a, []byte("ab"), b), []byte("ab"))
			mustOpen(t, a, b, sealTo(t, b, []byte("ba"), a), []byte("ba"))
		}
		if a.l.peers["bob"].sessions[0].id != b.l.peers["alice"].sessions[0].id {
			t.Fatalf("crossing %v: alice and bob send on different sessions", crossing)
		}
	}
}

// SenderKeyLacking names the members our next group message would carry the key for.
func TestSenderKeyLacking(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	all := [][]byte{b.id, c.id, []byte("nobody")}
	names := func(ids [][]byte) string { return fmt.Sprintf("%q", ids) }
	if got := a.l.SenderKeyLacking(all); names(got) != names(all[:2]) {
		t.Fatalf("with no key yet: %s", names(got))
	}
	km, keyID := sealKey(t, a, b)
	if got := a.l.SenderKeyLacking(all); len(got) != 2 {
		t.Fatalf("after sealing for bob, not yet delivered: %s", names(got))
	}
	mustOpenKey(t, b, a, km)
	a.l.SenderKeySent(b.id, keyID)
	if got := a.l.SenderKeyLacking(all); names(got) != names([][]byte{c.id}) {
		t.Fatalf("after bob got it: %s", names(got))
	}
	mustOpen(t, c, a, sealTo(t, a, []byte("hi"), b, c), []byte("hi"))
	if got := a.l.SenderKeyLacking(all); len(got) != 0 {
		t.Fatalf("after a group message to both: %s", names(got))
	}
	a.l.Rekey()
	if got := a.l.SenderKeyLacking(all); len(got) != 2 {
		t.Fatalf("with a rekey pending: %s", names(got))
	}
	a.l.RemovePeer(c.id)
	if got := a.l.SenderKeyLacking(all); names(got) != names([][]byte{b.id}) {
		t.Fatalf("after carol's removal: %s", names(got))
	}
}

// TestHandOutsComing: alice's messages skip the members her key is about to be handed to,
// and carry it for no one; the hand-out, sealed later, carries the key from where it was
// when they were queued, so bob opens the message that skipped him. A hand-out that was
// never sealed (carol could not be reached) is undone by SenderKeyNotSent: the next
// message carries the key for carol, from the same point.
func TestHandOutsComing(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave")
	a, b, c, d := ms[0], ms[1], ms[2], ms[3]
	keyID := a.l.HandOutsComing([][]byte{b.id, c.id, a.id, []byte("stranger")})
	first := sealTo(t, a, []byte("first"), b, c, d)
	if got := carried(t, first); len(got) != 1 || got[0] != "dave" {
		t.Fatalf("the first message carries distributions for %q, want dave's only", got)
	}
	mustOpen(t, d, a, first, []byte("first"))
	if !a.l.SenderKeyOwed(b.id) || !a.l.SenderKeyOwed(c.id) || a.l.SenderKeyOwed(d.id) {
		t.Fatal("not owed to bob and carol, whom the message skipped, or owed to dave")
	}
	if again := a.l.HandOutsComing([][]byte{b.id}); again != keyID {
		t.Fatalf("a second call made key %d, want %d", again, keyID)
	}
	km, id := sealKey(t, a, b)
	if id != keyID {
		t.Fatalf("the hand-out sealed key %d, want %d", id, keyID)
	}
	mustOpenKey(t, b, a, km)
	mustOpen(t, b, a, first, []byte("first"))
	a.l.SenderKeySent(b.id, keyID)

	a.l.SenderKeyNotSent(c.id, keyID)
	next := sealTo(t, a, []byte("next"), b, c, d)
	if got := carried(t, next); len(got) != 1 || got[0] != "carol" {
		t.Fatalf("the next message carries distributions for %q, want carol's only", got)
	}
	mustOpen(t, c, a, next, []byte("next"))
	mustOpen(t, c, a, first, []byte("first"))
	if n := len(b.l.peers["alice"].keys); n != 1 {
		t.Fatalf("bob has %d keys of alice's", n)
	}
}

// TestSenderKeyLateAfterRekeys: a group message that comes after its sender
// rekeyed 15 times since (a partition held it back while members were removed:
// a rekey in each of the 16 epochs the chat core keeps for late messages)
// still opens; once maxSenderKeysPerPeer newer keys came, its key is gone, and
// another message under it does not open.
func TestSenderKeyLateAfterRekeys(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	mustOpen(t, b, a, sealTo(t, a, []byte("first"), b, c), []byte("first"))
	late := sealTo(t, a, []byte("late"), b, c) // held back, both of them
	stale := sealTo(t, a, []byte("stale"), b, c)
	rekey := func(i int) {
		a.l.Rekey()
		pt := []byte(fmt.Sprint("after rekey ", i))
		mustOpen(t, b, a, sealTo(t, a, pt, b, c), pt)
	}
	for i := range 15 {
		rekey(i)
	}
	mustOpen(t, b, a, late, []byte("late"))
	for i := 15; i < maxSenderKeysPerPeer; i++ {
		rekey(i)
	}
	ctx := &layers.Context{Group: []byte("g"), Sender: a.id, AD: testAD}
	if _, _, err := b.l.Open(ctx, stale); err != layers.ErrNoKey {
		t.Fatalf("a message under a key dropped since: %v, want ErrNoKey", err)
	}
}

// A member whose view of a peer goes to another identity and back (its group switched
// branches, and the peer's leaf differs between them) keeps what it had of each: the
// sessions and sender keys the peer still uses under either. Starting each afresh lost
// the session a hand-out had opened, and the peer's later messages under that identity
// never opened again (a prekey message on it counted as a replay), as seen in 20-peer
// swarm runs with churn across partitions.
func TestPeerIdentityBackAndForth(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b1, c := ms[0], ms[1], ms[2]
	old := sealTo(t, b1, []byte("under the first identity"), a, c)
	mustOpen(t, a, b1, old, []byte("under the first identity"))

	// Bob comes back with another identity (a rejoin: a new leaf and a new layer).
	b2 := newMember(t, "bob")
	for _, m := range []*member{a, c} {
		if err := b2.l.SetPeer(m.id, m.ident.Bundle()); err != nil {
			t.Fatal(err)
		}
		if err := m.l.SetPeer(b2.id, b2.ident.Bundle()); err != nil {
			t.Fatal(err)
		}
	}
	m1 := sealTo(t, b2, []byte("m1"), a, c) // carries b2's key, on a session alice has not answered
	mustOpen(t, a, b2, m1, []byte("m1"))

	// Alice's group goes to a branch where bob still has the first identity, and back.
	if err := a.l.SetPeer(b1.id, b1.ident.Bundle()); err != nil {
		t.Fatal(err)
	}
	again := sealTo(t, b1, []byte("the first identity again"), a, c)
	mustOpen(t, a, b1, again, []byte("the first identity again"))
	if err := a.l.SetPeer(b2.id, b2.ident.Bundle()); err != nil {
		t.Fatal(err)
	}
	m2 := sealTo(t, b2, []byte("m2"), a, c) // b2's key, which alice took with m1
	mustOpen(t, a, b2, m2, []byte("m2"))
	b2.l.Rekey()
	m3 := sealTo(t, b2, []byte("m3"), a, c) // a new key, on the same session, still unanswered
	if m3[0] != typeGroup {
		t.Fatalf("message type %d", m3[0])
	}
	mustOpen(t, a, b2, m3, []byte("m3"))
	// And the state with both kept encodes and loads the same.
	restored(t, a)
}

// TestNewSessionAfterStateLost: bob lost what he had of alice (a fresh layer, his
// identity the same), so her hand-outs on the session they had do not open. Once she
// starts a new session, her next hand-out opens, and her group messages after it.
func TestNewSessionAfterStateLost(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	msg, keyID := sealKey(t, a, b)
	mustOpenKey(t, b, a, msg)
	a.l.SenderKeySent(b.id, keyID)
	mustOpen(t, b, a, sealTo(t, a, []byte("1"), b, c), []byte("1"))
	mustOpen(t, a, b, sealTo(t, b, []byte("answer"), a), []byte("answer")) // the session is answered

	l, err := New(b.id, b.ident)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{a, c} {
		if err := l.SetPeer(m.id, m.ident.Bundle()); err != nil {
			t.Fatal(err)
		}
	}
	b = &member{name: "bob", id: b.id, ident: b.ident, l: l}
	if _, err := open(b, a.id, sealTo(t, a, []byte("2"), b, c), testAD); !errors.Is(err, layers.ErrNoKey) {
		t.Fatalf("a message of a key bob lost: %v", err)
	}
	a.l.ResendSenderKey(b.id)
	msg, _ = sealKey(t, a, b)
	refuseKey(t, b, a.id, msg, testAD, "a hand-out on a session bob lost")

	if err := a.l.NewSession(b.id); err != nil {
		t.Fatal(err)
	}
	msg, keyID = sealKey(t, a, b)
	mustOpenKey(t, b, a, msg)
	a.l.SenderKeySent(b.id, keyID)
	mustOpen(t, b, a, sealTo(t, a, []byte("3"), b, c), []byte("3"))
	mustOpen(t, a, b, sealTo(t, b, []byte("back"), a), []byte("back"))
	if err := a.l.NewSession([]byte("dave")); err == nil {
		t.Fatal("a session with a member alice has no bundle of")
	}
}
