package layers_test

import (
	"fmt"
	"testing"

	"github.com/tchat-p2p/tchat/layers"
)

// BenchmarkCascade seals a message and opens it at one recipient, per
// policy and size, in a group of 8 (2 for the pair policy, whose mlkem layer
// is for two members), once sessions and sender keys are in place. The mls
// layer is the test-only fake (AES-GCM under an epoch secret), so the mls
// rows measure the cascade around it, not MLS.
func BenchmarkCascade(b *testing.B) {
	for _, policy := range []string{layers.PolicyLarge, layers.PolicyGroup, layers.PolicyPair} {
		for _, size := range []int{100, 1024, 64 << 10} {
			b.Run(fmt.Sprintf("%s/%d", policy, size), func(b *testing.B) {
				n := 8
				if policy == layers.PolicyPair {
					n = 2
				}
				ps := conversation(b, policy, n)
				from, to := ps[0], ps[1:]
				pt := make([]byte, size)
				// Warm up: sessions, sender keys, the way back.
				first := sealFrom(b, from.c, from, pt, to...)
				for _, m := range to {
					mustOpen(b, m, from, first, pt)
				}
				mustOpen(b, from, to[0], sealFrom(b, to[0].c, to[0], pt, others(ps, to[0])...), pt)
				ctx := &layers.Context{Group: groupID, Sender: from.id}
				for _, m := range to {
					ctx.Recipients = append(ctx.Recipients, m.id)
				}
				var overhead int
				b.SetBytes(int64(size))
				for b.Loop() {
					msg, err := from.c.Seal(ctx, pt)
					if err != nil {
						b.Fatal(err)
					}
					overhead = len(msg) - size
					if _, err := to[0].c.Open(&layers.Context{Group: groupID}, msg); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(overhead), "overhead-bytes")
			})
		}
	}
}
