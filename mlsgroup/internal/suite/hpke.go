package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha3"
	"fmt"

	circlhpke "github.com/cloudflare/circl/hpke"
	circlkem "github.com/cloudflare/circl/kem"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// HPKEPrivateKey is an HPKE decryption key of one suite's KEM. It must be kept secret.
type HPKEPrivateKey struct {
	suite *Suite
	std   hpke.PrivateKey     // every KEM but X448
	x448  circlkem.PrivateKey // X448
}

// Bytes returns SerializePrivateKey of the key (RFC 9180, Section 7.1.2).
func (k *HPKEPrivateKey) Bytes() ([]byte, error) {
	if k.x448 != nil {
		return k.x448.MarshalBinary()
	}
	return k.std.Bytes()
}

// PublicKey returns SerializePublicKey of the matching public key.
func (k *HPKEPrivateKey) PublicKey() []byte {
	if k.x448 != nil {
		pub, err := k.x448.Public().MarshalBinary()
		if err != nil {
			panic("mls: internal error: " + err.Error())
		}
		return pub
	}
	return k.std.PublicKey().Bytes()
}

// kemImpl hides whether a KEM comes from crypto/hpke or from circl.
type kemImpl struct {
	id  uint16
	std hpke.KEM // nil for X448
}

func newKEM(id uint16) (kemImpl, error) {
	if id == kemX448 {
		return kemImpl{id: id}, nil
	}
	k, err := hpke.NewKEM(id)
	if err != nil {
		return kemImpl{}, err
	}
	return kemImpl{id: id, std: k}, nil
}

func (s *Suite) circlSuite() circlhpke.Suite {
	return circlhpke.NewSuite(circlhpke.KEM_X448_HKDF_SHA512, circlhpke.KDF(s.kdf.ID()), circlhpke.AEAD(s.aead.ID()))
}

// GenerateHPKEKey returns a fresh random HPKE key pair.
func (s *Suite) GenerateHPKEKey() (*HPKEPrivateKey, error) {
	if s.kem.std == nil {
		_, sk, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().GenerateKeyPair()
		if err != nil {
			return nil, err
		}
		return &HPKEPrivateKey{suite: s, x448: sk}, nil
	}
	sk, err := s.kem.std.GenerateKey()
	if err != nil {
		return nil, err
	}
	return &HPKEPrivateKey{suite: s, std: sk}, nil
}

// DeriveKeyPair is the KEM's DeriveKeyPair(ikm) (RFC 9180, Section 7.1.3; draft-ietf-hpke-pq
// for the ML-KEM based KEMs).
func (s *Suite) DeriveKeyPair(ikm []byte) (*HPKEPrivateKey, error) {
	if s.kem.std == nil {
		// circl's DeriveKeyPair insists on an input of exactly the seed size, but MLS
		// derives node keys from Nh-byte secrets, so the RFC 9180 procedure is done
		// here: dkp_prk = LabeledExtract("", "dkp_prk", ikm);
		// sk = LabeledExpand(dkp_prk, "sk", "", Nsk).
		suiteID := []byte{'K', 'E', 'M', byte(kemX448 >> 8), byte(kemX448 & 0xff)}
		prk := s.Extract(nil, concat([]byte("HPKE-v1"), suiteID, []byte("dkp_prk"), ikm))
		const nsk = 56
		info := concat([]byte{0, nsk}, []byte("HPKE-v1"), suiteID, []byte("sk"))
		sk, err := s.Expand(prk, info, nsk)
		if err != nil {
			return nil, err
		}
		return s.ParseHPKEPrivateKey(sk)
	}
	if s.id == MLS_256_XWING_AES256GCM_SHA512_Ed25519 {
		// ts-mls's suite 0x0053 derives X-Wing keys as draft-connolly-cfrg-xwing-kem
		// did, seed = SHAKE256(ikm, 32), not with draft-ietf-hpke-pq's LabeledDerive
		// that crypto/hpke implements (and that our 0xF0xx suites use). Interoperating
		// with ts-mls requires its derivation for this suite.
		return s.ParseHPKEPrivateKey(sha3.SumSHAKE256(ikm, 32))
	}
	sk, err := s.kem.std.DeriveKeyPair(ikm)
	if err != nil {
		return nil, err
	}
	return &HPKEPrivateKey{suite: s, std: sk}, nil
}

// ParseHPKEPrivateKey is DeserializePrivateKey.
func (s *Suite) ParseHPKEPrivateKey(b []byte) (*HPKEPrivateKey, error) {
	if s.kem.std == nil {
		sk, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().UnmarshalBinaryPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("mls: invalid HPKE private key: %w", err)
		}
		return &HPKEPrivateKey{suite: s, x448: sk}, nil
	}
	// A NIST-curve private key is a fixed-width big-endian scalar (RFC 9180, Section
	// 7.1.2); some encoders drop its leading zero octets (a 65-byte P-521 key in the IETF
	// passive-client vectors), so restore the width first.
	if n := nistScalarSize(s.kem.id); len(b) < n && len(b) > 0 {
		b = append(make([]byte, n-len(b)), b...)
	}
	sk, err := s.kem.std.NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("mls: invalid HPKE private key: %w", err)
	}
	return &HPKEPrivateKey{suite: s, std: sk}, nil
}

// nistScalarSize is Nsk of the DHKEMs over NIST curves, 0 for other KEMs.
func nistScalarSize(kem uint16) int {
	switch kem {
	case kemP256:
		return 32
	case kemP384:
		return 48
	case kemP521:
		return 66
	}
	return 0
}

