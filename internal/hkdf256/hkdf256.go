// Package hkdf256 is HMAC-SHA256 (RFC 2104) and HKDF-SHA256 (RFC 5869) without heap
// allocation for the short inputs of a key schedule.
//
// The layers derive several keys for every message opened: the MLS secret tree's key,
// nonce and next secret, the Signal chain step and message key, the AES layer's
// per-message key. crypto/hmac and crypto/hkdf allocate two hash states, the HMAC and
// its saved pads for each of them, about 700 bytes a derivation; in a 50-member group a
// fifth of everything a member allocates. Here the padded key and the message are laid
// out in one buffer on the stack and hashed with sha256.Sum256, which does not allocate.
// The results are the same bytes (tested against crypto/hmac and crypto/hkdf, and with
// the RFCs' vectors); only where they are built differs.
package hkdf256

import (
	"crypto/sha256"
)

// Size is the length of an HMAC-SHA256 tag and of a PRK.
const Size = sha256.Size

// MaxLength is the longest output of Expand (RFC 5869, Section 2.3: 255 blocks).
const MaxLength = 255 * Size

const blockSize = 64

// inlineMsg is how much message HMAC hashes from its stack buffer; a longer one is copied
// to the heap (the result is the same).
const inlineMsg = 192

// HMAC returns HMAC-SHA256 of the concatenation of msg under key.
func HMAC(key []byte, msg ...[]byte) [Size]byte {
	k := padKey(key)
	var buf [blockSize + inlineMsg]byte
	in := buf[:blockSize]
	for _, m := range msg {
		in = append(in, m...)
	}
	sum := mac(&k, in)
	// The message may be a secret (Extract's input key material): cleared, in the
	// stack buffer and in the copy a long one spilled to.
	clear(in)
	clear(buf[:])
	clear(k[:])
	return sum
}

// padKey returns key as HMAC uses it: zero-padded to a block, or its hash if longer.
func padKey(key []byte) (k [blockSize]byte) {
	if len(key) > blockSize {
		h := sha256.Sum256(key)
		copy(k[:], h[:])
		clear(h[:])
	} else {
		copy(k[:], key)
	}
	return k
}

// mac returns HMAC-SHA256 under the padded key k of in[blockSize:]; in[:blockSize] is
// room for the inner pad, cleared again after.
func mac(k *[blockSize]byte, in []byte) [Size]byte {
	for i, c := range k {
		in[i] = c ^ 0x36
	}
	inner := sha256.Sum256(in)
	clear(in[:blockSize])
	var outer [blockSize + Size]byte
	for i, c := range k {
		outer[i] = c ^ 0x5c
	}
	copy(outer[blockSize:], inner[:])
	sum := sha256.Sum256(outer[:])
	clear(outer[:])
	return sum
}

// Extract is HKDF-Extract (RFC 5869, Section 2.2): HMAC(salt, ikm), with an absent salt
// read as Size zero bytes (the same key to HMAC as an empty one).
func Extract(salt, ikm []byte) [Size]byte {
	return HMAC(salt, ikm)
}

// Expand appends HKDF-Expand(prk, info, n) (RFC 5869, Section 2.3) to dst and returns the
// extended slice. n is fixed by the caller's key sizes, never by input: over MaxLength,
// or negative, it panics.
func Expand[S ~string | ~[]byte](dst, prk []byte, info S, n int) []byte {
	if n < 0 || n > MaxLength {
		panic("hkdf256: output length out of range")
	}
	k := padKey(prk)
	var buf [blockSize + inlineMsg]byte
	var t [Size]byte
	for i := 1; n > 0; i++ {
		// T(i) = HMAC(PRK, T(i-1) | info | i), T(0) empty.
		in := buf[:blockSize]
		if i > 1 {
			in = append(in, t[:]...)
		}
		in = append(append(in, info...), byte(i))
		t = mac(&k, in)
		clear(in) // T(i-1) is output; a long info spills it off the stack
		take := min(n, Size)
		dst = append(dst, t[:take]...)
		n -= take
	}
	clear(k[:])
	clear(t[:])
	clear(buf[:])
	return dst
}

// Key appends HKDF(secret, salt, info, n) to dst: Expand(Extract(salt, secret), info, n).
func Key[S ~string | ~[]byte](dst, secret, salt []byte, info S, n int) []byte {
	prk := Extract(salt, secret)
	dst = Expand(dst, prk[:], info, n)
	clear(prk[:])
	return dst
}
