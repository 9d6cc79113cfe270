package chat

import (
	"testing"
	"time"
)

// A member whose heartbeats come seconds late waits about twice that before it asks for
// a message a later one showed missing (it is most likely still on its way); one that
// receives them on time asks after gapWait. A member whose clock is far behind moves the
// wait by little.
func TestGapWaitFollowsLag(t *testing.T) {
	now := time.Now()
	g := &group{
		c:     &Client{cfg: Config{Now: func() time.Time { return now }, KeepEpochs: 8}},
		peers: map[string]*peerInfo{},
		got:   map[uint64]map[string]uint32{},
	}
	const sender = "sender's identity key, 32 bytes"
	pi := &peerInfo{}
	g.peers[sender] = pi
	// Message 3 of the sender came in epoch 5, message 2 did not.
	g.got[5] = map[string]uint32{sender: 2}
	missing := func(ago time.Duration) {
		pi.gapAt, pi.gapTries, pi.heardN = time.Now().Add(-ago), 0, map[uint64]uint32{5: 3}
	}
	asked := func() bool {
		due := g.dueGaps(6)
		if len(due) > 1 || len(due) == 1 && (due[0].sender != sender || due[0].since != 5) {
			t.Fatalf("due gaps %+v, want one of %q from epoch 5", due, sender)
		}
		return len(due) == 1
	}

	missing(gapWait + 100*time.Millisecond)
	if !asked() {
		t.Fatalf("heartbeats on time (lag %v): a gap of %v not asked for", g.lag, gapWait+100*time.Millisecond)
	}

	for range 40 {
		g.noteLag(now.Add(-10 * time.Second))
	}
	if g.lag < 9*time.Second || g.lag > 10*time.Second {
		t.Fatalf("40 heartbeats 10 s late: lag %v, want 9–10 s", g.lag)
	}
	missing(5 * time.Second)
	if asked() {
		t.Fatalf("heartbeats %v late: a gap of 5 s asked for", g.lag)
	}
	missing(2*g.lag + 100*time.Millisecond)
	if !asked() {
		t.Fatalf("heartbeats %v late: a gap of %v not asked for", g.lag, 2*g.lag+100*time.Millisecond)
	}
	// Asked for once and still missing: asked again after gapDelay, which is more than
	// gapWait doubled.
	pi.gapAt = time.Now().Add(-5 * time.Second)
	if asked() {
		t.Fatalf("heartbeats %v late: a gap asked for again after 5 s", g.lag)
	}
	pi.gapAt = time.Now().Add(-2*g.lag - 100*time.Millisecond)
	if !asked() {
		t.Fatalf("heartbeats %v late: a gap not asked for again after %v", g.lag, 2*g.lag+100*time.Millisecond)
	}

	// Heartbeats on time again: the lag falls back, and so does the wait.
	for range 100 {
		g.noteLag(now)
	}
	if g.gapDelay() != gapWait {
		t.Fatalf("heartbeats on time again (lag %v): gap delay %v, want %v", g.lag, g.gapDelay(), gapWait)
	}
	// Then a gap that stays is asked for again after gapWait doubled for each ask.
	missing(gapWait + 100*time.Millisecond)
	if !asked() {
		t.Fatalf("heartbeats on time again (lag %v): a gap of %v not asked for", g.lag, gapWait+100*time.Millisecond)
	}
	pi.gapAt = time.Now().Add(-gapWait - 100*time.Millisecond)
	if asked() {
		t.Fatalf("a gap asked for once, asked again after %v", gapWait+100*time.Millisecond)
	}
	pi.gapAt = time.Now().Add(-2*gapWait - 100*time.Millisecond)
	if !asked() {
		t.Fatalf("a gap asked for once, not asked again after %v", 2*gapWait+100*time.Millisecond)
	}
	before := g.lag
	g.noteLag(now.Add(-time.Hour))
	if d := g.lag - before; d > maxLagSample/lagWeight {
		t.Fatalf("one heartbeat an hour late moved the lag by %v, want at most %v", d, maxLagSample/lagWeight)
	}
	g.noteLag(now.Add(time.Hour)) // a sender clock ahead of ours: on time
	if g.lag > before+maxLagSample/lagWeight {
		t.Fatalf("a message from the future raised the lag to %v", g.lag)
	}
}
