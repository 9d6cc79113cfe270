package mlsbench

import (
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup"
)

// TestRunSmallGroup runs the whole measurement on a small group: every step must work and
// report plausible figures.
func TestRunSmallGroup(t *testing.T) {
	for _, n := range []int{2, 3, 17} {
		rep, err := Run(Config{Members: n, Suite: mlsgroup.X25519_AES128GCM_SHA256_Ed25519})
		if err != nil {
			t.Fatalf("%d members: %v", n, err)
		}
		if rep.Members != n || rep.WelcomeBytes == 0 || rep.CommitBytes == 0 || rep.AddMs <= 0 || rep.EncryptUs <= 0 || rep.DecryptUs <= 0 || rep.StateBytes == 0 {
			t.Fatalf("%d members: implausible report %+v", n, rep)
		}
	}
	if _, err := Run(Config{Members: 1, Suite: mlsgroup.X25519_AES128GCM_SHA256_Ed25519}); err == nil {
		t.Error("a one-member benchmark ran")
	}
}

// BenchmarkGroup1024 reports the figures of a 1024-member group as custom metrics.
func BenchmarkGroup1024(b *testing.B) {
	for b.Loop() {
		rep, err := Run(Config{Members: 1024, Suite: mlsgroup.X25519_AES128GCM_SHA256_Ed25519})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.AddMs, "add_ms")
		b.ReportMetric(rep.JoinMs, "join_ms")
		b.ReportMetric(rep.PathCommitFirstMs, "path_first_ms")
		b.ReportMetric(rep.PathCommitSteadyMs, "path_steady_ms")
		b.ReportMetric(rep.ProcessCommitMs, "process_ms")
		b.ReportMetric(rep.EncryptUs+rep.DecryptUs, "seal+open_us")
	}
}
