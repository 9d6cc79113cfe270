package aes

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/layers"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newPair(t testing.TB) (*Layer, *Layer, *clock) {
	t.Helper()
	c := &clock{time.Unix(1_800_000_000, 0)}
	k := GenerateKey()
	return New(k, &Options{Now: c.now}), New(k, &Options{Now: c.now}), c
}

var ctx = &layers.Context{Group: []byte("group"), AD: []byte("header and group")}

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

func state(t testing.TB, l *Layer) []byte {
	t.Helper()
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func refuse(t *testing.T, l *Layer, c *layers.Context, msg []byte, what string) {
	t.Helper()
	before := state(t, l)
	if pt, err := open(l, c, msg); err != layers.ErrAuth {
		t.Fatalf("%s: got (%q, %v), want ErrAuth", what, pt, err)
	}
	if !bytes.Equal(before, state(t, l)) {
		t.Fatalf("%s: state changed", what)
	}
}

func TestRoundTrip(t *testing.T) {
	a, b, _ := newPair(t)
	for _, size := range []int{0, 1, 15, 16, 17, 100, 1024, 64 << 10, 1 << 20} {
		pt := bytes.Repeat([]byte{byte(size)}, size)
		msg, err := a.Seal(ctx, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg) != size+Overhead {
			t.Fatalf("size %d: sealed %d bytes, want %d", size, len(msg), size+Overhead)
		}
		got, err := open(b, ctx, msg)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("size %d: %v", size, err)
		}
	}
	if _, err := a.Seal(ctx, make([]byte, layers.MaxMessage+1)); err == nil {
		t.Fatal("sealed more than MaxMessage")
	}
}

func TestBadInput(t *testing.T) {
	a, b, c := newPair(t)
	pt := []byte("hello, room")
	msg, _ := a.Seal(ctx, pt)
	for bit := range 8 * len(msg) {
		bad := bytes.Clone(msg)
		bad[bit/8] ^= 1 << (bit % 8)
		refuse(t, b, ctx, bad, fmt.Sprintf("bit %d flipped", bit))
	}
	for n := range len(msg) {
		refuse(t, b, ctx, msg[:n], fmt.Sprintf("truncated to %d", n))
	}
	refuse(t, b, ctx, append(bytes.Clone(msg), 0), "extended")
	refuse(t, b, &layers.Context{Group: []byte("group"), AD: []byte("other group")}, msg, "wrong AD")
	refuse(t, New(GenerateKey(), &Options{Now: c.now}), ctx, msg, "wrong key")
	if _, err := open(b, ctx, msg); err != nil {
		t.Fatal(err)
	}
	refuse(t, b, ctx, msg, "replay")
}

func TestReplayWindow(t *testing.T) {
	a, b, c := newPair(t)
	msg, _ := a.Seal(ctx, []byte("x"))
	// Too old.
	c.t = c.t.Add(73 * time.Hour)
	refuse(t, b, ctx, msg, "72 h old")
	// From the future, beyond the skew.
	c.t = c.t.Add(-73*time.Hour - 16*time.Minute)
	refuse(t, b, ctx, msg, "16 min ahead")
	c.t = c.t.Add(2 * time.Minute)
	if _, err := open(b, ctx, msg); err != nil {
		t.Fatalf("14 min ahead: %v", err)
	}
}

func TestReplayAcrossRestart(t *testing.T) {
	a, b, c := newPair(t)
	old, _ := a.Seal(ctx, []byte("old"))
	seen, _ := a.Seal(ctx, []byte("seen"))
	if _, err := open(b, ctx, seen); err != nil {
		t.Fatal(err)
	}
	saved := state(t, b)
	c.t = c.t.Add(time.Hour)
	// Restarted with the saved state: the seen message stays refused, the
	// one never seen still opens.
	b2 := New(b.key.copy(), &Options{Now: c.now})
	if err := b2.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	refuse(t, b2, ctx, seen, "replay after restart")
	if _, err := open(b2, ctx, old); err != nil {
		t.Fatalf("unseen message after restart: %v", err)
	}
	// Restarted without it: nothing stamped before start-up − skew opens.
	b3 := New(b.key.copy(), &Options{Now: c.now})
	refuse(t, b3, ctx, seen, "replay after restart without state")
	for n := range len(saved) {
		if err := b3.UnmarshalBinary(saved[:n]); err == nil {
			t.Fatalf("state truncated to %d bytes accepted", n)
		}
	}
}

