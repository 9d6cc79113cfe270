package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

func init() { register("transcript-hashes", runTranscriptHashes) }

// runTranscriptHashes updates the transcript hashes with a Commit and checks its
// confirmation tag (test-vectors.md, "Transcript Hashes").
func runTranscriptHashes(raw json.RawMessage) error {
	var v struct {
		CipherSuite                  uint16   `json:"cipher_suite"`
		ConfirmationKey              hexBytes `json:"confirmation_key"`
		AuthenticatedContent         hexBytes `json:"authenticated_content"`
		InterimTranscriptHashBefore  hexBytes `json:"interim_transcript_hash_before"`
		ConfirmedTranscriptHashAfter hexBytes `json:"confirmed_transcript_hash_after"`
		InterimTranscriptHashAfter   hexBytes `json:"interim_transcript_hash_after"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	cs, err := lookupSuite(v.CipherSuite)
	if err != nil {
		return err
	}
	ac, err := wire.DecodeAuthenticatedContent(v.AuthenticatedContent)
	if err != nil {
		return fmt.Errorf("authenticated_content: %w", err)
	}
	if ac.Content.ContentType != wire.ContentTypeCommit {
		return fmt.Errorf("authenticated_content: content type %v, want commit", ac.Content.ContentType)
	}
	input, err := codec.Marshal(ac.ConfirmedTranscriptHashInput())
	if err != nil {
		return fmt.Errorf("ConfirmedTranscriptHashInput: %w", err)
	}
	confirmed := schedule.ConfirmedTranscriptHash(cs, v.InterimTranscriptHashBefore, input)
	if !bytes.Equal(confirmed, v.ConfirmedTranscriptHashAfter) {
		return mismatch("confirmed_transcript_hash_after", confirmed, v.ConfirmedTranscriptHashAfter)
	}
	tag := ac.Auth.ConfirmationTag
	if !schedule.VerifyConfirmationTag(cs, v.ConfirmationKey, confirmed, tag) {
		return fmt.Errorf("confirmation_tag %x does not verify", []byte(tag))
	}
	if got := schedule.ConfirmationTag(cs, v.ConfirmationKey, confirmed); !bytes.Equal(got, tag) {
		return mismatch("confirmation_tag", got, tag)
	}
	interim, err := schedule.InterimTranscriptHash(cs, confirmed, tag)
	if err != nil {
		return err
	}
	if !bytes.Equal(interim, v.InterimTranscriptHashAfter) {
		return mismatch("interim_transcript_hash_after", interim, v.InterimTranscriptHashAfter)
	}
	// The interim input encodes as wire's InterimTranscriptHashInput.
	enc, err := codec.Marshal(&wire.InterimTranscriptHashInput{ConfirmationTag: tag})
	if err != nil {
		return err
	}
	if h := cs.Hash(append(append([]byte(nil), confirmed...), enc...)); !bytes.Equal(h, interim) {
		return mismatch("interim transcript hash over wire.InterimTranscriptHashInput", h, interim)
	}
	return nil
}
