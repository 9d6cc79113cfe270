package codec

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func TestVarintBoundaries(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 16383, 16384, MaxVarint} {
		var b cryptobyte.Builder
		AddVarint(&b, v)
		enc, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if app, err := AppendVarint([]byte("x"), v); err != nil || string(app) != "x"+string(enc) {
			t.Errorf("varint %d: AppendVarint gave %x, %v; AddVarint %x", v, app, err, enc)
		}
		s := cryptobyte.String(enc)
		var got uint32
		if !ReadVarint(&s, &got) || uint64(got) != v || !s.Empty() {
			t.Errorf("varint %d: round trip gave %d (rest %x)", v, got, []byte(s))
		}
		// Every strict prefix must fail.
		for i := 0; i < len(enc); i++ {
			p := cryptobyte.String(enc[:i])
			if ReadVarint(&p, &got) {
				t.Errorf("varint %d: prefix %x accepted", v, enc[:i])
			}
		}
	}
	var b cryptobyte.Builder
	AddVarint(&b, MaxVarint+1)
	if _, err := b.Bytes(); err == nil {
		t.Error("2^30 encoded without error")
	}
	if _, err := AppendVarint(nil, MaxVarint+1); err == nil {
		t.Error("AppendVarint encoded 2^30 without error")
	}
}

func TestVarintRejects(t *testing.T) {
	for _, bad := range []string{
		"\x40\x3f",             // 63 in two bytes
		"\x80\x00\x3f\xff",     // 16383 in four bytes
		"\xc0\x00\x00\x00\x00", // reserved prefix 0b11
		"",
	} {
		s := cryptobyte.String(bad)
		var v uint32
		if ReadVarint(&s, &v) {
			t.Errorf("%x accepted as %d", bad, v)
		}
	}
}

func TestOpaqueHostileLength(t *testing.T) {
	// A length of 2^30-1 with three bytes behind it: must fail, not allocate 1 GiB.
	s := cryptobyte.String("\xbf\xff\xff\xffabc")
	var out []byte
	allocs := testing.AllocsPerRun(10, func() {
		s2 := s
		if ReadOpaque(&s2, &out) {
			t.Fatal("accepted")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations on a hostile length", allocs)
	}
}

func TestOpaqueRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 300, 16384} {
		data := bytes.Repeat([]byte{0xab}, n)
		var b cryptobyte.Builder
		AddOpaque(&b, data)
		enc := b.BytesOrPanic()
		s := cryptobyte.String(enc)
		var got []byte
		if !ReadOpaque(&s, &got) || !bytes.Equal(got, data) || !s.Empty() || got == nil {
			t.Errorf("len %d: round trip failed", n)
		}
	}
}

func TestOptional(t *testing.T) {
	for in, want := range map[string]bool{"\x00": false, "\x01": true} {
		s := cryptobyte.String(in)
		var p bool
		if !ReadOptional(&s, &p) || p != want {
			t.Errorf("%x: got %v", in, p)
		}
	}
	s := cryptobyte.String("\x02")
	var p bool
	if ReadOptional(&s, &p) {
		t.Error("presence octet 2 accepted")
	}
}

func FuzzVarint(f *testing.F) {
	for _, seed := range []string{"\x00", "\x3f", "\x40\x40", "\x7f\xff", "\x80\x00\x40\x00", "\xbf\xff\xff\xff", "\xc0"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := cryptobyte.String(data)
		var v uint32
		if !ReadVarint(&s, &v) {
			return
		}
		used := data[:len(data)-len(s)]
		var b cryptobyte.Builder
		AddVarint(&b, uint64(v))
		if enc := b.BytesOrPanic(); !bytes.Equal(enc, used) {
			t.Fatalf("%x decoded to %d, re-encoded as %x", used, v, enc)
		}
	})
}

func FuzzOpaqueList(f *testing.F) {
	f.Add([]byte("\x04\x01a\x01b"))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := cryptobyte.String(data)
		var items [][]byte
		if !ReadList(&s, func(s *cryptobyte.String) bool {
			var o []byte
			if !ReadOpaque(s, &o) {
				return false
			}
			items = append(items, o)
			return true
		}) {
			return
		}
		used := data[:len(data)-len(s)]
		var b cryptobyte.Builder
		AddVector(&b, func(b *cryptobyte.Builder) {
			for _, it := range items {
				AddOpaque(b, it)
			}
		})
		if enc := b.BytesOrPanic(); !bytes.Equal(enc, used) {
			t.Fatalf("%x re-encoded as %x", used, enc)
		}
	})
}
