package swarm

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func TestSimSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		r, err := Run(ctx, Config{Net: Sim, Peers: 4, Messages: 20, Rate: 20, Seed: 1, Chat: fastTuning, Drain: time.Minute, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, r)
	})
}

// TestSimGapRecovery: with heartbeats out of the picture (one an hour), a message lost on
// the way is still fetched, because the sender's next message says how many it sent.
// Drops are on only while the members send; each member's last message goes out with
// drops paused, so every lost message is followed by a later one from its sender.
func TestSimGapRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		tuning := fastTuning
		tuning.Heartbeat = time.Hour
		s, err := Start(ctx, Config{Net: Sim, Peers: 4, Drop: 0.1, Seed: 3, Chat: tuning, Dir: t.TempDir(), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.meter.paused.Store(true)
		if _, err := s.Form(ctx); err != nil {
			t.Fatal(err)
		}
		s.meter.paused.Store(false)
		n := 0
		for range 25 {
			for i := range 4 {
				if err := s.Send(ctx, i, fmt.Sprintf("message %d", n)); err != nil {
					t.Fatal(err)
				}
				n++
				time.Sleep(20 * time.Millisecond)
			}
		}
		dropped := s.meter.dropped.Load()
		s.meter.paused.Store(true)
		for i := range 4 {
			if err := s.Send(ctx, i, fmt.Sprintf("last from %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if dropped == 0 {
			t.Fatal("nothing was dropped: the test shows nothing")
		}
		if !s.WaitDelivered(ctx, 30*time.Second) {
			done, exp := s.col.counts()
			t.Errorf("%d of %d deliveries after 30 s (%d gossip messages dropped); missing: %v", done, exp, dropped, s.col.missing(10))
		}
	})
}
