package signal

import (
	"bytes"
	"slices"
	"testing"

	"github.com/tchat-p2p/tchat/layers"
)

// keyOf returns the sender key keyID that to holds of from.
func keyOf(t testing.TB, to, from *member, keyID uint32) *senderKey {
	t.Helper()
	p := to.l.peers[string(from.id)]
	if p == nil {
		t.Fatalf("%s has no peer %s", to.name, from.name)
	}
	k := p.senderKey(keyID)
	if k == nil {
		t.Fatalf("%s has no sender key %d of %s", to.name, keyID, from.name)
	}
	return k
}

// checkKey checks a sender key's base, iteration and skipped message
// numbers.
func checkKey(t testing.TB, k *senderKey, base, iteration uint32, skipped ...uint32) {
	t.Helper()
	var got []uint32
	for _, sk := range k.skipped {
		got = append(got, sk.n)
	}
	if k.base != base || k.iteration != iteration || !slices.Equal(got, skipped) {
		t.Fatalf("key at base %d, iteration %d, skipped %v; want %d, %d, %v",
			k.base, k.iteration, got, base, iteration, skipped)
	}
}

// skipAhead moves from's sender key on by n messages it never sends.
func skipAhead(t testing.TB, from *member, n int) {
	t.Helper()
	for range n {
		if _, mk, err := from.l.own.next(); err != nil {
			t.Fatal(err)
		} else {
			clear(mk[:])
		}
	}
}

// TestSenderKeyMergeRace: alice's group message M carries bob's
// distribution at iteration 0; the sender key message she seals after
// carries it at 1 and reaches bob first. M opens all the same, once.
func TestSenderKeyMergeRace(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	m := sealTo(t, a, []byte("M"), b, c)
	if got := carried(t, m); len(got) != 2 {
		t.Fatalf("M carries distributions for %q", got)
	}
	km, keyID := sealKey(t, a, b)
	mustOpenKey(t, b, a, km)
	checkKey(t, keyOf(t, b, a, keyID), 1, 1)
	mustOpen(t, b, a, m, []byte("M"))
	checkKey(t, keyOf(t, b, a, keyID), 0, 1) // M's key used, and gone
	if n := len(b.l.peers["alice"].keys); n != 1 {
		t.Fatalf("bob has %d keys of alice", n)
	}
	mustOpen(t, c, a, m, []byte("M"))
	refuse(t, b, a.id, m, testAD, "replay of M")
	refuseKey(t, b, a.id, km, testAD, "replay of the sender key message")
	later := sealTo(t, a, []byte("later"), b, c)
	if got := carried(t, later); len(got) != 0 {
		t.Fatalf("later message carries distributions for %q", got)
	}
	mustOpen(t, b, a, later, []byte("later"))
	mustOpen(t, c, a, later, []byte("later"))
	refuse(t, b, a.id, later, testAD, "replay of the later message")
	checkKey(t, keyOf(t, b, a, keyID), 0, 2)
}

// TestSenderKeyMergeReorder: group messages that each carry bob's
// distribution (ResendSenderKey) reach him in reverse order: each opens,
// once.
func TestSenderKeyMergeReorder(t *testing.T) {
	for _, order := range [][]int{{1, 0}, {2, 0, 1}, {2, 1, 0}} {
		ms := group(t, "alice", "bob", "carol")
		a, b, c := ms[0], ms[1], ms[2]
		var gs [][]byte
		for i := range len(order) {
			if i > 0 {
				a.l.ResendSenderKey(b.id) // alice never marks bob
			}
			g := sealTo(t, a, []byte{'g', '0' + byte(i)}, b, c)
			if got := carried(t, g); !slices.Contains(got, "bob") {
				t.Fatalf("message %d carries distributions for %q, not bob's", i, got)
			}
			gs = append(gs, g)
		}
		keyID := a.l.own.keyID
		for _, i := range order {
			mustOpen(t, b, a, gs[i], []byte{'g', '0' + byte(i)})
		}
		checkKey(t, keyOf(t, b, a, keyID), 0, uint32(len(order)))
		for i, g := range gs {
			refuse(t, b, a.id, g, testAD, "replay")
			mustOpen(t, c, a, g, []byte{'g', '0' + byte(i)})
		}
		mustOpen(t, b, a, sealTo(t, a, []byte("later"), b, c), []byte("later"))
	}
}

