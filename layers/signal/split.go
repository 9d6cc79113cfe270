package signal

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// The split encoding of the layer's state (MarshalSplitAhead) is a head and one record
// per peer, so that a caller saving it writes again only the records that changed:
//
//	head    splitVersion (1) | head (see marshalHead) | record count (4)
//	record  recordVersion (1) | peer (see marshalPeer) | hand-outs owed to it (see marshalHandOuts)
//
// A record holds nothing of another member's, nor of the layer's: equal peers, owed the
// same hand-outs, encode to equal records. Head and records carry versions of their own,
// so that either can change without the other: records saved before a change, and
// unchanged since, are not written again (UnmarshalSplit then reads both versions).
const (
	splitVersion  = 1
	recordVersion = 1
	// recordPeerVersion is the stateVersion whose peer encoding records of recordVersion
	// hold.
	recordPeerVersion = 5
)

// MarshalSplitAhead is MarshalBinaryAhead with the state split in parts: head holds what is
// not any one peer's (version, rekey flag, our sender key encoded n messages ahead as
// MarshalBinaryAhead does, the answered handshakes, and the number of records), and peers
// one record per member id (string(member id) -> record): its bundle, removed flag,
// sessions, sender keys, earlier state (see SetPeer), and the hand-outs of our sender key
// owed to that member. A record is a function of that member's state alone: one whose
// bytes equal those saved before need not be written again. Save the head and every
// record that changed together, and delete the saved records of members no longer in
// peers: UnmarshalSplit refuses a set of records of another size than the head counts.
// The mark means what MarshalBinaryAhead's does. The bytes hold secrets: store them
// encrypted. The records share one buffer, each capped at its end.
func (l *Layer) MarshalSplitAhead(n uint32) (head []byte, peers map[string][]byte, mark SendMark, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	mark = l.sendMark(n)
	if head, peers, err = l.marshalSplit(mark.next); err != nil {
		return nil, nil, SendMark{}, err
	}
	return head, peers, mark, nil
}

// marshalSplit encodes the layer split, with our sender key at message number next or
// later. l.mu is held.
func (l *Layer) marshalSplit(next uint32) ([]byte, map[string][]byte, error) {
	for m := range l.handing {
		// SetPeer and RemovePeer drop the hand-outs to the member they replace or remove,
		// and ForgetRemoved drops only removed members.
		if p := l.peers[m]; p == nil || p.removed {
			return nil, nil, fmt.Errorf("signal: internal error: hand-out owed to %x, not a peer", m)
		}
	}
	l.marks++
	b := cryptobyte.NewBuilder(make([]byte, 0, l.stateSize+l.stateSize/8))
	b.AddUint8(splitVersion)
	l.marshalHead(b, next)
	b.AddUint32(uint32(len(l.peers)))
	out, err := b.Bytes()
	if err != nil {
		return nil, nil, err
	}
	headEnd := len(out)
	type record struct {
		id  string
		end int
	}
	records := make([]record, 0, len(l.peers))
	for id, p := range l.peers {
		b.AddUint8(recordVersion)
		marshalPeer(b, p)
		marshalHandOuts(b, l.handing[id])
		if out, err = b.Bytes(); err != nil {
			return nil, nil, err
		}
		records = append(records, record{id, len(out)})
	}
	l.stateSize = len(out)
	peers := make(map[string][]byte, len(records))
	start := headEnd
	for _, r := range records {
		peers[r.id] = out[start:r.end:r.end]
		start = r.end
	}
	return out[:headEnd:headEnd], peers, nil
}

// errSplit is the error of UnmarshalSplit for input that was not made by MarshalSplitAhead
// (of a version it reads); more detail is wrapped around it.
var errSplit = fmt.Errorf("%w (split)", errState)

// UnmarshalSplit replaces the layer's state with one saved by MarshalSplitAhead: its head
// and all its records. On an error, which wraps errSplit (and errState), the layer's
// state is as it was.
func (l *Layer) UnmarshalSplit(head []byte, peers map[string][]byte) error {
	st := new(layerState)
	if err := st.unmarshalSplit(head, peers, l.self); err != nil {
		st.destroy()
		return err
	}
	l.install(st)
	return nil
}

// unmarshalSplit reads st from a head and records made by marshalSplit; self is our
// member id, which no peer may have.
func (st *layerState) unmarshalSplit(head []byte, records map[string][]byte, self []byte) error {
	s := cryptobyte.String(head)
	var v uint8
	if !s.ReadUint8(&v) {
		return fmt.Errorf("%w: empty head", errSplit)
	}
	if v != splitVersion {
		return fmt.Errorf("%w: head of unknown version %d", errSplit, v)
	}
	var n uint32
	if !st.unmarshalHead(&s) || !s.ReadUint32(&n) || !s.Empty() {
		return fmt.Errorf("%w: malformed head", errSplit)
	}
	if uint64(n) != uint64(len(records)) {
		return fmt.Errorf("%w: head counts %d records, %d given", errSplit, n, len(records))
	}
	st.peers = make(map[string]*peer, len(records))
	st.handing = make(map[string][]*handOut)
	for id, rec := range records {
		if err := st.unmarshalRecord(id, rec, self); err != nil {
			return fmt.Errorf("%w: record of member %x: %w", errSplit, id, err)
		}
	}
	return nil
}

var errRecord = errors.New("malformed")

// unmarshalRecord reads into st the record of member id.
func (st *layerState) unmarshalRecord(id string, rec, self []byte) error {
	s := cryptobyte.String(rec)
	var v uint8
	if !s.ReadUint8(&v) {
		return errors.New("empty")
	}
	if v != recordVersion {
		return fmt.Errorf("unknown version %d", v)
	}
	p, err := unmarshalPeer(&s, recordPeerVersion, false)
	if err != nil {
		return errRecord
	}
	if string(p.id) != id {
		p.destroy()
		return fmt.Errorf("holds the state of member %x", p.id)
	}
	if id == string(self) {
		p.destroy()
		return errors.New("our own member id")
	}
	st.peers[id] = p
	hs, ok := unmarshalHandOuts(&s)
	if len(hs) > 0 {
		st.handing[id] = hs
	}
	if !ok || !s.Empty() {
		return errRecord
	}
	if len(hs) > 0 && p.removed {
		return errors.New("hand-outs owed to a removed member")
	}
	return nil
}
