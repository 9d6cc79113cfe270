package schedule

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
)

// PSK is one pre-shared key injected into an epoch (RFC 9420, Section 8.4).
type PSK struct {
	// ID is the encoded PreSharedKeyID (psktype, psk_id or resumption fields, psk_nonce).
	ID []byte
	// Secret is the PSK itself: the application's external PSK or a resumption_psk.
	Secret []byte
}

// MaxPSKs is the largest number of PSKs one epoch can inject: PSKLabel.count is a uint16.
const MaxPSKs = 0xffff

// PSKSecret is psk_secret (RFC 9420, Section 8.4), chaining the PSKs in order:
//
//	psk_extracted_[i] = KDF.Extract(0, psk_[i])
//	psk_input_[i] = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, KDF.Nh)
//	psk_secret_[0] = 0
//	psk_secret_[i] = KDF.Extract(psk_input_[i-1], psk_secret_[i-1])
//	psk_secret     = psk_secret_[n]
//
// with PSKLabel = { PreSharedKeyID id; uint16 index; uint16 count; } and 0 the all-zero
// vector of KDF.Nh bytes. With no PSKs the result is that zero vector.
func PSKSecret(cs *suite.Suite, psks []PSK) ([]byte, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	if len(psks) > MaxPSKs {
		return nil, fmt.Errorf("mls: %d PSKs, at most %d allowed", len(psks), MaxPSKs)
	}
	zeroes := make([]byte, cs.Nh())
	secret := make([]byte, cs.Nh()) // psk_secret_[0]
	for i, p := range psks {
		if len(p.ID) == 0 {
			return nil, fmt.Errorf("mls: PSK %d has an empty PreSharedKeyID", i)
		}
		var b cryptobyte.Builder
		b.AddBytes(p.ID)
		b.AddUint16(uint16(i))
		b.AddUint16(uint16(len(psks)))
		label := b.BytesOrPanic() // AddBytes and AddUint16 cannot fail
		extracted := cs.Extract(zeroes, p.Secret)
		input, err := cs.ExpandWithLabel(extracted, "derived psk", label, cs.Nh())
		zero(extracted)
		if err != nil {
			zero(secret)
			return nil, err
		}
		next := cs.Extract(input, secret)
		zero(input, secret)
		secret = next
	}
	return secret, nil
}