// TestSenderKeyMergeConflict: a distribution of a key id bob has, with
// another signature key, is refused, whether it starts before the key bob
// has or not, in a sender key message or in a group message: bob's state
// stays as it was. The genuine distribution then merges.
func TestSenderKeyMergeConflict(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	km0, keyID := sealKey(t, a, b) // at 0
	a.l.SenderKeySent(b.id, keyID)
	m0 := sealTo(t, a, []byte("m0"), b, c)
	if got := carried(t, m0); len(got) != 1 || got[0] != "carol" {
		t.Fatalf("m0 carries distributions for %q", got)
	}
	km1, _ := sealKey(t, a, b) // at 1
	mustOpenKey(t, b, a, km1)
	checkKey(t, keyOf(t, b, a, keyID), 1, 1)
	refuse(t, b, a.id, m0, testAD, "m0 before the merge")

	for _, it := range []uint32{0, 1, 2} {
		forged := newOwnSenderKey()
		forged.keyID, forged.iteration = keyID, it
		dist := forged.distribution()
		refuseKey(t, b, a.id, sealEntry(t, a, b, keyMessageAD(testAD), keyMessageLabel, dist), testAD,
			"sender key message with another signature key")
		if it <= a.l.own.iteration { // a group message carries no distribution of a later iteration
			g := groupWith(t, a, b.id, sealEntry(t, a, b, testAD, messageLabel, dist), []byte("forged"))
			refuse(t, b, a.id, g, testAD, "group message with a distribution of another signature key")
		}
	}
	checkKey(t, keyOf(t, b, a, keyID), 1, 1)

	mustOpenKey(t, b, a, km0)
	checkKey(t, keyOf(t, b, a, keyID), 0, 1, 0)
	mustOpen(t, b, a, m0, []byte("m0"))
	refuse(t, b, a.id, m0, testAD, "replay of m0")
}

// TestSenderKeyMergeKeepsReplays: an earlier distribution adds the keys of
// the messages before the key bob has started at, and no others: what he
// opened stays refused, here messages that carry nothing for him, which
// only the sender key keeps from opening twice.
func TestSenderKeyMergeKeepsReplays(t *testing.T) {
	t.Run("group message", func(t *testing.T) {
		ms := group(t, "alice", "bob", "carol")
		a, b, c := ms[0], ms[1], ms[2]
		m0 := sealTo(t, a, []byte("m0"), b, c) // carries bob's distribution at 0
		km, keyID := sealKey(t, a, b)          // at 1
		m1 := sealTo(t, a, []byte("m1"), b, c)
		if got := carried(t, m1); len(got) != 0 {
			t.Fatalf("m1 carries distributions for %q", got)
		}
		mustOpenKey(t, b, a, km)
		mustOpen(t, b, a, m1, []byte("m1"))
		checkKey(t, keyOf(t, b, a, keyID), 1, 2)
		mustOpen(t, b, a, m0, []byte("m0"))
		checkKey(t, keyOf(t, b, a, keyID), 0, 2)
		refuse(t, b, a.id, m1, testAD, "replay of m1 after the merge")
		refuse(t, b, a.id, m0, testAD, "replay of m0")
		mustOpen(t, b, a, sealTo(t, a, []byte("m2"), b, c), []byte("m2"))
	})
	t.Run("sender key message", func(t *testing.T) {
		ms := group(t, "alice", "bob", "carol")
		a, b, c := ms[0], ms[1], ms[2]
		km0, keyID := sealKey(t, a, b) // at 0
		a.l.SenderKeySent(b.id, keyID)
		m0 := sealTo(t, a, []byte("m0"), b, c)
		km1, _ := sealKey(t, a, b) // at 1
		m1 := sealTo(t, a, []byte("m1"), b, c)
		km2, _ := sealKey(t, a, b) // at 2
		m2 := sealTo(t, a, []byte("m2"), b, c)
		m3 := sealTo(t, a, []byte("m3"), b, c)
		mustOpenKey(t, b, a, km2)
		mustOpen(t, b, a, m3, []byte("m3"))
		checkKey(t, keyOf(t, b, a, keyID), 2, 4, 2)
		mustOpenKey(t, b, a, km0)
		checkKey(t, keyOf(t, b, a, keyID), 0, 4, 0, 1, 2)
		refuse(t, b, a.id, m3, testAD, "replay of m3 after the merge")
		mustOpen(t, b, a, m1, []byte("m1"))
		mustOpen(t, b, a, m0, []byte("m0"))
		mustOpen(t, b, a, m2, []byte("m2"))
		checkKey(t, keyOf(t, b, a, keyID), 0, 4)
		// km1, late: it starts after the base the merge lowered the key
		// to, so it adds nothing, though it starts before the key's first
		// base: m1's key, used, does not come back.
		mustOpenKey(t, b, a, km1)
		checkKey(t, keyOf(t, b, a, keyID), 0, 4)
		for _, m := range [][]byte{m0, m1, m2, m3} {
			refuse(t, b, a.id, m, testAD, "replay")
		}
		// The sender key messages again: refused by the session; had they
		// opened, they would add nothing, starting at base or later.
		refuseKey(t, b, a.id, km0, testAD, "replay of km0")
		refuseKey(t, b, a.id, km2, testAD, "replay of km2")
	})
}

