package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	const limit = 300 << 10 // more than one frameChunk, to exercise growth
	for _, n := range []int{0, 1, frameChunk - 1, frameChunk, frameChunk + 1, 3*frameChunk + 7, limit - 1, limit} {
		payload := bytes.Repeat([]byte{byte(n)}, n)
		var buf bytes.Buffer
		if err := WriteFrame(&buf, payload, limit); err != nil {
			t.Fatalf("%d: write: %v", n, err)
		}
		if buf.Len() != HeaderSize+n {
			t.Fatalf("%d: frame of %d bytes", n, buf.Len())
		}
		got, err := ReadFrame(&buf, limit)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("%d: read: %v (len %d)", n, err, len(got))
		}
	}
}

func TestFrameLimits(t *testing.T) {
	// size-1, size, size+1 around the limit.
	const limit = 1000
	for _, n := range []int{limit - 1, limit, limit + 1} {
		var buf bytes.Buffer
		err := WriteFrame(&buf, make([]byte, n), limit)
		if n > limit {
			if !errors.Is(err, ErrFrameTooLarge) || buf.Len() != 0 {
				t.Fatalf("write %d: err %v, wrote %d", n, err, buf.Len())
			}
		} else if err != nil {
			t.Fatalf("write %d: %v", n, err)
		}
		hdr := binary.BigEndian.AppendUint32(nil, uint32(n))
		r := io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(make([]byte, n)))
		_, err = ReadFrame(r, limit)
		if (n > limit) != errors.Is(err, ErrFrameTooLarge) || (n <= limit && err != nil) {
			t.Fatalf("read %d: %v", n, err)
		}
	}
}

func TestFrameHugeHeaderAllocatesNothing(t *testing.T) {
	hdr := []byte{0xff, 0xff, 0xff, 0xff}
	if _, err := ReadFrame(bytes.NewReader(hdr), 1<<20); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = ReadFrame(bytes.NewReader(hdr), 1<<20)
		}
	})
	// The error value itself allocates; the 4 GiB payload must not.
	if per := res.AllocedBytesPerOp(); per > 1024 {
		t.Fatalf("%d bytes allocated for a refused frame", per)
	}
}

func TestFrameTruncated(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, []byte("hello world"), 100); err != nil {
		t.Fatal(err)
	}
	frame := buf.Bytes()
	for i := range len(frame) {
		_, err := ReadFrame(bytes.NewReader(frame[:i]), 100)
		want := io.ErrUnexpectedEOF
		if i == 0 {
			want = io.EOF
		}
		if !errors.Is(err, want) {
			t.Fatalf("truncated at %d: %v, want %v", i, err, want)
		}
	}
}

// A liar announces a large frame and sends little: what ReadFrame holds
// follows what was sent.
func TestFrameLiarMemory(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, 16<<20)
	r := io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(make([]byte, 100)))
	allocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			r := io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(make([]byte, 100)))
			_, _ = ReadFrame(r, 16<<20)
		}
	})
	if per := allocs.AllocedBytesPerOp(); per > 2*frameChunk {
		t.Fatalf("a 100-byte liar made ReadFrame allocate %d bytes", per)
	}
	if _, err := ReadFrame(r, 16<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
}

// FuzzReadFrame: ReadFrame never panics, never returns more than the limit,
// and what it accepts is re-encoded to the same bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{0, 0, 0, 3, 'a'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2})
	f.Add([]byte{0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 12
		r := bytes.NewReader(data)
		payload, err := ReadFrame(r, limit)
		if err != nil {
			if payload != nil {
				t.Fatal("payload with an error")
			}
			return
		}
		if len(payload) > limit {
			t.Fatalf("payload of %d bytes over limit", len(payload))
		}
		var buf bytes.Buffer
		if err := WriteFrame(&buf, payload, limit); err != nil {
			t.Fatal(err)
		}
		consumed := len(data) - r.Len()
		if !bytes.Equal(buf.Bytes(), data[:consumed]) {
			t.Fatal("re-encoding differs")
		}
	})
}
