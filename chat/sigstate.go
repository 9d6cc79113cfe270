package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers/signal"
)

// The signal layer's state is saved split (see signal.Layer.MarshalSplitSince): a head,
// and one record per member, each written again only when it changed. Saved whole, the
// state is O(members) bytes (357 KB at 200 members), and it is saved whenever sender keys
// arrive: O(members²) per join in all. The layer stamps every change to a member's
// record, so that a save encodes only the records changed since the last one, not all of
// them to compare. Groups saved whole by an earlier version (under sigLayerKey) load as
// they were, and are saved split from then on.

func sigHeadKey(groupID []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: []byte{}, Kind: "signal/head"}
}

func sigPeerKey(groupID, member []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: member, Kind: sigPeerKind}
}

const sigPeerKind = "signal/peer"

// sigSaved is what the store holds of a group's signal state, saved split: the layer's
// stamp at the last save stored (see signal.SplitSave.Stamp), and the members whose
// records it holds.
type sigSaved struct {
	since uint64
	ids   map[string]struct{}
}

// sigSave is one save of the signal layer's state: its head, and the records that changed
// since the last save of this group (all, for its first).
type sigSave struct {
	signal.SplitSave
	first bool // clear what the store holds of the group's signal state first
}

// marshalSignal encodes the signal layer's state for a save, with our sender key n
// messages ahead (see signal.Layer.MarshalSplitSince).
func (g *group) marshalSignal(n uint32) (*sigSave, signal.SendMark, error) {
	var since uint64
	if g.sigSums != nil {
		since = g.sigSums.since
	}
	s, err := g.sig.MarshalSplitSince(n, since)
	if err != nil {
		return nil, signal.SendMark{}, err
	}
	return &sigSave{SplitSave: s, first: g.sigSums == nil}, s.Mark, nil
}

// write stores the save in tx.
func (s *sigSave) write(tx *store.Tx, g *group) error {
	if s.first {
		// What a group of the same id left before (an earlier membership, or a state
		// saved whole by an earlier version) must not mix with this one. A first save
		// holds every record.
		err := deleteSessions(tx, g.id, sigPeerKind, func(member []byte) bool {
			_, ok := s.Records[string(member)]
			return ok
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteSession(sigLayerKey(g.id)); err != nil {
			return err
		}
	} else if s.Members != nil { // members' records went since the last save
		for id := range g.sigSums.ids {
			if _, ok := s.Members[id]; !ok {
				if err := tx.DeleteSession(sigPeerKey(g.id, []byte(id))); err != nil {
					return err
				}
			}
		}
	}
	for id, r := range s.Records {
		if err := tx.SaveSession(sigPeerKey(g.id, []byte(id)), r); err != nil {
			return err
		}
	}
	return tx.SaveSession(sigHeadKey(g.id), s.Head)
}

// saved notes that the save is in the store: the next one writes what changed since.
func (s *sigSave) saved(g *group) {
	if s.first {
		g.sigSums = &sigSaved{ids: make(map[string]struct{}, len(s.Records))}
	}
	if s.Members != nil {
		for id := range g.sigSums.ids {
			if _, ok := s.Members[id]; !ok {
				delete(g.sigSums.ids, id)
			}
		}
	}
	for id := range s.Records {
		g.sigSums.ids[id] = struct{}{}
	}
	g.sigSums.since = s.Stamp
}

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

// restore puts the saved state into layer l, and returns what the store holds of it,
// saved split (nil for a state saved whole: the first save then writes it split).
func (s *savedSignal) restore(l *signal.Layer) (*sigSaved, error) {
	if s.head == nil {
		return nil, l.UnmarshalBinary(s.whole)
	}
	if err := l.UnmarshalSplit(s.head, s.recs); err != nil {
		return nil, err
	}
	ids := make(map[string]struct{}, len(s.recs))
	for id := range s.recs {
		ids[id] = struct{}{}
	}
	// The store holds the records the layer has now: the next save writes what changes.
	return &sigSaved{since: l.Stamp(), ids: ids}, nil
}

// deleteSessions deletes the group's session records of a kind, but those whose peer id
// keep returns true for (keep nil: none).
func deleteSessions(tx *store.Tx, groupID []byte, kind string, keep func(peerID []byte) bool) error {
	keys, err := tx.Sessions(groupID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Kind != kind || (keep != nil && keep(k.PeerID)) {
			continue
		}
		if err := tx.DeleteSession(k); err != nil {
			return err
		}
	}
	return nil
}
