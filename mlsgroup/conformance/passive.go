package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup"
)

func init() { register("passive-client", runPassiveClient) }

// runPassiveClient joins a group from a Welcome and follows its commits, checking the
// epoch authenticator after each (test-vectors.md, "Passive Client Scenarios").
func runPassiveClient(raw json.RawMessage) error {
	var v struct {
		CipherSuite  uint16 `json:"cipher_suite"`
		ExternalPSKs []struct {
			PSKID hexBytes `json:"psk_id"`
			PSK   hexBytes `json:"psk"`
		} `json:"external_psks"`
		KeyPackage                hexBytes  `json:"key_package"`
		SignaturePriv             hexBytes  `json:"signature_priv"`
		EncryptionPriv            hexBytes  `json:"encryption_priv"`
		InitPriv                  hexBytes  `json:"init_priv"`
		Welcome                   hexBytes  `json:"welcome"`
		RatchetTree               *hexBytes `json:"ratchet_tree"`
		InitialEpochAuthenticator hexBytes  `json:"initial_epoch_authenticator"`
		Epochs                    []struct {
			Proposals          []hexBytes `json:"proposals"`
			Commit             hexBytes   `json:"commit"`
			EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
		} `json:"epochs"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	bundle, err := mlsgroup.LoadKeyPackage(v.KeyPackage, v.InitPriv, v.EncryptionPriv, v.SignaturePriv)
	if err != nil {
		return err
	}
	if uint16(bundle.CipherSuite()) != v.CipherSuite {
		return fmt.Errorf("key package suite 0x%04x, vector 0x%04x", uint16(bundle.CipherSuite()), v.CipherSuite)
	}
	psks := map[string][]byte{}
	for _, p := range v.ExternalPSKs {
		psks[string(p.PSKID)] = p.PSK
	}
	opts := mlsgroup.Options{PSKs: mlsgroup.PSKs{External: func(id []byte) ([]byte, bool) {
		psk, ok := psks[string(id)]
		return psk, ok
	}}}
	var tree []byte
	if v.RatchetTree != nil {
		tree = *v.RatchetTree
	}
	g, err := mlsgroup.Join(v.Welcome, bundle, tree, opts)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if got := g.EpochAuthenticator(); !bytes.Equal(got, v.InitialEpochAuthenticator) {
		return mismatch("initial epoch authenticator", got, v.InitialEpochAuthenticator)
	}
	for i, e := range v.Epochs {
		for j, p := range e.Proposals {
			if _, err := g.Process(p); err != nil {
				return fmt.Errorf("epoch %d proposal %d: %w", i, j, err)
			}
		}
		if _, err := g.Process(e.Commit); err != nil {
			return fmt.Errorf("epoch %d commit: %w", i, err)
		}
		if got := g.EpochAuthenticator(); !bytes.Equal(got, e.EpochAuthenticator) {
			return mismatch(fmt.Sprintf("epoch %d authenticator", i), got, e.EpochAuthenticator)
		}
	}
	return nil
}
