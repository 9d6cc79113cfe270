// Package codec is the TLS presentation language of RFC 9420, Section 2.1, on top of
// golang.org/x/crypto/cryptobyte: MLS variable-length integers, opaque vectors, vectors of
// structures and optionals.
//
// Readers follow cryptobyte's boolean style: each returns false on truncated, over-long or
// non-minimal input and leaves the output untouched. Every length is checked against what
// remains of the input before anything is allocated, so a hostile length prefix costs nothing.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/cryptobyte"
)

// MaxVarint is the largest value a variable-length integer can carry (2^30 - 1).
const MaxVarint = 1<<30 - 1

// ErrDecode is returned (wrapped) for every malformed encoding.
var ErrDecode = errors.New("mls: malformed encoding")

// Marshaler is implemented by every wire structure.
type Marshaler interface {
	Marshal(b *cryptobyte.Builder)
}

// Unmarshaler is implemented by every wire structure. Unmarshal consumes exactly one
// structure from s and reports whether it was well formed.
type Unmarshaler interface {
	Unmarshal(s *cryptobyte.String) bool
}

// Marshal serializes v.
func Marshal(v Marshaler) ([]byte, error) {
	var b cryptobyte.Builder
	v.Marshal(&b)
	return b.Bytes()
}

// MustMarshal serializes v and panics if a value cannot be encoded (a vector longer
// than MaxVarint bytes). Use it only on values this program built itself.
func MustMarshal(v Marshaler) []byte {
	out, err := Marshal(v)
	if err != nil {
		panic("mls: internal error: " + err.Error())
	}
	return out
}

// Unmarshal parses data into v, which must consume all of it.
func Unmarshal(data []byte, v Unmarshaler) error {
	s := cryptobyte.String(data)
	if !v.Unmarshal(&s) {
		return fmt.Errorf("%w: %T", ErrDecode, v)
	}
	if !s.Empty() {
		return fmt.Errorf("%w: %d trailing bytes after %T", ErrDecode, len(s), v)
	}
	return nil
}

// ReadVarint reads a variable-length integer (RFC 9420, Section 2.1.2). The two most
// significant bits of the first byte give the length (1, 2 or 4 bytes); the prefix 0b11 is
// invalid, and so is any value that would fit a shorter encoding.
func ReadVarint(s *cryptobyte.String, out *uint32) bool {
	if len(*s) == 0 {
		return false
	}
	prefix := (*s)[0] >> 6
	var v uint32
	switch prefix {
	case 0:
		var x uint8
		if !s.ReadUint8(&x) {
			return false
		}
		v = uint32(x)
	case 1:
		var x uint16
		if !s.ReadUint16(&x) {
			return false
		}
		v = uint32(x & 0x3fff)
		if v < 1<<6 {
			return false
		}
	case 2:
		var x uint32
		if !s.ReadUint32(&x) {
			return false
		}
		v = x & 0x3fffffff
		if v < 1<<14 {
			return false
		}
	default:
		return false
	}
	*out = v
	return true
}

// AddVarint writes v in the shortest encoding (RFC 9420, Section 2.1.2). A value over
// MaxVarint sets an error on b.
func AddVarint(b *cryptobyte.Builder, v uint64) {
	var buf [4]byte
	enc, err := AppendVarint(buf[:0], v)
	if err != nil {
		b.SetError(err)
		return
	}
	b.AddBytes(enc)
}

// AppendVarint appends v in the shortest encoding (RFC 9420, Section 2.1.2) to dst, for a
// message built without a Builder. A value over MaxVarint is an error.
func AppendVarint(dst []byte, v uint64) ([]byte, error) {
	switch {
	case v < 1<<6:
		return append(dst, uint8(v)), nil
	case v < 1<<14:
		return binary.BigEndian.AppendUint16(dst, uint16(v)|0x4000), nil
	case v <= MaxVarint:
		return binary.BigEndian.AppendUint32(dst, uint32(v)|0x80000000), nil
	}
	return dst, fmt.Errorf("mls: length %d does not fit a variable-length integer", v)
}

