package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
)

func init() { register("secret-tree", runSecretTree) }

// runSecretTree checks the sender data key and nonce and the handshake and application
// ratchets of every leaf (test-vectors.md, "Secret Tree").
func runSecretTree(raw json.RawMessage) error {
	type generation struct {
		Generation       uint32   `json:"generation"`
		HandshakeKey     hexBytes `json:"handshake_key"`
		HandshakeNonce   hexBytes `json:"handshake_nonce"`
		ApplicationKey   hexBytes `json:"application_key"`
		ApplicationNonce hexBytes `json:"application_nonce"`
	}
	var v struct {
		CipherSuite uint16 `json:"cipher_suite"`
		SenderData  struct {
			SenderDataSecret hexBytes `json:"sender_data_secret"`
			Ciphertext       hexBytes `json:"ciphertext"`
			Key              hexBytes `json:"key"`
			Nonce            hexBytes `json:"nonce"`
		} `json:"sender_data"`
		EncryptionSecret hexBytes       `json:"encryption_secret"`
		Leaves           [][]generation `json:"leaves"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	cs, err := lookupSuite(v.CipherSuite)
	if err != nil {
		return err
	}

	sd := v.SenderData
	key, nonce, err := schedule.SenderDataKeyNonce(cs, sd.SenderDataSecret, sd.Ciphertext)
	if err != nil {
		return fmt.Errorf("sender_data: %w", err)
	}
	if !bytes.Equal(key, sd.Key) {
		return mismatch("sender_data.key", key, sd.Key)
	}
	if !bytes.Equal(nonce, sd.Nonce) {
		return mismatch("sender_data.nonce", nonce, sd.Nonce)
	}

	n := uint32(len(v.Leaves))
	// The vector's generations may be far apart: let the receiver ratchet as far as needed.
	opts := &schedule.Options{MaxForwardDistance: 1 << 20, OutOfOrderTolerance: 1 << 20}
	tree, err := schedule.NewSecretTree(cs, v.EncryptionSecret, n, opts)
	if err != nil {
		return err
	}
	defer tree.Zero()
	for i, gens := range v.Leaves {
		leaf := treemath.LeafIndex(i)
		for _, g := range gens {
			for _, c := range []struct {
				typ        schedule.RatchetType
				key, nonce []byte
			}{
				{schedule.HandshakeRatchet, g.HandshakeKey, g.HandshakeNonce},
				{schedule.ApplicationRatchet, g.ApplicationKey, g.ApplicationNonce},
			} {
				kn, err := tree.Key(leaf, c.typ, g.Generation)
				if err != nil {
					return fmt.Errorf("leaf %d %s generation %d: %w", i, c.typ, g.Generation, err)
				}
				what := fmt.Sprintf("leaf %d %s generation %d", i, c.typ, g.Generation)
				if kn.Generation != g.Generation {
					return fmt.Errorf("%s: key of generation %d", what, kn.Generation)
				}
				if !bytes.Equal(kn.Key, c.key) {
					return mismatch(what+" key", kn.Key, c.key)
				}
				if !bytes.Equal(kn.Nonce, c.nonce) {
					return mismatch(what+" nonce", kn.Nonce, c.nonce)
				}
				kn.Zero()
				// A generation can be used once.
				if _, err := tree.Key(leaf, c.typ, g.Generation); err == nil {
					return fmt.Errorf("%s: handed out twice", what)
				}
			}
		}
	}
	return nil
}
