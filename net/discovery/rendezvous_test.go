package discovery

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var (
	gid    = []byte("group-1")
	secret = bytes.Repeat([]byte{0x42}, 32)
)

func TestRendezvousKey(t *testing.T) {
	k := RendezvousKey(gid, secret, 20000)
	if k != RendezvousKey(gid, secret, 20000) {
		t.Fatal("not deterministic")
	}
	for _, other := range []string{
		RendezvousKey(gid, secret, 20001),
		RendezvousKey([]byte("group-2"), secret, 20000),
		RendezvousKey(gid, []byte("another secret"), 20000),
	} {
		if other == k {
			t.Fatal("key does not depend on day, group and secret")
		}
	}
	if !strings.HasPrefix(k, RendezvousPrefix) || strings.Contains(k, "group-1") {
		t.Fatalf("key %q", k)
	}
}

func TestDay(t *testing.T) {
	day := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	if Day(day) != Day(day.Add(24*time.Hour-time.Nanosecond)) || Day(day)+1 != Day(day.Add(24*time.Hour)) {
		t.Fatal("day boundaries")
	}
	if Day(day) != Day(day.In(time.FixedZone("x", 5*3600))) {
		t.Fatal("day depends on the time zone")
	}
}

// Around midnight (UTC) members advertise tomorrow's key too and look up
// yesterday's, so clocks a little apart still meet.
func TestKeysAroundMidnight(t *testing.T) {
	midnight := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	d := Day(midnight)
	noon := midnight.Add(12 * time.Hour)
	if got := advertiseKeys(gid, secret, noon); len(got) != 1 || got[0] != RendezvousKey(gid, secret, d) {
		t.Fatal("noon: advertise today only")
	}
	if got := lookupKeys(gid, secret, noon); len(got) != 1 {
		t.Fatal("noon: look up today only")
	}
	late := midnight.Add(-30 * time.Minute)
	if got := advertiseKeys(gid, secret, late); len(got) != 2 || got[1] != RendezvousKey(gid, secret, d) {
		t.Fatal("before midnight: advertise tomorrow's key too")
	}
	early := midnight.Add(30 * time.Minute)
	if got := lookupKeys(gid, secret, early); len(got) != 2 || got[1] != RendezvousKey(gid, secret, d-1) {
		t.Fatal("after midnight: look up yesterday's key too")
	}
}
