package signal

import (
	"bytes"
	"fmt"
	"sync/atomic"

	"golang.org/x/crypto/cryptobyte"
)

// The stamp check is a testing aid: it finds a change to a member's record that did not
// stamp the member (see touch), which MarshalSplitSince would leave out of a save. With
// it on, every check encodes every record, and panics, naming the member, if one differs
// from its bytes at the last check while its stamp is the same; or if a member's record
// went, or came, with no stamp to tell. It costs an encoding of the whole state per
// check: keep it off outside tests.
const (
	checkOff = iota
	// checkAtSaves checks at every MarshalSplitSince.
	checkAtSaves
	// checkEveryChange checks after every change to the layer as well, naming the
	// method that made it.
	checkEveryChange
)

// stampCheck is the stamp check's setting, for all layers: checkOff, checkAtSaves or
// checkEveryChange.
var stampCheck atomic.Int32

// CheckSplitStamps turns on (or off) the stamp check of every layer, at every
// MarshalSplitSince: a testing aid, for the tests of a package that saves the layer's
// state split. With it on, a change to a member's record that MarshalSplitSince would not
// save panics, naming the member. It costs an encoding of the whole state per save.
func CheckSplitStamps(on bool) {
	if on {
		stampCheck.Store(checkAtSaves)
	} else {
		stampCheck.Store(checkOff)
	}
}

// checkedRecord is a member's record as the stamp check last saw it.
type checkedRecord struct {
	stamp uint64 // the member's then
	rec   []byte
}

// changeDone runs the stamp check after op, a change to the layer, if it is on at every
// change. l.mu is held.
func (l *Layer) changeDone(op string) {
	if stampCheck.Load() == checkEveryChange {
		l.checkStamps(op)
	}
}

// checkStamps checks every member's record against the one it had at the last check
// (see stampCheck); op names what changed the layer since. l.mu is held.
func (l *Layer) checkStamps(op string) {
	if l.checked == nil {
		l.checked = make(map[string]checkedRecord)
	}
	for id, p := range l.peers {
		b := cryptobyte.NewBuilder(nil)
		marshalRecord(b, p, l.handing[id])
		rec, err := b.Bytes()
		if err != nil {
			panic(fmt.Sprintf("signal: stamp check: record of member %x: %v", id, err))
		}
		c, ok := l.checked[id]
		switch {
		case !ok && p.changed <= l.checkedAt:
			panic(fmt.Sprintf("signal: stamp check: %s: the record of member %x came unstamped", op, id))
		case ok && c.stamp == p.changed && !bytes.Equal(c.rec, rec):
			panic(fmt.Sprintf("signal: stamp check: %s: the record of member %x changed unstamped", op, id))
		}
		l.checked[id] = checkedRecord{p.changed, rec}
	}
	for id := range l.checked {
		if l.peers[id] == nil {
			if l.dropped <= l.checkedAt {
				panic(fmt.Sprintf("signal: stamp check: %s: the record of member %x went unstamped", op, id))
			}
			delete(l.checked, id)
		}
	}
	l.checkedAt = l.stamp
}
