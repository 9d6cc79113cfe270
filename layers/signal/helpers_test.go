package signal

import (
	"bytes"
	"crypto"
	"io"
	"os"
	"testing"
)

type fakeSigner struct{}

func (fakeSigner) Public() crypto.PublicKey { return []byte("not a key") }
func (fakeSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, nil
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// senderKeys counts the sender keys l holds of its peers.
func senderKeys(l *Layer) int {
	n := 0
	for _, p := range l.peers {
		n += len(p.keys)
	}
	return n
}

// restored returns m as it comes back from its saved state (of the current version),
// which must encode to the same bytes again.
func restored(t testing.TB, m *member) *member {
	t.Helper()
	saved := state(t, m)
	if saved[0] != stateVersion {
		t.Fatalf("state of version %d", saved[0])
	}
	l, err := New(m.id, m.ident)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	if again, _ := l.MarshalBinary(); !bytes.Equal(again, saved) {
		t.Fatal("state does not encode the same after a round trip")
	}
	return &member{name: m.name, id: m.id, ident: m.ident, l: l}
}

// savedAgain saves b's state, loaded from saved (of an older version), and checks that it
// is more bytes longer, and 4 more for the count of hand-outs owed (none) that versions
// before 5 lack, and (restored) a state of the current version that loads and encodes the
// same.
func savedAgain(t testing.TB, b *member, saved []byte, more int) {
	t.Helper()
	if saved[0] < 5 {
		more += 4
	}
	if again := state(t, b); len(again) != len(saved)+more {
		t.Fatalf("version-%d state saved again in %d bytes, want %d", saved[0], len(again), len(saved)+more)
	}
	restored(t, b)
}
