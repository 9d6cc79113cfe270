package identity

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
)

// Parameters of the safety number construction; see [SafetyNumber].
const (
	safetyVersion    = 0
	safetyIterations = 5200
)

// SafetyNumberDigits is the number of digits in a safety number.
const SafetyNumberDigits = 60

// SafetyNumber returns the safety number of two identities: 60 digits in 12
// space-separated groups of five. It is symmetric: SafetyNumber(a, b) ==
// SafetyNumber(b, a). Two users who read the same number to each other (in person,
// or over a channel they trust) know that each holds the other's real key.
//
// The construction is the one Signal describes for its safety numbers
// (libsignal's numeric fingerprint, hash version 0, 5200 iterations):
//
//   - Each identity has a 30-digit fingerprint. Start from
//     h = version || public key || stable identifier, with the version as two
//     big-endian bytes (0), then 5200 times h = SHA-512(h || public key). Take the
//     first 30 bytes of h as six 5-byte chunks; each chunk, read as a big-endian
//     integer modulo 100000, gives five decimal digits (with leading zeros).
//   - The safety number is the two fingerprints concatenated, the lower one
//     first, so both sides see the same 60 digits.
//
// In tchat the public key is the raw 32-byte Ed25519 identity key and the stable
// identifier is the binary libp2p peer id derived from it (a multihash); Signal
// uses its 33-byte Curve25519 key encoding and the user's account identifier.
func SafetyNumber(a, b PublicKey) string {
	return group(safetyDigits(a, b), 5)
}

// SafetyNumberMatches reports whether typed, with spaces and other non-digit
// separators removed, is the safety number of a and b. It compares in constant time.
func SafetyNumberMatches(a, b PublicKey, typed string) bool {
	var d strings.Builder
	for _, r := range typed {
		switch {
		case r >= '0' && r <= '9':
			d.WriteRune(r)
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '-':
		default:
			return false
		}
	}
	return subtle.ConstantTimeCompare([]byte(d.String()), []byte(safetyDigits(a, b))) == 1
}

func safetyDigits(a, b PublicKey) string {
	fa := identityFingerprint(a)
	fb := identityFingerprint(b)
	if fa <= fb {
		return fa + fb
	}
	return fb + fa
}

// identityFingerprint is the 30-digit fingerprint of one identity.
func identityFingerprint(p PublicKey) string {
	id, err := p.PeerID()
	if err != nil {
		// An Ed25519 public key always has a peer id.
		panic(err)
	}
	return numericFingerprint(safetyVersion, p[:], []byte(id), safetyIterations)
}

// numericFingerprint computes the iterated hash described above and encodes its
// first 30 bytes as 30 digits.
func numericFingerprint(version uint16, key, stableID []byte, iterations int) string {
	// The first round hashes version || key || stable id || key; each later round
	// hashes the previous digest || key.
	sum := binary.BigEndian.AppendUint16(nil, version)
	sum = append(sum, key...)
	sum = append(sum, stableID...)
	h := sha512.New()
	for range iterations {
		h.Reset()
		h.Write(sum)
		h.Write(key)
		sum = h.Sum(sum[:0])
	}
	var b strings.Builder
	for i := 0; i < 30; i += 5 {
		var chunk uint64
		for _, c := range sum[i : i+5] {
			chunk = chunk<<8 | uint64(c)
		}
		fmt.Fprintf(&b, "%05d", chunk%100000)
	}
	return b.String()
}
