package signal

import (
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
