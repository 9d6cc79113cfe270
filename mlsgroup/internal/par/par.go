// Package par runs independent public-key operations (HPKE encryptions, signature checks)
// across the machine's cores. The work of a large MLS commit or Welcome is mostly such
// operations, and they do not depend on one another.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// serialBelow is the batch size under which goroutines cost more than they save.
const serialBelow = 8

// Do calls f(i) for every i in [0, n), on up to GOMAXPROCS goroutines, and returns the
// error of the lowest index that failed (so the result does not depend on scheduling).
// f must be safe to call concurrently for different i. Do returns once every call ended.
func Do(n int, f func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if n < serialBelow || workers < 2 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs[i] = err
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
