package signal

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/subtle"
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

// A Bundle is a member's public prekeys (PQXDH, Section 3.2), signed with
// its Ed25519 identity key. It rides in the member's MLS LeafNode as the body
// of a layers.ExtensionSignalPrekeys extension, so the MLS tree
// authenticates it too. Encoding:
//
//	version          1 byte (1)
//	signing key      32 bytes, Ed25519
//	identity key     32 bytes, X25519 (IK)
//	prekey id        4 bytes
//	signed prekey    32 bytes, X25519 (SPK)
//	pq prekey id     4 bytes
//	pq prekey        1184 bytes, ML-KEM-768 encapsulation key (PQSPK)
//	signature        64 bytes, Ed25519 over "tchat signal bundle v1" ‖ all of the above
//	has one-time     1 byte, 0 or 1
//	[one-time id     4 bytes
//	 one-time prekey 32 bytes, X25519 (OPK), unsigned as in PQXDH]
type Bundle struct {
	signPub ed25519.PublicKey
	ik      *ecdh.PublicKey
	spkID   uint32
	spk     *ecdh.PublicKey
	pqID    uint32
	pq      *mlkem.EncapsulationKey768
	sig     [ed25519.SignatureSize]byte
	otkID   uint32          // 0: none
	otk     *ecdh.PublicKey // nil: none
}

const (
	bundleVersion = 1
	bundleLabel   = "tchat signal bundle v1"
	signedSize    = 1 + 32 + 32 + 4 + 32 + 4 + mlkem.EncapsulationKeySize768
	// BundleSize is the size of a bundle without a one-time prekey.
	BundleSize = signedSize + ed25519.SignatureSize + 1
)

var errBundle = errors.New("signal: malformed or badly signed prekey bundle")

func (b *Bundle) appendSigned(dst []byte) []byte {
	dst = append(dst, bundleLabel...)
	return b.appendBody(dst)
}

func (b *Bundle) appendBody(dst []byte) []byte {
	dst = append(dst, bundleVersion)
	dst = append(dst, b.signPub...)
	dst = append(dst, b.ik.Bytes()...)
	dst = appendUint32(dst, b.spkID)
	dst = append(dst, b.spk.Bytes()...)
	dst = appendUint32(dst, b.pqID)
	return append(dst, b.pq.Bytes()...)
}

func appendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// MarshalBinary encodes the bundle.
func (b *Bundle) MarshalBinary() ([]byte, error) {
	out := b.appendBody(make([]byte, 0, BundleSize+36))
	out = append(out, b.sig[:]...)
	if b.otk == nil {
		return append(out, 0), nil
	}
	out = append(out, 1)
	out = appendUint32(out, b.otkID)
	return append(out, b.otk.Bytes()...), nil
}

// ParseBundle decodes a bundle and verifies its signature.
func ParseBundle(data []byte) (*Bundle, error) {
	s := cryptobyte.String(data)
	var v, hasOTK uint8
	var signPub, ik, spk, pq, sig []byte
	b := new(Bundle)
	if !s.ReadUint8(&v) || v != bundleVersion ||
		!s.ReadBytes(&signPub, ed25519.PublicKeySize) || !s.ReadBytes(&ik, 32) ||
		!s.ReadUint32(&b.spkID) || !s.ReadBytes(&spk, 32) ||
		!s.ReadUint32(&b.pqID) || !s.ReadBytes(&pq, mlkem.EncapsulationKeySize768) ||
		!s.ReadBytes(&sig, ed25519.SignatureSize) || !s.ReadUint8(&hasOTK) ||
		b.spkID == 0 || b.pqID == 0 {
		return nil, errBundle
	}
	if !ed25519.Verify(ed25519.PublicKey(signPub), append([]byte(bundleLabel), data[:signedSize]...), sig) {
		return nil, errBundle
	}
	var err error
	b.signPub = ed25519.PublicKey(append([]byte(nil), signPub...))
	copy(b.sig[:], sig)
	if b.ik, err = ecdh.X25519().NewPublicKey(ik); err != nil {
		return nil, errBundle
	}
	if b.spk, err = ecdh.X25519().NewPublicKey(spk); err != nil {
		return nil, errBundle
	}
	if b.pq, err = mlkem.NewEncapsulationKey768(pq); err != nil {
		return nil, errBundle
	}
	switch hasOTK {
	case 0:
	case 1:
		var otk []byte
		if !s.ReadUint32(&b.otkID) || b.otkID == 0 || !s.ReadBytes(&otk, 32) {
			return nil, errBundle
		}
		if b.otk, err = ecdh.X25519().NewPublicKey(otk); err != nil {
			return nil, errBundle
		}
	default:
		return nil, errBundle
	}
	if !s.Empty() {
		return nil, errBundle
	}
	return b, nil
}

// SigningKey returns the Ed25519 identity key that signed the bundle.
func (b *Bundle) SigningKey() ed25519.PublicKey { return append(ed25519.PublicKey(nil), b.signPub...) }

// IdentityKey returns the X25519 identity key.
func (b *Bundle) IdentityKey() []byte { return b.ik.Bytes() }

// HasOneTimePrekey reports whether the bundle carries a one-time prekey.
func (b *Bundle) HasOneTimePrekey() bool { return b.otk != nil }

// sameIdentity reports whether two bundles belong to the same identity
// (both the signing and the DH identity key).
func sameIdentity(a, b *Bundle) bool {
	return subtle.ConstantTimeCompare(a.signPub, b.signPub) == 1 &&
		subtle.ConstantTimeCompare(a.ik.Bytes(), b.ik.Bytes()) == 1
}
