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
		&JoinResponse{Welcome: []byte("welcome"), RatchetTree: []byte("tree")},
		&SyncRequest{GroupID: []byte("g"), SinceEpoch: 1 << 40, Want: WantCommits | WantGroupInfo | WantSenderKey, MaxItems: 77,
			RecentSince: 1<<40 - 3, Sender: []byte("alice"), After: SyncCursor{Epoch: 1<<40 + 1, Seq: 1 << 33}},
		&SyncResponse{Commits: [][]byte{[]byte("c1"), []byte("c2")}, Recent: [][]byte{[]byte("r")},
			GroupInfo: []byte("gi"), More: true, Next: SyncCursor{Epoch: 1<<40 + 2, Seq: 1<<33 + 9}},
		&KeyPackageRequest{GroupID: []byte("g"), CipherSuite: 0xF001},
		&KeyPackageResponse{KeyPackage: []byte("kp")},
		&WelcomeRequest{GroupID: []byte("group"), Welcome: []byte("welcome"), RoomSecret: bytes.Repeat([]byte{0x42}, 32), Name: "Café ☕",
			RatchetTree: []byte("tree")},
		&WelcomeResponse{},
		&SenderKeyRequest{GroupID: []byte("group"), Key: []byte("sealed key")},
		&SenderKeyResponse{},
	}
}

func newLike(m message) message {
	return reflect.New(reflect.TypeOf(m).Elem()).Interface().(message)
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range append(sampleMessages(),
		&JoinRequest{}, &SyncResponse{}, &SyncRequest{}, &KeyPackageRequest{},
		&JoinResponse{Welcome: []byte("welcome")}, // the tree in the Welcome
		&SyncRequest{GroupID: bytes.Repeat([]byte{1}, MaxGroupID), Sender: bytes.Repeat([]byte{2}, MaxSender),
			SinceEpoch: ^uint64(0), RecentSince: ^uint64(0), Want: wantAll, MaxItems: ^uint32(0),
			After: SyncCursor{Epoch: ^uint64(0), Seq: ^uint64(0)}},
		&SyncResponse{Next: SyncCursor{Epoch: ^uint64(0), Seq: ^uint64(0)}},            // Next without More
		&WelcomeRequest{GroupID: []byte{1}, Welcome: []byte{2}, RoomSecret: []byte{3}}, // no name
		&WelcomeRequest{GroupID: bytes.Repeat([]byte{1}, MaxGroupID), Welcome: bytes.Repeat([]byte{2}, 70000),
			RoomSecret: bytes.Repeat([]byte{3}, MaxRoomSecret), Name: strings.Repeat("n", MaxGroupName)},
		&SenderKeyRequest{GroupID: bytes.Repeat([]byte{1}, MaxGroupID), Key: bytes.Repeat([]byte{2}, MaxSenderKey)}) {
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
	if _, err := (&SyncRequest{Want: 16}).MarshalBinary(); err == nil {
		t.Fatal("unknown want bit encoded")
	}
	if _, err := (&SyncRequest{Sender: make([]byte, MaxSender+1)}).MarshalBinary(); err == nil {
		t.Fatal("256-byte sender encoded")
	}
	// Sync request with an unknown want bit; sync response with more = 2.
	// Each is a valid encoding with that one byte changed.
	for _, bad := range []struct {
		m     message
		at    int
		value byte
	}{
		{&SyncRequest{Want: WantRecent, Sender: []byte("s")}, 9, 16},
		{&SyncRequest{Want: WantRecent, Sender: []byte("s")}, 9, 0x80},
		{&SyncResponse{More: true, Next: SyncCursor{Epoch: 1, Seq: 2}}, 0, 2},
	} {
		enc, err := bad.m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := newLike(bad.m).UnmarshalBinary(enc); err != nil {
			t.Fatalf("%T: the valid encoding: %v", bad.m, err)
		}
		enc[bad.at] = bad.value
		if err := newLike(bad.m).UnmarshalBinary(enc); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%T with byte %d = %d: %v", bad.m, bad.at, bad.value, err)
		}
	}
	// A sender length that overstates the bytes left (the cursor's 16 bytes
	// would otherwise be taken as the sender).
	enc, _ := (&SyncRequest{}).MarshalBinary()
	enc[1+8+1+4+8] = 16
	if err := new(SyncRequest).UnmarshalBinary(enc); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	// A blob length beyond the data.
	if err := new(JoinResponse).UnmarshalBinary([]byte{0xff, 0xff, 0xff, 0xff, 1}); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}

