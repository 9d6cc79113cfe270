package mlsgroup

import (
	"errors"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/framing"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// ExternalSenderType is the extension type of external_senders (RFC 9420, Section 12.1.8.1).
const ExternalSenderType = uint16(wire.ExtensionTypeExternalSenders)

// ExternalSender is a party outside the group allowed to send it proposals.
type ExternalSender struct {
	SignatureKey []byte
	Identity     []byte
}

// ExternalSendersExtension encodes an external_senders GroupContext extension, to put in
// Options.Extensions or CommitOptions.Extensions under ExternalSenderType.
func ExternalSendersExtension(senders []ExternalSender) ([]byte, error) {
	list := make(wire.ExternalSenders, len(senders))
	for i, s := range senders {
		list[i] = wire.ExternalSender{SignatureKey: s.SignatureKey, Credential: wire.NewBasicCredential(s.Identity)}
	}
	return codec.Marshal(&list)
}

// ExternalProposal makes a proposal from an external sender (RFC 9420, Section 12.1.8):
// senderIndex is the sender's position in the group's external_senders extension, key its
// signing key, and groupID and epoch name the group state it is for. External senders may
// propose Add and Remove; the result is a PublicMessage to send to the group.
func ExternalProposal(key *SigningKey, senderIndex uint32, groupID []byte, epoch uint64, p Proposal) ([]byte, error) {
	cs, err := suite.Lookup(key.suite)
	if err != nil {
		return nil, err
	}
	var wp wire.Proposal
	switch {
	case p.Remove != nil && p.Add == nil && !p.Update:
		wp = wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: *p.Remove}}
	case p.Add != nil && p.Remove == nil && !p.Update:
		kp, _, err := decodeKeyPackage(p.Add)
		if err != nil {
			return nil, err
		}
		wp = wire.Proposal{ProposalType: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}}
	default:
		return nil, errors.New("mls: an external sender proposes exactly one Add or Remove")
	}
	// An external sender's signature does not cover the GroupContext (RFC 9420, Section
	// 6.1), so no group state is needed beyond its id and epoch.
	keys := &framing.Keys{Suite: cs}
	ac, err := keys.Sign(key.k, wire.WireFormatPublicMessage, &wire.FramedContent{
		GroupID: groupID, Epoch: epoch,
		Sender:            wire.Sender{SenderType: wire.SenderTypeExternal, SenderIndex: senderIndex},
		AuthenticatedData: []byte{}, ContentType: wire.ContentTypeProposal, Proposal: &wp,
	})
	if err != nil {
		return nil, err
	}
	pm, err := keys.ProtectPublic(ac)
	if err != nil {
		return nil, fmt.Errorf("mls: %w", err)
	}
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
}
