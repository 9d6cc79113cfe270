package swarm

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParsePartitions(t *testing.T) {
	good := map[string][]Partition{
		"":                  nil,
		"0.3:5s":            {{At: 0.3, For: 5 * time.Second, Fraction: 0.5}},
		"30%:1m:0.25":       {{At: 0.3, For: time.Minute, Fraction: 0.25}},
		"0.2:2s, 0.7:500ms": {{At: 0.2, For: 2 * time.Second, Fraction: 0.5}, {At: 0.7, For: 500 * time.Millisecond, Fraction: 0.5}},
	}
	for spec, want := range good {
		got, err := ParsePartitions(spec)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParsePartitions(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	for _, spec := range []string{"0.3", "1.5:5s", "0.3:-1s", "0.3:5s:1", "0.3:5s:0", "x:5s", "0.3:5s:0.5:1"} {
		if _, err := ParsePartitions(spec); err == nil {
			t.Errorf("ParsePartitions(%q) accepted", spec)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(ds, 0.5); p != 50 {
		t.Errorf("p50 %v", p)
	}
	if p := percentile(ds, 0.99); p != 99 {
		t.Errorf("p99 %v", p)
	}
	if p := percentile(nil, 0.99); p != 0 {
		t.Errorf("p99 of nothing %v", p)
	}
}

func TestP99ByTenth(t *testing.T) {
	c := newCollector(2)
	base := time.Now()
	for i := range 20 {
		c.add(fmt.Sprint("m", i), 0, []bool{false, true}, base)
	}
	for i := range 20 {
		// The first tenth (messages 0 and 1) takes a second, the rest i ms.
		d := time.Duration(i) * time.Millisecond
		if i < 2 {
			d = time.Second
		}
		c.received(1, fmt.Sprint("m", i), base.Add(d), false)
	}
	c.mu.Lock()
	got := c.p99ByTenth()
	c.mu.Unlock()
	want := []float64{1000, 3, 5, 7, 9, 11, 13, 15, 17, 19}
	if !slices.Equal(got, want) {
		t.Errorf("p99 by tenth %v, want %v", got, want)
	}
	if got := newCollector(2).p99ByTenth(); got != nil {
		t.Errorf("no messages: %v", got)
	}
}

func TestErrorKinds(t *testing.T) {
	var c collector
	c.noteError(errors.New("chat: sync with 12D3KooWFcbrHmBsoi2gPBWqDssmjTbcR2p2KsYwxvEuGiaL7U5e: proto: refused: epoch 12 is gone"))
	c.noteError(errors.New("chat: sync with 12D3KooWMNPMEbSzMHNeV3FqabUqGKHJKvvuk3jaHhUAEREpfbiT: proto: refused: epoch 9 is gone"))
	c.noteError(errors.New("chat: commit 4885d03fa1 did not open after 1.5s"))
	long := errors.New(strings.Repeat("x", maxKindLen-1) + "µs and more")
	if k := errorKind(long); !utf8.ValidString(k) || !strings.HasPrefix(k, strings.Repeat("x", maxKindLen-1)+"…") {
		t.Fatalf("a long error's kind is %q", k)
	}
	if n := c.errorEvents.Load(); n != 3 {
		t.Fatalf("error events = %d, want 3", n)
	}
	got := c.topErrorKinds()
	want := map[string]int64{
		"chat: sync with <peer>: proto: refused: epoch N is gone": 2,
		"chat: commit <hex> did not open after N":                 1,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("kinds = %v, want %v", got, want)
	}
	// 2 kinds so far; the first maxKindsKept-2 new ones are kept, the last 7 are other.
	for i := range maxKindsKept + 5 {
		c.noteError(fmt.Errorf("kind %c%c", 'a'+i%26, 'a'+i/26))
	}
	if got := c.topErrorKinds(); len(got) != maxErrorKinds || got["(other)"] != 7 {
		t.Fatalf("after many kinds: %d kinds reported, %d other; want %d kinds, 7 other", len(got), got["(other)"], maxErrorKinds)
	}
}