// The sync messages' encodings, byte by byte, as the grammar in messages.go
// gives them.
func TestSyncEncoding(t *testing.T) {
	req := &SyncRequest{GroupID: []byte("gg"), SinceEpoch: 0x0102030405060708, Want: WantCommits | WantRecent,
		MaxItems: 0x11223344, RecentSince: 0x2122232425262728, Sender: []byte("abc"),
		After: SyncCursor{Epoch: 0x3132333435363738, Seq: 0x4142434445464748}}
	want := []byte{
		2, 'g', 'g', // group_id
		1, 2, 3, 4, 5, 6, 7, 8, // since_epoch
		3,                      // want
		0x11, 0x22, 0x33, 0x44, // max_items
		0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, // recent_since
		3, 'a', 'b', 'c', // sender
		0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, // after_epoch
		0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, // after_seq
	}
	if enc, err := req.MarshalBinary(); err != nil || !bytes.Equal(enc, want) {
		t.Fatalf("request: %x %v\nwant %x", enc, err, want)
	}
	resp := &SyncResponse{More: true, Commits: [][]byte{[]byte("c")}, Recent: [][]byte{{}, []byte("rr")},
		GroupInfo: []byte("i"), Next: SyncCursor{Epoch: 0x5152535455565758, Seq: 9}}
	want = []byte{
		1,          // more
		0, 0, 0, 5, // commits
		0, 0, 0, 1, 'c',
		0, 0, 0, 10, // recent
		0, 0, 0, 0,
		0, 0, 0, 2, 'r', 'r',
		0, 0, 0, 1, 'i', // group_info
		0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, // next_epoch
		0, 0, 0, 0, 0, 0, 0, 9, // next_seq
	}
	if enc, err := resp.MarshalBinary(); err != nil || !bytes.Equal(enc, want) {
		t.Fatalf("response: %x %v\nwant %x", enc, err, want)
	}
}

func TestSyncRequestRecentFrom(t *testing.T) {
	for _, c := range []struct{ since, recent, want uint64 }{
		{0, 0, 0}, {5, 0, 5}, {5, 3, 3}, {5, 9, 9}, {0, 1, 1},
	} {
		r := SyncRequest{SinceEpoch: c.since, RecentSince: c.recent}
		if got := r.RecentFrom(); got != c.want {
			t.Errorf("since %d, recent_since %d: %d, want %d", c.since, c.recent, got, c.want)
		}
	}
}

// welcomeEncoding encodes a WelcomeRequest (with no ratchet tree) by hand,
// without the checks of MarshalBinary.
func welcomeEncoding(groupID, welcome, roomSecret []byte, name string) []byte {
	var b cryptobyte.Builder
	addOpaque8(&b, groupID)
	addOpaque32(&b, welcome)
	addOpaque8(&b, roomSecret)
	addOpaque8(&b, []byte(name))
	addOpaque32(&b, nil)
	return b.BytesOrPanic()
}

// treeLen is the length prefix of the ratchet tree that ends a WelcomeRequest.
const treeLen = 4

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
	enc[len(enc)-treeLen-1] = 5
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
	enc[len(enc)-treeLen-1] = 'X'
	if req.Name != "name" {
		t.Fatalf("name aliases the buffer: %q", req.Name)
	}
}

func TestSenderKeyRequestBadValues(t *testing.T) {
	for what, req := range map[string]SenderKeyRequest{
		"no group id":   {Key: []byte("k")},
		"no key":        {GroupID: []byte("g")},
		"long group id": {GroupID: make([]byte, MaxGroupID+1), Key: []byte("k")},
		"long key":      {GroupID: []byte("g"), Key: make([]byte, MaxSenderKey+1)},
	} {
		if _, err := req.MarshalBinary(); err == nil {
			t.Errorf("%s: encoded", what)
		}
	}
	for what, enc := range map[string][]byte{
		"no group id":    {0, 0, 1, 7},
		"no key":         {1, 'g', 0, 0},
		"trailing bytes": {1, 'g', 0, 1, 7, 0},
		"key cut short":  {1, 'g', 0, 2, 7},
	} {
		if err := new(SenderKeyRequest).UnmarshalBinary(enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decoded (%v)", what, err)
		}
	}
	if err := new(SenderKeyResponse).UnmarshalBinary([]byte{0}); !errors.Is(err, ErrMalformed) {
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
	// Near misses for the sender key request: no group id, no key, trailing bytes.
	sk := index(&SenderKeyRequest{})
	f.Add(sk, []byte{0, 0, 1, 7})
	f.Add(sk, []byte{1, 'g', 0, 0})
	f.Add(sk, []byte{1, 'g', 0, 1, 7, 0})
	f.Add(index(&SenderKeyResponse{}), []byte{0})
	// Near misses for sync: an unknown want bit, more = 2, a sender length
	// that runs into the cursor, a response without its cursor.
	enc, _ := (&SyncRequest{GroupID: []byte("g"), Sender: []byte("s")}).MarshalBinary()
	enc[1+1+8] = 16
	f.Add(index(&SyncRequest{}), enc)
	enc, _ = (&SyncRequest{}).MarshalBinary()
	enc[1+8+1+4+8] = 16
	f.Add(index(&SyncRequest{}), enc)
	enc, _ = (&SyncResponse{More: true}).MarshalBinary()
	f.Add(index(&SyncResponse{}), enc[:len(enc)-16])
	enc[0] = 2
	f.Add(index(&SyncResponse{}), enc)
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
