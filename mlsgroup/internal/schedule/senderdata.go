package schedule

import (
	"errors"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
)

// SenderDataKeyNonce derives the AEAD key and nonce of a PrivateMessage's sender data
// (RFC 9420, Section 6.3.2) from sender_data_secret and the message's ciphertext:
//
//	ciphertext_sample = ciphertext[0..KDF.Nh-1]   (all of it if shorter)
//	sender_data_key = ExpandWithLabel(sender_data_secret, "key", ciphertext_sample, AEAD.Nk)
//	sender_data_nonce = ExpandWithLabel(sender_data_secret, "nonce", ciphertext_sample, AEAD.Nn)
func SenderDataKeyNonce(cs *suite.Suite, senderDataSecret, ciphertext []byte) (key, nonce []byte, err error) {
	if cs == nil {
		return nil, nil, errors.New("mls: no cipher suite")
	}
	if len(senderDataSecret) != cs.Nh() {
		return nil, nil, fmt.Errorf("mls: sender_data_secret is %d bytes, want %d", len(senderDataSecret), cs.Nh())
	}
	sample := ciphertext[:min(len(ciphertext), cs.Nh())]
	if key, err = cs.ExpandWithLabel(senderDataSecret, "key", sample, cs.KeySize()); err != nil {
		return nil, nil, err
	}
	if nonce, err = cs.ExpandWithLabel(senderDataSecret, "nonce", sample, cs.NonceSize()); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}
