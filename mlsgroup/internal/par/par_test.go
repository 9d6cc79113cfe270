package par

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
)

func TestDoCallsEachIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 100, 1000} {
		counts := make([]atomic.Int32, n)
		if err := Do(n, func(i int) error { counts[i].Add(1); return nil }); err != nil {
			t.Fatal(err)
		}
		for i := range counts {
			if c := counts[i].Load(); c != 1 {
				t.Fatalf("n=%d: index %d called %d times", n, i, c)
			}
		}
	}
}

func TestDoReportsAnError(t *testing.T) {
	for _, n := range []int{5, 500} {
		err := Do(n, func(i int) error {
			if i%3 == 2 {
				return fmt.Errorf("failed at %d", i)
			}
			return nil
		})
		if err == nil {
			t.Fatalf("n=%d: no error", n)
		}
	}
	sentinel := errors.New("x")
	if err := Do(1, func(int) error { return sentinel }); !errors.Is(err, sentinel) {
		t.Fatal(err)
	}
}
