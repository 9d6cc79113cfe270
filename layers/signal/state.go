package signal

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// stateVersion is the version of the layer state MarshalBinary writes.
// Version 2 adds a flag byte to every peer, set for a removed member (see
// RemovePeer); version 3 adds to every sender key of a peer its base (4
// bytes, after its iteration), the first message number it could open.
// UnmarshalBinary still reads versions 1 and 2, saved before: in version 1
// no peer is removed, and the sender keys of both get base 0, as nothing
// tells which of their earlier messages opened: no distribution then
// starts before base, so none adds keys to them (see senderKey.stageMerge),
// as before version 3. Version 4 adds to every peer a flag byte, set when
// its earlier state follows (see SetPeer): a peer encoded the same way, of
// the same member, removed, with no earlier state of its own. Version 5 adds, after the
// peers, the hand-outs of our sender keys still owed (see handOut).
const stateVersion = 5

var errState = errors.New("signal: malformed layer state")

// MarshalBinary encodes the layer's state: every peer's bundle, whether it
// was removed, its sessions and sender keys, our sender key, the
// handshakes answered, and the hand-outs of our keys owed. Not included: our member id and Identity, given to
// New again on restore. The bytes hold secrets: store them encrypted. Equal
// states encode to equal bytes.
func (l *Layer) MarshalBinary() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.marshal(0)
}

// MarshalBinaryAhead is MarshalBinary with our sender key encoded as if its chain had
// moved on n messages (the layer does not change). The mark returned tells, by
// SendMark.Covers, whether a layer restored from the encoding could use again a message
// key used since: as long as it cannot, our messages need no save of the layer's state
// of their own. Members skip the message numbers never sent, as they skip lost messages.
func (l *Layer) MarshalBinaryAhead(n uint32) ([]byte, SendMark, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.sendMark(n)
	out, err := l.marshal(m.next)
	if err != nil {
		return nil, SendMark{}, err
	}
	return out, m, nil
}

// SendMark is where our sending stood when MarshalBinaryAhead encoded the layer.
type SendMark struct {
	l     *Layer
	sends uint64 // l.sends then
	ok    bool   // we had a sender key
	key   uint32 // its id
	next  uint32 // the first message number of it the encoding hands out
}

// Covers reports whether the state encoded at m covers every message sealed since: a
// layer restored from it would use none of their keys again. It does if the group
// messages only moved our sender key's chain on, to no further than the encoding's
// message number, and carried no sender key; if our sender key is the one encoded; and if
// the pairwise messages (hand-outs of our key) went on sessions made since, which a
// restored layer does not have. Changes that use no key we send with (Opens, peers set or
// removed, a hand-out acknowledged) do not matter: what the encoding lacks of them, the
// layer restored from it does again (a key handed out once more, for one). When it does
// not cover them, save the state before the message leaves.
func (m SendMark) Covers(l *Layer) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return m.l == l && m.ok && m.sends == l.sends && l.own != nil &&
		l.own.keyID == m.key && l.own.iteration <= m.next
}

// sendMark returns where our sending stands, for an encoding of our sender key n messages
// ahead of its chain. l.mu is held.
func (l *Layer) sendMark(n uint32) SendMark {
	m := SendMark{l: l, sends: l.sends}
	if l.own != nil {
		m.key, m.next, m.ok = l.own.keyID, l.own.iteration+min(n, ^uint32(0)-l.own.iteration), true
	}
	return m
}

// marshal encodes the layer, with our sender key at message number next or later. l.mu
// is held.
//
//	version (1) | head (see marshalHead) | peer count (4) | peers (see marshalPeer) |
//	count (4) of members owed hand-outs | that many × (member id (1-byte length) | hand-outs (see marshalHandOuts))
func (l *Layer) marshal(next uint32) ([]byte, error) {
	l.marks++
	b := cryptobyte.NewBuilder(make([]byte, 0, l.stateSize+l.stateSize/8))
	b.AddUint8(stateVersion)
	l.marshalHead(b, next)
	ids := make([]string, 0, len(l.peers))
	for id := range l.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b.AddUint32(uint32(len(ids)))
	for _, id := range ids {
		marshalPeer(b, l.peers[id])
	}
	owed := slices.Sorted(maps.Keys(l.handing))
	b.AddUint32(uint32(len(owed)))
	for _, m := range owed {
		addUint8Prefixed(b, m)
		marshalHandOuts(b, l.handing[m])
	}
	out, err := b.Bytes()
	if err == nil {
		l.stateSize = len(out)
	}
	return out, err
}

