package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/ratchettree"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

func init() { register("tree-operations", runTreeOperations) }

// runTreeOperations applies an Add, Update or Remove proposal from proposal_sender to
// tree_before and compares the resulting tree and both tree hashes (test-vectors.md,
// "Tree Operations").
func runTreeOperations(raw json.RawMessage) error {
	var v struct {
		CipherSuite    uint16   `json:"cipher_suite"`
		TreeBefore     hexBytes `json:"tree_before"`
		Proposal       hexBytes `json:"proposal"`
		ProposalSender uint32   `json:"proposal_sender"`
		TreeHashBefore hexBytes `json:"tree_hash_before"`
		TreeAfter      hexBytes `json:"tree_after"`
		TreeHashAfter  hexBytes `json:"tree_hash_after"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	cs, err := lookupSuite(v.CipherSuite)
	if err != nil {
		return err
	}
	rt, err := wire.DecodeRatchetTree(v.TreeBefore)
	if err != nil {
		return err
	}
	tree, err := ratchettree.FromWire(cs, rt)
	if err != nil {
		return err
	}
	if got := tree.TreeHash(); !bytes.Equal(got, v.TreeHashBefore) {
		return mismatch("tree_hash_before", got, v.TreeHashBefore)
	}
	var prop wire.Proposal
	if err := codec.Unmarshal(v.Proposal, &prop); err != nil {
		return err
	}
	sender := ratchettree.LeafIndex(v.ProposalSender)
	switch {
	case prop.Add != nil:
		_, err = tree.AddLeaf(&prop.Add.KeyPackage.LeafNode)
	case prop.Update != nil:
		err = tree.Update(sender, &prop.Update.LeafNode)
	case prop.Remove != nil:
		err = tree.Remove(ratchettree.LeafIndex(prop.Remove.Removed))
	default:
		return fmt.Errorf("unexpected proposal type %v", prop.ProposalType)
	}
	if err != nil {
		return err
	}
	after := tree.Wire()
	got, err := codec.Marshal(&after)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, v.TreeAfter) {
		return mismatch("tree_after", got, v.TreeAfter)
	}
	if got := tree.TreeHash(); !bytes.Equal(got, v.TreeHashAfter) {
		return mismatch("tree_hash_after", got, v.TreeHashAfter)
	}
	return nil
}
