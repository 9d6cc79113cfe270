package signal

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/layers"
)

// Message types, the first byte of the layer's output.
//
//	pairwise  1 | session id (8) | header (40) | ciphertext
//	prekey    2 | session id (8) | prekey header (1132) | header (40) | ciphertext
//	group     3 | key id (4) | iteration (4) | count (2) |
//	              count × (member id (1-byte length) | pairwise or prekey message (2-byte length)) |
//	              ciphertext | signature (64)
//
// A pairwise or prekey message is a Double Ratchet message; its AEAD
// associated data is the session's AD, Context.AD (with a 2-byte length),
// then its type, session id and header. A group message carries, for each
// member that has not had our current sender key yet, a pairwise message
// whose plaintext is the distribution; its ciphertext is under the sender
// key's message key for the iteration, with associated data Context.AD (with
// a 2-byte length), the sender's id (with a 1-byte length) and the first 9
// bytes; the Ed25519 signature of the sender key covers a SHA-256 digest of
// a label, the same AD and sender, and every byte before the signature.
//
// A sender key message (SealSenderKey), sent to one member outside the
// group messages, is a pairwise or prekey message whose plaintext is the
// distribution. Its AEAD key and nonce are derived with keyMessageLabel in
// place of messageLabel, and in its associated data the label comes before
// the caller's AD (keyMessageAD), so it opens neither as an application
// message nor as a distribution in a group message, nor they as it.
const (
	typePairwise = 1
	typePrekey   = 2
	typeGroup    = 3

	version = 1

	// maxSessions is how many sessions with one peer are kept: the current
	// one and older ones that may still carry messages in flight.
	maxSessions = 4
	// maxHandshakes is how many answered handshakes are remembered, so that
	// a replayed prekey message does not start a session again after its
	// session was dropped.
	maxHandshakes = 1024
	// MaxGroupSize bounds the recipients of a group message, so that the
	// distributions after a rekey fit in a message.
	MaxGroupSize = 2000
	// maxAD bounds Context.AD (the cascade's is under 300 bytes).
	maxAD = 4096

	sigSize = ed25519.SignatureSize
	// PairwiseOverhead is what a pairwise message adds once the session is
	// established; a prekey message adds prekeyHeaderSize more.
	PairwiseOverhead = 1 + sessionIDSize + headerSize + tagSize
	// GroupOverhead is what a group message adds when it carries no
	// distribution.
	GroupOverhead = 1 + 4 + 4 + 2 + tagSize + sigSize
)

// Layer is the signal layer of one conversation: the pairwise sessions with
// its other members and the sender keys. It is safe for concurrent use.
type Layer struct {
	self []byte    // our member id; set by New
	id   *Identity // set by New

	mu         sync.Mutex
	gen        uint64                // bumped by every change, so a stale staged Open is redone; guarded by mu
	sends      uint64                // key uses a state encoded before could repeat (see SendMark); guarded by mu
	marks      uint64                // encodings of the state made (see session.born); guarded by mu
	peers      map[string]*peer      // by member id; guarded by mu
	own        *ownSenderKey         // nil until the first group message; guarded by mu
	rekey      bool                  // make a new own sender key before the next group message; guarded by mu
	handshakes [][sessionIDSize]byte // answered handshakes, oldest first; guarded by mu
	handing    map[string][]*handOut // by member id, oldest first; guarded by mu
	stateSize  int                   // of the last state encoded, to size the next; guarded by mu
	// stamp is bumped by every change to a member's record in the split encoding (see
	// touch and MarshalSplitSince); dropped is its value when a member's record last went
	// (the member forgotten, or the state replaced). Both guarded by mu.
	stamp, dropped uint64
	// headSize and recordSize are the sizes of the head and of the largest record of the
	// last split encoding, to size the next; guarded by mu.
	headSize, recordSize int
	// checked holds, while the stamp check is on (see CheckSplitStamps), every member's
	// record as last checked, and checkedAt the stamp then; guarded by mu.
	checked   map[string]checkedRecord
	checkedAt uint64
}

type peer struct {
	id       []byte
	bundle   *Bundle
	sessions []*session   // [0] is the one we send on
	keys     []*senderKey // the member's sender keys, oldest first
	// removed is set by RemovePeer: the member has left the group; we seal
	// nothing for it, and what we have of it is kept only to open its
	// messages still on the way.
	removed bool
	// prev is what we had of the member before SetPeer gave it another
	// bundle (added again after a removal, or with a new identity), kept
	// for the messages it sent before; prev.prev is nil.
	prev *peer
	// encBundle is bundle encoded, for MarshalBinary (bundles are not
	// modified once parsed); encBundleOf is the bundle it is of.
	encBundle   []byte
	encBundleOf *Bundle
	// changed is the layer's stamp at the last change to the member's record in the split
	// encoding (see MarshalSplitSince): to this peer, its earlier state, or the hand-outs
	// owed to it. Only the member's current peer has one. Not saved.
	changed uint64
}

