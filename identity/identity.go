// Package identity holds a tchat user's long-term identity: one Ed25519 key per
// profile, the keystore that keeps it encrypted at rest, the profile directory that
// holds the keystore and the database, and Signal-style safety numbers to verify
// another user out of band.
//
// # The identity key
//
// The Ed25519 key is at once the libp2p peer key (so the peer id is derived from it)
// and the MLS signature key. Its uses never sign the same bytes: MLS prefixes
// every signed structure with "MLS 1.0 " and a label (RFC 9420, section 5.1.2),
// libp2p's protocols add their own prefixes, and [Identity.Sign] prefixes every
// other tchat signature with "tchat signature v1\n", a one-byte label length and
// the label. The MLS code takes the 32-byte seed from [Identity.Seed] because it
// builds its own Ed25519 key from a seed.
//
// # Profiles
//
// A profile is one directory, $XDG_DATA_HOME/tchat/<name> by default (see [Home]
// and [ProfileDir]; the name may not contain a path separator or start with a
// dot), private to the user (0700):
//
//	keystore.age    the keystore, age-encrypted to the passphrase
//	keystore.json   instead of keystore.age, only for a profile made without a passphrase
//	tchat.db        the SQLite database of internal/store, with its -wal and -shm files
//	lock            flock(2)ed by the one process that has the profile open
//
// # Keystore
//
// The keystore holds the identity seed and the 32-byte database key. Its
// plaintext is one JSON object, versioned:
//
//	{
//	  "format":        "tchat-keystore",
//	  "version":       1,
//	  "identity_seed": "<base64 of the 32-byte Ed25519 seed>",
//	  "database_key":  "<base64 of the 32-byte database key>",
//	  "created":       "<RFC 3339 time>"
//	}
//
// Unknown fields, another format name, another version and keys of the wrong size
// are refused. On disk it is encrypted with age (age's binary format) to a single
// scrypt passphrase recipient with work factor [DefaultScryptWorkFactor], so
// `age -d keystore.age` opens it too. Only when the user asks for it explicitly
// is the plaintext stored as it is (keystore.json, mode 0600), and front ends
// warn each time such a profile is opened.
//
// # Backups
//
// [Profile.ExportBackup] writes one age file (scrypt recipient, the profile's own
// passphrase for an encrypted profile) whose plaintext is a POSIX tar archive, so
// `age -d backup.age | tar x` unpacks it by hand. Its entries, in this order:
//
//	manifest.json                  {"format": "tchat-backup", "version": 1, "profile": NAME,
//	                                "created": TIME, "files": [{"name", "size", "sha256"}, ...]}
//	keystore.age | keystore.json   the keystore file, byte for byte
//	tchat.db                       a consistent snapshot of the database (VACUUM INTO)
//
// [ImportBackup] refuses unknown fields and entries, links, duplicates, missing
// files, sizes or digests that differ from the manifest, and data after the end,
// and never writes over an existing profile.
//
// # Safety numbers
//
// [SafetyNumber] follows the scheme Signal documents for its safety numbers
// (libsignal's numeric fingerprint): each identity gets 30 digits from 5200
// iterations of SHA-512 over its key and a stable identifier, and the two
// identities' digits are concatenated lower first, so both users see the same 60
// digits, shown in 12 groups of five; [SafetyNumber] gives the exact construction.
//
// # Secrets in memory
//
// Go offers no guaranteed way to erase memory: the garbage collector may copy
// values, and strings cannot be overwritten. This package zeroes the buffers it owns
// ([Identity.Wipe], [Profile.Close], the decoded keystore) as a best effort only.
// Passphrases reach the age library as strings and cannot be zeroed at all.
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SeedSize is the size of an Ed25519 private key seed (RFC 8032).
const SeedSize = ed25519.SeedSize

// PublicKeySize is the size of an Ed25519 public key.
const PublicKeySize = ed25519.PublicKeySize

// signPrefix starts every message signed by [Identity.Sign]. MLS signatures start
// with a length-prefixed "MLS 1.0 " label and libp2p's with their own protocol
// strings, so no tchat signature can be taken for one of theirs.
const signPrefix = "tchat signature v1\n"

// MaxLabelLen bounds the labels accepted by [Identity.Sign] and [PublicKey.Verify].
const MaxLabelLen = 255

// Identity is a long-term Ed25519 identity key. The zero value is not usable; make
// one with [Generate] or [FromSeed].
type Identity struct {
	priv ed25519.PrivateKey // seed || public key
	pub  PublicKey
}

// PublicKey is an Ed25519 public key: the public half of an [Identity]. It is
// comparable, so it can be used as a map key.
type PublicKey [PublicKeySize]byte

// Generate makes a new identity from the system's random source.
func Generate() (*Identity, error) {
	var seed [SeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("identity: random source: %w", err)
	}
	id, err := FromSeed(seed[:])
	clear(seed[:])
	return id, err
}

