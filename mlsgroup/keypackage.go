package mlsgroup

import (
	"bytes"
	"crypto/subtle"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// KeyPackageBundle is a KeyPackage together with its private keys: the init key (which
// opens the Welcome), the leaf encryption key and the signature key. It must be kept secret
// and used for one join only (RFC 9420, Section 16.8).
type KeyPackageBundle struct {
	suite      *suite.Suite
	kp         wire.KeyPackage
	encoded    []byte // the KeyPackage, encoded (not wrapped in an MLSMessage)
	initKey    *suite.HPKEPrivateKey
	leafKey    *suite.HPKEPrivateKey
	signingKey *suite.SigningKey
}

// LoadKeyPackage reassembles a bundle from an encoded KeyPackage (bare or wrapped in an
// MLSMessage) and its private keys, and checks that every private key given matches its
// public key and that the KeyPackage is well signed. encryptionPriv and signaturePriv may
// be nil: such a bundle can open a Welcome (OpenWelcome) but not join.
func LoadKeyPackage(keyPackage, initPriv, encryptionPriv, signaturePriv []byte) (*KeyPackageBundle, error) {
	kp, encoded, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return nil, err
	}
	cs, err := suite.Lookup(suite.ID(kp.CipherSuite))
	if err != nil {
		return nil, err
	}
	b := &KeyPackageBundle{suite: cs, kp: *kp, encoded: encoded}
	if b.initKey, err = cs.ParseHPKEPrivateKey(initPriv); err != nil {
		return nil, fmt.Errorf("mls: init key: %w", err)
	}
	type pair struct {
		name      string
		got, want []byte
	}
	checks := []pair{{"init", b.initKey.PublicKey(), kp.InitKey}}
	if encryptionPriv != nil {
		if b.leafKey, err = cs.ParseHPKEPrivateKey(encryptionPriv); err != nil {
			return nil, fmt.Errorf("mls: encryption key: %w", err)
		}
		checks = append(checks, pair{"encryption", b.leafKey.PublicKey(), kp.LeafNode.EncryptionKey})
	}
	if signaturePriv != nil {
		if b.signingKey, err = cs.ParseSigningKey(signaturePriv); err != nil {
			return nil, fmt.Errorf("mls: signature key: %w", err)
		}
		checks = append(checks, pair{"signature", b.signingKey.PublicKey(), kp.LeafNode.SignatureKey})
	}
	for _, c := range checks {
		if subtle.ConstantTimeCompare(c.got, c.want) != 1 {
			return nil, fmt.Errorf("mls: %s private key does not match the key package", c.name)
		}
	}
	if err := verifyKeyPackageSignature(cs, kp); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeKeyPackage accepts a KeyPackage bare or wrapped in an MLSMessage and returns it with
// its bare encoding.
func decodeKeyPackage(data []byte) (*wire.KeyPackage, []byte, error) {
	var m wire.MLSMessage
	if codec.Unmarshal(data, &m) == nil {
		if m.WireFormat != wire.WireFormatKeyPackage {
			return nil, nil, fmt.Errorf("mls: message is not a key package (wire format %d)", m.WireFormat)
		}
		enc, err := codec.Marshal(m.KeyPackage)
		if err != nil {
			return nil, nil, err
		}
		return m.KeyPackage, enc, nil
	}
	var kp wire.KeyPackage
	if err := codec.Unmarshal(data, &kp); err != nil {
		return nil, nil, fmt.Errorf("mls: malformed key package: %w", err)
	}
	return &kp, bytes.Clone(data), nil
}

// verifyKeyPackageSignature checks the KeyPackage signature (RFC 9420, Section 10.1).
func verifyKeyPackageSignature(cs *suite.Suite, kp *wire.KeyPackage) error {
	tbs, err := codec.Marshal(kp.TBS())
	if err != nil {
		return err
	}
	if cs.VerifyWithLabel(kp.LeafNode.SignatureKey, "KeyPackageTBS", tbs, kp.Signature) != nil {
		return fmt.Errorf("%w: key package signature", ErrAuth)
	}
	return nil
}

// Ref returns the KeyPackageRef of the bundle's KeyPackage (RFC 9420, Section 5.2).
func (b *KeyPackageBundle) Ref() []byte { return b.suite.MakeKeyPackageRef(b.encoded) }

// CipherSuite returns the suite of the KeyPackage.
func (b *KeyPackageBundle) CipherSuite() CipherSuite { return b.suite.ID() }

// KeyPackageLeafExtension returns the data of the extension of type typ in the leaf node
// of an encoded KeyPackage (nil if it has none). It does not check the signature: it is for
// a KeyPackage checked before, when it was received.
func KeyPackageLeafExtension(keyPackage []byte, typ uint16) ([]byte, error) {
	kp, _, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return nil, err
	}
	if e := kp.LeafNode.Extensions.Find(wire.ExtensionType(typ)); e != nil {
		return bytes.Clone(e.ExtensionData), nil
	}
	return nil, nil
}

// KeyPackageIdentity returns the credential identity and signature key of an encoded
// KeyPackage (bare or in an MLSMessage) after checking its signature, so that a member can
// tell who a KeyPackage is for before committing it.
func KeyPackageIdentity(keyPackage []byte) (identity, signatureKey []byte, err error) {
	kp, _, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return nil, nil, err
	}
	cs, err := suite.Lookup(suite.ID(kp.CipherSuite))
	if err != nil {
		return nil, nil, err
	}
	if err := verifyKeyPackageSignature(cs, kp); err != nil {
		return nil, nil, err
	}
	return bytes.Clone(kp.LeafNode.Credential.Identity), bytes.Clone(kp.LeafNode.SignatureKey), nil
}
