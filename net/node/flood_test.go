package node

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/net/gossip"
)

// floodSetup starts victim V, honest H and attacker M (which accepts anything
// it publishes), connects H and M to V, and waits for V's mesh to hold both.
func floodSetup(t *testing.T, victim func(*Config)) (v, h, m *Node, tv, th, tm *gossip.Topic) {
	cv := testConfig(t)
	if victim != nil {
		victim(&cv)
	}
	v = startNode(t, cv)
	h, m = startNode(t, testConfig(t)), startNode(t, testConfig(t))
	var err error
	if tv, err = v.JoinTopic(groupID, roomSecret, validator); err != nil {
		t.Fatal(err)
	}
	if th, err = h.JoinTopic(groupID, roomSecret, validator); err != nil {
		t.Fatal(err)
	}
	if tm, err = m.JoinTopic(groupID, roomSecret, nil); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, h, v)
	mustConnect(t, m, v)
	waitFor(t, 20*time.Second, "mesh", func() bool {
		mp := tv.MeshPeers()
		return slices.Contains(mp, h.ID()) && slices.Contains(mp, m.ID()) &&
			slices.Contains(tm.MeshPeers(), v.ID())
	})
	return
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A peer that floods a topic with junk is scored down, graylisted and
// blacklisted; the victim keeps taking messages from others, and does not
// keep the flood in memory.
func TestTopicFloodJunk(t *testing.T) {
	v, h, m, tv, th, tm := floodSetup(t, nil)
	before := heapInUse()

	// 300 junk messages of 64 KiB: 19 MiB that V's validator rejects.
	junk := bytes.Repeat([]byte{'j'}, 64<<10)
	for i := range 300 {
		copy(junk[8:], fmt.Sprintf("junk %d", i))
		if err := tm.Publish(context.Background(), junk); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, v, 30*time.Second, "the attacker blacklisted", func(e Event) bool {
		return e.Kind == PeerBlacklisted && e.Peer == m.ID()
	})
	if !v.Blacklisted(m.ID()) || v.Blacklisted(h.ID()) {
		t.Fatal("wrong peer blacklisted")
	}
	if v.GossipStats().Rejected == 0 {
		t.Fatal("nothing rejected")
	}
	// The honest peer still gets through.
	if err := th.Publish(context.Background(), []byte("msg after the flood")); err != nil {
		t.Fatal(err)
	}
	for {
		msg := recv(t, tv, 30*time.Second)
		if msg.From == m.ID() {
			t.Fatalf("junk delivered: %q", msg.Data[:16])
		}
		if string(msg.Data) == "msg after the flood" {
			break
		}
	}
	// Once the attacker is gone, nothing of its flood is retained.
	_ = m.Close()
	if grown := int64(heapInUse()) - int64(before); grown > 32<<20 {
		t.Fatalf("heap grew by %d MiB after the flood", grown>>20)
	}
}

// A peer that floods valid-looking messages faster than PeerRate has the
// excess ignored (without penalty: an honest forwarder can be bursty).
func TestTopicFloodRate(t *testing.T) {
	v, _, m, tv, _, tm := floodSetup(t, func(c *Config) {
		c.PeerRate, c.PeerBurst = 1, 10
	})
	const sent = 100 // within the attacker's outbound queue, so all are sent
	for i := range sent {
		if err := tm.Publish(context.Background(), fmt.Appendf(nil, "msg flood %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	delivered := 0
	deadline := time.After(60 * time.Second)
	accounted := func() int {
		st := v.GossipStats()
		return delivered + int(st.Ignored+st.Dropped)
	}
	for accounted() < sent {
		select {
		case <-tv.Messages():
			delivered++
		case <-deadline:
			t.Fatalf("%d delivered, stats %+v, of %d", delivered, v.GossipStats(), sent)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if delivered >= sent/2 {
		t.Fatalf("%d of %d flood messages delivered at 1/s with a burst of 10", delivered, sent)
	}
	if v.Blacklisted(m.ID()) {
		t.Fatal("rate-limited peer blacklisted")
	}
}
