// Package mlsgroup implements the Messaging Layer Security protocol, [RFC 9420]: key
// packages, groups, proposals and commits, Welcome and GroupInfo, and the protection of
// application messages. tchat runs every conversation as one MLS group.
//
// The wire formats, cipher suites, key schedule and tree live in internal packages; this
// package is the typed API over them.
//
// [RFC 9420]: https://www.rfc-editor.org/rfc/rfc9420.html
package mlsgroup

import (
	"errors"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
)

// CipherSuite is an MLS cipher suite code point (RFC 9420, Section 17.1).
type CipherSuite = suite.ID

// The cipher suites of RFC 9420 and the post-quantum suites tchat offers.
const (
	X25519_AES128GCM_SHA256_Ed25519        = suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	P256_AES128GCM_SHA256_P256             = suite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256
	X25519_CHACHA20POLY1305_SHA256_Ed25519 = suite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
	X448_AES256GCM_SHA512_Ed448            = suite.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448
	P521_AES256GCM_SHA512_P521             = suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521
	X448_CHACHA20POLY1305_SHA512_Ed448     = suite.MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448
	P384_AES256GCM_SHA384_P384             = suite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384
	XWing_AES128GCM_SHA256_Ed25519         = suite.MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519

	// DefaultCipherSuite is the suite of new tchat groups: X-Wing (ML-KEM-768 + X25519),
	// AES-128-GCM, SHA-256, Ed25519.
	DefaultCipherSuite = suite.Default
)

// CipherSuites lists every cipher suite this package implements.
func CipherSuites() []CipherSuite { return suite.All() }

// Errors callers branch on.
var (
	// ErrNotForUs: a Welcome has no entry for our KeyPackage.
	ErrNotForUs = errors.New("mls: welcome is not addressed to this key package")
	// ErrAuth: a signature, MAC or AEAD tag did not verify. It is the one error for every
	// authentication failure.
	ErrAuth = errors.New("mls: authentication failed")
	// ErrUnknownPSK: a pre-shared key the message needs is not available.
	ErrUnknownPSK = errors.New("mls: unknown pre-shared key")
	// ErrNoTree: joining needs the ratchet tree, and neither the Welcome or GroupInfo
	// nor the caller gave it.
	ErrNoTree = errors.New("mls: the group info carries no ratchet tree and none was given")
)