// A handOut is our sender key sealed for one member on its own (SealSenderKey) and not
// yet known to have arrived, kept as the distribution that was sealed: of the iteration
// our chain was at then. While it is on its way, our group messages carry the key for
// no one it goes to: that is what keeps a large group's first messages small. If it
// does not arrive (SenderKeyNotSent), they carry this same distribution, not one of the
// current iteration, so that the member opens the group messages that skipped it as
// well; SealSenderKey seals it again too. Nothing else gives the member those keys:
// one of a key replaced since (a rekey) stays until it arrives, or the member goes.
type handOut struct {
	keyID     uint32
	iteration uint32
	dist      []byte // the distribution
	skipped   bool   // a group message skipped the member for it
	sending   bool   // sealed and on its way; not saved
}

// maxHandOuts bounds the hand-outs kept for one member (its messages keep as many of
// our keys).
const maxHandOuts = maxSenderKeysPerPeer

var (
	_ layers.Layer    = (*Layer)(nil)
	_ layers.Stateful = (*Layer)(nil)
)

// New returns the signal layer of one conversation for member self.
func New(self []byte, id *Identity) (*Layer, error) {
	if len(self) == 0 || len(self) > layers.MaxIDLen {
		return nil, fmt.Errorf("signal: member id of %d bytes", len(self))
	}
	return &Layer{self: slices.Clone(self), id: id, peers: make(map[string]*peer), handing: make(map[string][]*handOut)}, nil
}

// Name returns "signal".
func (l *Layer) Name() string { return layers.Signal.String() }

// Version returns the wire format version.
func (l *Layer) Version() uint8 { return version }

