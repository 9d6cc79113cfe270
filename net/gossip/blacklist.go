package gossip

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// expiringBlacklist is gossipsub's blacklist with entries that expire after a while. It
// prunes expired entries when it is used rather than from a goroutine of its own, so it
// needs no stopping (pubsub's time-cached blacklist runs a sweeper that nothing ends,
// which testing/synctest refuses).
type expiringBlacklist struct {
	mu    sync.Mutex
	ttl   time.Duration
	now   func() time.Time
	until map[peer.ID]time.Time
}

func newExpiringBlacklist(ttl time.Duration, now func() time.Time) *expiringBlacklist {
	return &expiringBlacklist{ttl: ttl, now: now, until: make(map[peer.ID]time.Time)}
}

// Add blacklists p for the ttl; it reports whether p was not blacklisted already.
func (b *expiringBlacklist) Add(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for q, t := range b.until {
		if !now.Before(t) {
			delete(b.until, q)
		}
	}
	_, had := b.until[p]
	b.until[p] = now.Add(b.ttl)
	return !had
}

// Contains reports whether p is blacklisted now.
func (b *expiringBlacklist) Contains(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[p]
	if ok && !b.now().Before(t) {
		delete(b.until, p)
		return false
	}
	return ok
}
