package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// HeaderSize is the size of a frame header: the payload length as a 32-bit
// big-endian unsigned integer.
const HeaderSize = 4

// frameChunk is the first allocation for a frame and the least it grows by.
// ReadFrame grows its buffer as bytes arrive (doubling, so copies stay linear),
// so a peer that announces a large frame and then stalls holds at most twice
// what it sent plus frameChunk of our memory.
const frameChunk = 64 << 10

// ErrFrameTooLarge is returned when a frame's announced length exceeds the
// limit. Nothing is allocated for such a frame.
var ErrFrameTooLarge = errors.New("proto: frame too large")

// ReadFrame reads one frame from r and returns its payload. A frame longer than
// limit bytes is refused with ErrFrameTooLarge before any of it is read or
// allocated. The buffer grows as bytes arrive, so memory follows what the peer
// sent, not what it claimed. A stream that ends
// inside a frame gives io.ErrUnexpectedEOF; one that ends before the header
// gives io.EOF.
func ReadFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if limit < 0 || uint64(n) > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	size := int(n)
	buf := make([]byte, 0, min(size, frameChunk))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(size-len(buf), max(len(buf), frameChunk)))
		}
		m, err := io.ReadFull(r, buf[len(buf):min(cap(buf), size)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// WriteFrame writes payload as one frame. It refuses payloads longer than
// limit (or than a frame can carry) with ErrFrameTooLarge and writes nothing
// then. Header and payload go out in one Write.
func WriteFrame(w io.Writer, payload []byte, limit int) error {
	if len(payload) > limit || uint64(len(payload)) > 0xFFFFFFFF {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(payload), limit)
	}
	buf := make([]byte, HeaderSize+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[HeaderSize:], payload)
	_, err := w.Write(buf)
	return err
}
