package chat

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers/signal"
)

// The signal layer's state is saved split (see signal.Layer.MarshalSplitAhead): a head,
// and one record per member, each written again only when it changed. Saved whole, the
// state is O(members) bytes (357 KB at 200 members), and it is saved whenever sender keys
// arrive: O(members²) per join in all. Groups saved whole by an earlier version (under
// sigLayerKey) load as they were, and are saved split from then on.

func sigHeadKey(groupID []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: []byte{}, Kind: "signal/head"}
}

func sigPeerKey(groupID, member []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: member, Kind: sigPeerKind}
}

const sigPeerKind = "signal/peer"

// sigSave is one save of the signal layer's state: its head, the records that changed
// since the last save of this group (all, for its first), and the digests of all.
type sigSave struct {
	head  []byte
	put   map[string][]byte
	sums  map[string][32]byte
	first bool // clear what the store holds of the group's signal state first
}

// marshalSignal encodes the signal layer's state for a save, with our sender key n
// messages ahead (see signal.Layer.MarshalSplitAhead).
func (g *group) marshalSignal(n uint32) (*sigSave, signal.SendMark, error) {
	head, recs, mark, err := g.sig.MarshalSplitAhead(n)
	if err != nil {
		return nil, signal.SendMark{}, err
	}
	s := &sigSave{head: head, put: map[string][]byte{}, sums: make(map[string][32]byte, len(recs)), first: g.sigSums == nil}
	for id, r := range recs {
		sum := sha256.Sum256(r) // collision-resistant: a record skipped wrongly could be a key used twice after a restart
		s.sums[id] = sum
		if old, ok := g.sigSums[id]; !ok || old != sum {
			s.put[id] = r
		}
	}
	return s, mark, nil
}

// write stores the save in tx.
func (s *sigSave) write(tx *store.Tx, g *group) error {
	if s.first {
		// What a group of the same id left before (an earlier membership, or a state
		// saved whole by an earlier version) must not mix with this one.
		keys, err := tx.Sessions(g.id)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Kind == sigPeerKind {
				if _, ok := s.sums[string(k.PeerID)]; !ok {
					if err := tx.DeleteSession(k); err != nil {
						return err
					}
				}
			}
		}
		if err := tx.DeleteSession(sigLayerKey(g.id)); err != nil {
			return err
		}
	} else {
		for id := range g.sigSums {
			if _, ok := s.sums[id]; !ok {
				if err := tx.DeleteSession(sigPeerKey(g.id, []byte(id))); err != nil {
					return err
				}
			}
		}
	}
	for id, r := range s.put {
		if err := tx.SaveSession(sigPeerKey(g.id, []byte(id)), r); err != nil {
			return err
		}
	}
	return tx.SaveSession(sigHeadKey(g.id), s.head)
}

// saved notes that the save is in the store.
func (s *sigSave) saved(g *group) { g.sigSums = s.sums }

// savedSignal is the signal layer's state as the store holds it: split (head and
// records), or whole (an earlier version's), or none.
type savedSignal struct {
	head  []byte
	recs  map[string][]byte
	whole []byte
}

// loadSignal reads the signal layer's saved state of group groupID.
func loadSignal(ctx context.Context, st *store.Store, groupID []byte) (*savedSignal, error) {
	out := &savedSignal{}
	err := st.View(ctx, func(tx *store.Tx) error {
		head, err := tx.Session(sigHeadKey(groupID))
		if errors.Is(err, store.ErrNotFound) {
			if out.whole, err = tx.Session(sigLayerKey(groupID)); errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}
		if err != nil {
			return err
		}
		out.head, out.recs = head, map[string][]byte{}
		keys, err := tx.Sessions(groupID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Kind != sigPeerKind {
				continue
			}
			r, err := tx.Session(k)
			if err != nil {
				return err
			}
			out.recs[string(k.PeerID)] = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chat: signal state of group %x: %w", groupID, err)
	}
	if out.head == nil && out.whole == nil {
		return nil, nil
	}
	return out, nil
}

// restore puts the saved state into layer l, and returns the digests of its records as
// saved (nil for a state saved whole: the first save then writes it split).
func (s *savedSignal) restore(l *signal.Layer) (map[string][32]byte, error) {
	if s.head == nil {
		return nil, l.UnmarshalBinary(s.whole)
	}
	if err := l.UnmarshalSplit(s.head, s.recs); err != nil {
		return nil, err
	}
	sums := make(map[string][32]byte, len(s.recs))
	for id, r := range s.recs {
		sums[id] = sha256.Sum256(r)
	}
	return sums, nil
}
