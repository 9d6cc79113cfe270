package signal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
)

// split returns m's state split, our sender key encoded n messages ahead.
func split(t testing.TB, m *member, n uint32) (head []byte, records map[string][]byte) {
	t.Helper()
	head, records, _, err := m.l.MarshalSplitAhead(n)
	if err != nil {
		t.Fatal(err)
	}
	return head, records
}

// restoredSplit returns m as it comes back from its state split, our sender key encoded n
// messages ahead: it must encode as m does ahead by n, and split again the same.
func restoredSplit(t testing.TB, m *member, n uint32) *member {
	t.Helper()
	head, records := split(t, m, n)
	want, _, err := m.l.MarshalBinaryAhead(n)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(m.id, m.ident)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.UnmarshalSplit(head, records); err != nil {
		t.Fatal(err)
	}
	r := &member{name: m.name + " restored", id: m.id, ident: m.ident, l: l}
	if !bytes.Equal(state(t, r), want) {
		t.Fatal("state restored from its split encoding does not encode the same")
	}
	head2, records2 := split(t, r, 0)
	if !bytes.Equal(head2, head) || !maps.EqualFunc(records2, records, bytes.Equal) {
		t.Fatal("state restored from its split encoding does not split the same")
	}
	return r
}

// richState makes bob's layer hold a bit of everything: sessions, sender keys from
// three members (one with a message key skipped), our own key, a removed member, one
// added again with its earlier state, and a hand-out owed (skipped by a group message).
// It returns the group, and for bob messages sealed before the restart.
func richState(t testing.TB) (ms []*member, late map[string][]byte) {
	t.Helper()
	ms = group(t, "alice", "bob", "carol", "dave", "erin")
	a, b, c, d, e := ms[0], ms[1], ms[2], ms[3], ms[4]
	late = make(map[string][]byte)
	mustOpen(t, b, a, sealTo(t, a, []byte("a1"), b, c), []byte("a1"))
	late["alice skipped"] = sealTo(t, a, []byte("alice skipped"), b, c)
	mustOpen(t, b, a, sealTo(t, a, []byte("a2"), b, c), []byte("a2"))
	mustOpen(t, b, c, sealTo(t, c, []byte("c1"), a, b), []byte("c1"))
	late["carol before"] = sealTo(t, c, []byte("carol before"), a, b)
	mustOpen(t, b, e, sealTo(t, e, []byte("e1"), a, b), []byte("e1"))
	late["erin removed"] = sealTo(t, e, []byte("erin removed"), a, b)
	mustOpen(t, a, b, sealTo(t, b, []byte("b1"), a, c), []byte("b1"))
	b.l.RemovePeer(e.id)
	b.l.RemovePeer(c.id)
	if err := b.l.SetPeer(c.id, c.ident.Bundle()); err != nil {
		t.Fatal(err)
	}
	sealKey(t, b, d)
	mustOpen(t, a, b, sealTo(t, b, []byte("b2"), a, d), []byte("b2")) // skips dave
	if !b.l.SenderKeyOwed(d.id) || !b.l.peers["erin"].removed || b.l.peers["carol"].prev == nil {
		t.Fatal("bob's state is not as the test means it")
	}
	return ms, late
}

// TestSplitRoundTrip restores a layer from its split encoding: it encodes to the bytes of
// the original, and opens and seals as the original does.
func TestSplitRoundTrip(t *testing.T) {
	ms, late := richState(t)
	a, b, d := ms[0], ms[1], ms[3]
	head, records := split(t, b, 0)
	if len(records) != len(b.l.peers) {
		t.Fatalf("%d records for %d peers", len(records), len(b.l.peers))
	}
	for id, r := range records {
		if cap(r) != len(r) {
			t.Fatalf("record of %s has room beyond its end", id)
		}
	}
	if cap(head) != len(head) {
		t.Fatal("head has room beyond its end")
	}
	r := restoredSplit(t, b, 0)
	ahead := restoredSplit(t, b, sendAheadTest)
	if ahead.l.own.iteration != b.l.own.iteration+sendAheadTest {
		t.Fatalf("restored ahead at iteration %d, want %d", ahead.l.own.iteration, b.l.own.iteration+sendAheadTest)
	}
	// Group messages open at both, to the same state.
	for _, from := range []string{"alice skipped", "carol before", "erin removed"} {
		sender := map[string]*member{"alice skipped": a, "carol before": ms[2], "erin removed": ms[4]}[from]
		mustOpen(t, b, sender, late[from], []byte(from))
		mustOpen(t, r, sender, late[from], []byte(from))
		if !bytes.Equal(state(t, b), state(t, r)) {
			t.Fatalf("%s: original and restored differ after the same Open", from)
		}
	}
	// The restored layer still owes dave the hand-out, and its group message carries it.
	if !r.l.SenderKeyOwed(d.id) {
		t.Fatal("hand-out owed lost in a round trip")
	}
	g := sealTo(t, r, []byte("after the restart"), a, d)
	mustOpen(t, a, r, g, []byte("after the restart"))
	mustOpen(t, d, r, g, []byte("after the restart"))
}

