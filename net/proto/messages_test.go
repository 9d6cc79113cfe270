package proto

import (
	"bytes"
	"encoding"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
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
		&WelcomeRequest{GroupID: []byte("group"), Welcome: []byte("welcome"), RoomSecret: bytes.Repeat([]byte{0x42}, 32), Name: "Café ☕"},
		&WelcomeResponse{},
	}
}

func newLike(m message) message {
	return reflect.New(reflect.TypeOf(m).Elem()).Interface().(message)
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range append(sampleMessages(),
		&JoinRequest{}, &SyncResponse{}, &SyncRequest{}, &KeyPackageRequest{},
		&WelcomeRequest{GroupID: []byte{1}, Welcome: []byte{2}, RoomSecret: []byte{3}}, // no name
		&WelcomeRequest{GroupID: bytes.Repeat([]byte{1}, MaxGroupID), Welcome: bytes.Repeat([]byte{2}, 70000),
			RoomSecret: bytes.Repeat([]byte{3}, MaxRoomSecret), Name: strings.Repeat("n", MaxGroupName)}) {
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

// welcomeEncoding encodes a WelcomeRequest by hand, without the checks of
// MarshalBinary.
func welcomeEncoding(groupID, welcome, roomSecret []byte, name string) []byte {
	var b cryptobyte.Builder
	addOpaque8(&b, groupID)
	addOpaque32(&b, welcome)
	addOpaque8(&b, roomSecret)
	addOpaque8(&b, []byte(name))
	return b.BytesOrPanic()
}

func TestWelcomeRequestBadValues(t *testing.T) {
	g, w, rs := []byte("g"), []byte("w"), []byte("secret")
	bad := []struct {
		what string
		req  WelcomeRequest
	}{
		{"no group id", WelcomeRequest{Welcome: w, RoomSecret: rs}},
		{"no Welcome", WelcomeRequest{GroupID: g, RoomSecret: rs}},
		{"no room secret", WelcomeRequest{GroupID: g, Welcome: w}},
		{"long group id", WelcomeRequest{GroupID: make([]byte, MaxGroupID+1), Welcome: w, RoomSecret: rs}},
		{"long room secret", WelcomeRequest{GroupID: g, Welcome: w, RoomSecret: make([]byte, MaxRoomSecret+1)}},
		{"long name", WelcomeRequest{GroupID: g, Welcome: w, RoomSecret: rs, Name: strings.Repeat("é", 128)}},
		{"name not UTF-8", WelcomeRequest{GroupID: g, Welcome: w, RoomSecret: rs, Name: "bad \xff name"}},
	}
	for _, c := range bad {
		if _, err := c.req.MarshalBinary(); err == nil {
			t.Errorf("%s: encoded", c.what)
		}
		// The same values, encoded by hand where the vectors allow it, do
		// not decode.
		if len(c.req.GroupID) > 255 || len(c.req.Name) > 255 {
			continue
		}
		enc := welcomeEncoding(c.req.GroupID, c.req.Welcome, c.req.RoomSecret, c.req.Name)
		if err := new(WelcomeRequest).UnmarshalBinary(enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decoded (%v)", c.what, err)
		}
	}
	// A name length that overstates the bytes left; a response that is not
	// empty.
	enc := welcomeEncoding(g, w, rs, "")
	enc[len(enc)-1] = 5
	if err := new(WelcomeRequest).UnmarshalBinary(append(enc, "abc"...)); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if err := new(WelcomeResponse).UnmarshalBinary([]byte{0}); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	// Decoding copies the name: it does not change with the buffer.
	enc = welcomeEncoding(g, w, rs, "name")
	var req WelcomeRequest
	if err := req.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	enc[len(enc)-1] = 'X'
	if req.Name != "name" {
		t.Fatalf("name aliases the buffer: %q", req.Name)
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
	samples := sampleMessages()
	for i, m := range samples {
		enc, _ := m.MarshalBinary()
		f.Add(uint8(i), enc)
	}
	// Near misses for the welcome request: empty required fields, an
	// oversize room secret, a name that is not UTF-8, trailing bytes.
	index := func(want message) uint8 {
		return uint8(slices.IndexFunc(samples, func(m message) bool { return reflect.TypeOf(m) == reflect.TypeOf(want) }))
	}
	wr := index(&WelcomeRequest{})
	rs := bytes.Repeat([]byte{1}, 32)
	for _, enc := range [][]byte{
		welcomeEncoding(nil, []byte("w"), rs, "n"),
		welcomeEncoding([]byte("g"), nil, rs, "n"),
		welcomeEncoding([]byte("g"), []byte("w"), nil, "n"),
		welcomeEncoding([]byte("g"), []byte("w"), make([]byte, MaxRoomSecret+1), ""),
		welcomeEncoding([]byte("g"), []byte("w"), rs, "\xc3"),
		append(welcomeEncoding([]byte("g"), []byte("w"), rs, ""), 0),
	} {
		f.Add(wr, enc)
	}
	f.Add(index(&WelcomeResponse{}), []byte{0}) // a welcome response that is not empty
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
