package discovery

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// RendezvousPrefix starts every rendezvous namespace.
const RendezvousPrefix = "/tchat/rv/1/"

// DefaultRendezvousInterval is how often a group's rendezvous is advertised and
// looked up once it has succeeded; failures are retried sooner, backing off
// from one second.
const DefaultRendezvousInterval = 5 * time.Minute

// Day returns the rendezvous day of t: whole days since the Unix epoch, in UTC.
func Day(t time.Time) int64 {
	return t.Unix() / 86400
}

// RendezvousKey returns the DHT namespace under which members of a group
// advertise themselves on the given day:
//
//	RendezvousPrefix || hex(HKDF-SHA256(ikm = roomSecret, salt = groupID,
//	                                    info = "tchat rendezvous v1" || uint64(day), 32))
//
// The DHT stores provider records under a hash of it. Without the room secret
// the key cannot be linked to the group, and keys of different days cannot be
// linked to each other, so the public DHT learns neither which groups exist nor
// how long one has lived.
func RendezvousKey(groupID, roomSecret []byte, day int64) string {
	info := make([]byte, 0, 32)
	info = append(info, "tchat rendezvous v1"...)
	info = binary.BigEndian.AppendUint64(info, uint64(day))
	k, err := hkdf.Key(sha256.New, roomSecret, groupID, string(info), 32)
	if err != nil {
		panic("discovery: internal error: " + err.Error())
	}
	return RendezvousPrefix + hex.EncodeToString(k)
}

// advertiseKeys are the keys to advertise at t: today's, and tomorrow's in the
// last hour of the day, so a member whose clock is a little ahead finds us.
func advertiseKeys(groupID, roomSecret []byte, t time.Time) []string {
	d := Day(t)
	keys := []string{RendezvousKey(groupID, roomSecret, d)}
	if Day(t.Add(time.Hour)) != d {
		keys = append(keys, RendezvousKey(groupID, roomSecret, d+1))
	}
	return keys
}

// lookupKeys are the keys to look up at t: today's, and yesterday's in the
// first hours of the day, while yesterday's records are still fresh.
func lookupKeys(groupID, roomSecret []byte, t time.Time) []string {
	d := Day(t)
	keys := []string{RendezvousKey(groupID, roomSecret, d)}
	if Day(t.Add(-2*time.Hour)) != d {
		keys = append(keys, RendezvousKey(groupID, roomSecret, d-1))
	}
	return keys
}

// Rendezvous advertises a group's rendezvous on the DHT and looks it up,
// repeatedly, handing every member found to a callback. Stop it with Stop.
type Rendezvous struct {
	d        *DHT
	groupID  []byte
	secret   []byte
	interval time.Duration
	found    func(peer.AddrInfo)
	log      *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartRendezvous starts advertising and looking up the group's rendezvous.
// found is called (from the Rendezvous goroutine) for every other peer found;
// it must not block for long. interval <= 0 means DefaultRendezvousInterval.
func (d *DHT) StartRendezvous(groupID, roomSecret []byte, interval time.Duration, found func(peer.AddrInfo)) *Rendezvous {
	if interval <= 0 {
		interval = DefaultRendezvousInterval
	}
	r := &Rendezvous{d: d, groupID: append([]byte(nil), groupID...), secret: append([]byte(nil), roomSecret...),
		interval: interval, found: found, log: d.log}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(d.ctx)
	r.wg.Add(1)
	go r.loop(ctx)
	return r
}

// Stop stops the rendezvous and waits for its goroutine.
func (r *Rendezvous) Stop() {
	r.cancel()
	r.wg.Wait()
}

func (r *Rendezvous) loop(ctx context.Context) {
	defer r.wg.Done()
	retry := time.Second
	for {
		ok := r.round(ctx)
		wait := r.interval
		if !ok {
			wait = min(retry, r.interval)
			retry = min(2*retry, r.interval)
		} else {
			retry = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// round advertises and looks up once; it reports whether the advertisement
// reached the DHT and another member was found (else the loop retries sooner).
func (r *Rendezvous) round(ctx context.Context) bool {
	now := time.Now()
	ok, foundAny := true, false
	for _, k := range advertiseKeys(r.groupID, r.secret, now) {
		if err := r.d.Advertise(ctx, k); err != nil {
			r.log.Debug("discovery: advertise rendezvous", "err", err)
			ok = false
		}
	}
	for _, k := range lookupKeys(r.groupID, r.secret, now) {
		peers, err := r.d.FindPeers(ctx, k, 0)
		if err != nil {
			r.log.Debug("discovery: look up rendezvous", "err", err)
			ok = false
			continue
		}
		for ai := range peers {
			foundAny = true
			r.found(ai)
		}
	}
	return ok && foundAny
}
