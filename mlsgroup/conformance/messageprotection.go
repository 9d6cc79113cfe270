package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/framing"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

func init() { register("message-protection", runMessageProtection) }

// runMessageProtection checks PublicMessage and PrivateMessage protection of a proposal, a
// commit and application data, sent by leaf 1 of a two-member group (test-vectors.md,
// "Message Protection").
func runMessageProtection(raw json.RawMessage) error {
	var v struct {
		CipherSuite             uint16   `json:"cipher_suite"`
		GroupID                 hexBytes `json:"group_id"`
		Epoch                   uint64   `json:"epoch"`
		TreeHash                hexBytes `json:"tree_hash"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
		SignaturePriv           hexBytes `json:"signature_priv"`
		SignaturePub            hexBytes `json:"signature_pub"`
		EncryptionSecret        hexBytes `json:"encryption_secret"`
		SenderDataSecret        hexBytes `json:"sender_data_secret"`
		MembershipKey           hexBytes `json:"membership_key"`
		Proposal                hexBytes `json:"proposal"`
		ProposalPub             hexBytes `json:"proposal_pub"`
		ProposalPriv            hexBytes `json:"proposal_priv"`
		Commit                  hexBytes `json:"commit"`
		CommitPub               hexBytes `json:"commit_pub"`
		CommitPriv              hexBytes `json:"commit_priv"`
		Application             hexBytes `json:"application"`
		ApplicationPriv         hexBytes `json:"application_priv"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	cs, err := lookupSuite(v.CipherSuite)
	if err != nil {
		return err
	}
	signer, err := cs.ParseSigningKey(v.SignaturePriv)
	if err != nil {
		return err
	}
	gc := &wire.GroupContext{
		Version:                 wire.ProtocolVersionMLS10,
		CipherSuite:             wire.CipherSuite(v.CipherSuite),
		GroupID:                 v.GroupID,
		Epoch:                   v.Epoch,
		TreeHash:                v.TreeHash,
		ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
		Extensions:              wire.Extensions{},
	}
	// newKeys gives each check a fresh two-leaf secret tree, as the vector format says.
	newKeys := func() (*framing.Keys, error) {
		tree, err := schedule.NewSecretTree(cs, v.EncryptionSecret, 2, nil)
		if err != nil {
			return nil, err
		}
		return &framing.Keys{Suite: cs, Context: gc, MembershipKey: v.MembershipKey, SenderDataSecret: v.SenderDataSecret, SecretTree: tree}, nil
	}

	var proposal wire.Proposal
	if err := codec.Unmarshal(v.Proposal, &proposal); err != nil {
		return fmt.Errorf("proposal: %w", err)
	}
	var commit wire.Commit
	if err := codec.Unmarshal(v.Commit, &commit); err != nil {
		return fmt.Errorf("commit: %w", err)
	}

	cases := []struct {
		name      string
		raw       []byte
		content   wire.FramedContent
		pub, priv []byte
	}{
		{"proposal", v.Proposal, wire.FramedContent{ContentType: wire.ContentTypeProposal, Proposal: &proposal}, v.ProposalPub, v.ProposalPriv},
		{"commit", v.Commit, wire.FramedContent{ContentType: wire.ContentTypeCommit, Commit: &commit}, v.CommitPub, v.CommitPriv},
		{"application", v.Application, wire.FramedContent{ContentType: wire.ContentTypeApplication, ApplicationData: v.Application}, nil, v.ApplicationPriv},
	}
	for _, c := range cases {
		c.content.GroupID = v.GroupID
		c.content.Epoch = v.Epoch
		c.content.Sender = wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: 1}
		c.content.AuthenticatedData = []byte{}
		if err := checkProtection(cs, newKeys, signer, v.SignaturePub, c.name, c.raw, &c.content, c.pub, c.priv); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

func checkProtection(cs *suite.Suite, newKeys func() (*framing.Keys, error), signer *suite.SigningKey, signaturePub []byte, name string, rawContent []byte, content *wire.FramedContent, pubMsg, privMsg []byte) error {
	keys, err := newKeys()
	if err != nil {
		return err
	}
	// The vector's PublicMessage verifies and carries the raw content.
	if pubMsg != nil {
		ac, err := unprotect(keys, pubMsg, wire.WireFormatPublicMessage)
		if err != nil {
			return fmt.Errorf("vector public message: %w", err)
		}
		if err := keys.Verify(signaturePub, ac); err != nil {
			return fmt.Errorf("vector public message signature: %w", err)
		}
		if err := sameContent(&ac.Content, rawContent); err != nil {
			return fmt.Errorf("vector public message: %w", err)
		}
	}

	// Protecting as a PublicMessage verifies; application data must be refused.
	ac, err := keys.Sign(signer, wire.WireFormatPublicMessage, content)
	if err != nil {
		return err
	}
	if content.ContentType == wire.ContentTypeCommit {
		ac.Auth.ConfirmationTag = make(wire.MAC, cs.Nh())
	}
	pm, err := keys.ProtectPublic(ac)
	if content.ContentType == wire.ContentTypeApplication {
		if err == nil {
			return errors.New("application data was protected as a public message")
		}
	} else {
		if err != nil {
			return err
		}
		enc, err := codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
		if err != nil {
			return err
		}
		back, err := unprotect(keys, enc, wire.WireFormatPublicMessage)
		if err != nil {
			return fmt.Errorf("own public message: %w", err)
		}
		if err := keys.Verify(signaturePub, back); err != nil {
			return fmt.Errorf("own public message signature: %w", err)
		}
		// A wrong membership key must be refused.
		bad := *keys
		bad.MembershipKey = append([]byte{1}, keys.MembershipKey[1:]...)
		if _, err := unprotect(&bad, enc, wire.WireFormatPublicMessage); !errors.Is(err, framing.ErrAuth) {
			return fmt.Errorf("own public message under a wrong membership key: %v", err)
		}
	}

	// The vector's PrivateMessage decrypts with a fresh secret tree and verifies.
	ac2, err := unprotect(keys, privMsg, wire.WireFormatPrivateMessage)
	if err != nil {
		return fmt.Errorf("vector private message: %w", err)
	}
	if err := keys.Verify(signaturePub, ac2); err != nil {
		return fmt.Errorf("vector private message signature: %w", err)
	}
	if err := sameContent(&ac2.Content, rawContent); err != nil {
		return fmt.Errorf("vector private message: %w", err)
	}
	// The same message again is a replay: its generation is consumed.
	if _, err := unprotect(keys, privMsg, wire.WireFormatPrivateMessage); err == nil {
		return errors.New("vector private message decrypted twice")
	}

	// Our own PrivateMessage round-trips between two fresh trees (sender and receiver).
	sendKeys, err := newKeys()
	if err != nil {
		return err
	}
	ac3, err := sendKeys.Sign(signer, wire.WireFormatPrivateMessage, content)
	if err != nil {
		return err
	}
	if content.ContentType == wire.ContentTypeCommit {
		ac3.Auth.ConfirmationTag = make(wire.MAC, cs.Nh())
	}
	priv, err := sendKeys.ProtectPrivate(ac3, 7)
	if err != nil {
		return err
	}
	enc, err := codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: priv})
	if err != nil {
		return err
	}
	recvKeys, err := newKeys()
	if err != nil {
		return err
	}
	back, err := unprotect(recvKeys, enc, wire.WireFormatPrivateMessage)
	if err != nil {
		return fmt.Errorf("own private message: %w", err)
	}
	if err := recvKeys.Verify(signaturePub, back); err != nil {
		return fmt.Errorf("own private message signature: %w", err)
	}
	return sameContent(&back.Content, rawContent)
}

// unprotect decodes an MLSMessage of the expected wire format and removes its protection.
func unprotect(keys *framing.Keys, data []byte, wf wire.WireFormat) (*wire.AuthenticatedContent, error) {
	var m wire.MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m.WireFormat != wf {
		return nil, fmt.Errorf("wire format %d, want %d", m.WireFormat, wf)
	}
	if wf == wire.WireFormatPublicMessage {
		return keys.UnprotectPublic(m.PublicMessage)
	}
	return keys.UnprotectPrivate(m.PrivateMessage)
}

// sameContent checks that the content of a message is the raw proposal, commit or
// application data of the vector.
func sameContent(c *wire.FramedContent, raw []byte) error {
	var got []byte
	var err error
	switch c.ContentType {
	case wire.ContentTypeApplication:
		got = c.ApplicationData
	case wire.ContentTypeProposal:
		got, err = codec.Marshal(c.Proposal)
	case wire.ContentTypeCommit:
		got, err = codec.Marshal(c.Commit)
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(got, raw) {
		return mismatch("content", got, raw)
	}
	return nil
}
