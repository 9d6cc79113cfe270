// Package suite implements the cryptographic primitives of MLS cipher suites: the hash and
// KDF, the AEAD, HPKE and the signature scheme, and the labeled operations built on them
// (RFC 9420, Section 5).
//
// Suites 0x0001–0x0007 are the ones registered by [RFC 9420]; the post-quantum suites of
// [draft-ietf-mls-pq-ciphersuites] sit on private-use code points until IANA assigns them
// (TBD1 = 0xF001 … TBD11 = 0xF00B), and 0x0053 is ts-mls's X-Wing suite, so that its
// vectors run. The whole mapping is the table in this file: renumbering is one edit.
//
// HPKE comes from the standard library's crypto/hpke, except X448 (suites 4 and 6), which
// uses github.com/cloudflare/circl, as do Ed448 and ML-DSA signatures.
//
// [RFC 9420]: https://www.rfc-editor.org/rfc/rfc9420.html
// [draft-ietf-mls-pq-ciphersuites]: https://datatracker.ietf.org/doc/draft-ietf-mls-pq-ciphersuites/
package suite

import (
	"crypto"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	_ "crypto/sha256" // registers SHA-224/256 with crypto.Hash
	_ "crypto/sha512" // registers SHA-384/512 with crypto.Hash
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/tchat-p2p/tchat/internal/hkdf256"
	"hash"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// ID is an MLS cipher suite code point (RFC 9420, Section 17.1).
type ID uint16

// The cipher suites this package implements.
const (
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519        ID = 0x0001
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256             ID = 0x0002
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 ID = 0x0003
	MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448            ID = 0x0004
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521             ID = 0x0005
	MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448     ID = 0x0006
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384             ID = 0x0007

	// ts-mls's X-Wing suite (not an IANA value).
	MLS_256_XWING_AES256GCM_SHA512_Ed25519 ID = 0x0053

	// draft-ietf-mls-pq-ciphersuites, TBD1…TBD11 on private-use code points.
	MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519        ID = 0xF001
	MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519        ID = 0xF002
	MLS_128_MLKEM768P256_AES128GCM_SHA256_P256             ID = 0xF003
	MLS_128_MLKEM768P256_AES256GCM_SHA384_P256             ID = 0xF004
	MLS_192_MLKEM1024P384_AES256GCM_SHA384_P384            ID = 0xF005
	MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519              ID = 0xF006
	MLS_128_MLKEM768_AES256GCM_SHA384_P256                 ID = 0xF007
	MLS_192_MLKEM1024_AES256GCM_SHA384_P384                ID = 0xF008
	MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44 ID = 0xF009
	MLS_192_MLKEM768_AES256GCM_SHA384_MLDSA65              ID = 0xF00A
	MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87             ID = 0xF00B

	// Default is the suite new tchat groups use: X-Wing, AES-128-GCM, SHA-256, Ed25519.
	Default = MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519
)

// HPKE algorithm identifiers (RFC 9180, Section 7; draft-ietf-hpke-pq).
const (
	kemP256          = 0x0010
	kemP384          = 0x0011
	kemP521          = 0x0012
	kemX25519        = 0x0020
	kemX448          = 0x0021
	kemMLKEM768      = 0x0041
	kemMLKEM1024     = 0x0042
	kemMLKEM768P256  = 0x0050
	kemMLKEM1024P384 = 0x0051
	kemXWing         = 0x647a

	kdfSHA256 = 0x0001
	kdfSHA384 = 0x0002
	kdfSHA512 = 0x0003

	aeadAES128GCM = 0x0001
	aeadAES256GCM = 0x0002
	aeadChaCha20  = 0x0003
)

// The table: one row per suite.
var table = map[ID]struct {
	name string
	kem  uint16
	kdf  uint16
	aead uint16
	sig  sigScheme
}{
	0x0001: {"MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519", kemX25519, kdfSHA256, aeadAES128GCM, ed25519Scheme},
	0x0002: {"MLS_128_DHKEMP256_AES128GCM_SHA256_P256", kemP256, kdfSHA256, aeadAES128GCM, ecdsaP256},
	0x0003: {"MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519", kemX25519, kdfSHA256, aeadChaCha20, ed25519Scheme},
	0x0004: {"MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448", kemX448, kdfSHA512, aeadAES256GCM, ed448Scheme},
	0x0005: {"MLS_256_DHKEMP521_AES256GCM_SHA512_P521", kemP521, kdfSHA512, aeadAES256GCM, ecdsaP521},
	0x0006: {"MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448", kemX448, kdfSHA512, aeadChaCha20, ed448Scheme},
	0x0007: {"MLS_256_DHKEMP384_AES256GCM_SHA384_P384", kemP384, kdfSHA384, aeadAES256GCM, ecdsaP384},

	0x0053: {"MLS_256_XWING_AES256GCM_SHA512_Ed25519", kemXWing, kdfSHA512, aeadAES256GCM, ed25519Scheme},

	0xF001: {"MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519", kemXWing, kdfSHA256, aeadAES128GCM, ed25519Scheme},
	0xF002: {"MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519", kemXWing, kdfSHA384, aeadAES256GCM, ed25519Scheme},
	0xF003: {"MLS_128_MLKEM768P256_AES128GCM_SHA256_P256", kemMLKEM768P256, kdfSHA256, aeadAES128GCM, ecdsaP256},
	0xF004: {"MLS_128_MLKEM768P256_AES256GCM_SHA384_P256", kemMLKEM768P256, kdfSHA384, aeadAES256GCM, ecdsaP256},
	0xF005: {"MLS_192_MLKEM1024P384_AES256GCM_SHA384_P384", kemMLKEM1024P384, kdfSHA384, aeadAES256GCM, ecdsaP384},
	0xF006: {"MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519", kemMLKEM768, kdfSHA384, aeadAES256GCM, ed25519Scheme},
	0xF007: {"MLS_128_MLKEM768_AES256GCM_SHA384_P256", kemMLKEM768, kdfSHA384, aeadAES256GCM, ecdsaP256},
	0xF008: {"MLS_192_MLKEM1024_AES256GCM_SHA384_P384", kemMLKEM1024, kdfSHA384, aeadAES256GCM, ecdsaP384},
	0xF009: {"MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44", kemXWing, kdfSHA384, aeadChaCha20, mldsa44Scheme},
	0xF00A: {"MLS_192_MLKEM768_AES256GCM_SHA384_MLDSA65", kemMLKEM768, kdfSHA384, aeadAES256GCM, mldsa65Scheme},
	0xF00B: {"MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87", kemMLKEM1024, kdfSHA384, aeadAES256GCM, mldsa87Scheme},
}

// ErrUnsupported is returned for a cipher suite this package does not implement.
var ErrUnsupported = errors.New("mls: unsupported cipher suite")

// ErrDecrypt is the one error for every failed decryption or authentication, so that
// failures cannot be told apart.
var ErrDecrypt = errors.New("mls: message authentication failed")

// ErrSignature is returned for every signature that does not verify.
var ErrSignature = errors.New("mls: invalid signature")

// Suite is one cipher suite. A *Suite is immutable and safe for concurrent use.
type Suite struct {
	id     ID
	name   string
	hash   crypto.Hash // the suite hash, which is also HKDF's and HMAC's hash
	kem    kemImpl
	kdf    hpke.KDF
	aead   hpke.AEAD
	aeadID uint16
	sig    sigScheme
}

var suites = func() map[ID]*Suite {
	m := make(map[ID]*Suite, len(table))
	for id, row := range table {
		s := &Suite{id: id, name: row.name, sig: row.sig, aeadID: row.aead}
		switch row.kdf {
		case kdfSHA256:
			s.hash = crypto.SHA256
		case kdfSHA384:
			s.hash = crypto.SHA384
		case kdfSHA512:
			s.hash = crypto.SHA512
		}
		var err error
		if s.kdf, err = hpke.NewKDF(row.kdf); err != nil {
			panic("mls: internal error: " + err.Error())
		}
		if s.aead, err = hpke.NewAEAD(row.aead); err != nil {
			panic("mls: internal error: " + err.Error())
		}
		if s.kem, err = newKEM(row.kem); err != nil {
			panic("mls: internal error: " + err.Error())
		}
		m[id] = s
	}
	return m
}()

// Lookup returns the suite with the given code point.
func Lookup(id ID) (*Suite, error) {
	s, ok := suites[id]
	if !ok {
		return nil, fmt.Errorf("%w 0x%04x", ErrUnsupported, uint16(id))
	}
	return s, nil
}

// All returns the code points of every implemented suite.
func All() []ID {
	out := make([]ID, 0, len(suites))
	for id := range suites {
		out = append(out, id)
	}
	return out
}

// ID returns the suite's code point.
func (s *Suite) ID() ID { return s.id }

// String returns the suite's name as registered (or as the draft names it).
func (s *Suite) String() string { return s.name }

func (id ID) String() string {
	if s, ok := suites[id]; ok {
		return s.name
	}
	return fmt.Sprintf("unknown(0x%04x)", uint16(id))
}

// Nh is the output size of the KDF, KDF.Nh in RFC 9420.
func (s *Suite) Nh() int { return s.hash.Size() }

// KeySize and NonceSize are the AEAD's Nk and Nn.
func (s *Suite) KeySize() int {
	switch s.aeadID {
	case aeadAES128GCM:
		return 16
	default:
		return 32
	}
}

// NonceSize is the AEAD's nonce size, Nn (12 for every suite).
func (s *Suite) NonceSize() int { return 12 }

// Hash returns the suite hash of data.
func (s *Suite) Hash(data []byte) []byte {
	h := s.hash.New()
	h.Write(data)
	return h.Sum(nil)
}

// NewHash returns a running instance of the suite hash.
func (s *Suite) NewHash() hash.Hash { return s.hash.New() }

// MAC computes HMAC with the suite hash (RFC 9420, Section 5.1: the MAC is HMAC with the
// KDF's hash).
func (s *Suite) MAC(key, data []byte) []byte {
	if s.hash == crypto.SHA256 {
		tag := hkdf256.HMAC(key, data)
		return tag[:]
	}
	m := hmac.New(s.hash.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// VerifyMAC checks a MAC in constant time.
func (s *Suite) VerifyMAC(key, data, tag []byte) bool {
	return hmac.Equal(s.MAC(key, data), tag)
}

// Extract is KDF.Extract(salt, ikm) (RFC 5869).
func (s *Suite) Extract(salt, ikm []byte) []byte {
	if salt == nil {
		salt = []byte{}
	}
	if s.hash == crypto.SHA256 {
		prk := hkdf256.Extract(salt, ikm)
		return prk[:]
	}
	prk, err := hkdf.Extract(s.hash.New, ikm, salt)
	if err != nil {
		panic("mls: internal error: " + err.Error())
	}
	return prk
}

// Expand is KDF.Expand(prk, info, length). length is at most 255*Nh.
func (s *Suite) Expand(prk, info []byte, length int) ([]byte, error) {
	if length > 255*s.Nh() {
		return nil, fmt.Errorf("mls: cannot expand to %d bytes", length)
	}
	if s.hash == crypto.SHA256 {
		return hkdf256.Expand(make([]byte, 0, length), prk, info, length), nil
	}
	return hkdf.Expand(s.hash.New, prk, string(info), length)
}

// label prefixes every MLS label (RFC 9420, Section 5.1.3).
const labelPrefix = "MLS 1.0 "

// ExpandWithLabel is RFC 9420, Section 8:
//
//	ExpandWithLabel(Secret, Label, Context, Length) =
//	    KDF.Expand(Secret, KDFLabel, Length)
//
// where KDFLabel is { uint16 length; opaque label<V> = "MLS 1.0 " + Label; opaque context<V> }.
func (s *Suite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("mls: invalid expansion length %d", length)
	}
	// Built on the stack when it fits (at most 4 bytes per length), else in a buffer of
	// its final size: it is made for every key, nonce and secret of the secret tree,
	// several per message opened.
	n := len(labelPrefix) + len(label)
	var stack [96]byte
	info := stack[:0]
	if size := 2 + 4 + n + 4 + len(context); size > len(stack) {
		info = make([]byte, 0, size)
	}
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info, err := codec.AppendVarint(info, uint64(n))
	if err != nil {
		return nil, err
	}
	info = append(append(info, labelPrefix...), label...)
	if info, err = codec.AppendVarint(info, uint64(len(context))); err != nil {
		return nil, err
	}
	info = append(info, context...)
	return s.Expand(secret, info, length)
}

// DeriveSecret is RFC 9420, Section 8: ExpandWithLabel(Secret, Label, "", KDF.Nh).
func (s *Suite) DeriveSecret(secret []byte, label string) []byte {
	out, err := s.ExpandWithLabel(secret, label, nil, s.Nh())
	if err != nil {
		panic("mls: internal error: " + err.Error())
	}
	return out
}

// DeriveTreeSecret is RFC 9420, Section 9:
// ExpandWithLabel(Secret, Label, uint32 generation, Length).
func (s *Suite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	ctx := []byte{byte(generation >> 24), byte(generation >> 16), byte(generation >> 8), byte(generation)}
	return s.ExpandWithLabel(secret, label, ctx, length)
}

// RefHash is RFC 9420, Section 5.2: Hash(RefHashInput{label, value}).
func (s *Suite) RefHash(label string, value []byte) []byte {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, []byte(label))
	codec.AddOpaque(&b, value)
	return s.Hash(b.BytesOrPanic())
}

// MakeKeyPackageRef is RFC 9420, Section 5.2, over an encoded KeyPackage.
func (s *Suite) MakeKeyPackageRef(keyPackage []byte) []byte {
	return s.RefHash("MLS 1.0 KeyPackage Reference", keyPackage)
}

// MakeProposalRef is RFC 9420, Section 5.2, over an encoded AuthenticatedContent.
func (s *Suite) MakeProposalRef(authenticatedContent []byte) []byte {
	return s.RefHash("MLS 1.0 Proposal Reference", authenticatedContent)
}

// NewAEAD returns the suite's AEAD keyed with key.
func (s *Suite) NewAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != s.KeySize() {
		return nil, fmt.Errorf("mls: AEAD key is %d bytes, want %d", len(key), s.KeySize())
	}
	return newAEAD(s.aeadID, key)
}