// ValidateHPKEPublicKey checks that pub is a well-formed public key of the suite's KEM.
func (s *Suite) ValidateHPKEPublicKey(pub []byte) error {
	if s.kem.std == nil {
		_, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().UnmarshalBinaryPublicKey(pub)
		if err != nil {
			return fmt.Errorf("mls: invalid HPKE public key: %w", err)
		}
		return nil
	}
	if _, err := s.kem.std.NewPublicKey(pub); err != nil {
		return fmt.Errorf("mls: invalid HPKE public key: %w", err)
	}
	return nil
}

// sealer and opener are the two ends of an HPKE base-mode context.
type sealer interface {
	Seal(aad, plaintext []byte) ([]byte, error)
	Export(exporterContext string, length int) ([]byte, error)
}

type opener interface {
	Open(aad, ciphertext []byte) ([]byte, error)
	Export(exporterContext string, length int) ([]byte, error)
}

type circlSealer struct{ circlhpke.Sealer }

func (c circlSealer) Seal(aad, pt []byte) ([]byte, error) { return c.Sealer.Seal(pt, aad) }
func (c circlSealer) Export(ctx string, n int) ([]byte, error) {
	return c.Sealer.Export([]byte(ctx), uint(n)), nil
}

type circlOpener struct{ circlhpke.Opener }

func (c circlOpener) Open(aad, ct []byte) ([]byte, error) { return c.Opener.Open(ct, aad) }
func (c circlOpener) Export(ctx string, n int) ([]byte, error) {
	return c.Opener.Export([]byte(ctx), uint(n)), nil
}

// setupBaseS is SetupBaseS(pkR, info) (RFC 9180, Section 5.1.1).
func (s *Suite) setupBaseS(pub, info []byte) (enc []byte, ctx sealer, err error) {
	if s.kem.std == nil {
		pk, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().UnmarshalBinaryPublicKey(pub)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: invalid HPKE public key: %w", err)
		}
		snd, err := s.circlSuite().NewSender(pk, info)
		if err != nil {
			return nil, nil, err
		}
		enc, sl, err := snd.Setup(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		return enc, circlSealer{sl}, nil
	}
	pk, err := s.kem.std.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: invalid HPKE public key: %w", err)
	}
	enc, snd, err := hpke.NewSender(pk, s.kdf, s.aead, info)
	if err != nil {
		return nil, nil, err
	}
	return enc, snd, nil
}

// setupBaseR is SetupBaseR(enc, skR, info). Every failure is ErrDecrypt.
func (s *Suite) setupBaseR(priv *HPKEPrivateKey, enc, info []byte) (opener, error) {
	if priv.suite != s {
		return nil, fmt.Errorf("mls: HPKE key of suite %v used with suite %v", priv.suite.id, s.id)
	}
	if priv.x448 != nil {
		rcv, err := s.circlSuite().NewReceiver(priv.x448, info)
		if err != nil {
			return nil, ErrDecrypt
		}
		op, err := rcv.Setup(enc)
		if err != nil {
			return nil, ErrDecrypt
		}
		return circlOpener{op}, nil
	}
	rcv, err := hpke.NewRecipient(enc, priv.std, s.kdf, s.aead, info)
	if err != nil {
		return nil, ErrDecrypt
	}
	return rcv, nil
}

// encryptContext is EncryptContext (RFC 9420, Section 5.1.3).
func encryptContext(label string, context []byte) []byte {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, []byte(labelPrefix+label))
	codec.AddOpaque(&b, context)
	return b.BytesOrPanic()
}

// EncryptWithLabel is RFC 9420, Section 5.1.3:
// SealBase(PublicKey, EncryptContext, "", Plaintext).
func (s *Suite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	enc, ctx, err := s.setupBaseS(pub, encryptContext(label, context))
	if err != nil {
		return nil, nil, err
	}
	ct, err := ctx.Seal(nil, plaintext)
	if err != nil {
		return nil, nil, err
	}
	return enc, ct, nil
}

// DecryptWithLabel is RFC 9420, Section 5.1.3:
// OpenBase(KEMOutput, PrivateKey, EncryptContext, "", Ciphertext).
func (s *Suite) DecryptWithLabel(priv *HPKEPrivateKey, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	ctx, err := s.setupBaseR(priv, kemOutput, encryptContext(label, context))
	if err != nil {
		return nil, err
	}
	pt, err := ctx.Open(nil, ciphertext)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// ExportSender runs SetupBaseS(pub, info) and exports length bytes under exporterContext,
// as an external joiner does with the group's external_pub (RFC 9420, Section 8.3).
func (s *Suite) ExportSender(pub, info []byte, exporterContext string, length int) (kemOutput, secret []byte, err error) {
	enc, ctx, err := s.setupBaseS(pub, info)
	if err != nil {
		return nil, nil, err
	}
	secret, err = ctx.Export(exporterContext, length)
	return enc, secret, err
}

// ExportReceiver is the receiving end of ExportSender.
func (s *Suite) ExportReceiver(priv *HPKEPrivateKey, kemOutput, info []byte, exporterContext string, length int) ([]byte, error) {
	ctx, err := s.setupBaseR(priv, kemOutput, info)
	if err != nil {
		return nil, err
	}
	return ctx.Export(exporterContext, length)
}

func newAEAD(id uint16, key []byte) (cipher.AEAD, error) {
	switch id {
	case aeadAES128GCM, aeadAES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	case aeadChaCha20:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("mls: unknown AEAD 0x%04x", id)
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Compile-time checks that the standard library contexts fit our interfaces.
var (
	_ sealer = (*hpke.Sender)(nil)
	_ opener = (*hpke.Recipient)(nil)
)
