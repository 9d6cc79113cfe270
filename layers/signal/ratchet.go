package signal

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

const (
	// MaxSkip is the most message keys one message may make a receiving
	// chain skip (Double Ratchet, Section 3.2, MAX_SKIP), and also the most
	// a sender-key chain may be advanced at once.
	MaxSkip = 1000
	// MaxSkippedKeys bounds the skipped message keys a session or a sender
	// key keeps; beyond it the oldest are deleted (Double Ratchet, Section
	// 8.4: they should be deleted after some time or number of messages).
	MaxSkippedKeys = 2 * MaxSkip

	headerSize = 32 + 4 + 4
)

var (
	errNoChain  = errors.New("signal: no sending chain")
	errTooMany  = errors.New("signal: message number out of range")
	errUsedKey  = errors.New("signal: message key already used")
	errBadState = errors.New("signal: malformed session state")
)

// header is the Double Ratchet message header (Section 3.4, HEADER): the
// sender's current ratchet public key, the length of its previous sending
// chain and the message number in the current one.
type header struct {
	dh    [32]byte
	pn, n uint32
}

func (h *header) append(dst []byte) []byte {
	dst = append(dst, h.dh[:]...)
	dst = appendUint32(dst, h.pn)
	return appendUint32(dst, h.n)
}

func readHeader(s *cryptobyte.String, h *header) bool {
	var dh []byte
	if !s.ReadBytes(&dh, 32) || !s.ReadUint32(&h.pn) || !s.ReadUint32(&h.n) {
		return false
	}
	copy(h.dh[:], dh)
	return true
}

// chain is the part of a session's state that one message changes (Double
// Ratchet, Section 3.2): a value, so that a receive can work on a copy.
type chain struct {
	dhs    *ecdh.PrivateKey // DHs, our ratchet key pair
	dhr    [32]byte         // DHr, the peer's ratchet public key
	hasDHr bool
	rk     [keySize]byte // RK
	cks    [keySize]byte // CKs
	ckr    [keySize]byte // CKr
	hasCKs bool
	hasCKr bool
	ns, nr uint32 // Ns, Nr
	pn     uint32 // PN
}

type skippedKey struct {
	dh [32]byte
	n  uint32
	mk [keySize]byte
}

// session is one Double Ratchet session with a peer.
type session struct {
	id        [sessionIDSize]byte
	initiator bool   // we sent the prekey message
	acked     bool   // a message from the peer opened on this session
	prekey    []byte // initiator until acked: the encoded prekeyHeader to resend
	ad        []byte // sessionAD
	c         chain
	skipped   []skippedKey // MKSKIPPED, oldest first, at most MaxSkippedKeys
	born      uint64       // Layer.marks when it was made: an encoding of the layer since holds it (not saved)
}

// newInitiatorSession is RatchetInitAlice (Double Ratchet, Section 3.3):
// the responder's signed prekey is its first ratchet public key.
func newInitiatorSession(id [sessionIDSize]byte, ad, prekey []byte, sk *[keySize]byte, spk *ecdh.PublicKey) (*session, error) {
	s := &session{id: id, initiator: true, prekey: prekey, ad: ad}
	dhs, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	out, err := dhs.ECDH(spk)
	if err != nil {
		return nil, err
	}
	s.c.dhs = dhs
	copy(s.c.dhr[:], spk.Bytes())
	s.c.hasDHr = true
	s.c.rk, s.c.cks = kdfRK(sk, out)
	s.c.hasCKs = true
	clear(out)
	return s, nil
}

// newResponderSession is RatchetInitBob (Double Ratchet, Section 3.3).
func newResponderSession(id [sessionIDSize]byte, ad []byte, sk *[keySize]byte, spk *ecdh.PrivateKey) *session {
	return &session{id: id, ad: ad, c: chain{dhs: spk, rk: *sk}}
}

