package replay

import (
	"bytes"
	"testing"
	"time"
)

func id(n byte) ID { return ID{n} }

func TestWindow(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ms := now.UnixMilli()
	w := New(Config{MaxAge: time.Hour, MaxSkew: time.Minute, MaxEntries: 3}, now)
	for _, tc := range []struct {
		ts   int64
		want bool
	}{
		{ms - time.Minute.Milliseconds() - 1, false}, // before the fresh window's floor
		{ms + time.Minute.Milliseconds() + 1, false}, // too far ahead
		{ms - time.Minute.Milliseconds(), true},
		{ms + time.Minute.Milliseconds(), true},
	} {
		if got := w.Check(id(9), tc.ts, now); got != tc.want {
			t.Fatalf("Check(ts %+d ms) = %v", tc.ts-ms, got)
		}
	}
	for i := range byte(3) {
		if !w.Add(id(i), ms+int64(i), now) {
			t.Fatalf("Add %d refused", i)
		}
	}
	if w.Add(id(1), ms+1, now) {
		t.Fatal("replay accepted")
	}
	// A fourth id evicts the oldest (id 0, ts ms); the floor moves past it.
	if !w.Add(id(3), ms+3, now) || w.Len() != 3 {
		t.Fatal("Add at capacity")
	}
	if w.Check(id(0), ms, now) || w.Check(id(7), ms, now) {
		t.Fatal("evicted id or older timestamp accepted")
	}
	if !w.Check(id(7), ms+1, now) {
		t.Fatal("timestamp above the floor refused")
	}
	// Saved and restored, the window answers the same.
	saved, _ := w.MarshalBinary()
	w2 := New(Config{MaxAge: time.Hour, MaxSkew: time.Minute, MaxEntries: 3}, now.Add(time.Hour))
	if err := w2.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	again, _ := w2.MarshalBinary()
	if !bytes.Equal(again, saved) || w2.Check(id(1), ms+1, now) || w2.Check(id(0), ms, now) || !w2.Check(id(7), ms+1, now) {
		t.Fatal("restored window differs")
	}
	for n := range len(saved) {
		if w2.UnmarshalBinary(saved[:n]) == nil {
			t.Fatalf("state truncated to %d accepted", n)
		}
	}
	// Entries age out, and the floor follows.
	later := now.Add(2 * time.Hour)
	if !w.Add(id(8), later.UnixMilli(), later) || w.Len() != 1 {
		t.Fatalf("aged entries kept: %d", w.Len())
	}
}

func FuzzUnmarshal(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	w := New(Config{}, now)
	w.Add(id(1), now.UnixMilli(), now)
	w.Add(id(2), now.UnixMilli()+5, now)
	saved, _ := w.MarshalBinary()
	f.Add(saved)
	f.Fuzz(func(t *testing.T, b []byte) {
		w := New(Config{}, now)
		if w.UnmarshalBinary(b) != nil {
			return
		}
		again, _ := w.MarshalBinary()
		w2 := New(Config{}, now)
		if err := w2.UnmarshalBinary(again); err != nil {
			t.Fatal(err)
		}
		again2, _ := w2.MarshalBinary()
		if !bytes.Equal(again, again2) {
			t.Fatal("not stable")
		}
	})
}
