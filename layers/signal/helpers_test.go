package signal

import (
	"crypto"
	"io"
)

type fakeSigner struct{}

func (fakeSigner) Public() crypto.PublicKey { return []byte("not a key") }
func (fakeSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, nil
}
