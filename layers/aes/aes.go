// Package aes is the outermost layer of tchat's cascade: AES-256-GCM (NIST SP
// 800-38D) keyed by the conversation's room secret, 32 random bytes carried
// in the invite, or derived from a passphrase with Argon2id (RFC 9106). It
// protects against anyone who never held an invite, even if all public-key
// cryptography fails.
//
// A sealed message is
//
//	salt       24 bytes, random
//	ciphertext AES-256-GCM(key, nonce, timestamp (8 bytes, unix ms) ‖ inner, AD)
//	tag        16 bytes
//
// where key ‖ nonce = HKDF-SHA256(room key, salt, "tchat aes layer v1"),
// 32 + 12 bytes (RFC 5869), and AD is Context.AD.
//
// Nonces. Every message has its own key and nonce, derived from a fresh
// 192-bit random salt (the size of XAES-256-GCM's random nonce), so nothing
// has to be counted or persisted: a (key, nonce) pair repeats only if two
// salts do, or if HKDF collides on distinct salts. Over q messages under one
// room key the chance is at most q²/2^193 for the salts and q²/2^353 for a
// collision of the 352-bit key ‖ nonce output: for q = 2^48 messages (a
// million a second for nine years) below 2^-96. This holds across restarts,
// because nothing but the random salt feeds the derivation. (A 256-bit salt
// would buy nothing we need for 8 more bytes on every message.)
//
// Replays. The first 16 bytes of the salt are the message id and the
// timestamp sits under the tag; a replay window (layers/internal/replay)
// accepts each id once and only within its time window. What survives a
// restart is what the store saved from MarshalBinary.
package aes

import (
	stdaes "crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tchat-p2p/tchat/internal/hkdf256"
	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/internal/replay"
)

const (
	// KeySize is the size of a room key.
	KeySize   = 32
	saltSize  = 24
	stampSize = 8
	nonceSize = 12
	tagSize   = 16
	// Overhead is what the layer adds to its input.
	Overhead = saltSize + stampSize + tagSize
	// version is the layer's wire format version.
	version = 1

	kdfLabel = "tchat aes layer v1"
)

// Argon2id parameters for KeyFromPassphrase: RFC 9106, Section 4, second
// recommended option (t = 3, m = 64 MiB, p = 4). A passphrase is a
// low-entropy secret that anyone who sees one ciphertext of the group can
// attack offline, so we spend what an interactive program can afford: the
// key is derived once per conversation (when joining or opening it; the
// store keeps the derived key, not the passphrase), which takes a few
// hundred milliseconds and 64 MiB on a two-core machine. Four lanes cost the
// attacker the same memory-time on fewer cores and cost us nothing extra.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 4
	argonSalt    = "tchat aes passphrase salt v1"
)

// Key is a room key. Its bytes are reached only through Bytes.
type Key struct {
	k [KeySize]byte
}

// NewKey returns the room key for a 32-byte room secret.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) != KeySize {
		return nil, fmt.Errorf("aes: room secret of %d bytes, want %d", len(secret), KeySize)
	}
	k := new(Key)
	copy(k.k[:], secret)
	return k, nil
}

// GenerateKey returns a new random room key.
func GenerateKey() *Key {
	k := new(Key)
	rand.Read(k.k[:])
	return k
}

// KeyFromPassphrase derives a room key from a passphrase with Argon2id,
// salted by the group id (hashed, so any id length gives a 32-byte salt):
// the same passphrase gives different keys in different groups, and a
// dictionary built for one group is worth nothing in another.
func KeyFromPassphrase(passphrase, group []byte) (*Key, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("aes: empty passphrase")
	}
	if len(group) == 0 || len(group) > layers.MaxIDLen {
		return nil, fmt.Errorf("aes: group id of %d bytes", len(group))
	}
	h := sha256.New()
	h.Write([]byte(argonSalt))
	h.Write(group)
	derived := argon2.IDKey(passphrase, h.Sum(nil), argonTime, argonMemory, argonThreads, KeySize)
	k := new(Key)
	copy(k.k[:], derived)
	clear(derived)
	return k, nil
}

// Bytes returns a copy of the room secret, for the invite and the store.
func (k *Key) Bytes() []byte { return append([]byte(nil), k.k[:]...) }

// Equal reports in constant time whether k and o are the same key.
func (k *Key) Equal(o *Key) bool { return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1 }