// FromSeed makes the identity whose private key is the 32-byte Ed25519 seed. The
// seed is copied; the caller may zero its own copy.
func FromSeed(seed []byte) (*Identity, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("identity: seed is %d bytes, want %d", len(seed), SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	id := &Identity{priv: priv}
	copy(id.pub[:], priv[SeedSize:])
	return id, nil
}

// Seed returns a copy of the 32-byte Ed25519 seed, the form the MLS code takes. The
// caller should zero it when done (best effort; see the package documentation).
func (id *Identity) Seed() []byte {
	id.mustLive()
	return append([]byte(nil), id.priv[:SeedSize]...)
}

// PublicKey returns the public half of the identity.
func (id *Identity) PublicKey() PublicKey { return id.pub }

// Sign signs msg for the non-MLS use named by label (for example "invite" or
// "keypackage-proof"). The signed bytes are "tchat signature v1\n" || len(label) ||
// label || msg, so a signature made for one label never verifies for another, and
// never for MLS or libp2p. The label must be 1 to [MaxLabelLen] bytes.
func (id *Identity) Sign(label string, msg []byte) ([]byte, error) {
	id.mustLive()
	tbs, err := toBeSigned(label, msg)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(id.priv, tbs), nil
}

// Libp2pKey returns the identity as a libp2p private key, for the libp2p host.
func (id *Identity) Libp2pKey() (crypto.PrivKey, error) {
	id.mustLive()
	k, err := crypto.UnmarshalEd25519PrivateKey(id.priv)
	if err != nil {
		return nil, fmt.Errorf("identity: libp2p key: %w", err)
	}
	return k, nil
}

// PeerID returns the libp2p peer id derived from the identity key.
func (id *Identity) PeerID() peer.ID {
	p, err := id.pub.PeerID()
	if err != nil {
		// An Ed25519 public key always has a peer id; this cannot happen.
		panic(err)
	}
	return p
}

// Fingerprint returns the identity fingerprint; see [PublicKey.Fingerprint].
func (id *Identity) Fingerprint() string { return id.pub.Fingerprint() }

// Wipe zeroes the private key (best effort). The identity must not be used after.
func (id *Identity) Wipe() {
	clear(id.priv)
	id.priv = nil
}

func (id *Identity) mustLive() {
	if id == nil || len(id.priv) != ed25519.PrivateKeySize {
		panic("identity: use of a nil or wiped Identity")
	}
}

// ParsePublicKey parses a 32-byte Ed25519 public key.
func ParsePublicKey(b []byte) (PublicKey, error) {
	var p PublicKey
	if len(b) != PublicKeySize {
		return p, fmt.Errorf("identity: public key is %d bytes, want %d", len(b), PublicKeySize)
	}
	copy(p[:], b)
	return p, nil
}

// PublicKeyFromPeerID extracts the identity key from a libp2p peer id. Only peer ids
// of Ed25519 keys (the ones tchat makes) are accepted.
func PublicKeyFromPeerID(p peer.ID) (PublicKey, error) {
	var out PublicKey
	pk, err := p.ExtractPublicKey()
	if err != nil {
		return out, fmt.Errorf("identity: peer id carries no public key: %w", err)
	}
	if _, ok := pk.(*crypto.Ed25519PublicKey); !ok {
		return out, errors.New("identity: peer id is not of an Ed25519 key")
	}
	raw, err := pk.Raw()
	if err != nil {
		return out, fmt.Errorf("identity: peer id key: %w", err)
	}
	return ParsePublicKey(raw)
}

// Bytes returns the key as a new 32-byte slice.
func (p PublicKey) Bytes() []byte { return append([]byte(nil), p[:]...) }

// Equal reports whether two keys are equal, in constant time.
func (p PublicKey) Equal(q PublicKey) bool { return subtle.ConstantTimeCompare(p[:], q[:]) == 1 }

// Verify reports whether sig is a signature by p of msg under label, as made by
// [Identity.Sign].
func (p PublicKey) Verify(label string, msg, sig []byte) bool {
	tbs, err := toBeSigned(label, msg)
	if err != nil {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(p[:]), tbs, sig)
}

// Libp2pKey returns the key as a libp2p public key.
func (p PublicKey) Libp2pKey() (crypto.PubKey, error) {
	k, err := crypto.UnmarshalEd25519PublicKey(p[:])
	if err != nil {
		return nil, fmt.Errorf("identity: libp2p public key: %w", err)
	}
	return k, nil
}

// PeerID returns the libp2p peer id of the key.
func (p PublicKey) PeerID() (peer.ID, error) {
	k, err := p.Libp2pKey()
	if err != nil {
		return "", err
	}
	id, err := peer.IDFromPublicKey(k)
	if err != nil {
		return "", fmt.Errorf("identity: peer id: %w", err)
	}
	return id, nil
}

// fingerprintLabel domain-separates the identity fingerprint hash.
const fingerprintLabel = "tchat identity fingerprint v1"

// Fingerprint returns a short, readable name of the key: the first 20 bytes (160
// bits) of SHA-256("tchat identity fingerprint v1" || public key), in lower-case
// base32 without padding, in eight groups of four characters, for example
// "abcd efgh ijkl mnop qrst uvwx yz23 4567". It identifies a key; to verify one,
// compare the safety number ([SafetyNumber]), which covers both keys.
func (p PublicKey) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte(fingerprintLabel))
	h.Write(p[:])
	sum := h.Sum(nil)
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20]))
	return group(s, 4)
}

func toBeSigned(label string, msg []byte) ([]byte, error) {
	if len(label) == 0 || len(label) > MaxLabelLen {
		return nil, fmt.Errorf("identity: signature label must be 1 to %d bytes", MaxLabelLen)
	}
	b := make([]byte, 0, len(signPrefix)+1+len(label)+len(msg))
	b = append(b, signPrefix...)
	b = append(b, byte(len(label)))
	b = append(b, label...)
	b = append(b, msg...)
	return b, nil
}

// group splits s into space-separated groups of n characters.
func group(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s); i += n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+n, len(s))])
	}
	return b.String()
}