// TestSenderKeyMergeCommitAfter: an Open staged with a merge, committed
// after another merge changed the key, is staged again, on the merged key:
// no key is added twice.
func TestSenderKeyMergeCommitAfter(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	var gs [][]byte
	for i := range 3 {
		a.l.ResendSenderKey(b.id)
		gs = append(gs, sealTo(t, a, []byte{'g', '0' + byte(i)}, b, c))
	}
	keyID := a.l.own.keyID
	mustOpen(t, b, a, gs[2], []byte("g2"))
	ctx := &layers.Context{Group: []byte("g"), Sender: a.id, AD: testAD}
	pt, commit, err := b.l.Open(ctx, gs[1])
	if err != nil || string(pt) != "g1" {
		t.Fatalf("staging g1: %q, %v", pt, err)
	}
	checkKey(t, keyOf(t, b, a, keyID), 2, 3) // nothing changed yet
	mustOpen(t, b, a, gs[0], []byte("g0"))
	checkKey(t, keyOf(t, b, a, keyID), 0, 3, 1)
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	checkKey(t, keyOf(t, b, a, keyID), 0, 3)
	for _, g := range gs {
		refuse(t, b, a.id, g, testAD, "replay")
	}
}

// TestSenderKeyMergeBounds: a distribution more than MaxSkip before the key
// bob has adds nothing; MaxSkip before, it adds MaxSkip keys; and beyond
// MaxSkippedKeys the keys of the lowest numbers go, as they do when a
// message skips keys.
func TestSenderKeyMergeBounds(t *testing.T) {
	for _, far := range []int{MaxSkip, MaxSkip + 1} {
		ms := group(t, "alice", "bob", "carol")
		a, b, c := ms[0], ms[1], ms[2]
		km0, keyID := sealKey(t, a, b)
		a.l.SenderKeySent(b.id, keyID)
		m0 := sealTo(t, a, []byte("m0"), b, c)
		skipAhead(t, a, far-1)
		kmFar, _ := sealKey(t, a, b)
		mustOpenKey(t, b, a, kmFar)
		mustOpenKey(t, b, a, km0)
		k := keyOf(t, b, a, keyID)
		if far > MaxSkip {
			checkKey(t, k, uint32(far), uint32(far))
			refuse(t, b, a.id, m0, testAD, "m0, too far before")
			continue
		}
		if k.base != 0 || len(k.skipped) != MaxSkip {
			t.Fatalf("base %d, %d skipped", k.base, len(k.skipped))
		}
		mustOpen(t, b, a, m0, []byte("m0"))
	}

	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	km0, keyID := sealKey(t, a, b)
	a.l.SenderKeySent(b.id, keyID)
	m0 := sealTo(t, a, []byte("m0"), b, c)
	m1 := sealTo(t, a, []byte("m1"), b, c)
	km2, _ := sealKey(t, a, b)
	mustOpenKey(t, b, a, km2)
	skipAhead(t, a, MaxSkip)
	mustOpen(t, b, a, sealTo(t, a, []byte("far"), b, c), []byte("far"))
	skipAhead(t, a, MaxSkip-1)
	mustOpen(t, b, a, sealTo(t, a, []byte("farther"), b, c), []byte("farther"))
	k := keyOf(t, b, a, keyID)
	if k.base != 2 || len(k.skipped) != MaxSkippedKeys-1 {
		t.Fatalf("base %d, %d skipped", k.base, len(k.skipped))
	}
	mustOpenKey(t, b, a, km0)
	k = keyOf(t, b, a, keyID)
	if k.base != 0 || len(k.skipped) != MaxSkippedKeys || k.skipped[0].n != 1 || k.skipped[1].n != 2 {
		t.Fatalf("base %d, %d skipped from %d", k.base, len(k.skipped), k.skipped[0].n)
	}
	refuse(t, b, a.id, m0, testAD, "m0, its key over MaxSkippedKeys")
	mustOpen(t, b, a, m1, []byte("m1"))
}