func (k *Key) copy() *Key { c := *k; return &c }

func TestReplayEviction(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	k := GenerateKey()
	a := New(k, &Options{Now: c.now})
	b := New(k, &Options{Now: c.now, MaxEntries: 4})
	var msgs [][]byte
	for range 6 {
		m, _ := a.Seal(ctx, []byte("m"))
		msgs = append(msgs, m)
		c.t = c.t.Add(time.Second)
	}
	for _, m := range msgs[1:] {
		if _, err := open(b, ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// The oldest seen id was evicted; the floor rose above it, so neither it
	// nor anything older (msgs[0], never seen) opens.
	refuse(t, b, ctx, msgs[1], "evicted replay")
	refuse(t, b, ctx, msgs[0], "older than the floor")
	for _, m := range msgs[2:] {
		refuse(t, b, ctx, m, "replay")
	}
}

func TestKeys(t *testing.T) {
	if _, err := NewKey(make([]byte, 31)); err == nil {
		t.Fatal("31-byte secret accepted")
	}
	k1, _ := NewKey(bytes.Repeat([]byte{1}, 32))
	k2, _ := NewKey(k1.Bytes())
	if !k1.Equal(k2) || k1.Equal(GenerateKey()) {
		t.Fatal("Equal")
	}
	p1, err := KeyFromPassphrase([]byte("correct horse"), []byte("group one"))
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := KeyFromPassphrase([]byte("correct horse"), []byte("group one"))
	p3, _ := KeyFromPassphrase([]byte("correct horse"), []byte("group two"))
	if !p1.Equal(p2) || p1.Equal(p3) {
		t.Fatal("passphrase keys: same inputs must agree, other groups differ")
	}
	if _, err := KeyFromPassphrase(nil, []byte("g")); err == nil {
		t.Fatal("empty passphrase accepted")
	}
	a := New(p1, nil)
	msg, _ := a.Seal(ctx, []byte("x"))
	if _, err := open(New(p2, nil), ctx, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := open(New(p3, nil), ctx, msg); !errors.Is(err, layers.ErrAuth) {
		t.Fatal("other group's passphrase key opened")
	}
	k1.Destroy()
	if !k1.Equal(&Key{}) {
		t.Fatal("Destroy left key bytes")
	}
}

func FuzzOpen(f *testing.F) {
	a, b, _ := newPair(f)
	var valid [][]byte
	for _, pt := range []string{"", "x", "hello, room"} {
		m, _ := a.Seal(ctx, []byte(pt))
		valid = append(valid, m)
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _, err := b.Open(ctx, msg) // never committed: the state stays
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

func BenchmarkSealOpen(b *testing.B) {
	for _, size := range []int{100, 1024, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			k := GenerateKey() // the real clock: a fixed one would fill the replay window at one instant
			x, y := New(k, nil), New(k, nil)
			pt := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				msg, err := x.Seal(ctx, pt)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := open(y, ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(Overhead, "overhead-bytes")
		})
	}
}

func BenchmarkKeyFromPassphrase(b *testing.B) {
	for b.Loop() {
		KeyFromPassphrase([]byte("correct horse battery staple"), []byte("group"))
	}
}

func TestNotPrinted(t *testing.T) {
	k := GenerateKey()
	l := New(k, nil)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v %#v %x %s", k, k, k, k), fmt.Sprintf("%v %+v %#v", l, l, l)} {
		if bytes.Contains([]byte(s), []byte(fmt.Sprintf("%x", k.k[:4]))) || bytes.Contains([]byte(s), []byte(fmt.Sprint(k.k[0], " ", k.k[1]))) {
			t.Fatalf("key printed: %s", s)
		}
	}
}