// marshalHead encodes what of the layer's state is no one peer's: the rekey flag, our
// sender key at message number next or later (with the members it was handed to), and
// the handshakes answered. l.mu is held.
//
//	rekey (1) | 0 (1), or 1 (1) | key id (4) | signature seed (32) | chain key (32) | iteration (4) |
//	    count (2) | that many × member id (1-byte length), sorted |
//	count (2) | that many × session id (8), oldest first
func (l *Layer) marshalHead(b *cryptobyte.Builder, next uint32) {
	b.AddUint8(boolByte(l.rekey))
	if l.own == nil {
		b.AddUint8(0)
	} else {
		b.AddUint8(1)
		b.AddUint32(l.own.keyID)
		b.AddBytes(l.own.sign.Seed())
		ck, it := l.own.ck, l.own.iteration
		for ; it < next; it++ {
			var mk [keySize]byte
			ck, mk = kdfCK(&ck)
			clear(mk[:])
		}
		b.AddBytes(ck[:])
		clear(ck[:])
		b.AddUint32(it)
		sent := make([]string, 0, len(l.own.sentTo))
		for m := range l.own.sentTo {
			sent = append(sent, m)
		}
		slices.Sort(sent)
		b.AddUint16(uint16(len(sent)))
		for _, m := range sent {
			addUint8Prefixed(b, m)
		}
	}
	b.AddUint16(uint16(len(l.handshakes)))
	for _, h := range l.handshakes {
		b.AddBytes(h[:])
	}
}

// marshalHandOuts encodes the hand-outs of our sender key owed to one member, oldest first.
//
//	count (1) | that many × (distribution (distributionSize) | skipped (1))
func marshalHandOuts(b *cryptobyte.Builder, hs []*handOut) {
	b.AddUint8(uint8(len(hs)))
	for _, h := range hs {
		b.AddBytes(h.dist)
		b.AddUint8(boolByte(h.skipped))
	}
}

// marshalPeer encodes what we have of one member: nothing of another member's, nor of
// the layer's, so that equal peers encode to equal bytes wherever they are.
//
//	member id (1-byte length) | bundle (2-byte length) | removed (1) |
//	count (1) | that many × session (see session.marshal) |
//	count (1) | that many × (key id (4) | verify key (32) | chain key (32) | iteration (4) | base (4) |
//	    count (2) | that many × (message number (4) | message key (32))) |
//	0 (1), or 1 (1) | earlier state (a peer, encoded the same way)
func marshalPeer(b *cryptobyte.Builder, p *peer) {
	addUint8Prefixed(b, p.id)
	if p.encBundleOf != p.bundle {
		p.encBundle, _ = p.bundle.MarshalBinary()
		p.encBundleOf = p.bundle
	}
	addUint16Prefixed(b, p.encBundle)
	b.AddUint8(boolByte(p.removed))
	b.AddUint8(uint8(len(p.sessions)))
	for _, s := range p.sessions {
		s.marshal(b)
	}
	b.AddUint8(uint8(len(p.keys)))
	for _, k := range p.keys {
		b.AddUint32(k.keyID)
		b.AddBytes(k.verify)
		b.AddBytes(k.ck[:])
		b.AddUint32(k.iteration)
		b.AddUint32(k.base)
		b.AddUint16(uint16(len(k.skipped)))
		for _, sk := range k.skipped {
			b.AddUint32(sk.n)
			b.AddBytes(sk.mk[:])
		}
	}
	b.AddUint8(boolByte(p.prev != nil))
	if p.prev != nil {
		marshalPeer(b, p.prev)
	}
}

// addUint8Prefixed appends v with a 1-byte length, as AddUint8LengthPrefixed would, but
// without the child Builder (an allocation) each of those makes: the encoders call it
// for every peer, session and member.
func addUint8Prefixed[T ~string | ~[]byte](b *cryptobyte.Builder, v T) {
	if len(v) > 0xff {
		b.SetError(fmt.Errorf("signal: internal error: %d bytes under a 1-byte length", len(v)))
		return
	}
	b.AddUint8(uint8(len(v)))
	b.AddBytes([]byte(v))
}

