package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
)

func init() { register("crypto-basics", runCryptoBasics) }

// lookupSuite returns the suite of a vector, or an error naming it.
func lookupSuite(id uint16) (*suite.Suite, error) {
	return suite.Lookup(suite.ID(id))
}

// runCryptoBasics checks RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret,
// SignWithLabel and EncryptWithLabel (test-vectors.md, "Crypto Basics").
func runCryptoBasics(raw json.RawMessage) error {
	var v struct {
		CipherSuite uint16 `json:"cipher_suite"`
		RefHash     struct {
			Label string   `json:"label"`
			Value hexBytes `json:"value"`
			Out   hexBytes `json:"out"`
		} `json:"ref_hash"`
		ExpandWithLabel struct {
			Secret  hexBytes `json:"secret"`
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  int      `json:"length"`
			Out     hexBytes `json:"out"`
		} `json:"expand_with_label"`
		DeriveSecret struct {
			Secret hexBytes `json:"secret"`
			Label  string   `json:"label"`
			Out    hexBytes `json:"out"`
		} `json:"derive_secret"`
		DeriveTreeSecret struct {
			Secret     hexBytes `json:"secret"`
			Label      string   `json:"label"`
			Generation uint32   `json:"generation"`
			Length     int      `json:"length"`
			Out        hexBytes `json:"out"`
		} `json:"derive_tree_secret"`
		SignWithLabel struct {
			Priv      hexBytes `json:"priv"`
			Pub       hexBytes `json:"pub"`
			Content   hexBytes `json:"content"`
			Label     string   `json:"label"`
			Signature hexBytes `json:"signature"`
		} `json:"sign_with_label"`
		EncryptWithLabel struct {
			Priv       hexBytes `json:"priv"`
			Pub        hexBytes `json:"pub"`
			Label      string   `json:"label"`
			Context    hexBytes `json:"context"`
			Plaintext  hexBytes `json:"plaintext"`
			KEMOutput  hexBytes `json:"kem_output"`
			Ciphertext hexBytes `json:"ciphertext"`
		} `json:"encrypt_with_label"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	cs, err := lookupSuite(v.CipherSuite)
	if err != nil {
		return err
	}

	if got := cs.RefHash(v.RefHash.Label, v.RefHash.Value); !bytes.Equal(got, v.RefHash.Out) {
		return mismatch("ref_hash", got, v.RefHash.Out)
	}

	e := v.ExpandWithLabel
	got, err := cs.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length)
	if err != nil {
		return fmt.Errorf("expand_with_label: %w", err)
	}
	if !bytes.Equal(got, e.Out) {
		return mismatch("expand_with_label", got, e.Out)
	}

	if got := cs.DeriveSecret(v.DeriveSecret.Secret, v.DeriveSecret.Label); !bytes.Equal(got, v.DeriveSecret.Out) {
		return mismatch("derive_secret", got, v.DeriveSecret.Out)
	}

	d := v.DeriveTreeSecret
	got, err = cs.DeriveTreeSecret(d.Secret, d.Label, d.Generation, d.Length)
	if err != nil {
		return fmt.Errorf("derive_tree_secret: %w", err)
	}
	if !bytes.Equal(got, d.Out) {
		return mismatch("derive_tree_secret", got, d.Out)
	}

	sg := v.SignWithLabel
	if err := cs.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sg.Signature); err != nil {
		return fmt.Errorf("sign_with_label: vector signature: %w", err)
	}
	key, err := cs.ParseSigningKey(sg.Priv)
	if err != nil {
		return fmt.Errorf("sign_with_label: %w", err)
	}
	if !bytes.Equal(key.PublicKey(), sg.Pub) {
		return mismatch("sign_with_label: public key of priv", key.PublicKey(), sg.Pub)
	}
	sig, err := cs.SignWithLabel(key, sg.Label, sg.Content)
	if err != nil {
		return fmt.Errorf("sign_with_label: %w", err)
	}
	if err := cs.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sig); err != nil {
		return fmt.Errorf("sign_with_label: own signature: %w", err)
	}
	// The same signature must not verify under another label.
	if cs.VerifyWithLabel(sg.Pub, sg.Label+"x", sg.Content, sig) == nil {
		return fmt.Errorf("sign_with_label: signature verified under a different label")
	}

	en := v.EncryptWithLabel
	priv, err := cs.ParseHPKEPrivateKey(en.Priv)
	if err != nil {
		return fmt.Errorf("encrypt_with_label: %w", err)
	}
	if !bytes.Equal(priv.PublicKey(), en.Pub) {
		return mismatch("encrypt_with_label: public key of priv", priv.PublicKey(), en.Pub)
	}
	pt, err := cs.DecryptWithLabel(priv, en.Label, en.Context, en.KEMOutput, en.Ciphertext)
	if err != nil {
		return fmt.Errorf("encrypt_with_label: decrypting the vector: %w", err)
	}
	if !bytes.Equal(pt, en.Plaintext) {
		return mismatch("encrypt_with_label: plaintext", pt, en.Plaintext)
	}
	kemOut, ct, err := cs.EncryptWithLabel(en.Pub, en.Label, en.Context, en.Plaintext)
	if err != nil {
		return fmt.Errorf("encrypt_with_label: %w", err)
	}
	pt, err = cs.DecryptWithLabel(priv, en.Label, en.Context, kemOut, ct)
	if err != nil {
		return fmt.Errorf("encrypt_with_label: decrypting our own: %w", err)
	}
	if !bytes.Equal(pt, en.Plaintext) {
		return mismatch("encrypt_with_label: own plaintext", pt, en.Plaintext)
	}
	return nil
}
