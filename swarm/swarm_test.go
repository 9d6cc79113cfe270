package swarm

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/tchat-p2p/tchat/chat"
)

// fastTuning makes the peers of a test quick to commit, settle and notice each other.
var fastTuning = Tuning{
	Heartbeat:     250 * time.Millisecond,
	CommitTimeout: 400 * time.Millisecond,
	BatchDelay:    20 * time.Millisecond,
	Settle:        200 * time.Millisecond,
}

// testLogger logs the chat cores' debug log through t when TCHAT_DEBUG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("TCHAT_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func checkReport(t *testing.T, r *Report) {
	t.Helper()
	t.Logf("report:\n%s", r)
	if r.DeliveryRatio != 1 || r.DeliveriesDone != r.DeliveriesExpected {
		t.Errorf("delivery ratio %v (%d of %d)", r.DeliveryRatio, r.DeliveriesDone, r.DeliveriesExpected)
	}
	if !r.FinalEpochsAgree {
		t.Error("the members do not agree on the final epoch")
	}
	if r.KeysOutS < r.FormationS {
		t.Errorf("the sender keys were out %.2f s after the first invite, before the %.2f s formation", r.KeysOutS, r.FormationS)
	}
	// (Under synctest the clock stands still while Send works: its time is 0.)
	if r.MessagesSent > 0 && (r.SendP50Ms < 0 || r.SendP99Ms < r.SendP50Ms || r.Net == "loopback" && r.SendP50Ms == 0) {
		t.Errorf("send times p50 %v ms, p99 %v ms", r.SendP50Ms, r.SendP99Ms)
	}
	if r.Members != r.Peers || r.JoinFailures != 0 {
		t.Errorf("%d members of %d peers, %d joins failed", r.Members, r.Peers, r.JoinFailures)
	}
}

// Eight peers, a hundred messages: everything arrives and everyone agrees.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{
		Peers: 8, Messages: 100, Rate: 100, Seed: 1,
		Chat: fastTuning, Drain: time.Minute, Dir: t.TempDir(), Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, r)
	if r.MessagesSent != 100 || r.DeliveriesExpected != 100*7 {
		t.Errorf("%d messages sent, %d deliveries expected", r.MessagesSent, r.DeliveriesExpected)
	}
	if r.BytesSentPerPeer == 0 || r.PeakRSSMB == 0 || r.LatencyP99Ms <= 0 {
		t.Errorf("bytes %d, rss %v, p99 %v", r.BytesSentPerPeer, r.PeakRSSMB, r.LatencyP99Ms)
	}
	// Every byte counted is counted under its protocol (read a moment later, while
	// heartbeats still flow), and the messages went by gossip.
	var sum, gossip int64
	for p, n := range r.BytesByProtocol {
		sum += n
		if strings.HasPrefix(p, "/meshsub/") {
			gossip += n
		}
	}
	if per := sum / int64(r.Peers); per < r.BytesSentPerPeer || per > r.BytesSentPerPeer*101/100 || gossip == 0 {
		t.Errorf("by protocol %v: %d per peer, report says %d", r.BytesByProtocol, per, r.BytesSentPerPeer)
	}
}

// Eight peers, with a twentieth of the gossip lost, a partition healed mid-run and a
// member removed and added again: still everything arrives and everyone agrees.
func TestRunFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{
		Peers: 8, Messages: 100, Rate: 40, Seed: 2, Drop: 0.05,
		Partitions: []Partition{{At: 0.3, For: 2 * time.Second, Fraction: 0.5}},
		Churn:      1,
		Chat:       fastTuning, Drain: 2 * time.Minute, Dir: t.TempDir(), Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, r)
	if r.GossipDropped == 0 {
		t.Error("no gossip message was dropped")
	}
}