// Destroy zeroes the key (best effort: see package layers).
func (k *Key) Destroy() { clear(k.k[:]) }

// Options tunes a Layer. The zero value is the default.
type Options struct {
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// MaxAge, MaxSkew and MaxEntries bound the replay window: how old a
	// message may be (72 h), how far in the future (15 min), and how many
	// ids are remembered (65536). See layers/internal/replay.
	MaxAge, MaxSkew time.Duration
	MaxEntries      int
}

// Layer is the aes layer of one conversation. It is safe for concurrent use.
type Layer struct {
	key  Key // set by New, never changed
	now  func() time.Time
	seen *replay.Guard // safe for concurrent use
}

var (
	_ layers.Layer    = (*Layer)(nil)
	_ layers.Stateful = (*Layer)(nil)
)

// New returns the layer for a room key (which it copies). opts may be nil.
func New(key *Key, opts *Options) *Layer {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Layer{key: *key, now: o.Now}
	l.seen = replay.NewGuard(replay.Config{MaxAge: o.MaxAge, MaxSkew: o.MaxSkew, MaxEntries: o.MaxEntries}, o.Now)
	return l
}

// Name returns "aes".
func (l *Layer) Name() string { return layers.AES.String() }

// Version returns the wire format version.
func (l *Layer) Version() uint8 { return version }

// aead returns the AES-256-GCM instance and nonce for one salt.
func (l *Layer) aead(salt []byte) (cipher.AEAD, []byte, error) {
	okm := hkdf256.Key(make([]byte, 0, KeySize+nonceSize), l.key.k[:], salt, kdfLabel, KeySize+nonceSize)
	defer clear(okm[:KeySize])
	block, err := stdaes.NewCipher(okm[:KeySize])
	if err != nil {
		return nil, nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return gcm, okm[KeySize:], nil
}

// Seal encrypts inner under a fresh per-message key, binding ctx.AD.
func (l *Layer) Seal(ctx *layers.Context, inner []byte) ([]byte, error) {
	if len(inner) > layers.MaxMessage {
		return nil, fmt.Errorf("aes: input of %d bytes, over %d", len(inner), layers.MaxMessage)
	}
	out := make([]byte, saltSize+stampSize+len(inner), Overhead+len(inner))
	rand.Read(out[:saltSize])
	gcm, nonce, err := l.aead(out[:saltSize])
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	body := out[saltSize:]
	binary.BigEndian.PutUint64(body, uint64(l.now().UnixMilli()))
	copy(body[stampSize:], inner)
	gcm.Seal(body[:0], nonce, body, ctx.AD)
	return out[:cap(out)], nil
}

// Open decrypts a sealed message and checks it against the replay window.
// The returned Commit records its id.
func (l *Layer) Open(ctx *layers.Context, sealed []byte) ([]byte, layers.Commit, error) {
	if len(sealed) < Overhead || len(sealed) > layers.MaxMessage+Overhead {
		return nil, nil, layers.ErrAuth
	}
	gcm, nonce, err := l.aead(sealed[:saltSize])
	if err != nil {
		return nil, nil, layers.ErrAuth
	}
	pt, err := gcm.Open(nil, nonce, sealed[saltSize:], ctx.AD)
	if err != nil {
		return nil, nil, layers.ErrAuth
	}
	ts := int64(binary.BigEndian.Uint64(pt))
	var id replay.ID
	copy(id[:], sealed)

	record, ok := l.seen.Stage(id, ts, layers.ErrAuth)
	if !ok {
		clear(pt)
		return nil, nil, layers.ErrAuth
	}
	return pt[stampSize:], record, nil
}

// MarshalBinary returns the replay window (not the key), for the store.
func (l *Layer) MarshalBinary() ([]byte, error) {
	return l.seen.MarshalBinary()
}

// UnmarshalBinary restores a replay window saved by MarshalBinary.
func (l *Layer) UnmarshalBinary(b []byte) error {
	if err := l.seen.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("aes: %w", err)
	}
	return nil
}

// Destroy zeroes the layer's copy of the room key (best effort).
func (l *Layer) Destroy() { l.key.Destroy() }

// String and GoString keep the key out of logs: fmt would print unexported
// fields.
func (k *Key) String() string     { return "aes.Key(redacted)" }
func (k *Key) GoString() string   { return k.String() }
func (l *Layer) String() string   { return "aes.Layer(redacted)" }
func (l *Layer) GoString() string { return l.String() }
