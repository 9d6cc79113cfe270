package mlsgroup

import (
	"bytes"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// PSKs supplies the pre-shared keys a Welcome or a Commit may name (RFC 9420, Section 8.4).
// Either function may be nil.
type PSKs struct {
	// External returns the external PSK with the given psk_id.
	External func(pskID []byte) ([]byte, bool)
	// Resumption returns resumption_psk of the given group and epoch.
	Resumption func(groupID []byte, epoch uint64) ([]byte, bool)
}

// resolve computes psk_secret for a list of PreSharedKeyIDs (RFC 9420, Section 8.4); an
// empty list gives nil (the all-zero vector).
func (p PSKs) resolve(cs *suite.Suite, ids []wire.PreSharedKeyID) ([]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	psks := make([]schedule.PSK, 0, len(ids))
	for i := range ids {
		id := &ids[i]
		var secret []byte
		var ok bool
		switch id.PSKType {
		case wire.PSKTypeExternal:
			if p.External != nil {
				secret, ok = p.External(id.PSKID)
			}
		case wire.PSKTypeResumption:
			if p.Resumption != nil {
				secret, ok = p.Resumption(id.PSKGroupID, id.PSKEpoch)
			}
		}
		if !ok {
			return nil, fmt.Errorf("%w (type %d, id %x)", ErrUnknownPSK, id.PSKType, id.PSKID)
		}
		enc, err := codec.Marshal(id)
		if err != nil {
			return nil, err
		}
		psks = append(psks, schedule.PSK{ID: enc, Secret: secret})
	}
	return schedule.PSKSecret(cs, psks)
}

// PendingJoin is an opened Welcome: the joiner knows the group it is invited to and has
// checked the GroupInfo's confirmation tag, but has not yet loaded and validated the tree
// or checked who signed the GroupInfo.
type PendingJoin struct {
	bundle       *KeyPackageBundle
	secrets      *wire.GroupSecrets
	info         *wire.GroupInfo
	groupContext []byte // info.GroupContext, encoded
	epoch        *schedule.Epoch
}

// OpenWelcome decrypts a Welcome (an MLSMessage, or a bare Welcome) addressed to the bundle
// (RFC 9420, Section 12.4.3.1): it finds the bundle's EncryptedGroupSecrets, decrypts the
// GroupSecrets with the init key, runs the key schedule from the joiner secret and the
// PSKs, decrypts the GroupInfo and verifies its confirmation tag.
func (b *KeyPackageBundle) OpenWelcome(welcome []byte, psks PSKs) (*PendingJoin, error) {
	w, err := decodeWelcome(welcome)
	if err != nil {
		return nil, err
	}
	cs := b.suite
	if suite.ID(w.CipherSuite) != cs.ID() {
		return nil, fmt.Errorf("mls: welcome uses suite 0x%04x, the key package 0x%04x", uint16(w.CipherSuite), uint16(cs.ID()))
	}
	egs := w.Find(b.Ref())
	if egs == nil {
		return nil, ErrNotForUs
	}
	plain, err := cs.DecryptWithLabel(b.initKey, "Welcome", w.EncryptedGroupInfo,
		egs.EncryptedGroupSecrets.KEMOutput, egs.EncryptedGroupSecrets.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: group secrets", ErrAuth)
	}
	var secrets wire.GroupSecrets
	if err := codec.Unmarshal(plain, &secrets); err != nil {
		return nil, fmt.Errorf("mls: group secrets: %w", err)
	}
	if len(secrets.JoinerSecret) != cs.Nh() {
		return nil, fmt.Errorf("mls: joiner_secret is %d bytes, want %d", len(secrets.JoinerSecret), cs.Nh())
	}
	pskSecret, err := psks.resolve(cs, secrets.PSKs)
	if err != nil {
		return nil, err
	}
	welcomeSecret, err := schedule.WelcomeSecret(cs, secrets.JoinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	key, nonce, err := schedule.WelcomeKeyNonce(cs, welcomeSecret)
	if err != nil {
		return nil, err
	}
	aead, err := cs.NewAEAD(key)
	if err != nil {
		return nil, err
	}
	infoPlain, err := aead.Open(nil, nonce, w.EncryptedGroupInfo, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: group info", ErrAuth)
	}
	var info wire.GroupInfo
	if err := codec.Unmarshal(infoPlain, &info); err != nil {
		return nil, fmt.Errorf("mls: group info: %w", err)
	}
	if suite.ID(info.GroupContext.CipherSuite) != cs.ID() {
		return nil, fmt.Errorf("mls: group info names suite 0x%04x", uint16(info.GroupContext.CipherSuite))
	}
	gc, err := codec.Marshal(&info.GroupContext)
	if err != nil {
		return nil, err
	}
	epoch, err := schedule.NewEpochFromJoiner(cs, secrets.JoinerSecret, pskSecret, gc)
	if err != nil {
		return nil, err
	}
	if !epoch.VerifyConfirmationTag(info.GroupContext.ConfirmedTranscriptHash, info.ConfirmationTag) {
		return nil, fmt.Errorf("%w: confirmation tag of the group info", ErrAuth)
	}
	return &PendingJoin{bundle: b, secrets: &secrets, info: &info, groupContext: gc, epoch: epoch}, nil
}

func decodeWelcome(data []byte) (*wire.Welcome, error) {
	var m wire.MLSMessage
	if codec.Unmarshal(data, &m) == nil {
		if m.WireFormat != wire.WireFormatWelcome {
			return nil, fmt.Errorf("mls: message is not a welcome (wire format %d)", m.WireFormat)
		}
		return m.Welcome, nil
	}
	var w wire.Welcome
	if err := codec.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("mls: malformed welcome: %w", err)
	}
	return &w, nil
}

// VerifyGroupInfoSignature checks the GroupInfo signature against a signature public key
// (RFC 9420, Section 12.4.3). Joining looks the key up in the tree; this is for callers
// that know it otherwise.
func (p *PendingJoin) VerifyGroupInfoSignature(signerPub []byte) error {
	return verifyGroupInfo(p.bundle.suite, p.info, signerPub)
}

// verifyGroupInfo checks a GroupInfo's signature (RFC 9420, Section 12.4.3).
func verifyGroupInfo(cs *suite.Suite, info *wire.GroupInfo, signerPub []byte) error {
	tbs, err := codec.Marshal(info.TBS())
	if err != nil {
		return err
	}
	if cs.VerifyWithLabel(signerPub, "GroupInfoTBS", tbs, info.Signature) != nil {
		return fmt.Errorf("%w: group info signature", ErrAuth)
	}
	return nil
}

// GroupID returns the id of the group the Welcome invites to.
func (p *PendingJoin) GroupID() []byte { return append([]byte(nil), p.info.GroupContext.GroupID...) }

// Epoch returns the epoch the joiner enters.
func (p *PendingJoin) Epoch() uint64 { return p.info.GroupContext.Epoch }

// EpochAuthenticator returns the epoch authenticator of the epoch the joiner enters
// (RFC 9420, Section 8.7). It is known before the tree: the Welcome's confirmation tag
// has been checked, but not the GroupInfo's signature, which needs the tree.
func (p *PendingJoin) EpochAuthenticator() []byte { return bytes.Clone(p.epoch.EpochAuthenticator) }

// HasTree reports whether the Welcome carries the ratchet tree (else Join needs it).
func (p *PendingJoin) HasTree() bool {
	return p.info.Extensions.Find(wire.ExtensionTypeRatchetTree) != nil
}

// WelcomeFor reports whether a Welcome (an MLSMessage, or a bare Welcome) holds group
// secrets for a KeyPackage (bare or in an MLSMessage): whether the KeyPackage's holder
// can join with it. It decrypts nothing and checks no signature.
func WelcomeFor(welcome, keyPackage []byte) (bool, error) {
	w, err := decodeWelcome(welcome)
	if err != nil {
		return false, err
	}
	kp, enc, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return false, err
	}
	if w.CipherSuite != kp.CipherSuite {
		return false, nil
	}
	cs, err := suite.Lookup(suite.ID(kp.CipherSuite))
	if err != nil {
		return false, err
	}
	return w.Find(cs.MakeKeyPackageRef(enc)) != nil, nil
}
