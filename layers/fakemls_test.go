package layers_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/tchat-p2p/tchat/layers"
)

// fakeMLS stands in for layers/mls in these tests only: a group secret per
// epoch that every current member holds, a per-sender generation counter,
// and the sender's id authenticated in its header, so that the cascade can
// be tested with all four layers before mlsgroup's API is there. It is not
// MLS and is never shipped.
//
//	epoch (8) | sender id (1-byte length) | generation (4) | AES-GCM(pt, ctx.AD ‖ header)
type fakeMLS struct {
	self []byte

	mu     sync.Mutex
	epoch  uint64          // guarded by mu
	secret [32]byte        // guarded by mu
	gen    uint32          // guarded by mu
	seen   map[string]bool // sender ‖ epoch ‖ generation; guarded by mu
}

var _ layers.Layer = (*fakeMLS)(nil)

func newFakeMLS(self []byte, secret [32]byte) *fakeMLS {
	return &fakeMLS{self: self, secret: secret, seen: make(map[string]bool)}
}

// advance moves to the next epoch with a new group secret (a commit).
func (l *fakeMLS) advance(secret [32]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.epoch++
	l.secret = secret
	l.gen = 0
}

func (l *fakeMLS) Name() string   { return "mls" }
func (l *fakeMLS) Version() uint8 { return 1 }

func (l *fakeMLS) aead(secret *[32]byte, hdr []byte) (cipher.AEAD, []byte) {
	okm, err := hkdf.Key(sha256.New, secret[:], hdr, "fake mls", 44)
	if err != nil {
		panic(err)
	}
	block, _ := aes.NewCipher(okm[:32])
	gcm, _ := cipher.NewGCM(block)
	return gcm, okm[32:]
}

func (l *fakeMLS) Seal(ctx *layers.Context, pt []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	hdr := binary.BigEndian.AppendUint64(nil, l.epoch)
	hdr = append(hdr, byte(len(l.self)))
	hdr = append(hdr, l.self...)
	hdr = binary.BigEndian.AppendUint32(hdr, l.gen)
	l.gen++
	gcm, nonce := l.aead(&l.secret, hdr)
	ctx.Epoch = l.epoch
	return gcm.Seal(hdr, nonce, pt, append(slices.Clone(ctx.AD), hdr...)), nil
}

func (l *fakeMLS) Open(ctx *layers.Context, msg []byte) ([]byte, layers.Commit, error) {
	if len(msg) < 8+1+4+16 {
		return nil, nil, layers.ErrAuth
	}
	epoch := binary.BigEndian.Uint64(msg)
	n := int(msg[8])
	if len(msg) < 8+1+n+4+16 || n == 0 {
		return nil, nil, layers.ErrAuth
	}
	sender := msg[9 : 9+n]
	hdr := msg[:9+n+4]
	l.mu.Lock()
	defer l.mu.Unlock()
	if epoch > l.epoch {
		return nil, nil, layers.ErrNoKey
	}
	if epoch != l.epoch || (ctx.Sender != nil && !bytes.Equal(ctx.Sender, sender)) {
		return nil, nil, layers.ErrAuth
	}
	gcm, nonce := l.aead(&l.secret, hdr)
	pt, err := gcm.Open(nil, nonce, msg[len(hdr):], append(slices.Clone(ctx.AD), hdr...))
	if err != nil || l.seen[string(hdr)] {
		return nil, nil, layers.ErrAuth
	}
	ctx.Sender, ctx.Epoch = slices.Clone(sender), epoch
	id := string(hdr)
	return pt, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.seen[id] {
			return layers.ErrAuth
		}
		l.seen[id] = true
		return nil
	}, nil
}

func (l *fakeMLS) MarshalBinary() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := binary.BigEndian.AppendUint64(nil, l.epoch)
	b = append(b, l.secret[:]...)
	b = binary.BigEndian.AppendUint32(b, l.gen)
	ids := make([]string, 0, len(l.seen))
	for id := range l.seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		b = append(b, byte(len(id)))
		b = append(b, id...)
	}
	return b, nil
}

func (l *fakeMLS) UnmarshalBinary([]byte) error { panic("not needed") }
