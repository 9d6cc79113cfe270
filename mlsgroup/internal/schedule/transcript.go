package schedule

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
)

// ConfirmedTranscriptHash is RFC 9420, Section 8.2:
//
//	confirmed_transcript_hash_[epoch] =
//	    Hash(interim_transcript_hash_[epoch - 1] || ConfirmedTranscriptHashInput_[epoch])
//
// confirmedInput is the encoded ConfirmedTranscriptHashInput of the Commit
// (wire_format || FramedContent || signature<V>). The transcript hashes of epoch 0 are the
// empty string.
func ConfirmedTranscriptHash(cs *suite.Suite, interimBefore, confirmedInput []byte) []byte {
	h := cs.NewHash()
	h.Write(interimBefore)
	h.Write(confirmedInput)
	return h.Sum(nil)
}

// InterimTranscriptHash is RFC 9420, Section 8.2:
//
//	interim_transcript_hash_[epoch] =
//	    Hash(confirmed_transcript_hash_[epoch] || InterimTranscriptHashInput_[epoch])
//
// where InterimTranscriptHashInput is { MAC confirmation_tag; }, encoded here from the tag.
func InterimTranscriptHash(cs *suite.Suite, confirmed, confirmationTag []byte) ([]byte, error) {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, confirmationTag)
	input, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	h := cs.NewHash()
	h.Write(confirmed)
	h.Write(input)
	return h.Sum(nil), nil
}

// ConfirmationTag is RFC 9420, Section 6.1:
//
//	confirmation_tag = MAC(confirmation_key, GroupContext.confirmed_transcript_hash)
//
// with the confirmation_key and confirmed transcript hash of the epoch the Commit creates.
func ConfirmationTag(cs *suite.Suite, confirmationKey, confirmedTranscriptHash []byte) []byte {
	return cs.MAC(confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag checks a confirmation tag in constant time (RFC 9420, Section 6.1).
func VerifyConfirmationTag(cs *suite.Suite, confirmationKey, confirmedTranscriptHash, tag []byte) bool {
	return cs.VerifyMAC(confirmationKey, confirmedTranscriptHash, tag)
}
