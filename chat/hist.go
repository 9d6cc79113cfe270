package chat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/internal/store"
)

// The epochs a member keeps of its branch (g.hist) are saved with the group's state, one
// record per epoch, so that a member that restarts can still judge a fork whose branches
// part in them (see judge). Without them, a restarted member could only take the
// recovery ladder, which a member gives way on only when it is alone on its branch: two
// members of a losing branch, both restarted, stayed on it.
//
// A record is written in the transaction that saves the state of the epoch after it, and
// deleted in the one that saves the state of an epoch it is no longer kept at.

const histKind = "chat/epoch"

func histKey(groupID []byte, epoch uint64) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: binary.BigEndian.AppendUint64(nil, epoch), Kind: histKind}
}

// histVersion is the version of an epoch record's encoding:
//
//	version (1) | epoch (8) | authenticator <2> | state <4> | commit frame <4> |
//	rank (4) | commit hash (32) | proposals <4> of <4> | identities <4> of <2>
const histVersion = 1

var errHistRecord = errors.New("chat: malformed epoch record")

func (r *epochRec) marshal() ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, len(r.state)+len(r.frame)+256))
	b.AddUint8(histVersion)
	b.AddUint64(r.epoch)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.auth) })
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.state) })
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.frame) })
	b.AddUint32(r.key.rank)
	b.AddBytes(r.key.hash[:])
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, p := range r.props {
			b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(p) })
		}
	})
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, id := range slices.Sorted(maps.Keys(r.idents)) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(id)) })
		}
	})
	return b.Bytes()
}

// unmarshalEpochRec reads a record made by marshal. The bytes are not kept.
func unmarshalEpochRec(data []byte) (epochRec, error) {
	var r epochRec
	s := cryptobyte.String(data)
	var v uint8
	var auth, state, frame, hash, props, ids cryptobyte.String
	if !s.ReadUint8(&v) {
		return r, errHistRecord
	}
	if v != histVersion {
		return r, fmt.Errorf("%w: version %d", errHistRecord, v)
	}
	if !s.ReadUint64(&r.epoch) || !s.ReadUint16LengthPrefixed(&auth) || !readOpaque32(&s, &state) ||
		!readOpaque32(&s, &frame) || !s.ReadUint32(&r.key.rank) || !s.ReadBytes((*[]byte)(&hash), 32) ||
		!readOpaque32(&s, &props) || !readOpaque32(&s, &ids) || !s.Empty() {
		return r, errHistRecord
	}
	if len(auth) < authPrefix || len(state) == 0 || len(frame) == 0 { // auth is cut to authPrefix
		return r, errHistRecord
	}
	r.auth, r.state, r.frame = clone([]byte(auth)), clone([]byte(state)), clone([]byte(frame))
	copy(r.key.hash[:], hash)
	for !props.Empty() {
		var p cryptobyte.String
		if !readOpaque32(&props, &p) {
			return r, errHistRecord
		}
		r.props = append(r.props, clone([]byte(p)))
	}
	r.idents = map[string]bool{}
	for !ids.Empty() {
		var id cryptobyte.String
		if !ids.ReadUint16LengthPrefixed(&id) {
			return r, errHistRecord
		}
		r.idents[string(id)] = true
	}
	return r, nil
}

// histSave is what a save writes of the kept epochs: the records that changed, and the
// epochs no longer kept.
type histSave struct {
	put   map[uint64][]byte
	del   []uint64
	clear bool // delete every record of the group first (what is stored is not known)
}

// marshalHist encodes the kept epochs changed since the last save (nil: nothing to do).
func (g *group) marshalHist() (*histSave, error) {
	if len(g.histDirty) == 0 && g.histStored != nil && len(g.histStored) == len(g.hist) {
		return nil, nil
	}
	s := &histSave{put: map[uint64][]byte{}, clear: g.histStored == nil}
	kept := make(map[uint64]bool, len(g.hist))
	for i := range g.hist {
		r := &g.hist[i]
		kept[r.epoch] = true
		if g.histDirty[r.epoch] || s.clear || !g.histStored[r.epoch] {
			b, err := r.marshal()
			if err != nil {
				return nil, err
			}
			s.put[r.epoch] = b
		}
	}
	for e := range g.histStored {
		if !kept[e] {
			s.del = append(s.del, e)
		}
	}
	return s, nil
}

func (s *histSave) write(tx *store.Tx, g *group) error {
	if s.clear {
		if err := deleteSessions(tx, g.id, histKind, nil); err != nil {
			return err
		}
	}
	for _, e := range s.del {
		if err := tx.DeleteSession(histKey(g.id, e)); err != nil {
			return err
		}
	}
	for e, b := range s.put {
		if err := tx.SaveSession(histKey(g.id, e), b); err != nil {
			return err
		}
	}
	return nil
}

// saved notes that the save is in the store.
func (s *histSave) saved(g *group) {
	g.histDirty = nil
	g.histStored = make(map[uint64]bool, len(g.hist))
	for _, r := range g.hist {
		g.histStored[r.epoch] = true
	}
}

// markHist notes that the kept epoch e changed (or is new).
func (g *group) markHist(e uint64) {
	if g.histDirty == nil {
		g.histDirty = map[uint64]bool{}
	}
	g.histDirty[e] = true
}

// forgetHist drops the kept epochs, here and, with the next save, in the store.
func (g *group) forgetHist() {
	g.hist, g.histDirty = nil, nil
}

// loadHist reads the kept epochs saved of a group whose state is at epoch cur: the
// records of the epochs right before it, oldest first. Records that do not lead up to
// cur (none should: each is saved with the state after it) are not taken, and the next
// save deletes them. A record that does not parse loses the epochs before it, as if they
// had not been kept.
func loadHist(ctx context.Context, st *store.Store, groupID []byte, cur uint64) (hist []epochRec, stored map[uint64]bool, err error) {
	stored = map[uint64]bool{}
	var recs []epochRec
	err = st.View(ctx, func(tx *store.Tx) error {
		keys, err := tx.Sessions(groupID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Kind != histKind || len(k.PeerID) != 8 {
				continue
			}
			e := binary.BigEndian.Uint64(k.PeerID)
			stored[e] = true
			if e >= cur {
				continue
			}
			b, err := tx.Session(k)
			if err != nil {
				return err
			}
			r, err := unmarshalEpochRec(b)
			if err != nil || r.epoch != e {
				continue
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].epoch > recs[j].epoch })
	for i, r := range recs {
		if r.epoch != cur-1-uint64(i) {
			break
		}
		hist = append(hist, r)
	}
	slices.Reverse(hist)
	return hist, stored, nil
}