// nextSend is the chain step of RatchetEncrypt (Double Ratchet, Section
// 3.4): it returns the header and the message key for the next message and
// moves the sending chain on.
func (s *session) nextSend() (header, [keySize]byte, error) {
	var h header
	if !s.c.hasCKs {
		return h, [keySize]byte{}, errNoChain
	}
	if s.c.ns == ^uint32(0) {
		return h, [keySize]byte{}, errTooMany
	}
	next, mk := kdfCK(&s.c.cks)
	s.c.cks = next
	copy(h.dh[:], s.c.dhs.PublicKey().Bytes())
	h.pn, h.n = s.c.pn, s.c.ns
	s.c.ns++
	return h, mk, nil
}

// recvUpdate is what a successful receive changes in a session.
type recvUpdate struct {
	c    chain
	used int          // index in skipped of the key used, or -1
	add  []skippedKey // keys skipped on the way
}

// stageReceive is RatchetDecrypt (Double Ratchet, Section 3.5) on a copy
// of the state: it finds the message key for h, opens the message with it,
// and returns the change to apply, having changed nothing.
func (s *session) stageReceive(h *header, open func(mk *[keySize]byte) ([]byte, error)) ([]byte, *recvUpdate, error) {
	// TrySkippedMessageKeys.
	for i := range s.skipped {
		k := &s.skipped[i]
		if k.n == h.n && k.dh == h.dh {
			pt, err := open(&k.mk)
			if err != nil {
				return nil, nil, err
			}
			return pt, &recvUpdate{c: s.c, used: i}, nil
		}
	}
	u := &recvUpdate{c: s.c, used: -1}
	c := &u.c
	if !c.hasDHr || h.dh != c.dhr {
		if err := c.skip(h.pn, &u.add); err != nil {
			return nil, nil, err
		}
		if err := c.dhRatchet(h); err != nil {
			return nil, nil, err
		}
	}
	if !c.hasCKr {
		return nil, nil, errNoChain
	}
	if h.n < c.nr {
		return nil, nil, errUsedKey
	}
	if err := c.skip(h.n, &u.add); err != nil {
		return nil, nil, err
	}
	next, mk := kdfCK(&c.ckr)
	c.ckr = next
	c.nr++
	pt, err := open(&mk)
	clear(mk[:])
	if err != nil {
		for i := range u.add {
			clear(u.add[i].mk[:])
		}
		return nil, nil, err
	}
	return pt, u, nil
}

// skip is SkipMessageKeys (Double Ratchet, Section 3.5).
func (c *chain) skip(until uint32, into *[]skippedKey) error {
	if uint64(c.nr)+MaxSkip < uint64(until) {
		return errTooMany
	}
	if !c.hasCKr {
		return nil
	}
	for c.nr < until {
		next, mk := kdfCK(&c.ckr)
		c.ckr = next
		*into = append(*into, skippedKey{dh: c.dhr, n: c.nr, mk: mk})
		c.nr++
	}
	return nil
}

// dhRatchet is DHRatchet (Double Ratchet, Section 3.5).
func (c *chain) dhRatchet(h *header) error {
	remote, err := ecdh.X25519().NewPublicKey(h.dh[:])
	if err != nil {
		return err
	}
	c.pn, c.ns, c.nr = c.ns, 0, 0
	c.dhr, c.hasDHr = h.dh, true
	out, err := c.dhs.ECDH(remote)
	if err != nil {
		return err
	}
	c.rk, c.ckr = kdfRK(&c.rk, out)
	c.hasCKr = true
	clear(out)
	if c.dhs, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
		return err
	}
	if out, err = c.dhs.ECDH(remote); err != nil {
		return err
	}
	c.rk, c.cks = kdfRK(&c.rk, out)
	c.hasCKs = true
	clear(out)
	return nil
}

// apply commits a staged receive.
func (s *session) apply(u *recvUpdate) {
	if u.used >= 0 {
		clear(s.skipped[u.used].mk[:])
		s.skipped = slices.Delete(s.skipped, u.used, u.used+1)
	}
	s.skipped = append(s.skipped, u.add...)
	if over := len(s.skipped) - MaxSkippedKeys; over > 0 {
		for i := range over {
			clear(s.skipped[i].mk[:])
		}
		s.skipped = slices.Clone(s.skipped[over:])
	}
	old := s.c
	s.c = u.c
	clear(old.rk[:])
	clear(old.cks[:])
	clear(old.ckr[:])
	s.acked, s.prekey = true, nil
}