// changed returns the member ids whose records differ between two split encodings.
func changed(before, after map[string][]byte) []string {
	var out []string
	for id, r := range after {
		if old, ok := before[id]; !ok || !bytes.Equal(old, r) {
			out = append(out, id)
		}
	}
	for id := range before {
		if _, ok := after[id]; !ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// TestSplitLocality: a sender key arriving from one member, or a message of it opening,
// changes that member's record and no other.
func TestSplitLocality(t *testing.T) {
	ms := group(t, "m0", "m1", "m2", "m3", "m4", "m5")
	me := ms[0]
	for _, m := range ms[1:4] {
		mustOpen(t, me, m, sealTo(t, m, []byte("key"), others(ms, m)...), []byte("key"))
	}
	sealKey(t, me, ms[5])                                                            // a hand-out owed,
	mustOpen(t, ms[1], me, sealTo(t, me, []byte("mine"), ms[1:]...), []byte("mine")) // which this skips
	if !me.l.SenderKeyOwed(ms[5].id) {
		t.Fatal("no hand-out owed")
	}
	step := func(name string, headSame bool, want []string, do func()) {
		t.Helper()
		head, before := split(t, me, sendAheadTest)
		do()
		head2, after := split(t, me, sendAheadTest)
		if got := changed(before, after); !slices.Equal(got, want) {
			t.Fatalf("%s: records of %q changed, want %q", name, got, want)
		}
		if headSame && !bytes.Equal(head, head2) {
			t.Fatalf("%s: head changed", name)
		}
	}
	step("group message on a key we have", true, []string{"m1"}, func() {
		mustOpen(t, me, ms[1], sealTo(t, ms[1], []byte("g"), others(ms, ms[1])...), []byte("g"))
	})
	step("pairwise message", true, []string{"m2"}, func() {
		mustOpen(t, me, ms[2], sealTo(t, ms[2], []byte("p"), me), []byte("p"))
	})
	// The first message from m4 answers its handshake: the head notes it.
	step("sender key in a group message", false, []string{"m4"}, func() {
		mustOpen(t, me, ms[4], sealTo(t, ms[4], []byte("key"), others(ms, ms[4])...), []byte("key"))
	})
	step("sender key on its own", true, []string{"m3"}, func() {
		mustOpenKey(t, me, ms[3], msgOf(sealKey(t, ms[3], me)))
	})
	step("sender key from a member owed ours", false, []string{"m5"}, func() {
		mustOpenKey(t, me, ms[5], msgOf(sealKey(t, ms[5], me)))
	})
	step("hand-out acknowledged", false, []string{"m5"}, func() {
		me.l.SenderKeySent(ms[5].id, me.l.own.keyID)
	})
	step("group message of ours", false, nil, func() {
		sealTo(t, me, []byte("mine"), ms[1:]...)
	})
}

func msgOf(msg []byte, _ uint32) []byte { return msg }

// TestSplitBadInput: a damaged head or record, or records under the wrong member, are
// refused with errSplit, and the state stays as it was.
func TestSplitBadInput(t *testing.T) {
	ms := group(t, "alice", "bob", "carol", "dave")
	a, b, c, d := ms[0], ms[1], ms[2], ms[3]
	mustOpen(t, b, a, sealTo(t, a, []byte("key"), b, c), []byte("key"))
	sealTo(t, b, []byte("our key"), a, c) // to alice and carol
	sealKey(t, b, d)                      // owed to dave
	head, records := split(t, b, 0)
	r := restoredSplit(t, b, 0)
	want := state(t, r)
	refuse := func(name string, head []byte, records map[string][]byte) {
		t.Helper()
		err := r.l.UnmarshalSplit(head, records)
		if !errors.Is(err, errSplit) || !errors.Is(err, errState) {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(state(t, r), want) {
			t.Fatalf("%s: state changed", name)
		}
	}
	with := func(id string, rec []byte) map[string][]byte {
		m := maps.Clone(records)
		if rec == nil {
			delete(m, id)
		} else {
			m[id] = rec
		}
		return m
	}
	for n := range len(head) {
		refuse(fmt.Sprint("head truncated to ", n), head[:n], records)
	}
	refuse("head extended", append(slices.Clone(head), 0), records)
	for _, v := range []byte{0, splitVersion + 1, 0xff} {
		refuse(fmt.Sprint("head of version ", v), append([]byte{v}, head[1:]...), records)
	}
	count := func(n uint32) []byte {
		return binary.BigEndian.AppendUint32(slices.Clone(head[:len(head)-4]), n)
	}
	refuse("head counting one record more", count(uint32(len(records)+1)), records)
	refuse("head counting one record less", count(uint32(len(records)-1)), records)
	// Our sender key was handed to alice and carol: swapped, or one twice.
	names := 1 + 1 + 1 + 4 + 32 + keySize + 4 + 2
	if string(head[names:names+12]) != "\x05alice\x05carol" {
		t.Fatalf("head holds %q where the members that have our key should be", head[names:names+12])
	}
	badHead := slices.Clone(head)
	copy(badHead[names:], "\x05carol\x05alice")
	refuse("members that have our key out of order", badHead, records)
	copy(badHead[names:], "\x05alice\x05alice")
	refuse("a member that has our key twice", badHead, records)
	refuse("a record missing", head, with("alice", nil))
	refuse("a record more", head, with("erin", records["alice"]))
	refuse("records swapped", head, with("alice", records["carol"]))
	refuse("a record under another member", count(uint32(len(records)+1)), with("erin", records["alice"]))
	_, ofAlice := split(t, a, 0)
	refuse("a record of our own member id", count(uint32(len(records)+1)), with("bob", ofAlice["bob"]))
	for _, id := range []string{"alice", "dave"} {
		rec := records[id]
		step := 1
		if testing.Short() {
			step = 7
		}
		for n := 0; n < len(rec); n += step {
			refuse(fmt.Sprint(id, "'s record truncated to ", n), head, with(id, rec[:n]))
		}
		refuse(id+"'s record extended", head, with(id, append(slices.Clone(rec), 0)))
		for _, v := range []byte{0, recordVersion + 1, 0xff} {
			refuse(fmt.Sprint(id, "'s record of version ", v), head, with(id, append([]byte{v}, rec[1:]...)))
		}
		bad := slices.Clone(rec)
		bad[2] ^= 1 // the member id's first byte
		refuse(id+"'s record of another member", head, with(id, bad))
		removed := removedAt(rec)
		bad = slices.Clone(rec)
		bad[removed] = 2
		refuse(id+"'s record with removed flag 2", head, with(id, bad))
		bad[removed] = 1
		if id == "dave" {
			refuse("hand-out owed to a removed member", head, with(id, bad))
		}
	}
	if err := r.l.UnmarshalSplit(head, records); err != nil {
		t.Fatal(err)
	}
}

// removedAt returns where the removed flag is in a record: after its version, member id
// and bundle.
func removedAt(rec []byte) int {
	at := 1 + 1 + int(rec[1])
	return at + 2 + int(binary.BigEndian.Uint16(rec[at:]))
}

// FuzzUnmarshalSplit: a split state from a damaged store must not panic, a refused one
// must leave the layer as it was, and what loads splits back to the same bytes. The
// records come packed in one input (see packRecords).
func FuzzUnmarshalSplit(f *testing.F) {
	add := func(m *member) {
		head, records := split(f, m, 0)
		f.Add(head, packRecords(records))
	}
	ms, _ := richState(f)
	add(ms[1])
	bob := ms[1].ident
	ms = group(f, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	add(b)
	mustOpen(f, b, a, sealTo(f, a, []byte("x"), b), []byte("x"))
	mustOpen(f, b, a, sealTo(f, a, []byte("y"), b, c), []byte("y"))
	sealTo(f, a, []byte("skipped"), b)
	mustOpen(f, b, a, sealTo(f, a, []byte("z"), b), []byte("z"))
	sealTo(f, b, []byte("w"), a, c)
	add(b)
	fresh, _ := New([]byte("bob"), bob)
	empty, _ := fresh.MarshalBinary()
	f.Fuzz(func(t *testing.T, head, packed []byte) {
		records, ok := unpackRecords(packed)
		if !ok {
			return
		}
		l, _ := New([]byte("bob"), bob)
		if err := l.UnmarshalSplit(head, records); err != nil {
			if !errors.Is(err, errSplit) {
				t.Fatalf("error %v is not errSplit", err)
			}
			if now, _ := l.MarshalBinary(); !bytes.Equal(now, empty) {
				t.Fatal("state changed on a refused input")
			}
			return
		}
		head2, records2, _, err := l.MarshalSplitAhead(0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(head2, head) {
			t.Fatalf("head re-encodes differently")
		}
		for id, r := range records {
			if !bytes.Equal(records2[id], r) {
				t.Fatalf("record of %x re-encodes differently", id)
			}
		}
	})
}

// packRecords packs records in one byte string, sorted by member id: each its member id
// (1-byte length) and the record (2-byte length).
func packRecords(records map[string][]byte) []byte {
	var out []byte
	for _, id := range slices.Sorted(maps.Keys(records)) {
		out = append(out, byte(len(id)))
		out = append(out, id...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(records[id])))
		out = append(out, records[id]...)
	}
	return out
}

func unpackRecords(b []byte) (map[string][]byte, bool) {
	records := make(map[string][]byte)
	for len(b) > 0 {
		n := int(b[0])
		if len(b) < 1+n+2 {
			return nil, false
		}
		id := string(b[1 : 1+n])
		b = b[1+n:]
		size := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+size {
			return nil, false
		}
		if _, dup := records[id]; dup {
			return nil, false
		}
		records[id] = b[2 : 2+size]
		b = b[2+size:]
	}
	return records, true
}