// SetPeer records a member's prekey bundle (from its LeafNode): call it for
// every other member when joining and when a member is added or updates its
// leaf. A bundle with another identity than the member had, or one for a
// removed member (added again), starts it afresh: what we had of it is kept
// aside, for the messages it sent before, until ForgetRemoved (or the next
// such bundle) drops it. A bundle with the identity of what was kept aside
// (the group went to a branch where the member's leaf differs, and back)
// makes that current again, and keeps aside the one it replaces.
func (l *Layer) SetPeer(member []byte, b *Bundle) error {
	if len(member) == 0 || len(member) > layers.MaxIDLen || bytes.Equal(member, l.self) {
		return fmt.Errorf("signal: bad peer id")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("SetPeer")
	l.gen++
	p := l.peers[string(member)]
	if p != nil && !p.removed && sameIdentity(p.bundle, b) {
		p.bundle = b
		l.touch(p)
		return nil
	}
	l.dropHandOuts(member, nil)
	if p != nil && p.prev != nil && sameIdentity(p.prev.bundle, b) && !sameIdentity(p.bundle, b) {
		// Back to the identity it had before this one (our group went to a branch where
		// its leaf differs, and back): what we had of it then, the sessions and sender
		// keys it still uses under that identity, is current again, and what we have
		// now is kept aside in turn.
		back := p.prev
		p.prev, p.removed = nil, true // we seal nothing for it
		back.prev, back.bundle, back.removed = p, b, false
		l.peers[string(member)] = back
		l.rekey = true
		l.touch(back)
		return nil
	}
	np := &peer{id: slices.Clone(member), bundle: b}
	if p != nil {
		if p.prev != nil {
			p.prev.destroy()
			p.prev = nil
		}
		p.removed = true // we seal nothing for it
		np.prev = p
		l.rekey = true
	}
	l.peers[string(member)] = np
	l.touch(np)
	return nil
}

// RemovePeer marks a member removed from the group: we seal nothing more
// for it, and it can hand us no sender key on its own (OpenSenderKey). Its
// sessions and sender keys stay until ForgetRemoved, so that the messages
// it sent while still a member open even when they arrive after the commit
// that removed it, the sender key a message carries for us included: the
// cascade's mls layer, outside this one, opens only messages sealed in an
// epoch the sender was a member of. Our next group message is sealed under
// a fresh sender key that only the remaining members get. SetPeer makes the
// member a peer again, afresh, with its old state kept aside.
func (l *Layer) RemovePeer(member []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("RemovePeer")
	l.gen++
	if p := l.peers[string(member)]; p != nil {
		p.removed = true
		l.touch(p)
	}
	l.dropHandOuts(member, nil)
	l.rekey = true
}

// ForgetRemoved drops the sessions and sender keys of the removed members
// for which keep returns false (keep nil: of all removed members), and of
// the members added again for which it returns false, what SetPeer kept
// aside; their messages then no longer open. Call it when the epochs in which a removed
// member could have sent have left the window of epochs kept for late
// messages. keep is called with the layer locked: it must not call the
// layer.
func (l *Layer) ForgetRemoved(keep func(member []byte) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("ForgetRemoved")
	l.gen++
	for id, p := range l.peers {
		if (!p.removed && p.prev == nil) || (keep != nil && keep(slices.Clone(p.id))) {
			continue
		}
		if p.removed {
			p.destroy()
			delete(l.peers, id)
			l.stamp++
			l.dropped = l.stamp
		} else {
			p.prev.destroy()
			p.prev = nil
			l.touch(p)
		}
	}
}

// Rekey makes our next group message use a fresh sender key, distributed to
// the recipients of that message. Seal also rekeys by itself when a member
// that had our sender key is no longer among the recipients.
func (l *Layer) Rekey() {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("Rekey")
	l.gen++
	l.rekey = true // in the head: the hand-outs it drops go when the key is made (ownKeyLocked)
}

// ResendSenderKey makes our next group message carry our sender key again
// for these members (one that reports it is missing our key).
func (l *Layer) ResendSenderKey(members ...[]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("ResendSenderKey")
	l.gen++
	if l.own != nil { // sentTo is in the head: no record changes
		for _, m := range members {
			delete(l.own.sentTo, string(m))
		}
	}
}

// NewSession starts a session with member (PQXDH, from its bundle) that our
// pairwise messages to it use from then on: for a member that reports it cannot
// open ours, whose state of our sessions may be gone or behind. The sessions we
// had stay, for the messages it sends on them.
func (l *Layer) NewSession(member []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("NewSession")
	l.gen++
	p := l.peers[string(member)]
	if p == nil || p.removed {
		return fmt.Errorf("signal: no prekey bundle for member %x", member)
	}
	l.touch(p)
	if err := l.initiateLocked(p); err != nil {
		return fmt.Errorf("signal: handshake with %x: %w", p.id, err)
	}
	return nil
}

// SenderKeySent notes that member has our sender key keyID, handed over by
// SealSenderKey: our group messages stop carrying it for the member, as
// they do once one of them has carried it. It only forgets the hand-out if keyID is no
// longer our sender key (we made a new one since, which the member gets as
// any other would: in a group message or a new SealSenderKey), or if member
// is not one of our peers or was removed.
func (l *Layer) SenderKeySent(member []byte, keyID uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("SenderKeySent")
	l.gen++
	l.dropHandOuts(member, func(h *handOut) bool { return h.keyID == keyID })
	p := l.peers[string(member)]
	if l.own == nil || l.own.keyID != keyID || p == nil || p.removed {
		return
	}
	l.own.sentTo[string(member)] = true
}

// SenderKeyNotSent notes that the hand-out of our sender key keyID that SealSenderKey
// sealed for member did not arrive: our group messages of that key carry it for the
// member again, from the iteration it was sealed at (see handOut), and the next
// SealSenderKey for the member seals it again.
func (l *Layer) SenderKeyNotSent(member []byte, keyID uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("SenderKeyNotSent")
	l.gen++
	for _, h := range l.handing[string(member)] {
		if h.keyID == keyID {
			h.sending = false // not saved: the member's record stays as it is
		}
	}
}

// SenderKeyOwed says whether group messages of ours skipped member for a hand-out of our
// key that is not known to have arrived: only that hand-out, sealed again, or a group
// message of the same key carrying it (see SenderKeyNotSent) lets the member open them.
func (l *Layer) SenderKeyOwed(member []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.handing[string(member)] {
		if h.skipped {
			return true
		}
	}
	return false
}

// SenderKeyLacking returns those of members (our peers, not removed) that our next
// group message would carry our sender key for, or that a hand-out is still owed to:
// all of them while we have no key or a rekey is pending, else those not noted as
// having it.
func (l *Layer) SenderKeyLacking(members [][]byte) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, m := range members {
		if p := l.peers[string(m)]; p == nil || p.removed {
			continue
		}
		if l.own == nil || l.rekey || !l.own.sentTo[string(m)] || len(l.handing[string(m)]) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// Destroy zeroes the layer's secrets (best effort) and forgets its state.
func (l *Layer) Destroy() {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("Destroy")
	l.sent()
	for _, p := range l.peers {
		p.destroy()
	}
	l.peers = make(map[string]*peer)
	l.stamp++
	l.dropped = l.stamp
	if l.own != nil {
		l.own.destroy()
		l.own = nil
	}
	for m := range l.handing {
		l.dropHandOuts([]byte(m), nil)
	}
}

// handOut returns the hand-out of our key keyID to member, or nil. l.mu is held.
func (l *Layer) handOut(member []byte, keyID uint32) *handOut {
	for _, h := range l.handing[string(member)] {
		if h.keyID == keyID {
			return h
		}
	}
	return nil
}

// dropHandOuts forgets the hand-outs to member that drop returns true for (nil: all),
// touching the member's record if it drops any. l.mu is held.
func (l *Layer) dropHandOuts(member []byte, drop func(*handOut) bool) {
	hs := l.handing[string(member)]
	keep := hs[:0]
	for _, h := range hs {
		if drop == nil || drop(h) {
			clear(h.dist)
		} else {
			keep = append(keep, h)
		}
	}
	if len(keep) < len(hs) {
		l.touchID(string(member))
	}
	clear(hs[len(keep):])
	if len(keep) == 0 {
		delete(l.handing, string(member))
	} else {
		l.handing[string(member)] = keep
	}
}

func (p *peer) destroy() {
	if p.prev != nil {
		p.prev.destroy()
		p.prev = nil
	}
	for _, s := range p.sessions {
		s.destroy()
	}
	for _, k := range p.keys {
		k.destroy()
	}
	p.sessions, p.keys = nil, nil
}

func (p *peer) session(id [sessionIDSize]byte) *session {
	for _, s := range p.sessions {
		if s.id == id {
			return s
		}
	}
	return nil
}

func (p *peer) senderKey(keyID uint32) *senderKey {
	for _, k := range p.keys {
		if k.keyID == keyID {
			return k
		}
	}
	return nil
}

// Seal seals inner for ctx.Recipients: one recipient gets a Double Ratchet
// message, more a sender-key message.
func (l *Layer) Seal(ctx *layers.Context, inner []byte) ([]byte, error) {
	if len(inner) > layers.MaxMessage {
		return nil, fmt.Errorf("signal: input of %d bytes, over %d", len(inner), layers.MaxMessage)
	}
	if len(ctx.AD) > maxAD {
		return nil, fmt.Errorf("signal: associated data of %d bytes", len(ctx.AD))
	}
	if len(ctx.Recipients) == 0 || len(ctx.Recipients) > MaxGroupSize {
		return nil, fmt.Errorf("signal: %d recipients, want 1 to %d", len(ctx.Recipients), MaxGroupSize)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("Seal")
	l.gen++
	ps := make([]*peer, len(ctx.Recipients))
	seen := make(map[string]bool, len(ctx.Recipients))
	for i, r := range ctx.Recipients {
		if ps[i] = l.peers[string(r)]; ps[i] == nil || ps[i].removed {
			return nil, fmt.Errorf("signal: no prekey bundle for recipient %x", r)
		}
		if seen[string(r)] {
			return nil, fmt.Errorf("signal: recipient %x twice", r)
		}
		seen[string(r)] = true
	}
	if len(ps) == 1 {
		return l.sealPairwise(nil, ps[0], ctx.AD, messageLabel, inner)
	}
	out, step, err := l.sealGroup(ps, seen, ctx.AD, inner)
	if !step || err != nil {
		l.sends++
	}
	return out, err
}

// sent notes a change that used keys we send with, or replaced them (see SendMark). l.mu
// is held.
func (l *Layer) sent() {
	l.gen++
	l.sends++
}

// touch notes a change to the record of p, a member's current peer (not its earlier
// state), in the split encoding: p gets a new stamp, so that MarshalSplitSince encodes
// the record again. l.mu is held.
func (l *Layer) touch(p *peer) {
	l.stamp++
	p.changed = l.stamp
}

// touchID is touch for the peer of member id, if there is one. l.mu is held.
func (l *Layer) touchID(id string) {
	if p := l.peers[id]; p != nil {
		l.touch(p)
	}
}

// sealPairwise appends a Double Ratchet message to dst, setting up a
// session with PQXDH if there is none. label derives the AEAD key and nonce
// from the message key: messageLabel, or keyMessageLabel for a sender key
// message.
func (l *Layer) sealPairwise(dst []byte, p *peer, ad []byte, label string, pt []byte) ([]byte, error) {
	l.touch(p) // a session is set up, or its sending chain moves on
	if len(p.sessions) == 0 {
		if err := l.initiateLocked(p); err != nil {
			return nil, fmt.Errorf("signal: handshake with %x: %w", p.id, err)
		}
	}
	s := p.sessions[0]
	if s.born < l.marks {
		// A state encoded since the session was made holds it: restored, it would
		// seal with this message key again. (One made since is not there: a restored
		// layer starts another, with keys of its own.)
		l.sends++
	}
	h, mk, err := s.nextSend()
	if err != nil {
		return nil, fmt.Errorf("signal: %w", err)
	}
	defer clear(mk[:])
	start := len(dst)
	typ := byte(typePairwise)
	if s.prekey != nil {
		typ = typePrekey
	}
	dst = append(dst, typ)
	dst = append(dst, s.id[:]...)
	dst = append(dst, s.prekey...)
	dst = h.append(dst)
	msgAD := pairwiseAD(s, ad, dst[start:start+1+sessionIDSize], dst[len(dst)-headerSize:])
	return sealMK(dst, &mk, label, pt, msgAD), nil
}

func pairwiseAD(s *session, ad, prefix, hdr []byte) []byte {
	b := make([]byte, 0, len(s.ad)+2+len(ad)+len(prefix)+len(hdr))
	b = append(b, s.ad...)
	b = append(b, byte(len(ad)>>8), byte(len(ad)))
	b = append(b, ad...)
	b = append(b, prefix...)
	return append(b, hdr...)
}

func groupAD(ad, sender, prefix []byte) []byte {
	b := make([]byte, 0, 2+len(ad)+1+len(sender)+len(prefix))
	b = append(b, byte(len(ad)>>8), byte(len(ad)))
	b = append(b, ad...)
	b = append(b, byte(len(sender)))
	b = append(b, sender...)
	return append(b, prefix...)
}

func (l *Layer) initiateLocked(p *peer) error {
	self := l.id.Bundle()
	sk, h, err := initiate(l.id, p.bundle)
	if err != nil {
		return err
	}
	defer clear(sk[:])
	s, err := newInitiatorSession(sessionID(self, p.bundle, &h), sessionAD(self, p.bundle), h.append(nil), &sk, p.bundle.spk)
	if err != nil {
		return err
	}
	l.insertSession(p, s, true)
	return nil
}

// insertSession adds a session with p. Ours becomes the one we send on; one
// the peer started does too, unless we started one it has not answered yet
// and our id sorts first: when both start at once, both then send on the
// session the lower id started.
func (l *Layer) insertSession(p *peer, s *session, ours bool) {
	s.born = l.marks
	at := 0
	if cur := firstOrNil(p.sessions); !ours && cur != nil && cur.initiator && !cur.acked &&
		bytes.Compare(l.self, p.id) < 0 {
		at = 1
	}
	p.sessions = slices.Insert(p.sessions, at, s)
	if len(p.sessions) > maxSessions {
		for _, old := range p.sessions[maxSessions:] {
			old.destroy()
		}
		p.sessions = slices.Clone(p.sessions[:maxSessions])
	}
}

func firstOrNil(ss []*session) *session {
	if len(ss) == 0 {
		return nil
	}
	return ss[0]
}

// sealGroup seals a sender key message. step reports that it changed nothing but our
// sender key's chain, which moved on by one message.
func (l *Layer) sealGroup(ps []*peer, recipients map[string]bool, ad, pt []byte) (out []byte, step bool, err error) {
	step = l.own != nil
	if l.own != nil && !l.rekey {
		for m := range l.own.sentTo {
			if !recipients[m] {
				l.rekey = true // someone who had our key is gone
				break
			}
		}
	}
	step = step && !l.rekey
	own := l.ownKeyLocked()
	var dist []byte
	out = make([]byte, 0, GroupOverhead+len(pt))
	out = append(out, typeGroup)
	out = appendUint32(out, own.keyID)
	out = appendUint32(out, own.iteration)
	out = append(out, 0, 0)
	var n int
	for _, p := range ps {
		if own.sentTo[string(p.id)] {
			continue
		}
		d := dist
		if h := l.handOut(p.id, own.keyID); h != nil {
			if h.sending {
				if !h.skipped {
					h.skipped = true // it gets the key on its own
					l.touch(p)
				}
				step = false
				continue
			}
			d = h.dist
		} else if d == nil {
			dist = own.distribution()
			defer clear(dist)
			d = dist
		}
		out = append(out, byte(len(p.id)))
		out = append(out, p.id...)
		at := len(out)
		out = append(out, 0, 0)
		if out, err = l.sealPairwise(out, p, ad, messageLabel, d); err != nil {
			return nil, false, err
		}
		size := len(out) - at - 2
		out[at], out[at+1] = byte(size>>8), byte(size)
		n++
	}
	out[9], out[10] = byte(n>>8), byte(n)
	_, mk, err := own.next()
	if err != nil {
		return nil, false, fmt.Errorf("signal: %w", err)
	}
	out = sealMK(out, &mk, senderKeyLabel, pt, groupAD(ad, l.self, out[:9]))
	clear(mk[:])
	out = append(out, ed25519.Sign(own.sign, signedDigest(ad, l.self, out))...)
	for _, p := range ps {
		if h := l.handOut(p.id, own.keyID); h != nil {
			if h.sending {
				continue
			}
			l.dropHandOuts(p.id, func(h *handOut) bool { return h.keyID == own.keyID })
			step = false
		}
		own.sentTo[string(p.id)] = true
	}
	return out, step && n == 0, nil
}

// ownKeyLocked returns our sender key, first making a new one (and
// destroying the old) if there is none or a rekey is pending. l.mu is held.
func (l *Layer) ownKeyLocked() *ownSenderKey {
	if l.own == nil || l.rekey {
		if old := l.own; old != nil {
			// A hand-out of the old key that no message skipped is owed no more.
			for m := range l.handing {
				l.dropHandOuts([]byte(m), func(h *handOut) bool { return h.keyID == old.keyID && !h.skipped })
			}
			old.destroy()
		}
		l.own = newOwnSenderKey()
		l.rekey = false
	}
	return l.own
}

// SealSenderKey seals our sender key for member alone, for its
// OpenSenderKey with the same ad: a pairwise message, or a prekey message
// setting up a session with PQXDH if there is none. It hands the member the
// key ahead of our group messages instead of inside one. With no sender key
// yet, or a rekey pending, it first makes a new one, as a group message
// would. It returns the id of the key sealed. Sealing does not count as
// handing the key over: until SenderKeySent, called with this id once the
// message was delivered, the member is owed the key. Meanwhile our group
// messages do not carry it for the member; after SenderKeyNotSent they do. A
// key still owed is sealed again as it was first (see handOut), the oldest
// first: call SealSenderKey until SenderKeyLacking no longer names the member.
func (l *Layer) SealSenderKey(member, ad []byte) (msg []byte, keyID uint32, err error) {
	if len(ad) > maxAD {
		return nil, 0, fmt.Errorf("signal: associated data of %d bytes", len(ad))
	}
	if bytes.Equal(member, l.self) {
		return nil, 0, fmt.Errorf("signal: sender key for ourselves")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("SealSenderKey")
	l.gen++ // sealPairwise notes a key use that matters (see SendMark)
	p := l.peers[string(member)]
	if p == nil || p.removed {
		return nil, 0, fmt.Errorf("signal: no prekey bundle for member %x", member)
	}
	l.touch(p) // its hand-outs, and the session sealPairwise moves on
	own := l.ownKeyLocked()
	hs := l.handing[string(member)]
	var h *handOut
	switch {
	case len(hs) > 0:
		h = hs[0]
	case !own.sentTo[string(member)]:
		h = &handOut{keyID: own.keyID, iteration: own.iteration, dist: own.distribution()}
		if len(hs) == maxHandOuts {
			clear(hs[0].dist)
			hs = hs[1:]
		}
		l.handing[string(member)] = append(hs, h)
	default: // it has the key: sealed again, as asked
		h = &handOut{keyID: own.keyID, dist: own.distribution()}
		defer clear(h.dist)
	}
	if msg, err = l.sealPairwise(nil, p, keyMessageAD(ad), keyMessageLabel, h.dist); err != nil {
		return nil, 0, err
	}
	h.sending = true
	return msg, h.keyID, nil
}

// HandOutsComing notes that our sender key is about to be handed to members on its own,
// by SealSenderKey once a stream to each is open: our group messages skip them meanwhile,
// as they skip a member whose hand-out is on its way, and the hand-out carries the key
// from where it stands now, so that the member opens the messages that skipped it too.
// Without it, a group message sealed before the hand-outs would carry the key for every
// member still waiting for one (about 1.35 KB each). Members that have the key, or a
// hand-out of it, are left as they are. With no sender key yet, or a rekey pending, it
// first makes a new one. It returns the key's id: if a hand-out is not sealed after all,
// SenderKeyNotSent with that id has our messages carry the key for the member again.
func (l *Layer) HandOutsComing(members [][]byte) (keyID uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeDone("HandOutsComing")
	l.gen++
	own := l.ownKeyLocked()
	for _, m := range members {
		p := l.peers[string(m)]
		if p == nil || p.removed || bytes.Equal(m, l.self) || own.sentTo[string(m)] || l.handOut(m, own.keyID) != nil {
			continue
		}
		hs := l.handing[string(m)]
		if len(hs) == maxHandOuts {
			clear(hs[0].dist)
			hs = hs[1:]
		}
		l.handing[string(m)] = append(hs, &handOut{keyID: own.keyID, iteration: own.iteration, dist: own.distribution(), sending: true})
		l.touch(p)
	}
	return own.keyID
}

// keyMessageAD is what a sender key message is sealed and opened with in
// place of ad: keyMessageLabel, then ad. The label is of fixed length, and
// pairwiseAD prefixes the whole with its length.
func keyMessageAD(ad []byte) []byte {
	b := make([]byte, 0, len(keyMessageLabel)+len(ad))
	b = append(b, keyMessageLabel...)
	return append(b, ad...)
}

// Open opens a message from ctx.Sender. It changes nothing; the Commit it
// returns applies the ratchet steps, installs a received sender key and
// deletes the used message keys. The input and ctx.AD must stay as they are
// until the Commit has run.
func (l *Layer) Open(ctx *layers.Context, sealed []byte) ([]byte, layers.Commit, error) {
	if len(sealed) < 1 || len(sealed) > layers.MaxMessage || len(ctx.AD) > maxAD ||
		len(ctx.Sender) == 0 || len(ctx.Sender) > layers.MaxIDLen {
		return nil, nil, layers.ErrAuth
	}
	sender, ad := ctx.Sender, ctx.AD
	l.mu.Lock()
	p := l.peers[string(sender)]
	if p == nil {
		l.mu.Unlock()
		return nil, nil, layers.ErrNoKey
	}
	pt, apply, err := l.stageLocked(p, ad, sealed)
	before := false // sent before the member was added again: see SetPeer
	if err != nil && p.prev != nil {
		if pt2, apply2, err2 := l.stageLocked(p.prev, ad, sealed); err2 == nil {
			pt, apply, err, before = pt2, apply2, nil, true
		}
	}
	gen := l.gen
	l.mu.Unlock()
	if err != nil {
		if err == layers.ErrNoKey {
			return nil, nil, err
		}
		return nil, nil, layers.ErrAuth
	}
	commit := func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.gen != gen {
			// The state moved since Open (a Seal or another Open): stage
			// again on the current state; the plaintext cannot differ.
			p := l.peers[string(sender)]
			if p != nil && before {
				p = p.prev
			}
			if p == nil {
				return layers.ErrAuth
			}
			again, a, err := l.stageLocked(p, ad, sealed)
			if err != nil {
				return layers.ErrAuth
			}
			clear(again)
			apply = a
		}
		apply()
		l.gen++
		// The member's peer or its earlier state moved on: either is in its record.
		l.touchID(string(sender))
		l.changeDone("Open")
		return nil
	}
	return pt, commit, nil
}

// OpenSenderKey opens a message made by member's SealSenderKey with the
// same ad and installs the sender key it carries: the member's group
// messages under that key then open, from the one it was about to seal when
// it sealed the key on; none before. A key of that id we already have (from
// a group message, or this message sent again) is kept, and the message
// moves the session on; if it carries the key from an earlier message than
// the one we have started at (it was sealed before the distribution we got
// first), the keys of the messages in between are added to ours, so that
// they open too (see senderKey.stageMerge). A removed member hands us no
// key. On any error nothing changed: ErrNoKey for a member we have no
// bundle for, or a session we do not have (its prekey message may still be
// on the way); ErrAuth for everything else: a malformed, altered or
// replayed message, any other kind of message, another ad, a removed
// member, a key of an id we have with another signature key.
func (l *Layer) OpenSenderKey(member, ad, msg []byte) error {
	if len(msg) < 1 || len(msg) > layers.MaxMessage || len(ad) > maxAD ||
		len(member) == 0 || len(member) > layers.MaxIDLen {
		return layers.ErrAuth
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peers[string(member)]
	if p == nil {
		return layers.ErrNoKey
	}
	if p.removed {
		// Nothing vouches that it sealed this while a member.
		return layers.ErrAuth
	}
	k, applyPairwise, err := l.stageDistribution(p, keyMessageAD(ad), keyMessageLabel, msg)
	if err != nil {
		if err == layers.ErrNoKey {
			return err
		}
		return layers.ErrAuth
	}
	_, install, err := p.stageKey(k, applyPairwise)
	if err != nil {
		return layers.ErrAuth
	}
	install()
	l.gen++
	l.touch(p)
	l.changeDone("OpenSenderKey")
	return nil
}

var (
	errMalformed = errors.New("signal: malformed message")
)

// stageLocked opens a message from p without changing any state and
// returns the plaintext and a function that applies the change. l.mu is
// held.
func (l *Layer) stageLocked(p *peer, ad, msg []byte) ([]byte, func(), error) {
	switch msg[0] {
	case typePairwise, typePrekey:
		return l.stagePairwise(p, ad, messageLabel, msg)
	case typeGroup:
		return l.stageGroup(p, ad, msg)
	}
	return nil, nil, errMalformed
}

// stagePairwise opens a pairwise or prekey message from p, its AEAD key and
// nonce derived with label, without changing any state; see stageLocked.
func (l *Layer) stagePairwise(p *peer, ad []byte, label string, msg []byte) ([]byte, func(), error) {
	if len(msg) < 1 || (msg[0] != typePairwise && msg[0] != typePrekey) {
		return nil, nil, errMalformed
	}
	s := cryptobyte.String(msg[1:])
	var sid [sessionIDSize]byte
	var ph prekeyHeader
	var h header
	if !readArray(&s, sid[:]) || (msg[0] == typePrekey && !readPrekeyHeader(&s, &ph)) {
		return nil, nil, errMalformed
	}
	hdr := []byte(s)
	if !readHeader(&s, &h) || len(s) < tagSize {
		return nil, nil, errMalformed
	}
	hdr = hdr[:headerSize]
	ct := []byte(s)

	sess := p.session(sid)
	var install func()
	if sess == nil {
		if msg[0] != typePrekey {
			return nil, nil, layers.ErrNoKey // a session we do not have (any more)
		}
		self := l.id.Bundle()
		if slices.Contains(l.handshakes, sid) || sessionID(p.bundle, self, &ph) != sid {
			return nil, nil, errMalformed
		}
		sk, spk, err := respond(l.id, p.bundle, &ph)
		if err != nil {
			return nil, nil, err
		}
		sess = newResponderSession(sid, sessionAD(p.bundle, self), &sk, spk)
		clear(sk[:])
		fresh, otk := sess, ph.otkID
		install = func() {
			l.insertSession(p, fresh, false)
			l.handshakes = append(l.handshakes, sid)
			if len(l.handshakes) > maxHandshakes {
				l.handshakes = slices.Clone(l.handshakes[len(l.handshakes)-maxHandshakes:])
			}
			if otk != 0 {
				l.id.consumeOneTimePrekey(otk)
			}
		}
	}
	msgAD := pairwiseAD(sess, ad, msg[:1+sessionIDSize], hdr)
	pt, u, err := sess.stageReceive(&h, func(mk *[keySize]byte) ([]byte, error) {
		return openMK(mk, label, ct, msgAD)
	})
	if err != nil {
		return nil, nil, err
	}
	return pt, func() {
		if install != nil {
			install()
		}
		sess.apply(u)
	}, nil
}

func (l *Layer) stageGroup(p *peer, ad, msg []byte) ([]byte, func(), error) {
	if len(msg) < GroupOverhead {
		return nil, nil, errMalformed
	}
	s := cryptobyte.String(msg[1:])
	var keyID, iteration uint32
	var n uint16
	if !s.ReadUint32(&keyID) || !s.ReadUint32(&iteration) || !s.ReadUint16(&n) {
		return nil, nil, errMalformed
	}
	var mine []byte
	for range n {
		var member, pm cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&member) || !s.ReadUint16LengthPrefixed(&pm) {
			return nil, nil, errMalformed
		}
		if bytes.Equal(member, l.self) {
			if mine != nil {
				return nil, nil, errMalformed
			}
			mine = pm
		}
	}
	if len(s) < tagSize+sigSize {
		return nil, nil, errMalformed
	}
	ct := s[:len(s)-sigSize]
	sig := msg[len(msg)-sigSize:]

	key := p.senderKey(keyID)
	if p.removed && key != nil {
		// A removed member's message under a key we have opens without the
		// distribution it carries for us (sent again, say): the key and its
		// signature cover the whole message, and its session need not move.
		mine = nil
	}
	var install func()
	if mine != nil {
		k, applyPairwise, err := l.stageDistribution(p, ad, messageLabel, mine)
		if err != nil {
			return nil, nil, err
		}
		if k.keyID != keyID || k.iteration > iteration {
			k.destroy()
			return nil, nil, errMalformed
		}
		if key, install, err = p.stageKey(k, applyPairwise); err != nil {
			return nil, nil, err
		}
	}
	if key == nil {
		return nil, nil, layers.ErrNoKey
	}
	// A key staged (new, or merged with the one p has) is ours to destroy
	// when the message does not open.
	fail := func(err error) ([]byte, func(), error) {
		if install != nil && key != p.senderKey(keyID) {
			key.destroy()
		}
		return nil, nil, err
	}
	if !ed25519.Verify(key.verify, signedDigest(ad, p.id, msg[:len(msg)-sigSize]), sig) {
		return fail(errMalformed)
	}
	gad := groupAD(ad, p.id, msg[:9])
	pt, u, err := key.stage(iteration, func(mk *[keySize]byte) ([]byte, error) {
		return openMK(mk, senderKeyLabel, ct, gad)
	})
	if err != nil {
		return fail(err)
	}
	return pt, func() {
		if install != nil {
			install()
		}
		key.apply(u)
	}, nil
}

// stageDistribution opens pm, a pairwise or prekey message from p whose
// plaintext is a sender key distribution, without changing any state: it
// returns the key and the function that applies the pairwise message's step.
func (l *Layer) stageDistribution(p *peer, ad []byte, label string, pm []byte) (*senderKey, func(), error) {
	dist, applyPairwise, err := l.stagePairwise(p, ad, label, pm)
	if err != nil {
		return nil, nil, err
	}
	k, err := parseDistribution(dist)
	clear(dist)
	if err != nil {
		return nil, nil, errMalformed
	}
	return k, applyPairwise, nil
}

// stageKey stages installing k, a sender key received from p after the
// change apply, changing nothing. If p has a key of that id already, that
// one stays, and k is destroyed: when k starts before it, the function
// returned runs apply and puts in its place the two merged (see
// senderKey.stageMerge); otherwise it only runs apply. A k with another
// signature key than the one p has is refused, with errKeyConflict. If p
// has no key of that id, the function runs apply and adds k as p's newest
// key, destroying the oldest beyond maxSenderKeysPerPeer. stageKey returns
// the key p has under that id once the function has run: the one to open a
// message with, and to apply its update to after the function.
func (p *peer) stageKey(k *senderKey, apply func()) (*senderKey, func(), error) {
	if have := p.senderKey(k.keyID); have != nil {
		merged, err := have.stageMerge(k)
		k.destroy()
		if err != nil {
			return nil, nil, err
		}
		if merged == nil {
			return have, apply, nil
		}
		return merged, func() {
			apply()
			if i := slices.Index(p.keys, have); i >= 0 {
				p.keys[i] = merged
				have.destroy()
			}
		}, nil
	}
	return k, func() {
		apply()
		p.keys = append(p.keys, k)
		if len(p.keys) > maxSenderKeysPerPeer {
			p.keys[0].destroy()
			p.keys = slices.Clone(p.keys[1:])
		}
	}, nil
}

// String and GoString keep the state out of logs: fmt would print
// unexported fields.
func (l *Layer) String() string   { return fmt.Sprintf("signal.Layer(%q)", l.self) }
func (l *Layer) GoString() string { return l.String() }
