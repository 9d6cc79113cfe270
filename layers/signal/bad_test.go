package signal

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/layers"
)

// refuse checks that opening msg fails with ErrAuth and changes no state.
func refuse(t *testing.T, to *member, from []byte, msg, ad []byte, what string) {
	t.Helper()
	before := state(t, to)
	pt, err := open(to, from, msg, ad)
	if !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("%s: opened (%q, %v)", what, pt, err)
	}
	if err != layers.ErrAuth && err != layers.ErrNoKey {
		t.Fatalf("%s: error %v is not the one auth error", what, err)
	}
	if !bytes.Equal(before, state(t, to)) {
		t.Fatalf("%s: state changed", what)
	}
}

func TestBadInput(t *testing.T) {
	ms := group(t, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	// A prekey message, and a group message carrying distributions (with
	// prekey messages inside, as no sessions exist yet).
	prekey := sealTo(t, a, []byte("prekey"), b)
	gdist := sealTo(t, c, []byte("group with key"), a, b)
	runBad(t, b, a, prekey, []byte("prekey"), "prekey")
	runBad(t, b, c, gdist, []byte("group with key"), "group+distribution")
	mustOpen(t, a, c, gdist, []byte("group with key"))
	// Established sessions and sender keys.
	mustOpen(t, a, b, sealTo(t, b, []byte("reply"), a), []byte("reply"))
	runBad(t, b, a, sealTo(t, a, []byte("pairwise"), b), []byte("pairwise"), "pairwise")
	g := sealTo(t, c, []byte("group"), a, b)
	runBad(t, b, c, g, []byte("group"), "group")
	mustOpen(t, a, c, g, []byte("group"))
}

// runBad opens msg at to after trying every corruption of it, each of which
// must be refused without a state change; then checks that a replay is
// refused too.
func runBad(t *testing.T, to, from *member, msg, pt []byte, name string) {
	t.Helper()
	start := time.Now()
	step := 1
	if len(msg) > 256 && testing.Short() {
		step = 7 // every 7th bit of the large handshake messages
	}
	for bit := 0; bit < 8*len(msg); bit += step {
		bad := bytes.Clone(msg)
		bad[bit/8] ^= 1 << (bit % 8)
		refuse(t, to, from.id, bad, testAD, name+": flipped bit")
	}
	for n := range len(msg) {
		refuse(t, to, from.id, msg[:n], testAD, name+": truncated")
	}
	refuse(t, to, from.id, append(bytes.Clone(msg), 0), testAD, name+": extended")
	refuse(t, to, from.id, msg, []byte("another group"), name+": wrong AD")
	refuse(t, to, []byte("mallory"), msg, testAD, name+": unknown sender")
	for _, other := range to.l.peers {
		if !bytes.Equal(other.id, from.id) {
			refuse(t, to, other.id, msg, testAD, name+": wrong sender")
		}
	}
	mustOpen(t, to, from, msg, pt)
	refuse(t, to, from.id, msg, testAD, name+": replay")
	t.Logf("%s: %d bytes, %v", name, len(msg), time.Since(start))
}
