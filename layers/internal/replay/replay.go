// Package replay is the replay guard of the aes and mlkem layers: a bounded,
// time-windowed set of the message ids seen.
//
// A message carries a random id and its sender's timestamp, both under the
// layer's authentication. A Window accepts a message once, and only if its
// timestamp is within the window: not older than MaxAge, not further than
// MaxSkew in the future, and not before the floor. The floor rises whenever
// an id is forgotten (aged out, or evicted because the set is full), to just
// above that id's timestamp, so a forgotten id can never be accepted again.
//
// What survives a restart is what the store saved: MarshalBinary holds the
// floor and every remembered id. A Window made fresh (nothing restored)
// starts with its floor at now − MaxSkew, so only a message stamped within
// MaxSkew before start-up could be accepted twice across an unsaved restart
// (and then the mls and signal layers inside refuse it again, their message
// keys being gone).
package replay

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"time"
)

// ID identifies a message: random, 128 bits.
type ID [16]byte

// Config bounds a Window. Zero fields take the defaults.
type Config struct {
	// MaxAge is how old a message may be: 72 hours by default, so a peer
	// that was away over a weekend still opens what it is sent on return.
	MaxAge time.Duration
	// MaxSkew is how far a timestamp may be in the future, for clocks that
	// disagree: 15 minutes by default.
	MaxSkew time.Duration
	// MaxEntries bounds memory: 65536 ids by default (about 3 MiB). When
	// full, the oldest id is forgotten and the floor rises above it.
	MaxEntries int
}

const (
	defaultMaxAge     = 72 * time.Hour
	defaultMaxSkew    = 15 * time.Minute
	defaultMaxEntries = 1 << 16
	// hardMaxEntries bounds what UnmarshalBinary accepts.
	hardMaxEntries = 1 << 22
)

// Window is a replay guard. It is not safe for concurrent use: the layer's
// lock guards it.
type Window struct {
	maxAge, maxSkew int64 // milliseconds
	max             int
	floor           int64 // unix ms: earlier timestamps are refused
	seen            map[ID]int64
	order           byTime // the same entries, oldest first
}

// New returns an empty Window whose floor is now − MaxSkew.
func New(cfg Config, now time.Time) *Window {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = defaultMaxAge
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = defaultMaxSkew
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = defaultMaxEntries
	}
	w := &Window{
		maxAge:  cfg.MaxAge.Milliseconds(),
		maxSkew: cfg.MaxSkew.Milliseconds(),
		max:     cfg.MaxEntries,
		seen:    make(map[ID]int64),
	}
	w.floor = now.UnixMilli() - w.maxSkew
	return w
}

// Check reports whether a message with this id and timestamp (unix ms) would
// be accepted now. It changes nothing.
func (w *Window) Check(id ID, ts int64, now time.Time) bool {
	n := now.UnixMilli()
	if ts < w.floor || ts < n-w.maxAge || ts > n+w.maxSkew {
		return false
	}
	_, dup := w.seen[id]
	return !dup
}

// Add records the id if Check accepts it and reports whether it did.
func (w *Window) Add(id ID, ts int64, now time.Time) bool {
	if !w.Check(id, ts, now) {
		return false
	}
	w.seen[id] = ts
	heap.Push(&w.order, entry{ts, id})
	w.prune(now.UnixMilli())
	return true
}

func (w *Window) prune(now int64) {
	for len(w.order) > 0 && (len(w.order) > w.max || w.order[0].ts < now-w.maxAge) {
		e := heap.Pop(&w.order).(entry)
		delete(w.seen, e.id)
		w.floor = max(w.floor, e.ts+1)
	}
}

// Len returns the number of ids remembered.
func (w *Window) Len() int { return len(w.seen) }

const stateVersion = 1

// MarshalBinary encodes the floor and the ids, oldest first: version byte,
// floor (8 bytes), count (4 bytes), then count × (id, timestamp).
func (w *Window) MarshalBinary() ([]byte, error) {
	es := slices.Clone(w.order)
	slices.SortFunc(es, func(a, b entry) int {
		if a.ts != b.ts {
			return cmp.Compare(a.ts, b.ts)
		}
		return slices.Compare(a.id[:], b.id[:])
	})
	b := make([]byte, 0, 13+len(es)*24)
	b = append(b, stateVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(w.floor))
	b = binary.BigEndian.AppendUint32(b, uint32(len(es)))
	for _, e := range es {
		b = append(b, e.id[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
	}
	return b, nil
}

var errState = errors.New("replay: malformed state")

// UnmarshalBinary replaces the window's floor and ids with saved ones. The
// limits stay those of the Window's Config.
func (w *Window) UnmarshalBinary(b []byte) error {
	if len(b) < 13 || b[0] != stateVersion {
		return errState
	}
	floor := int64(binary.BigEndian.Uint64(b[1:]))
	n := binary.BigEndian.Uint32(b[9:])
	if n > hardMaxEntries || uint64(len(b)-13) != uint64(n)*24 {
		return errState
	}
	seen := make(map[ID]int64, n)
	order := make(byTime, 0, n)
	for p := b[13:]; len(p) > 0; p = p[24:] {
		var e entry
		copy(e.id[:], p)
		e.ts = int64(binary.BigEndian.Uint64(p[16:]))
		if _, dup := seen[e.id]; dup {
			return errState
		}
		seen[e.id] = e.ts
		order = append(order, e)
	}
	heap.Init(&order)
	w.floor, w.seen, w.order = floor, seen, order
	for len(w.order) > w.max {
		e := heap.Pop(&w.order).(entry)
		delete(w.seen, e.id)
		w.floor = max(w.floor, e.ts+1)
	}
	return nil
}

type entry struct {
	ts int64
	id ID
}

// byTime is a min-heap of entries by timestamp.
type byTime []entry

func (h byTime) Len() int           { return len(h) }
func (h byTime) Less(i, j int) bool { return h[i].ts < h[j].ts }
func (h byTime) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byTime) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *byTime) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// Guard is a Window safe for concurrent use, with the two steps of a layer's staged Open:
// Stage checks a message against the window without recording it, and the function it
// returns records it once every layer has accepted the message.
type Guard struct {
	now func() time.Time

	mu sync.Mutex
	w  *Window // guarded by mu
}

// NewGuard returns a Guard over a new Window; now is the clock.
func NewGuard(cfg Config, now func() time.Time) *Guard {
	return &Guard{now: now, w: New(cfg, now())}
}

// Stage reports whether the message (id, ts) may be accepted now and, if so, returns the
// function that records it. That function returns replayErr if the message was recorded in
// between (the same message accepted twice, concurrently): then nothing changed.
func (g *Guard) Stage(id ID, ts int64, replayErr error) (record func() error, ok bool) {
	g.mu.Lock()
	ok = g.w.Check(id, ts, g.now())
	g.mu.Unlock()
	if !ok {
		return nil, false
	}
	return func() error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.w.Add(id, ts, g.now()) {
			return replayErr
		}
		return nil
	}, true
}

// MarshalBinary saves the window.
func (g *Guard) MarshalBinary() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.w.MarshalBinary()
}

// UnmarshalBinary restores a window saved by MarshalBinary.
func (g *Guard) UnmarshalBinary(b []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.w.UnmarshalBinary(b)
}
