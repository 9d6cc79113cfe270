package chat

import (
	"bytes"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/identity"
)

// FuzzParseInvite feeds arbitrary strings as invite tokens: parsing never panics, and
// whatever parses names an inviter and a room secret.
func FuzzParseInvite(f *testing.F) {
	id, err := identity.Generate()
	if err != nil {
		f.Fatal(err)
	}
	inv := &Invite{
		GroupID: []byte("group"), Name: "room", RoomSecret: make([]byte, 32), Inviter: id.PeerID(),
		ID: make([]byte, 16), Expires: time.Unix(2000000000, 0), MaxUses: 3,
	}
	tok, err := encodeInvite(inv, id)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("tchat1")
	f.Add(tok[:len(tok)/2])
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseInvite(s)
		if err != nil {
			return
		}
		if got.Inviter == "" || len(got.RoomSecret) == 0 {
			t.Fatalf("parsed an invite without inviter or secret: %q", s)
		}
	})
}

// FuzzFrames feeds arbitrary bytes to the parsers of what arrives on a group's topic and
// in sync answers: nothing panics, and what parses encodes back to the same bytes.
func FuzzFrames(f *testing.F) {
	id, err := identity.Generate()
	if err != nil {
		f.Fatal(err)
	}
	hb := &heartbeat{group: []byte("group"), identity: id.PublicKey().Bytes(), epoch: 7, auth: make([]byte, authPrefix),
		timeMs: 1, nick: "n", counts: []epochCount{{6, 2}, {7, 1}},
		relayed: []relayCount{{sender: bytes.Repeat([]byte{9}, 32), epoch: 6, count: 4}}}
	hbb, err := hb.sign(id)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hbb)
	f.Add((&commitFrame{epoch: 3, hs: []byte("tc\x01\x02xyz"), welcome: []byte("w")}).marshal())
	f.Add((&commitFrame{epoch: 3, hs: []byte("h")}).marshal())
	f.Add((&proposalFrame{epoch: 1, hs: [][]byte{[]byte("p")}}).marshal())
	f.Add((&proposalFrame{epoch: 1, hs: [][]byte{[]byte("p"), []byte("q")}}).marshal())
	f.Add(syncItem(9, []byte("m")))
	f.Add([]byte{frameApp})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := parseCommitFrame(b); err == nil && !bytes.Equal(c.marshal(), b) {
			t.Fatalf("commit frame %x re-encodes as %x", b, c.marshal())
		}
		if p, err := parseProposalFrame(b); err == nil && !bytes.Equal(p.marshal(), b) {
			t.Fatalf("proposal frame %x re-encodes as %x", b, p.marshal())
		}
		if h, err := parseHeartbeat(b); err == nil {
			if !bytes.Equal(append(h.signed(), h.sig...), b) {
				t.Fatalf("heartbeat %x re-encodes differently", b)
			}
		}
		if e, frame, ok := parseSyncItem(b); ok && !bytes.Equal(syncItem(e, frame), b) {
			t.Fatalf("sync item %x re-encodes differently", b)
		}
		g := &group{sent: map[uint64]uint32{}, got: map[uint64]map[string]uint32{}}
		_ = g.parseDelivery(b)
	})
}

// FuzzEpochRec feeds arbitrary bytes as a saved epoch record (read from the store at a
// restart): parsing never panics, and what parses encodes to a record that parses to
// the same.
func FuzzEpochRec(f *testing.F) {
	r := epochRec{epoch: 4, auth: bytes.Repeat([]byte{5}, 32), state: []byte("state"), frame: []byte("frame"),
		key: commitKey{rank: 1, hash: [32]byte{3}}, props: [][]byte{[]byte("p")}, idents: map[string]bool{"m": true}}
	b, err := r.marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{histVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := unmarshalEpochRec(data)
		if err != nil {
			return
		}
		b, err := r.marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := unmarshalEpochRec(b)
		if err != nil {
			t.Fatalf("a parsed record encodes to bytes that do not parse: %v", err)
		}
		b2, err := r2.marshal()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("the encoding is not stable: %v", err)
		}
	})
}