// ReadVector reads the body of a variable-length vector (`T v<V>`) into out without copying.
func ReadVector(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint32
	if !ReadVarint(s, &n) {
		return false
	}
	// ReadBytes checks n against what remains before slicing; nothing is allocated.
	var body []byte
	if !s.ReadBytes(&body, int(n)) {
		return false
	}
	*out = body
	return true
}

// ReadOpaque reads `opaque v<V>` into a fresh copy. An empty vector reads as a
// non-nil empty slice so that round trips are exact.
func ReadOpaque(s *cryptobyte.String, out *[]byte) bool {
	var body cryptobyte.String
	if !ReadVector(s, &body) {
		return false
	}
	*out = append(make([]byte, 0, len(body)), body...)
	return true
}

// AddOpaque writes `opaque v<V>`.
func AddOpaque(b *cryptobyte.Builder, data []byte) {
	AddVarint(b, uint64(len(data)))
	b.AddBytes(data)
}

// bodies holds the buffers AddVector builds a body in before it knows its length. A
// group's state or ratchet tree is vectors within vectors, saved several times a second
// in a busy group; each body grew from nothing, doubling, before it was copied into its
// parent.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// AddVector writes a variable-length vector whose body f writes.
func AddVector(b *cryptobyte.Builder, f func(b *cryptobyte.Builder)) {
	bp := bodies.Get().(*[]byte)
	defer bodies.Put(bp)
	body := cryptobyte.NewBuilder((*bp)[:0])
	f(body)
	data, err := body.Bytes()
	if err != nil {
		// The body written before the error may be in the pooled buffer: cleared too.
		clear((*bp)[:cap(*bp)])
		b.SetError(err)
		return
	}
	AddOpaque(b, data)
	// The body may hold secrets (a state's epoch secrets): cleared before it is reused.
	clear(data)
	*bp = data[:0]
}

// ReadList reads `T v<V>`, calling read on the body until it is used up. read must consume
// at least one byte per element or fail, so a hostile length cannot make it loop.
func ReadList(s *cryptobyte.String, read func(s *cryptobyte.String) bool) bool {
	var body cryptobyte.String
	if !ReadVector(s, &body) {
		return false
	}
	for !body.Empty() {
		before := len(body)
		if !read(&body) || len(body) >= before {
			return false
		}
	}
	return true
}

// ReadStructs reads `T v<V>` for a structure type.
func ReadStructs[T any, P interface {
	*T
	Unmarshaler
}](s *cryptobyte.String, out *[]T) bool {
	list := []T{}
	ok := ReadList(s, func(s *cryptobyte.String) bool {
		var v T
		if !P(&v).Unmarshal(s) {
			return false
		}
		list = append(list, v)
		return true
	})
	if ok {
		*out = list
	}
	return ok
}

// AddStructs writes `T v<V>` for a structure type.
func AddStructs[T any, P interface {
	*T
	Marshaler
}](b *cryptobyte.Builder, list []T) {
	AddVector(b, func(b *cryptobyte.Builder) {
		for i := range list {
			P(&list[i]).Marshal(b)
		}
	})
}

// ReadOptional reads the presence octet of `optional<T>` (RFC 9420, Section 2.1.3):
// 0 absent, 1 present, anything else malformed.
func ReadOptional(s *cryptobyte.String, present *bool) bool {
	var x uint8
	if !s.ReadUint8(&x) || x > 1 {
		return false
	}
	*present = x == 1
	return true
}

// AddOptional writes the presence octet of `optional<T>`.
func AddOptional(b *cryptobyte.Builder, present bool) {
	if present {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// ReadBool reads a TLS `bool` (one octet, 0 or 1).
func ReadBool(s *cryptobyte.String, v *bool) bool { return ReadOptional(s, v) }

// AddBool writes a TLS `bool`.
func AddBool(b *cryptobyte.Builder, v bool) { AddOptional(b, v) }