// TestSenderKeyMergeState: a key's base survives a save and load (version
// 3), so that an earlier distribution still merges after it.
func TestSenderKeyMergeState(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	m0 := sealTo(t, a, []byte("m0"), b, c)
	km, keyID := sealKey(t, a, b)
	m1 := sealTo(t, a, []byte("m1"), b, c)
	mustOpenKey(t, b, a, km)
	mustOpen(t, b, a, m1, []byte("m1"))
	checkKey(t, keyOf(t, b, a, keyID), 1, 2)

	if stateVersion < 3 {
		t.Fatalf("state version %d", stateVersion)
	}
	b2 := restored(t, b)
	checkKey(t, keyOf(t, b2, a, keyID), 1, 2)
	refuse(t, b2, a.id, m1, testAD, "replay of m1 after restart")
	mustOpen(t, b2, a, m0, []byte("m0"))
	checkKey(t, keyOf(t, b2, a, keyID), 0, 2)
	refuse(t, b2, a.id, m1, testAD, "replay of m1 after the merge")

	// A base above the iteration, or a skipped key outside [base,
	// iteration), is no state we save.
	b3 := newMember(t, "bob")
	saved := state(t, b)
	k := keyOf(t, b, a, keyID)
	at := bytes.Index(saved, k.ck[:]) + keySize // iteration, then base
	if at < keySize || !bytes.Equal(saved[at:at+8], []byte{0, 0, 0, 2, 0, 0, 0, 1}) {
		t.Fatal("unexpected layout of the sender key")
	}
	for _, base := range []byte{3, 255} {
		bad := bytes.Clone(saved)
		bad[at+7] = base
		if err := b3.l.UnmarshalBinary(bad); err != errState {
			t.Fatalf("base %d over the iteration: %v", base, err)
		}
	}
	bad := bytes.Clone(saved)
	bad[at+7] = 2 // base at the iteration: fine with no key skipped
	if err := b3.l.UnmarshalBinary(bad); err != nil {
		t.Fatalf("base at the iteration: %v", err)
	}
}

// TestStateVersion2 loads a state saved by the code of version 2, before
// sender keys had a base (testdata, made by that code: bob's state after
// alice's group message m0, which carried her key, then m1, m2, m4 (m3
// skipped), and one from dave, who was then removed; then messages alice
// sealed after the save, and from before it m1, m3, and the sender key
// message she sealed for bob after m0, at iteration 1, which bob had not
// had). Its keys get base 0: no distribution adds keys to them, so that the
// messages opened before the save stay refused.
func TestStateVersion2(t *testing.T) {
	saved := readFile(t, "testdata/state-v2")
	if saved[0] != 2 {
		t.Fatalf("fixture of version %d", saved[0])
	}
	b := newMember(t, "bob")
	if err := b.l.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	if len(b.l.peers) != 3 || !b.l.peers["dave"].removed || b.l.peers["alice"].removed || b.l.peers["carol"].removed {
		t.Fatal("peers or their flags lost")
	}
	if len(b.l.peers["alice"].keys) != 1 || len(b.l.peers["dave"].keys) != 1 {
		t.Fatal("sender keys lost")
	}
	alice := &member{name: "alice", id: []byte("alice")}
	ka := b.l.peers["alice"].keys[0]
	keyID := ka.keyID
	if ka.iteration != 5 || len(ka.skipped) != 1 || ka.skipped[0].n != 3 {
		t.Fatal("alice's key is not the one saved")
	}

	savedAgain(t, b, saved, 4*senderKeys(b.l)+len(b.l.peers))

	opened := readFile(t, "testdata/state-v2-opened")
	refuse(t, b, alice.id, opened, testAD, "message opened before the save")
	mustOpenKey(t, b, alice, readFile(t, "testdata/state-v2-senderkey"))
	refuse(t, b, alice.id, opened, testAD, "message opened before the save, after the sender key message")
	checkKey(t, keyOf(t, b, alice, keyID), 0, 5, 3)
	for _, p := range b.l.peers {
		for _, k := range p.keys {
			if k.base != 0 {
				t.Fatalf("%s's key of version 2 at base %d", p.id, k.base)
			}
		}
	}
	mustOpen(t, b, alice, readFile(t, "testdata/state-v2-skipped"), []byte("skipped before save"))
	mustOpen(t, b, alice, readFile(t, "testdata/state-v2-pairwise"), []byte("pairwise after save"))
	mustOpen(t, b, alice, readFile(t, "testdata/state-v2-group"), []byte("group after save"))
	checkKey(t, keyOf(t, b, alice, keyID), 0, 6)
}
