package proto

import (
	"bytes"
	"encoding"
	"errors"
	"reflect"
	"testing"
)

type message interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// sampleMessages has one value of each message, with every field set.
func sampleMessages() []message {
	return []message{
		&JoinRequest{GroupID: []byte("group"), KeyPackage: []byte("kp"), InviteProof: []byte("proof")},
		&JoinResponse{Welcome: []byte("welcome")},
		&SyncRequest{GroupID: []byte("g"), SinceEpoch: 1 << 40, Want: WantCommits | WantGroupInfo, MaxItems: 77},
		&SyncResponse{Commits: [][]byte{[]byte("c1"), []byte("c2")}, Recent: [][]byte{[]byte("r")},
			GroupInfo: []byte("gi"), More: true},
		&KeyPackageRequest{GroupID: []byte("g"), CipherSuite: 0xF001},
		&KeyPackageResponse{KeyPackage: []byte("kp")},
	}
}

func newLike(m message) message {
	return reflect.New(reflect.TypeOf(m).Elem()).Interface().(message)
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range append(sampleMessages(),
		&JoinRequest{}, &SyncResponse{}, &SyncRequest{}, &KeyPackageRequest{}) {
		enc, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		got := newLike(m)
		if err := got.UnmarshalBinary(enc); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%T: got %+v, want %+v", m, got, m)
		}
	}
}

// Every truncation and every extension of a valid encoding is refused.
func TestMessagesTruncatedAndTrailing(t *testing.T) {
	for _, m := range sampleMessages() {
		enc, _ := m.MarshalBinary()
		for i := range len(enc) {
			if err := newLike(m).UnmarshalBinary(enc[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%T truncated to %d: %v", m, i, err)
			}
		}
		if err := newLike(m).UnmarshalBinary(append(enc, 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%T with a trailing byte: %v", m, err)
		}
	}
}

func TestMessagesBadValues(t *testing.T) {
	if _, err := (&JoinRequest{GroupID: make([]byte, 256)}).MarshalBinary(); err == nil {
		t.Fatal("256-byte group id encoded")
	}
	if _, err := (&SyncRequest{Want: 8}).MarshalBinary(); err == nil {
		t.Fatal("unknown want bit encoded")
	}
	// Sync request with an unknown want bit; sync response with more = 2.
	if err := new(SyncRequest).UnmarshalBinary([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if err := new(SyncResponse).UnmarshalBinary([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	// A blob length beyond the data.
	if err := new(JoinResponse).UnmarshalBinary([]byte{0xff, 0xff, 0xff, 0xff, 1}); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}

func TestResponseStatus(t *testing.T) {
	body, err := decodeResponse([]byte{0, 1, 2})
	if err != nil || !bytes.Equal(body, []byte{1, 2}) {
		t.Fatal(body, err)
	}
	_, err = decodeResponse(encodeError(CodeRefused, "invite expired"))
	if !errors.Is(err, ErrRefused) || err.Error() != "proto: refused: invite expired" {
		t.Fatal(err)
	}
	long := string(bytes.Repeat([]byte("x"), 300))
	_, err = decodeResponse(encodeError(CodeNotFound, long))
	if re, ok := errors.AsType[*RemoteError](err); !ok || len(re.Reason) != MaxReason || !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{{}, {2}, {2, 5, 'a'}, {2, 0, 0}} {
		if _, err := decodeResponse(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
	if code, reason := errorResponse(errors.New("disk on fire")); code != CodeInternal || reason != "" {
		t.Fatal("an internal error's text was disclosed")
	}
	if code, _ := errorResponse(errors.Join(ErrNotFound, errors.New("x"))); code != CodeNotFound {
		t.Fatal(code)
	}
}

// FuzzMessages: no decoder panics, and what one accepts re-encodes to the same
// bytes (one encoding per value).
func FuzzMessages(f *testing.F) {
	for i, m := range sampleMessages() {
		enc, _ := m.MarshalBinary()
		f.Add(uint8(i), enc)
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		samples := sampleMessages()
		m := newLike(samples[int(kind)%len(samples)])
		if err := m.UnmarshalBinary(data); err != nil {
			return
		}
		enc, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("%T: re-encode: %v", m, err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("%T: re-encoding differs", m)
		}
	})
}
