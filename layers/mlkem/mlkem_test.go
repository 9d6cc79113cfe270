package mlkem

import (
	"bytes"
	stdmlkem "crypto/mlkem"
	"fmt"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/layers"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// pair returns alice's and bob's layers, each knowing the other's key.
func pair(t testing.TB, opts *Options) (*Layer, *Layer, *PrivateKey) {
	t.Helper()
	ka, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kb, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	a, b := New(ka, opts), New(kb, opts)
	a.SetPeer([]byte("bob"), kb.Public())
	b.SetPeer([]byte("alice"), ka.Public())
	return a, b, kb
}

var (
	toBob   = &layers.Context{Group: []byte("g"), Sender: []byte("alice"), Recipients: [][]byte{[]byte("bob")}, AD: []byte("ad")}
	atBob   = &layers.Context{Group: []byte("g"), AD: []byte("ad")}
	otherAD = &layers.Context{Group: []byte("g"), AD: []byte("other")}
)

func open(l *Layer, c *layers.Context, msg []byte) ([]byte, error) {
	pt, commit, err := l.Open(c, msg)
	if err != nil {
		return nil, err
	}
	if err := commit(); err != nil {
		return nil, err
	}
	return pt, nil
}

func refuse(t *testing.T, l *Layer, c *layers.Context, msg []byte, what string) {
	t.Helper()
	before, _ := l.MarshalBinary()
	if pt, err := open(l, c, msg); err != layers.ErrAuth {
		t.Fatalf("%s: got (%q, %v), want ErrAuth", what, pt, err)
	}
	if after, _ := l.MarshalBinary(); !bytes.Equal(before, after) {
		t.Fatalf("%s: state changed", what)
	}
}

func TestRoundTrip(t *testing.T) {
	a, b, _ := pair(t, nil)
	for _, size := range []int{0, 1, 100, 1024, 64 << 10} {
		pt := bytes.Repeat([]byte{7}, size)
		msg, err := a.Seal(toBob, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg) != size+Overhead {
			t.Fatalf("sealed %d bytes, want %d", len(msg), size+Overhead)
		}
		got, err := open(b, atBob, msg)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("size %d: %v", size, err)
		}
	}
	if _, err := a.Seal(&layers.Context{Group: []byte("g"), Recipients: [][]byte{[]byte("bob"), []byte("carol")}}, nil); err == nil {
		t.Fatal("sealed to two recipients")
	}
	if _, err := a.Seal(&layers.Context{Group: []byte("g"), Recipients: [][]byte{[]byte("carol")}}, nil); err == nil {
		t.Fatal("sealed to an unknown recipient")
	}
}

func TestBadInput(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	a, b, kb := pair(t, &Options{Now: c.now})
	msg, _ := a.Seal(toBob, []byte("hi"))
	for bit := range 8 * len(msg) {
		bad := bytes.Clone(msg)
		bad[bit/8] ^= 1 << (bit % 8)
		refuse(t, b, atBob, bad, fmt.Sprintf("bit %d flipped", bit))
	}
	for n := range len(msg) {
		refuse(t, b, atBob, msg[:n], fmt.Sprintf("truncated to %d", n))
	}
	refuse(t, b, atBob, append(bytes.Clone(msg), 0), "extended")
	refuse(t, b, otherAD, msg, "wrong AD")
	other, _ := GenerateKey()
	refuse(t, New(other, nil), atBob, msg, "wrong key")
	// A rotated-away key: bob keeps a new one only.
	b2 := New(other, &Options{Now: c.now})
	b2.AddKey(kb)
	if _, err := open(b2, atBob, msg); err != nil {
		t.Fatalf("second key: %v", err)
	}
	b2.RemoveKey(kb.Public().KeyID())
	refuse(t, b2, atBob, msg, "removed key")

	if _, err := open(b, atBob, msg); err != nil {
		t.Fatal(err)
	}
	refuse(t, b, atBob, msg, "replay")
	c.t = c.t.Add(73 * time.Hour)
	msg2, _ := a.Seal(toBob, []byte("hi"))
	c.t = c.t.Add(73 * time.Hour)
	refuse(t, b, atBob, msg2, "too old")
}

func TestKeyEncoding(t *testing.T) {
	k, _ := GenerateKey()
	k2, err := NewPrivateKey(k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k2.Public().Bytes(), k.Public().Bytes()) || k2.Public().KeyID() != k.Public().KeyID() {
		t.Fatal("private key round trip")
	}
	p, err := ParsePublicKey(k.Public().Bytes())
	if err != nil || p.KeyID() != k.Public().KeyID() {
		t.Fatalf("public key round trip: %v", err)
	}
	for _, n := range []int{0, PublicKeySize - 1, PublicKeySize + 1} {
		if _, err := ParsePublicKey(make([]byte, n)); err == nil {
			t.Fatalf("%d-byte public key accepted", n)
		}
	}
	bad := k.Public().Bytes()
	for i := range bad {
		bad[i] = 0xFF // coefficients out of range
	}
	if _, err := ParsePublicKey(bad); err == nil {
		t.Fatal("unreduced public key accepted")
	}
	if _, err := NewPrivateKey(make([]byte, SeedSize-1)); err == nil {
		t.Fatal("short seed accepted")
	}
}

func FuzzOpen(f *testing.F) {
	a, b, _ := pair(f, nil)
	var valid [][]byte
	for _, pt := range []string{"", "hello"} {
		m, _ := a.Seal(toBob, []byte(pt))
		valid = append(valid, m)
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _, err := b.Open(atBob, msg)
		if err != nil {
			if err != layers.ErrAuth {
				t.Fatalf("error %v", err)
			}
			return
		}
		for _, v := range valid {
			if bytes.Equal(v, msg) {
				return
			}
		}
		t.Fatalf("a message never sealed opened: %x", msg)
	})
}

// BenchmarkSealOpen is the layer alone, seal plus open (target: at most
// 0.15 ms at 1 KiB).
func BenchmarkSealOpen(b *testing.B) {
	for _, size := range []int{100, 1024, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			x, y, _ := pair(b, nil)
			pt := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				msg, err := x.Seal(toBob, pt)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := open(y, atBob, msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(Overhead, "overhead-bytes")
		})
	}
}

// TestStandardLibraryAgrees checks that circl's ML-KEM-768 and crypto/mlkem
// are the same FIPS 203 scheme: one seed gives one public key, and each
// decapsulates what the other encapsulated.
func TestStandardLibraryAgrees(t *testing.T) {
	k, _ := GenerateKey()
	dk, err := stdmlkem.NewDecapsulationKey768(k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dk.EncapsulationKey().Bytes(), k.Public().Bytes()) {
		t.Fatal("public keys differ")
	}
	ss, ct := dk.EncapsulationKey().Encapsulate()
	var got [32]byte
	k.sk.DecapsulateTo(got[:], ct)
	if !bytes.Equal(ss, got[:]) {
		t.Fatal("circl decapsulated another secret")
	}
	ct2 := make([]byte, ctSize)
	k.pub.pk.EncapsulateTo(ct2, got[:], nil)
	ss2, err := dk.Decapsulate(ct2)
	if err != nil || !bytes.Equal(ss2, got[:]) {
		t.Fatal("crypto/mlkem decapsulated another secret")
	}
}
