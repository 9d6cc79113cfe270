package signal

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// The split encoding of the layer's state (MarshalSplitSince) is a head and one record
// per peer, so that a caller saving it writes again only the records that changed:
//
//	head    splitVersion (1) | head (see marshalHead) | record count (4)
//	record  recordVersion (1) | peer (see marshalPeer) | hand-outs owed to it (see marshalHandOuts)
//
// A record holds nothing of another member's, nor of the layer's: equal peers, owed the
// same hand-outs, encode to equal records. Head and records carry versions of their own,
// so that either can change without the other: records saved before a change, and
// unchanged since, are not written again (UnmarshalSplit then reads both versions).
//
// Every change to a member's record gives the member a stamp (see touch) from a counter
// of the layer's, so that a save encodes only the records stamped since the last one.
const (
	splitVersion  = 1
	recordVersion = 1
	// recordPeerVersion is the stateVersion whose peer encoding records of recordVersion
	// hold.
	recordPeerVersion = 5
)

// SplitSave is the layer's state split for one save (see MarshalSplitSince). The bytes
// hold secrets: store them encrypted.
type SplitSave struct {
	// Head holds what is not any one peer's: version, rekey flag, our sender key encoded
	// ahead as MarshalBinaryAhead does, the answered handshakes, and the number of
	// records. It is always there, and always to be saved.
	Head []byte
	// Records holds, by member id (string(member id) -> record), the records of the
	// members whose record changed since the stamp given: all records for stamp 0. A
	// record holds the member's bundle, removed flag, sessions, sender keys, earlier
	// state (see SetPeer), and the hand-outs of our sender key owed to it. The records
	// and the head share one buffer, each capped at its end.
	Records map[string][]byte
	// Members is nil unless a member's record was dropped since the stamp given: it then
	// holds the id of every member that has a record, and the saved records of the
	// members not in it are to be deleted. While it is nil, no member's record went:
	// every record saved at that stamp is still one. For stamp 0 it is nil, and Records
	// holds every record: delete every saved record not in Records.
	Members map[string]struct{}
	// Mark means what MarshalBinaryAhead's does.
	Mark SendMark
	// Stamp is the layer's stamp as of this encoding: once the save is stored, pass it
	// to the next MarshalSplitSince as since.
	Stamp uint64
}

// MarshalSplitSince is MarshalBinaryAhead with the state split in parts, a head and one
// record per member (see SplitSave), for a caller that saves the head and the records
// as separate entries and writes again only those that changed. since is the Stamp of
// the last SplitSave of this layer that the caller stored (or that Stamp returned when
// the state was restored from those entries); 0 when it stored none. The save holds the
// head, the records stamped after since, and (when records were dropped since) the ids
// of all members with a record. Write the head and those records together, and delete
// the saved records of members not in Members (not in Records, for since 0):
// UnmarshalSplit refuses a set of records of another size than the head counts. If the save fails, pass the same since again:
// the records it held come back in the next one. Encoding only what changed, a save
// costs in proportion to the records changed (and the head), not to the group.
func (l *Layer) MarshalSplitSince(n uint32, since uint64) (SplitSave, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stampCheck.Load() != checkOff {
		l.checkStamps("a change before MarshalSplitSince")
	}
	mark := l.sendMark(n)
	s, err := l.marshalSplit(mark.next, since)
	if err != nil {
		return SplitSave{}, err
	}
	s.Mark = mark
	return s, nil
}

// MarshalSplitAhead is MarshalSplitSince(n, 0): the head and every member's record.
func (l *Layer) MarshalSplitAhead(n uint32) (head []byte, peers map[string][]byte, mark SendMark, err error) {
	s, err := l.MarshalSplitSince(n, 0)
	return s.Head, s.Records, s.Mark, err
}

// Stamp returns the layer's stamp: MarshalSplitSince(n, Stamp()) returns no record until
// one changes. Right after UnmarshalSplit, it is the since of a caller whose entries
// hold the records just restored.
func (l *Layer) Stamp() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stamp
}

// marshalSplit encodes the layer split, with our sender key at message number next or
// later, and the records stamped after since. l.mu is held.
func (l *Layer) marshalSplit(next uint32, since uint64) (SplitSave, error) {
	for m := range l.handing {
		// SetPeer and RemovePeer drop the hand-outs to the member they replace or remove,
		// and ForgetRemoved drops only removed members.
		if p := l.peers[m]; p == nil || p.removed {
			return SplitSave{}, fmt.Errorf("signal: internal error: hand-out owed to %x, not a peer", m)
		}
	}
	l.marks++
	n := len(l.peers)
	if since > 0 {
		n = 0
		for _, p := range l.peers {
			if p.changed > since {
				n++
			}
		}
	}
	size := l.headSize + n*l.recordSize
	if since == 0 && l.stateSize > 0 {
		size = l.stateSize
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, size+size/8))
	b.AddUint8(splitVersion)
	l.marshalHead(b, next)
	b.AddUint32(uint32(len(l.peers)))
	out, err := b.Bytes()
	if err != nil {
		return SplitSave{}, err
	}
	headEnd := len(out)
	type record struct {
		id  string
		end int
	}
	records := make([]record, 0, n)
	largest := 0
	for id, p := range l.peers {
		if p.changed <= since {
			continue
		}
		start := len(out)
		marshalRecord(b, p, l.handing[id])
		if out, err = b.Bytes(); err != nil {
			return SplitSave{}, err
		}
		records = append(records, record{id, len(out)})
		largest = max(largest, len(out)-start)
	}
	l.headSize = headEnd
	if len(records) > 0 {
		l.recordSize = largest
	}
	if since == 0 {
		l.stateSize = len(out)
	}
	s := SplitSave{Head: out[:headEnd:headEnd], Records: make(map[string][]byte, len(records)), Stamp: l.stamp}
	start := headEnd
	for _, r := range records {
		s.Records[r.id] = out[start:r.end:r.end]
		start = r.end
	}
	if since > 0 && l.dropped > since {
		s.Members = make(map[string]struct{}, len(l.peers))
		for id := range l.peers {
			s.Members[id] = struct{}{}
		}
	}
	return s, nil
}

// marshalRecord encodes the record of the member of peer p, owed hand-outs hs.
func marshalRecord(b *cryptobyte.Builder, p *peer, hs []*handOut) {
	b.AddUint8(recordVersion)
	marshalPeer(b, p)
	marshalHandOuts(b, hs)
}

// errSplit is the error of UnmarshalSplit for input that was not made by MarshalSplitSince
// (of a version it reads); more detail is wrapped around it.
var errSplit = fmt.Errorf("%w (split)", errState)

// UnmarshalSplit replaces the layer's state with one saved by MarshalSplitSince: its head
// and all its records (the latest of each member's). On an error, which wraps errSplit
// (and errState), the layer's state is as it was. Every record counts as changed then
// (see Stamp).
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
