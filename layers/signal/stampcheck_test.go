package signal

import "testing"

// The package's tests run with the stamp check on at every change: every change they
// make to a layer is checked to stamp the records it changes (see stampCheck).
func init() { stampCheck.Store(checkEveryChange) }

// noStampCheck turns the stamp check off for benchmark b, whose figures it would skew.
func noStampCheck(b *testing.B) {
	was := stampCheck.Swap(checkOff)
	b.Cleanup(func() { stampCheck.Store(was) })
}
