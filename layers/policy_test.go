package layers

import (
	"bytes"
	"testing"
)

func TestPolicyParse(t *testing.T) {
	for _, s := range []string{PolicyPair, PolicyGroup, PolicyLarge, PolicyHandshake, "aes", "mlkem", "mlkem,aes", "signal,mls"} {
		p, err := ParsePolicy(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if p.String() != s {
			t.Fatalf("%q printed as %q", s, p.String())
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		q, err := UnmarshalPolicy(enc)
		if err != nil || q != p {
			t.Fatalf("%q: extension round trip: %v", s, err)
		}
		for n := range len(enc) {
			if _, err := UnmarshalPolicy(enc[:n]); err == nil {
				t.Fatalf("%q truncated to %d: accepted", s, n)
			}
		}
		if _, err := UnmarshalPolicy(append(enc, 4)); err == nil {
			t.Fatalf("%q with a trailing byte: accepted", s)
		}
	}
	for _, s := range []string{"", "aes,mls", "mls,mls", "signal,mlkem", "rot13", "mls,aes,", "mlkem,signal,mls,aes,aes", "AES"} {
		if p, err := ParsePolicy(s); err == nil {
			t.Fatalf("%q accepted as %s", s, p)
		}
	}
	if p := MustParsePolicy(PolicyPair); p.Len() != 4 || !p.Has(MLKEM) || !bytes.Equal(idsBytes(p.Layers()), []byte{1, 2, 3, 4}) {
		t.Fatalf("pair policy %v", p.Layers())
	}
	if MustParsePolicy(PolicyLarge).Has(Signal) {
		t.Fatal("mls,aes has signal")
	}
	if _, err := (Policy{}).MarshalBinary(); err == nil {
		t.Fatal("empty policy encoded")
	}
}

func idsBytes(ids []ID) []byte {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return b
}

// TestPolicyExtensionExhaustive decodes every body of up to 6 bytes with
// bytes drawn from 0..5: only canonical policies decode, and they encode
// back to the same bytes.
func TestPolicyExtensionExhaustive(t *testing.T) {
	var accepted int
	var walk func(b []byte)
	walk = func(b []byte) {
		if p, err := UnmarshalPolicy(b); err == nil {
			accepted++
			enc, _ := p.MarshalBinary()
			if !bytes.Equal(enc, b) {
				t.Fatalf("%x decoded but encodes as %x", b, enc)
			}
		}
		if len(b) == 6 {
			return
		}
		for x := range byte(6) {
			walk(append(b, x))
		}
	}
	walk(nil)
	if accepted != 15 { // the non-empty subsets of four layers
		t.Fatalf("%d bodies accepted, want 15", accepted)
	}
}

func TestPeekPolicy(t *testing.T) {
	p := MustParsePolicy(PolicyGroup)
	msg := appendHeader(nil, []layerTag{{Signal, 1}, {MLS, 1}, {AES, 1}})
	if _, err := PeekPolicy(msg); err != ErrAuth {
		t.Fatal("envelope without a body accepted")
	}
	msg = append(msg, 0xAA)
	got, err := PeekPolicy(msg)
	if err != nil || got != p {
		t.Fatalf("PeekPolicy = %v, %v", got, err)
	}
	for n := range len(msg) {
		if _, err := PeekPolicy(msg[:n]); err != ErrAuth {
			t.Fatalf("truncated to %d: accepted", n)
		}
	}
	bad := bytes.Clone(msg)
	bad[4], bad[6] = bad[6], bad[4]
	if _, err := PeekPolicy(bad); err != ErrAuth {
		t.Fatal("reordered layers accepted")
	}
}

func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{PolicyPair, PolicyGroup, PolicyLarge} {
		p := MustParsePolicy(s)
		var tags []layerTag
		for _, id := range p.Layers() {
			tags = append(tags, layerTag{id, 1})
		}
		f.Add(append(appendHeader(nil, tags), "body"...))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		env, ok := parseEnvelope(msg)
		p, err := PeekPolicy(msg)
		if !ok {
			if err == nil {
				t.Fatal("PeekPolicy accepted what parseEnvelope did not")
			}
			return
		}
		// Parse then encode gives the same header.
		if hdr := appendHeader(nil, env.tags); !bytes.Equal(hdr, msg[:env.hlen]) {
			t.Fatalf("header %x re-encodes as %x", msg[:env.hlen], hdr)
		}
		if err == nil {
			enc, _ := p.MarshalBinary()
			q, err := UnmarshalPolicy(enc)
			if err != nil || q != p {
				t.Fatal("policy round trip")
			}
		}
	})
}
