package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/ratchettree"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

func init() { register("treekem", runTreeKEM) }

// runTreeKEM loads the private state of every member, checks it against the tree, then for
// each UpdatePath: merges it (which verifies the leaf's signature and parent hash), checks
// the tree hash after the merge, and has every other member decrypt it and derive the
// expected path secret and commit secret; finally the sender creates a fresh UpdatePath
// that every other member must process to the same commit secret (test-vectors.md,
// "TreeKEM").
func runTreeKEM(raw json.RawMessage) error {
	type pathSecret struct {
		Node       uint32   `json:"node"`
		PathSecret hexBytes `json:"path_secret"`
	}
	var v struct {
		CipherSuite             uint16   `json:"cipher_suite"`
		GroupID                 hexBytes `json:"group_id"`
		Epoch                   uint64   `json:"epoch"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
		RatchetTree             hexBytes `json:"ratchet_tree"`
		LeavesPrivate           []struct {
			Index          uint32       `json:"index"`
			EncryptionPriv hexBytes     `json:"encryption_priv"`
			SignaturePriv  hexBytes     `json:"signature_priv"`
			PathSecrets    []pathSecret `json:"path_secrets"`
		} `json:"leaves_private"`
		UpdatePaths []struct {
			Sender        uint32      `json:"sender"`
			UpdatePath    hexBytes    `json:"update_path"`
			PathSecrets   []*hexBytes `json:"path_secrets"`
			CommitSecret  hexBytes    `json:"commit_secret"`
			TreeHashAfter hexBytes    `json:"tree_hash_after"`
		} `json:"update_paths"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	cs, err := lookupSuite(v.CipherSuite)
	if err != nil {
		return err
	}
	rt, err := wire.DecodeRatchetTree(v.RatchetTree)
	if err != nil {
		return err
	}
	tree, err := ratchettree.FromWire(cs, rt)
	if err != nil {
		return err
	}
	groupContext := func(treeHash []byte) ([]byte, error) {
		return codec.Marshal(&wire.GroupContext{
			CipherSuite:             wire.CipherSuite(v.CipherSuite),
			GroupID:                 v.GroupID,
			Epoch:                   v.Epoch,
			TreeHash:                treeHash,
			ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
			Extensions:              wire.Extensions{},
		})
	}
	opts := &ratchettree.LeafNodeOptions{GroupID: v.GroupID}

	// Private state of each member, checked against the tree.
	privs := map[ratchettree.LeafIndex]*ratchettree.PrivateKeys{}
	signers := map[ratchettree.LeafIndex]*suite.SigningKey{}
	for _, lp := range v.LeavesPrivate {
		l := ratchettree.LeafIndex(lp.Index)
		encPriv, err := cs.ParseHPKEPrivateKey(lp.EncryptionPriv)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", l, err)
		}
		p, err := ratchettree.NewPrivateKeys(tree, l, encPriv)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", l, err)
		}
		for _, ps := range lp.PathSecrets {
			if err := p.SetPathSecret(tree, ratchettree.NodeIndex(ps.Node), ps.PathSecret); err != nil {
				return fmt.Errorf("leaf %d: %w", l, err)
			}
		}
		if err := p.Check(tree); err != nil {
			return fmt.Errorf("leaf %d: %w", l, err)
		}
		sig, err := cs.ParseSigningKey(lp.SignaturePriv)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", l, err)
		}
		if !bytes.Equal(sig.PublicKey(), tree.Leaf(l).SignatureKey) {
			return fmt.Errorf("leaf %d: signature_priv does not match the leaf", l)
		}
		privs[l], signers[l] = p, sig
	}

	// process merges path into a copy of the tree and has every other member decrypt it;
	// check receives each member's result.
	process := func(sender ratchettree.LeafIndex, path *wire.UpdatePath, check func(l ratchettree.LeafIndex, d *ratchettree.Decrypted) error) (*ratchettree.Tree, error) {
		merged := tree.Clone()
		if err := merged.ApplyUpdatePath(sender, path, opts); err != nil {
			return nil, err
		}
		gc, err := groupContext(merged.TreeHash())
		if err != nil {
			return nil, err
		}
		for l := range tree.Leaves() {
			if l == sender {
				continue
			}
			p, ok := privs[l]
			if !ok {
				return nil, fmt.Errorf("no private state for leaf %d", l)
			}
			p = p.Clone()
			d, err := p.DecryptUpdatePath(merged, sender, path, gc, nil)
			if err != nil {
				return nil, fmt.Errorf("leaf %d: %w", l, err)
			}
			if err := p.Check(merged); err != nil {
				return nil, fmt.Errorf("leaf %d after the commit: %w", l, err)
			}
			if err := check(l, d); err != nil {
				return nil, fmt.Errorf("leaf %d: %w", l, err)
			}
		}
		return merged, nil
	}

	for k, up := range v.UpdatePaths {
		fail := func(err error) error { return fmt.Errorf("update path %d: %w", k, err) }
		sender := ratchettree.LeafIndex(up.Sender)
		var path wire.UpdatePath
		if err := codec.Unmarshal(up.UpdatePath, &path); err != nil {
			return fail(err)
		}
		merged, err := process(sender, &path, func(l ratchettree.LeafIndex, d *ratchettree.Decrypted) error {
			if int(l) >= len(up.PathSecrets) || up.PathSecrets[l] == nil {
				return fmt.Errorf("no expected path secret")
			}
			if want := *up.PathSecrets[l]; !bytes.Equal(d.PathSecret, want) {
				return mismatch("path_secret", d.PathSecret, want)
			}
			if !bytes.Equal(d.CommitSecret, up.CommitSecret) {
				return mismatch("commit_secret", d.CommitSecret, up.CommitSecret)
			}
			return nil
		})
		if err != nil {
			return fail(err)
		}
		if got := merged.TreeHash(); !bytes.Equal(got, up.TreeHashAfter) {
			return fail(mismatch("tree_hash_after", got, up.TreeHashAfter))
		}
		if err := merged.VerifyParentHashes(); err != nil {
			return fail(fmt.Errorf("tree after the path: %w", err))
		}

		// A fresh UpdatePath from the same sender.
		signer, ok := signers[sender]
		if !ok {
			return fail(fmt.Errorf("no signature key for sender %d", sender))
		}
		mine := tree.Clone()
		pending, err := mine.GenerateUpdatePath(sender, nil, signer, v.GroupID)
		if err != nil {
			return fail(fmt.Errorf("creating a path: %w", err))
		}
		gc, err := groupContext(mine.TreeHash())
		if err != nil {
			return fail(err)
		}
		newPath, err := pending.Encrypt(gc, nil)
		if err != nil {
			return fail(err)
		}
		if err := pending.PrivateKeys().Check(mine); err != nil {
			return fail(fmt.Errorf("committer's keys: %w", err))
		}
		if err := mine.VerifyParentHashes(); err != nil {
			return fail(fmt.Errorf("tree after the fresh path: %w", err))
		}
		theirs, err := process(sender, newPath, func(l ratchettree.LeafIndex, d *ratchettree.Decrypted) error {
			want := pending.CommitSecret()
			if !bytes.Equal(d.CommitSecret, want) {
				return mismatch("new commit_secret", d.CommitSecret, want)
			}
			ps, err := pending.PathSecret(l)
			if err != nil {
				return err
			}
			if !bytes.Equal(d.PathSecret, ps) {
				return mismatch("new path_secret", d.PathSecret, ps)
			}
			return nil
		})
		if err != nil {
			return fail(fmt.Errorf("fresh path: %w", err))
		}
		if !bytes.Equal(theirs.TreeHash(), mine.TreeHash()) {
			return fail(mismatch("tree hash after the fresh path", theirs.TreeHash(), mine.TreeHash()))
		}
	}
	return nil
}
