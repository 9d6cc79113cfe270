package suite

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

// TestEverySuiteRoundTrips exercises each suite's KEM, AEAD and signature scheme, including
// the post-quantum ones that no IETF vector covers yet.
func TestEverySuiteRoundTrips(t *testing.T) {
	for _, id := range All() {
		s, err := Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(s.String(), func(t *testing.T) {
			priv, err := s.GenerateHPKEKey()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.ValidateHPKEPublicKey(priv.PublicKey()); err != nil {
				t.Fatal(err)
			}
			raw, err := priv.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			again, err := s.ParseHPKEPrivateKey(raw)
			if err != nil || !bytes.Equal(again.PublicKey(), priv.PublicKey()) {
				t.Fatalf("private key did not round-trip: %v", err)
			}

			msg := []byte("hello, group")
			kemOut, ct, err := s.EncryptWithLabel(priv.PublicKey(), "UpdatePathNode", []byte("ctx"), msg)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := s.DecryptWithLabel(priv, "UpdatePathNode", []byte("ctx"), kemOut, ct)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Fatalf("decrypt: %v", err)
			}
			if _, err := s.DecryptWithLabel(priv, "Welcome", []byte("ctx"), kemOut, ct); !errors.Is(err, ErrDecrypt) {
				t.Errorf("other label: %v", err)
			}
			if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", []byte("other"), kemOut, ct); !errors.Is(err, ErrDecrypt) {
				t.Errorf("other context: %v", err)
			}
			ct[0] ^= 1
			if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", []byte("ctx"), kemOut, ct); !errors.Is(err, ErrDecrypt) {
				t.Errorf("flipped bit: %v", err)
			}
			if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", []byte("ctx"), kemOut[:len(kemOut)-1], ct); !errors.Is(err, ErrDecrypt) {
				t.Errorf("short kem output: %v", err)
			}

			// DeriveKeyPair is deterministic and gives a usable key.
			ikm := bytes.Repeat([]byte{7}, s.Nh())
			k1, err := s.DeriveKeyPair(ikm)
			if err != nil {
				t.Fatal(err)
			}
			k2, _ := s.DeriveKeyPair(ikm)
			if !bytes.Equal(k1.PublicKey(), k2.PublicKey()) {
				t.Error("DeriveKeyPair is not deterministic")
			}

			// Exporter for external init.
			enc, secret, err := s.ExportSender(k1.PublicKey(), nil, "MLS 1.0 external init secret", s.Nh())
			if err != nil {
				t.Fatal(err)
			}
			secret2, err := s.ExportReceiver(k1, enc, nil, "MLS 1.0 external init secret", s.Nh())
			if err != nil || !bytes.Equal(secret, secret2) {
				t.Errorf("exported secrets differ: %v", err)
			}

			sk, err := s.GenerateSigningKey()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.ValidateSignaturePublicKey(sk.PublicKey()); err != nil {
				t.Fatal(err)
			}
			sig, err := s.SignWithLabel(sk, "FramedContentTBS", msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(sk.PublicKey(), "FramedContentTBS", msg, sig); err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(sk.PublicKey(), "LeafNodeTBS", msg, sig); !errors.Is(err, ErrSignature) {
				t.Errorf("other label verified: %v", err)
			}
			if err := s.VerifyWithLabel(sk.PublicKey()[1:], "FramedContentTBS", msg, sig); !errors.Is(err, ErrSignature) {
				t.Errorf("truncated public key: %v", err)
			}
			sk2, err := s.ParseSigningKey(sk.Bytes())
			if err != nil || !bytes.Equal(sk2.PublicKey(), sk.PublicKey()) {
				t.Errorf("signing key did not round-trip: %v", err)
			}

			aead, err := s.NewAEAD(make([]byte, s.KeySize()))
			if err != nil {
				t.Fatal(err)
			}
			if aead.NonceSize() != s.NonceSize() {
				t.Errorf("nonce size %d, want %d", aead.NonceSize(), s.NonceSize())
			}
			if _, err := s.NewAEAD(make([]byte, s.KeySize()+1)); err == nil {
				t.Error("wrong key size accepted")
			}
		})
	}
}

func TestLookupUnknown(t *testing.T) {
	for _, id := range []ID{0, 8, 0xF000, 0xF00C, 0xFFFF} {
		if _, err := Lookup(id); !errors.Is(err, ErrUnsupported) {
			t.Errorf("0x%04x: %v", uint16(id), err)
		}
	}
}

func TestDefaultSuite(t *testing.T) {
	s, err := Lookup(Default)
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519" || s.Nh() != 32 || s.KeySize() != 16 {
		t.Errorf("default suite is %v (Nh %d, Nk %d)", s, s.Nh(), s.KeySize())
	}
}

func TestExpandLimits(t *testing.T) {
	s, _ := Lookup(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if _, err := s.ExpandWithLabel(make([]byte, 32), "x", nil, 255*32+1); err == nil {
		t.Error("expansion past 255*Nh accepted")
	}
	if _, err := s.ExpandWithLabel(make([]byte, 32), "x", nil, -1); err == nil {
		t.Error("negative length accepted")
	}
}

func BenchmarkSignVerify(b *testing.B) {
	for _, id := range []ID{MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, Default} {
		s, _ := Lookup(id)
		sk, _ := s.GenerateSigningKey()
		msg := make([]byte, 200)
		b.Run(s.String(), func(b *testing.B) {
			for b.Loop() {
				sig, _ := s.SignWithLabel(sk, "FramedContentTBS", msg)
				if s.VerifyWithLabel(sk.PublicKey(), "FramedContentTBS", msg, sig) != nil {
					b.Fatal("verify")
				}
			}
		})
	}
}

// TestEd25519AgreesWithStdlib: the Ed25519 signatures made with circl are the standard
// library's, and each side verifies the other's (and refuses a modified one).
func TestEd25519AgreesWithStdlib(t *testing.T) {
	s, _ := Lookup(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	for i := range 20 {
		seed := bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize)
		key, err := s.ParseSigningKey(seed)
		if err != nil {
			t.Fatal(err)
		}
		msg := bytes.Repeat([]byte{byte(i)}, i*7)
		sig, err := s.SignWithLabel(key, "L", msg)
		if err != nil {
			t.Fatal(err)
		}
		want := ed25519.Sign(ed25519.NewKeyFromSeed(seed), signContent("L", msg))
		if !bytes.Equal(sig, want) {
			t.Fatalf("signature %d differs from crypto/ed25519's", i)
		}
		if !ed25519.Verify(key.PublicKey(), signContent("L", msg), sig) {
			t.Fatal("crypto/ed25519 refuses our signature")
		}
		sig[i%len(sig)] ^= 1
		if s.VerifyWithLabel(key.PublicKey(), "L", msg, sig) == nil {
			t.Fatal("modified signature verified")
		}
	}
}

func BenchmarkExpandWithLabel(b *testing.B) {
	s, _ := Lookup(Default)
	secret := make([]byte, s.Nh())
	ctx := []byte{0, 0, 0, 7}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ExpandWithLabel(secret, "key", ctx, 32); err != nil {
			b.Fatal(err)
		}
	}
}
