package swarm

import (
	"context"
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
