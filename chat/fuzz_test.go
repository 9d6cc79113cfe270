package chat

import (
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