// destroy zeroes the session's secrets (best effort).
func (s *session) destroy() {
	clear(s.c.rk[:])
	clear(s.c.cks[:])
	clear(s.c.ckr[:])
	for i := range s.skipped {
		clear(s.skipped[i].mk[:])
	}
}

const (
	flagInitiator = 1 << iota
	flagAcked
	flagDHr
	flagCKs
	flagCKr
)

func (s *session) marshal(b *cryptobyte.Builder) {
	b.AddBytes(s.id[:])
	var flags uint8
	for _, f := range [...]struct {
		on  bool
		bit uint8
	}{{s.initiator, flagInitiator}, {s.acked, flagAcked}, {s.c.hasDHr, flagDHr}, {s.c.hasCKs, flagCKs}, {s.c.hasCKr, flagCKr}} {
		if f.on {
			flags |= f.bit
		}
	}
	b.AddUint8(flags)
	addUint16Prefixed(b, s.prekey)
	addUint16Prefixed(b, s.ad)
	b.AddBytes(s.c.dhs.Bytes())
	b.AddBytes(s.c.dhr[:])
	b.AddBytes(s.c.rk[:])
	b.AddBytes(s.c.cks[:])
	b.AddBytes(s.c.ckr[:])
	b.AddUint32(s.c.ns)
	b.AddUint32(s.c.nr)
	b.AddUint32(s.c.pn)
	b.AddUint16(uint16(len(s.skipped)))
	for _, k := range s.skipped {
		b.AddBytes(k.dh[:])
		b.AddUint32(k.n)
		b.AddBytes(k.mk[:])
	}
}

func readArray(s *cryptobyte.String, dst []byte) bool {
	var b []byte
	if !s.ReadBytes(&b, len(dst)) {
		return false
	}
	copy(dst, b)
	return true
}

func unmarshalSession(str *cryptobyte.String) (*session, error) {
	s := new(session)
	var flags uint8
	var prekey, ad cryptobyte.String
	var dhs [32]byte
	if !readArray(str, s.id[:]) || !str.ReadUint8(&flags) || flags >= 1<<5 ||
		!str.ReadUint16LengthPrefixed(&prekey) || !str.ReadUint16LengthPrefixed(&ad) ||
		!readArray(str, dhs[:]) || !readArray(str, s.c.dhr[:]) || !readArray(str, s.c.rk[:]) ||
		!readArray(str, s.c.cks[:]) || !readArray(str, s.c.ckr[:]) ||
		!str.ReadUint32(&s.c.ns) || !str.ReadUint32(&s.c.nr) || !str.ReadUint32(&s.c.pn) {
		return nil, errBadState
	}
	if len(prekey) != 0 && len(prekey) != prekeyHeaderSize {
		return nil, errBadState
	}
	s.initiator = flags&flagInitiator != 0
	s.acked = flags&flagAcked != 0
	s.c.hasDHr = flags&flagDHr != 0
	s.c.hasCKs = flags&flagCKs != 0
	s.c.hasCKr = flags&flagCKr != 0
	if len(prekey) > 0 {
		s.prekey = slices.Clone([]byte(prekey))
	}
	s.ad = slices.Clone([]byte(ad))
	var err error
	if s.c.dhs, err = ecdh.X25519().NewPrivateKey(dhs[:]); err != nil {
		return nil, errBadState
	}
	clear(dhs[:])
	var n uint16
	if !str.ReadUint16(&n) || n > MaxSkippedKeys {
		return nil, errBadState
	}
	s.skipped = make([]skippedKey, n)
	for i := range s.skipped {
		k := &s.skipped[i]
		if !readArray(str, k.dh[:]) || !str.ReadUint32(&k.n) || !readArray(str, k.mk[:]) {
			return nil, errBadState
		}
	}
	return s, nil
}