// A member counts as back in the group only while it is active in it past the epoch of
// its removal, on the epoch of the member asked, which counts it in.
func TestBackIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Config{Peers: 3, Messages: 1, Seed: 3, Chat: fastTuning, Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gid, err := s.Form(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Form returned once every member had every other's sender key.
	for i := range 3 {
		if st, err := s.peers[i].Client().Group(ctx, gid); err != nil || st.KeysOwed != 0 {
			t.Errorf("after Form, peer %d owes %d members its sender key (%v)", i, st.KeysOwed, err)
		}
	}
	st, err := s.peers[2].Client().Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if !s.backIn(ctx, 1, 2, st.Epoch-1) {
		t.Errorf("peer 1, a member at epoch %d, does not count as back in", st.Epoch)
	}
	if s.backIn(ctx, 1, 2, st.Epoch) {
		t.Errorf("peer 1 counts as back in at epoch %d, the epoch of its removal", st.Epoch)
	}
	if err := s.peers[2].Client().Remove(ctx, gid, s.peers[1].ID()); err != nil {
		t.Fatal(err)
	}
	// (backIn says no once ctx is done: the deadline is what ends the wait.)
	for deadline := time.Now().Add(30 * time.Second); s.backIn(ctx, 1, 2, 0); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("peer 1, removed, still counts as back in")
		}
	}
	if s.backIn(ctx, 1, 0, 0) {
		t.Error("peer 1, removed, counts as back in for peer 0")
	}
}

// A joiner whose inviter cannot be reached joins with another member's invite.
func TestJoinByAnotherMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Config{Peers: 3, Messages: 1, Seed: 4, Chat: fastTuning, Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gid, err := s.peers[0].Client().CreateGroupWith(chat.GroupOptions{Name: "swarm"})
	if err != nil {
		t.Fatal(err)
	}
	s.gid = gid
	s.member[0] = true
	if err := s.join(ctx, gid, 1); err != nil {
		t.Fatal(err)
	}
	s.member[1] = true
	s.Partition([]bool{true, false, false}) // the creator apart
	if err := s.join(ctx, gid, 2); err != nil {
		t.Fatalf("peer 2 did not join by peer 1: %v", err)
	}
	st, err := s.peers[1].Client().Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 3 {
		t.Errorf("peer 1 sees %d members, want 3", len(st.Members))
	}
}

// Two partitions in force at once: healing one leaves the other whole, and healing both
// lets every pair reach each other again, including pairs no swarm link joins.
func TestOverlappingPartitions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Config{Peers: 4, Messages: 1, Seed: 4, Chat: fastTuning, Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reach := func(a, b int) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		h := s.peers[a].Client().Node().Host()
		// By id alone: the addresses must come from the peerstore, as a member's
		// direct send to another (a sender key, a Welcome) finds them.
		return h.Connect(cctx, peer.AddrInfo{ID: s.peers[b].ID()})
	}
	first := s.Partition([]bool{true, true, false, false})
	second := s.Partition([]bool{false, true, true, false})
	for _, pair := range [][2]int{{0, 2}, {1, 3}, {0, 1}, {2, 3}} {
		if reach(pair[0], pair[1]) == nil {
			t.Errorf("peers %d and %d connected across a partition", pair[0], pair[1])
		}
	}
	if err := s.Heal(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The second partition still parts 1 from 0 and 3, and 2 from 0 and 3.
	for _, pair := range [][2]int{{0, 1}, {3, 1}, {0, 2}, {3, 2}} {
		if reach(pair[0], pair[1]) == nil {
			t.Errorf("peers %d and %d connected while the second partition holds", pair[0], pair[1])
		}
	}
	if err := reach(0, 3); err != nil {
		t.Errorf("peers 0 and 3, which no partition parts now: %v", err)
	}
	if err := s.Heal(ctx, second); err != nil {
		t.Fatal(err)
	}
	for a := range 4 {
		for b := range 4 {
			if a != b {
				if err := reach(a, b); err != nil {
					t.Errorf("after both heals, peer %d to %d: %v", a, b, err)
				}
			}
		}
	}
}
