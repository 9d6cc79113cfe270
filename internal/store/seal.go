package store

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// Secret columns are sealed with XChaCha20-Poly1305 under a key derived from the
// database key: sealKey = HKDF-SHA256(secret = database key, salt = none,
// info = "tchat store seal v1"), 32 bytes. A sealed value is
//
//	0x01 || nonce (24 random bytes) || ciphertext || tag (16 bytes)
//
// and its additional data binds it to its place:
//
//	"tchat-store/v1" || lp(table) || lp(column) || lp(key part 1) || lp(key part 2) ...
//
// where lp(x) is x's length as 4 big-endian bytes followed by x. The key parts are
// the row's identifying columns (and, for messages, the metadata shown with the
// content), so a sealed value copied to another row, column or table, or a row
// whose identifying columns were edited, fails to open.
const (
	sealVersion  = 0x01
	sealOverhead = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
	sealInfo     = "tchat store seal v1"
	aadPrefix    = "tchat-store/v1"

	// MaxValueSize bounds a value stored in a sealed column (a group state, a
	// session, a message, an outbox payload, an invite token).
	MaxValueSize = 64 << 20
)

// errOpen is the one error for every sealed value that fails to open.
var errOpen = errors.New("store: a sealed value failed authentication (wrong database key, or the database was tampered with)")

type sealer struct {
	aead cipher.AEAD
}

func newSealer(dbKey [32]byte) (*sealer, error) {
	k, err := hkdf.Key(sha256.New, dbKey[:], nil, sealInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("store: derive key: %w", err)
	}
	defer clear(k)
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// aad builds the additional data for a value of table.column in the row
// identified by parts.
func aad(table, column string, parts ...[]byte) []byte {
	n := len(aadPrefix) + 8 + len(table) + len(column)
	for _, p := range parts {
		n += 4 + len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, aadPrefix...)
	lp := func(x []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
		b = append(b, x...)
	}
	lp([]byte(table))
	lp([]byte(column))
	for _, p := range parts {
		lp(p)
	}
	return b
}

func (s *sealer) seal(plaintext, ad []byte) ([]byte, error) {
	return s.sealTo(make([]byte, 0, sealOverhead+len(plaintext)), plaintext, ad)
}

// sealTo appends the sealed plaintext to dst.
func (s *sealer) sealTo(dst, plaintext, ad []byte) ([]byte, error) {
	if len(plaintext) > MaxValueSize {
		return nil, fmt.Errorf("store: value of %d bytes exceeds the limit of %d", len(plaintext), MaxValueSize)
	}
	head := len(dst)
	dst = append(dst, sealVersion)
	dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	nonce := dst[head+1:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("store: random source: %w", err)
	}
	return s.aead.Seal(dst, nonce, plaintext, ad), nil
}

// sealBufs holds buffers to seal a value into for the one statement that writes it: the
// driver (modernc.org/sqlite) copies a blob as it binds it, so the buffer is free again
// once the statement ran. A busy group's state, a few hundred KiB in a large group, is
// saved several times a second; sealing it into a new buffer each time was about 6% of
// everything a 50-peer swarm allocated.
var sealBufs = sync.Pool{New: func() any { return new([]byte) }}

// withSealed seals plaintext into a pooled buffer and calls write with it; the buffer
// goes back to the pool when write returns, so write must not keep it.
func (s *sealer) withSealed(plaintext, ad []byte, write func(sealed []byte) error) error {
	bp := sealBufs.Get().(*[]byte)
	defer sealBufs.Put(bp)
	sealed, err := s.sealTo((*bp)[:0], plaintext, ad)
	if err != nil {
		return err
	}
	*bp = sealed
	return write(sealed)
}

func (s *sealer) open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < sealOverhead || len(sealed) > sealOverhead+MaxValueSize || sealed[0] != sealVersion {
		return nil, errOpen
	}
	nonce := sealed[1 : 1+chacha20poly1305.NonceSizeX]
	pt, err := s.aead.Open(nil, nonce, sealed[1+chacha20poly1305.NonceSizeX:], ad)
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

// u64 encodes an integer key part.
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
