package signal

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// splitStore is what a caller of MarshalSplitSince keeps: the head and the records it
// saved, and the stamp of its last save.
type splitStore struct {
	head    []byte
	records map[string][]byte
	since   uint64
}

// marshal returns m's state split for a save into st, our sender key n messages ahead,
// leaving st as it is (a save that fails).
func (st *splitStore) marshal(t testing.TB, m *member, n uint32) SplitSave {
	t.Helper()
	s, err := m.l.MarshalSplitSince(n, st.since)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// put stores s in st, as a caller does once its save is written.
func (st *splitStore) put(s SplitSave) {
	if st.records == nil {
		st.records = make(map[string][]byte)
	}
	if s.Members != nil || st.since == 0 {
		for id := range st.records {
			_, member := s.Members[id]
			if _, rec := s.Records[id]; !member && !rec {
				delete(st.records, id)
			}
		}
	}
	maps.Copy(st.records, s.Records)
	st.head, st.since = s.Head, s.Stamp
}

// save saves m's state into st, our sender key n messages ahead, and checks that it
// wrote the records of members want (sorted) and no other, and that st then holds what
// MarshalSplitAhead encodes whole.
func (st *splitStore) save(t testing.TB, m *member, n uint32, want ...string) SplitSave {
	t.Helper()
	s := st.marshal(t, m, n)
	if got := slices.Sorted(maps.Keys(s.Records)); !slices.Equal(got, want) {
		t.Fatalf("save wrote the records of %q, want %q", got, want)
	}
	st.put(s)
	head, records := split(t, m, n)
	if !bytes.Equal(st.head, head) {
		t.Fatal("head saved is not the one encoded whole")
	}
	if got, all := slices.Sorted(maps.Keys(st.records)), slices.Sorted(maps.Keys(records)); !slices.Equal(got, all) {
		t.Fatalf("records saved of %q, encoded whole of %q", got, all)
	}
	for id, r := range records {
		if !bytes.Equal(st.records[id], r) {
			t.Fatalf("record of %s saved is not the one encoded whole", id)
		}
	}
	return s
}

// restore returns a member of m's id and identity restored from st.
func (st *splitStore) restore(t testing.TB, m *member) *member {
	t.Helper()
	l, err := New(m.id, m.ident)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.UnmarshalSplit(st.head, st.records); err != nil {
		t.Fatal(err)
	}
	return &member{name: m.name + " restored", id: m.id, ident: m.ident, l: l}
}

// TestSplitSinceOneMember: after a message from one member opens, a save since the last
// one encodes the head and that member's record alone, the bytes MarshalSplitAhead
// encodes for it; right after a save, no record.
func TestSplitSinceOneMember(t *testing.T) {
	ms := group(t, "m0", "m1", "m2", "m3", "m4")
	me := ms[0]
	for _, m := range ms[1:] {
		mustOpen(t, me, m, sealTo(t, m, []byte("key"), others(ms, m)...), []byte("key"))
	}
	var st splitStore
	first := st.save(t, me, sendAheadTest, "m1", "m2", "m3", "m4")
	if first.Members != nil {
		t.Fatal("a save since stamp 0 lists the members")
	}
	if s := st.save(t, me, sendAheadTest); s.Members != nil || s.Stamp != first.Stamp {
		t.Fatalf("a save with nothing changed lists members (%v) or moved the stamp (%d to %d)",
			s.Members != nil, first.Stamp, s.Stamp)
	}
	mustOpen(t, me, ms[2], sealTo(t, ms[2], []byte("g"), others(ms, ms[2])...), []byte("g"))
	s := st.save(t, me, sendAheadTest, "m2")
	if s.Members != nil {
		t.Fatal("a save with no member gone lists the members")
	}
	if cap(s.Head) != len(s.Head) || cap(s.Records["m2"]) != len(s.Records["m2"]) {
		t.Fatal("head or record has room beyond its end")
	}
	mustOpen(t, me, ms[3], sealTo(t, ms[3], []byte("p"), me), []byte("p"))
	st.save(t, me, sendAheadTest, "m3")
}

// TestSplitSinceChain saves a layer through changes of every kind, each save writing only
// the records changed since the last, one save failing: what the saves leave merged is
// the state encoded whole, and restores to a layer that opens the members' next messages
// and does not seal again with a key the original used.
func TestSplitSinceChain(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave", "erin", "frank")
	a, b, c, d, e, f := ms[0], ms[1], ms[2], ms[3], ms[4], ms[5]
	var st splitStore
	st.save(t, b, sendAheadTest, "alice", "carol", "dave", "erin", "frank")
	mustOpen(t, b, a, sealTo(t, a, []byte("a1"), others(ms, a)...), []byte("a1"))
	st.save(t, b, sendAheadTest, "alice")
	// Our first group message carries our key for everyone, on new sessions.
	g := sealTo(t, b, []byte("b1"), others(ms, b)...)
	for _, m := range others(ms, b) {
		mustOpen(t, m, b, g, []byte("b1"))
	}
	st.save(t, b, sendAheadTest, "alice", "carol", "dave", "erin", "frank")
	mustOpen(t, b, c, sealTo(t, c, []byte("c1"), b), []byte("c1"))
	st.save(t, b, sendAheadTest, "carol")
	// A new key, handed to dave on its own: a group message skips him for it.
	b.l.Rekey()
	km, keyID := sealKey(t, b, d)
	st.save(t, b, sendAheadTest, "dave")
	g = sealTo(t, b, []byte("b2"), others(ms, b)...)
	st.save(t, b, sendAheadTest, "alice", "carol", "dave", "erin", "frank")
	mustOpenKey(t, d, b, km)
	b.l.SenderKeySent(d.id, keyID)
	st.save(t, b, sendAheadTest, "dave")
	for _, m := range others(ms, b) {
		mustOpen(t, m, b, g, []byte("b2"))
	}
	b.l.ResendSenderKey(a.id) // in the head alone
	st.save(t, b, sendAheadTest)
	b.l.RemovePeer(e.id)
	st.save(t, b, sendAheadTest, "erin")
	b.l.ForgetRemoved(nil)
	if s := st.save(t, b, sendAheadTest); s.Members == nil {
		t.Fatal("a save after a member was forgotten does not list the members")
	}
	// Carol added again: her earlier state is kept aside, in her record.
	b.l.RemovePeer(c.id)
	if err := b.l.SetPeer(c.id, c.ident.Bundle()); err != nil {
		t.Fatal(err)
	}
	st.save(t, b, sendAheadTest, "carol")
	// A save that fails: its records come again in the next one.
	rest := []*member{a, b, c, d, f} // erin is gone
	mustOpen(t, b, a, sealTo(t, a, []byte("a2"), others(rest, a)...), []byte("a2"))
	if s := st.marshal(t, b, sendAheadTest); !slices.Equal(slices.Sorted(maps.Keys(s.Records)), []string{"alice"}) {
		t.Fatalf("save wrote the records of %q, want alice's", slices.Sorted(maps.Keys(s.Records)))
	}
	mustOpen(t, b, f, sealTo(t, f, []byte("f1"), b), []byte("f1"))
	st.save(t, b, sendAheadTest, "alice", "frank")
	// Carol's message opens on the state kept aside.
	mustOpen(t, b, c, sealTo(t, c, []byte("c2"), others(ms[:4], c)...), []byte("c2"))
	st.save(t, b, sendAheadTest, "carol")
	// Our group message after the rekey, then one that only moves our key on: the last
	// save covers it.
	g = sealTo(t, b, []byte("b3"), others(rest, b)...)
	for _, m := range others(rest, b) {
		mustOpen(t, m, b, g, []byte("b3"))
	}
	s := st.save(t, b, sendAheadTest, "alice", "carol", "dave", "frank")
	want, _, err := b.l.MarshalBinaryAhead(sendAheadTest)
	if err != nil {
		t.Fatal(err)
	}
	g = sealTo(t, b, []byte("b4"), others(rest, b)...)
	if !s.Mark.Covers(b.l) {
		t.Fatal("the last save does not cover a group message that only moved our key on")
	}
	for _, m := range others(rest, b) {
		mustOpen(t, m, b, g, []byte("b4"))
	}

	r := st.restore(t, b)
	if !bytes.Equal(state(t, r), want) {
		t.Fatal("state restored from the saves does not encode as the original did")
	}
	if n, err := r.l.MarshalSplitSince(0, r.l.Stamp()); err != nil || len(n.Records) != 0 || n.Members != nil {
		t.Fatalf("right after a restore, a save since its stamp writes %d records (%v)", len(n.Records), err)
	}
	g = sealTo(t, r, []byte("after the restart"), others(rest, b)...)
	for _, m := range others(rest, b) {
		mustOpen(t, m, r, g, []byte("after the restart"))
	}
	for _, m := range others(rest, b) {
		text := []byte("to the restored, from " + m.name)
		mustOpen(t, r, m, sealTo(t, m, text, others(rest, m)...), text)
		text = []byte("pairwise to the restored, from " + m.name)
		mustOpen(t, r, m, sealTo(t, m, text, b), text)
	}
}

// TestSplitSinceRestored: UnmarshalSplit makes every record new, and those of members
// not in the state restored gone: a save since a stamp from before lists the members.
func TestSplitSinceRestored(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b := ms[0], ms[1]
	mustOpen(t, b, a, sealTo(t, a, []byte("key"), b, ms[2]), []byte("key"))
	var st splitStore
	st.save(t, b, 0, "alice", "carol")
	other := group(t, "bob", "dave")[0] // bob, knowing only dave
	var ost splitStore
	ost.save(t, other, 0, "dave")
	if err := other.l.UnmarshalSplit(st.head, st.records); err != nil {
		t.Fatal(err)
	}
	s := ost.save(t, other, 0, "alice", "carol")
	if s.Members == nil {
		t.Fatal("a save after a restore does not list the members")
	}
	if _, ok := ost.records["dave"]; ok {
		t.Fatal("the record of a member not in the state restored is still saved")
	}
}

// TestStampCheck: with the stamp check on, a change to a member's record that did not
// stamp it, or a member dropped without a stamp, makes the next save panic, naming the
// member.
func TestStampCheck(t *testing.T) {
	if stampCheck.Load() == checkOff {
		t.Fatal("the stamp check is off")
	}
	ms := group(t, "alice", "bob", "carol")
	a, b := ms[0], ms[1]
	mustOpen(t, b, a, sealTo(t, a, []byte("key"), b, ms[2]), []byte("key"))
	var st splitStore
	st.save(t, b, 0, "alice", "carol")
	panics := func(what, want string, change func()) {
		t.Helper()
		b.l.mu.Lock()
		change()
		b.l.mu.Unlock()
		defer func() {
			t.Helper()
			msg := fmt.Sprint(recover())
			if !strings.Contains(msg, want) {
				t.Fatalf("%s: save panicked with %q, want it to name %q", what, msg, want)
			}
		}()
		st.marshal(t, b, 0)
	}
	panics("a change unstamped", fmt.Sprintf("member %x changed unstamped", "alice"), func() {
		b.l.peers["alice"].keys[0].iteration++
	})
	b.l.mu.Lock()
	b.l.touch(b.l.peers["alice"])
	b.l.mu.Unlock()
	st.save(t, b, 0, "alice")
	panics("a member added unstamped", fmt.Sprintf("member %x came unstamped", "dave"), func() {
		b.l.peers["dave"] = &peer{id: []byte("dave"), bundle: a.ident.Bundle()}
	})
	b.l.mu.Lock()
	delete(b.l.peers, "dave")
	b.l.mu.Unlock()
	st.save(t, b, 0)
	panics("a member dropped unstamped", fmt.Sprintf("member %x went unstamped", "carol"), func() {
		delete(b.l.peers, "carol")
	})
}

// BenchmarkMarshalSplitSince200 saves the state of a member of a 200-member group (as
// BenchmarkMarshalSplit200's) after one member's record changed (a pairwise message from
// it opened, not timed): "all" as tchat saved it before MarshalSplitSince, every record
// encoded and hashed to find the one that changed; "since" with MarshalSplitSince.
func BenchmarkMarshalSplitSince200(b *testing.B) {
	noStampCheck(b)
	me, rest := member200(b)
	i := 0
	change := func() {
		b.StopTimer()
		m := rest[i%len(rest)]
		i++
		mustOpen(b, me, m, sealTo(b, m, []byte("x"), me), []byte("x"))
		b.StartTimer()
	}
	b.Run("all", func(b *testing.B) {
		var sums map[string][32]byte
		var written int
		for b.Loop() {
			change()
			_, records, _, err := me.l.MarshalSplitAhead(sendAheadTest)
			if err != nil {
				b.Fatal(err)
			}
			written, sums = hashRecords(records, sums)
		}
		b.ReportMetric(float64(written), "records_written")
	})
	b.Run("since", func(b *testing.B) {
		var st splitStore
		st.put(st.marshal(b, me, sendAheadTest))
		var written int
		for b.Loop() {
			change()
			s := st.marshal(b, me, sendAheadTest)
			written = len(s.Records)
			st.since = s.Stamp
		}
		b.ReportMetric(float64(written), "records_written")
	})
}

// hashRecords finds the records that changed as tchat did before MarshalSplitSince: by
// their SHA-256 digests, against those of the last save (old). It returns how many
// changed, and the digests.
func hashRecords(records map[string][]byte, old map[string][32]byte) (int, map[string][32]byte) {
	sums := make(map[string][32]byte, len(records))
	changed := 0
	for id, r := range records {
		sum := sha256.Sum256(r)
		sums[id] = sum
		if o, ok := old[id]; !ok || o != sum {
			changed++
		}
	}
	return changed, sums
}
