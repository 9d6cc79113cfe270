package gossip

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestExpiringBlacklist(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newExpiringBlacklist(time.Minute, func() time.Time { return now })
	p, q := peer.ID("p"), peer.ID("q")
	if !b.Add(p) || b.Add(p) {
		t.Fatal("Add does not report whether the peer was new")
	}
	if !b.Contains(p) || b.Contains(q) {
		t.Fatal("Contains is wrong")
	}
	now = now.Add(59 * time.Second)
	if !b.Contains(p) {
		t.Fatal("expired too early")
	}
	now = now.Add(2 * time.Second)
	if b.Contains(p) {
		t.Fatal("did not expire")
	}
	b.Add(q)
	now = now.Add(2 * time.Minute)
	b.Add(p) // prunes q
	if _, ok := b.until[q]; ok || len(b.until) != 1 {
		t.Fatalf("expired entries kept: %v", b.until)
	}
}