// addUint16Prefixed appends v with a 2-byte length, as AddUint16LengthPrefixed would (see
// addUint8Prefixed).
func addUint16Prefixed(b *cryptobyte.Builder, v []byte) {
	if len(v) > 0xffff {
		b.SetError(fmt.Errorf("signal: internal error: %d bytes under a 2-byte length", len(v)))
		return
	}
	b.AddUint16(uint16(len(v)))
	b.AddBytes(v)
}

func boolByte(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// UnmarshalBinary replaces the layer's state with one saved by
// MarshalBinary, of this version or an earlier one (see stateVersion). On an
// error the layer's state is as it was.
func (l *Layer) UnmarshalBinary(data []byte) error {
	st := new(layerState)
	if err := st.unmarshal(data, l.self); err != nil {
		st.destroy()
		return err
	}
	l.install(st)
	return nil
}

// layerState is a layer's state read from an encoding, not yet in place.
type layerState struct {
	rekey      bool
	own        *ownSenderKey
	handshakes [][sessionIDSize]byte
	peers      map[string]*peer
	handing    map[string][]*handOut
}

// unmarshal reads st from data, an encoding by marshal (of any version); self is our
// member id, which no peer may have.
func (st *layerState) unmarshal(data, self []byte) error {
	s := cryptobyte.String(data)
	var v uint8
	if !s.ReadUint8(&v) || v < 1 || v > stateVersion || !st.unmarshalHead(&s) {
		return errState
	}
	var np uint32
	if !s.ReadUint32(&np) || uint64(np) > uint64(len(s)) {
		return errState
	}
	st.peers = make(map[string]*peer, np)
	st.handing = make(map[string][]*handOut)
	for range np {
		p, err := unmarshalPeer(&s, v, false)
		if err != nil {
			return errState
		}
		if st.peers[string(p.id)] != nil || string(p.id) == string(self) {
			p.destroy()
			return errState
		}
		st.peers[string(p.id)] = p
	}
	if v >= 5 {
		var nm uint32
		if !s.ReadUint32(&nm) || nm > np {
			return errState
		}
		for range nm {
			var m cryptobyte.String
			if !s.ReadUint8LengthPrefixed(&m) || st.peers[string(m)] == nil || st.peers[string(m)].removed ||
				st.handing[string(m)] != nil {
				return errState
			}
			hs, ok := unmarshalHandOuts(&s)
			if len(hs) > 0 {
				st.handing[string(m)] = hs
			}
			if !ok || len(hs) == 0 {
				return errState
			}
		}
	}
	if !s.Empty() {
		return errState
	}
	return nil
}

// unmarshalHead reads what marshalHead wrote into st.
func (st *layerState) unmarshalHead(s *cryptobyte.String) bool {
	var rekey, hasOwn uint8
	if !s.ReadUint8(&rekey) || rekey > 1 || !s.ReadUint8(&hasOwn) || hasOwn > 1 {
		return false
	}
	st.rekey = rekey == 1
	if hasOwn == 1 {
		var seed []byte
		var n uint16
		own := &ownSenderKey{sentTo: make(map[string]bool)}
		if !s.ReadUint32(&own.keyID) || !s.ReadBytes(&seed, ed25519.SeedSize) ||
			!readArray(s, own.ck[:]) || !s.ReadUint32(&own.iteration) || !s.ReadUint16(&n) {
			clear(own.ck[:])
			return false
		}
		own.sign = ed25519.NewKeyFromSeed(seed)
		st.own = own
		var last cryptobyte.String
		for range n {
			var m cryptobyte.String
			// marshalHead sorts them, and every version did: out of order, or twice, the
			// state would not encode the same again.
			if !s.ReadUint8LengthPrefixed(&m) || len(m) == 0 || (last != nil && string(m) <= string(last)) {
				return false
			}
			own.sentTo[string(m)] = true
			last = m
		}
	}
	var nh uint16
	if !s.ReadUint16(&nh) || nh > maxHandshakes {
		return false
	}
	st.handshakes = make([][sessionIDSize]byte, nh)
	for i := range st.handshakes {
		if !readArray(s, st.handshakes[i][:]) {
			return false
		}
	}
	return true
}

// unmarshalHandOuts reads what marshalHandOuts wrote; on failure it returns what it
// read so far, to destroy.
func unmarshalHandOuts(s *cryptobyte.String) ([]*handOut, bool) {
	var n uint8
	if !s.ReadUint8(&n) || n > maxHandOuts {
		return nil, false
	}
	var hs []*handOut
	for range n {
		var dist []byte
		var skipped uint8
		if !s.ReadBytes(&dist, distributionSize) || !s.ReadUint8(&skipped) || skipped > 1 {
			return hs, false
		}
		k, err := parseDistribution(dist)
		if err != nil {
			return hs, false
		}
		hs = append(hs, &handOut{keyID: k.keyID, iteration: k.iteration, dist: slices.Clone(dist), skipped: skipped == 1})
		k.destroy()
	}
	return hs, true
}

// destroy zeroes the secrets of st, not put in place (best effort).
func (st *layerState) destroy() {
	if st.own != nil {
		st.own.destroy()
	}
	for _, p := range st.peers {
		p.destroy()
	}
	for _, hs := range st.handing {
		for _, h := range hs {
			clear(h.dist)
		}
	}
}

// install replaces the layer's state with st, destroying the one it had.
func (l *Layer) install(st *layerState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("install")
	l.sent()
	l.marks++ // the sessions restored are in an encoding
	for _, p := range l.peers {
		p.destroy()
	}
	if l.own != nil {
		l.own.destroy()
	}
	for m := range l.handing {
		l.dropHandOuts([]byte(m), nil)
	}
	l.peers, l.own, l.rekey, l.handshakes, l.handing = st.peers, st.own, st.rekey, st.handshakes, st.handing
	// Every record is new, and those of the members not in st are gone.
	l.stamp++
	l.dropped = l.stamp
	for _, p := range l.peers {
		p.changed = l.stamp
	}
}

// unmarshalPeer reads a peer; prev is set when it reads a peer's earlier state.
func unmarshalPeer(s *cryptobyte.String, v uint8, prev bool) (*peer, error) {
	var id, bundle cryptobyte.String
	var ns, nk uint8
	if !s.ReadUint8LengthPrefixed(&id) || len(id) == 0 || !s.ReadUint16LengthPrefixed(&bundle) {
		return nil, errState
	}
	b, err := ParseBundle(bundle)
	if err != nil {
		return nil, errState
	}
	p := &peer{id: []byte(strings.Clone(string(id))), bundle: b}
	if v >= 2 {
		var removed uint8
		if !s.ReadUint8(&removed) || removed > 1 {
			return nil, errState
		}
		p.removed = removed == 1
	}
	if !s.ReadUint8(&ns) || ns > maxSessions {
		return nil, errState
	}
	for range ns {
		sess, err := unmarshalSession(s)
		if err != nil {
			return nil, errState
		}
		p.sessions = append(p.sessions, sess)
	}
	if !s.ReadUint8(&nk) || nk > maxSenderKeysPerPeer {
		return nil, errState
	}
	for range nk {
		k := new(senderKey)
		var verify []byte
		var n uint16
		if !s.ReadUint32(&k.keyID) || !s.ReadBytes(&verify, ed25519.PublicKeySize) ||
			!readArray(s, k.ck[:]) || !s.ReadUint32(&k.iteration) ||
			(v >= 3 && (!s.ReadUint32(&k.base) || k.base > k.iteration)) ||
			!s.ReadUint16(&n) || n > MaxSkippedKeys {
			return nil, errState
		}
		k.verify = ed25519.PublicKey(slices.Clone(verify))
		k.skipped = make([]skippedSenderKey, n)
		for i := range k.skipped {
			if !s.ReadUint32(&k.skipped[i].n) || !readArray(s, k.skipped[i].mk[:]) ||
				k.skipped[i].n < k.base || k.skipped[i].n >= k.iteration {
				return nil, errState
			}
		}
		p.keys = append(p.keys, k)
	}
	if v >= 4 {
		var hasPrev uint8
		if !s.ReadUint8(&hasPrev) || hasPrev > 1 {
			return nil, errState
		}
		if hasPrev == 1 {
			if prev {
				return nil, errState // one earlier state at most
			}
			q, err := unmarshalPeer(s, v, true)
			if err != nil || !bytes.Equal(q.id, p.id) || !q.removed {
				return nil, errState
			}
			p.prev = q
		}
	}
	return p, nil
}
