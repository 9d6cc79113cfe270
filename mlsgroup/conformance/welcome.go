package conformance

import (
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup"
)

func init() { register("welcome", runWelcome) }

// runWelcome opens the Welcome with the KeyPackage's init key, verifies the GroupInfo
// signature with signer_pub and its confirmation tag (test-vectors.md, "Welcome").
func runWelcome(raw json.RawMessage) error {
	var v struct {
		CipherSuite uint16   `json:"cipher_suite"`
		InitPriv    hexBytes `json:"init_priv"`
		SignerPub   hexBytes `json:"signer_pub"`
		KeyPackage  hexBytes `json:"key_package"`
		Welcome     hexBytes `json:"welcome"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	bundle, err := mlsgroup.LoadKeyPackage(v.KeyPackage, v.InitPriv, nil, nil)
	if err != nil {
		return err
	}
	if uint16(bundle.CipherSuite()) != v.CipherSuite {
		return fmt.Errorf("key package suite 0x%04x, vector 0x%04x", uint16(bundle.CipherSuite()), v.CipherSuite)
	}
	pending, err := bundle.OpenWelcome(v.Welcome, mlsgroup.PSKs{})
	if err != nil {
		return err
	}
	return pending.VerifyGroupInfoSignature(v.SignerPub)
}
