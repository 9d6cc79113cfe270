package hkdf256

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 4231, Section 4: test cases 1, 2, 6 and 7 (case 5 truncates; 3 and 4 add nothing
// a differential run does not).
func TestHMACVectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
		data string
		want string
	}{
		{"case 1", bytes.Repeat([]byte{0x0b}, 20), "Hi There",
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"case 2", []byte("Jefe"), "what do ya want for nothing?",
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"case 6 (key longer than a block)", bytes.Repeat([]byte{0xaa}, 131),
			"Test Using Larger Than Block-Size Key - Hash Key First",
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{"case 7 (key and data longer than a block)", bytes.Repeat([]byte{0xaa}, 131),
			"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	} {
		got := HMAC(tc.key, []byte(tc.data))
		if hex.EncodeToString(got[:]) != tc.want {
			t.Errorf("%s: HMAC = %x, want %s", tc.name, got, tc.want)
		}
		// The message in pieces is the message.
		d := []byte(tc.data)
		got = HMAC(tc.key, d[:3], nil, d[3:])
		if hex.EncodeToString(got[:]) != tc.want {
			t.Errorf("%s, in pieces: HMAC = %x, want %s", tc.name, got, tc.want)
		}
	}
}

// RFC 5869, Appendix A.1 and A.3 (A.3: no salt, no info).
func TestHKDFVectors(t *testing.T) {
	for _, tc := range []struct {
		name            string
		ikm, salt, info string
		n               int
		prk, okm        string
	}{
		{"A.1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9", 42,
			"077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
			"3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
		{"A.3", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42,
			"19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
			"8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
	} {
		ikm, salt, info := unhex(t, tc.ikm), unhex(t, tc.salt), unhex(t, tc.info)
		prk := Extract(salt, ikm)
		if hex.EncodeToString(prk[:]) != tc.prk {
			t.Errorf("%s: PRK = %x, want %s", tc.name, prk, tc.prk)
		}
		if okm := Expand(nil, prk[:], info, tc.n); hex.EncodeToString(okm) != tc.okm {
			t.Errorf("%s: Expand = %x, want %s", tc.name, okm, tc.okm)
		}
		// Key appends: what dst held stays in front.
		okm := Key([]byte("head"), ikm, salt, info, tc.n)
		if string(okm[:4]) != "head" || hex.EncodeToString(okm[4:]) != tc.okm {
			t.Errorf("%s: Key = %x, want head then %s", tc.name, okm, tc.okm)
		}
	}
}

func TestExpandLengths(t *testing.T) {
	prk := bytes.Repeat([]byte{7}, Size)
	for _, n := range []int{0, 1, 31, 32, 33, 64, 65, MaxLength} {
		want, err := hkdf.Expand(sha256.New, prk, "info", n)
		if err != nil {
			t.Fatal(err)
		}
		if got := Expand(nil, prk, []byte("info"), n); !bytes.Equal(got, want) {
			t.Errorf("Expand to %d bytes differs from crypto/hkdf", n)
		}
	}
	for _, n := range []int{-1, MaxLength + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Expand to %d bytes did not panic", n)
				}
			}()
			Expand(nil, prk, "", n)
		}()
	}
}

// The point of the package: a derivation of a message key allocates nothing but what the
// caller asks for.
func TestNoAllocations(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, Size)
	info := []byte("MLS 1.0 application, with a context of some length")
	var out [Size + 12]byte
	allocs := testing.AllocsPerRun(100, func() {
		Key(out[:0], secret, nil, info, len(out))
		Key(out[:0], secret, nil, "a label given as a string", len(out))
		Expand(out[:0], secret, info, Size)
		HMAC(secret, []byte{1})
	})
	if allocs != 0 {
		t.Errorf("a derivation allocates %v times, want 0", allocs)
	}
}

func FuzzAgainstStdlib(f *testing.F) {
	f.Add([]byte("Jefe"), []byte{}, []byte("what do ya want for nothing?"), uint16(42))
	f.Add(bytes.Repeat([]byte{0xaa}, 131), []byte("salt"), bytes.Repeat([]byte{1}, 300), uint16(100))
	f.Add([]byte{}, []byte(nil), []byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, secret, salt, info []byte, n uint16) {
		m := hmac.New(sha256.New, secret)
		m.Write(info)
		got := HMAC(secret, info)
		if !bytes.Equal(got[:], m.Sum(nil)) {
			t.Fatalf("HMAC differs from crypto/hmac")
		}
		l := int(n) % (MaxLength + 1)
		want, err := hkdf.Key(sha256.New, secret, salt, string(info), l)
		if err != nil {
			t.Fatal(err)
		}
		if got := Key(nil, secret, salt, string(info), l); !bytes.Equal(got, want) {
			t.Fatalf("Key differs from crypto/hkdf")
		}
	})
}

func BenchmarkKey44(b *testing.B) {
	secret := bytes.Repeat([]byte{1}, Size)
	var out [44]byte
	b.ReportAllocs()
	for b.Loop() {
		Key(out[:0], secret, nil, "tchat aes layer", len(out))
	}
}

func BenchmarkStdlibKey44(b *testing.B) {
	secret := bytes.Repeat([]byte{1}, Size)
	b.ReportAllocs()
	for b.Loop() {
		hkdf.Key(sha256.New, secret, nil, "tchat aes layer", 44)
	}
}
