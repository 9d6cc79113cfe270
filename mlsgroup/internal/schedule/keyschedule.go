package schedule

import (
	"errors"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
)

// Epoch is the output of the key schedule for one epoch (RFC 9420, Section 8): the secrets of
// the table "Epoch-Derived Secrets" and the init_secret of the next epoch.
//
// The fields are exported so that group state can be persisted; they are secrets. Call Zero
// when the epoch is over.
type Epoch struct {
	Suite *suite.Suite

	// JoinerSecret and WelcomeSecret are only needed by the member that created the epoch's
	// Commit, to build the Welcome (Section 12.4.3.1). They are nil in an Epoch made by
	// NewEpochFromJoiner, whose caller already has them. Drop them with ForgetJoiner once
	// the Welcome is built.
	JoinerSecret  []byte // joiner_secret
	WelcomeSecret []byte // welcome_secret

	SenderDataSecret   []byte // sender_data_secret: "sender data"
	EncryptionSecret   []byte // encryption_secret: "encryption", root of the secret tree
	ExporterSecret     []byte // exporter_secret: "exporter"
	ExternalSecret     []byte // external_secret: "external"
	ConfirmationKey    []byte // confirmation_key: "confirm"
	MembershipKey      []byte // membership_key: "membership"
	ResumptionPSK      []byte // resumption_psk: "resumption"
	EpochAuthenticator []byte // epoch_authenticator: "authentication"

	// InitSecret is init_secret_[n], the input of the next epoch's key schedule.
	InitSecret []byte
}

// checkSecret checks that a secret input is KDF.Nh bytes; nil stands for the all-zero vector
// when zeroOK, and a fresh zero vector is returned for it.
func checkSecret(cs *suite.Suite, name string, s []byte, zeroOK bool) ([]byte, error) {
	if s == nil && zeroOK {
		return make([]byte, cs.Nh()), nil
	}
	if len(s) != cs.Nh() {
		return nil, fmt.Errorf("mls: %s is %d bytes, want %d", name, len(s), cs.Nh())
	}
	return s, nil
}

// JoinerSecret is the first step of the key schedule (RFC 9420, Section 8):
//
//	joiner_secret = ExpandWithLabel(KDF.Extract(init_secret_[n-1], commit_secret),
//	                                "joiner", GroupContext_[n], KDF.Nh)
//
// A nil commitSecret is the all-zero vector (a Commit without a path). groupContext is the
// encoded GroupContext of the new epoch.
func JoinerSecret(cs *suite.Suite, initSecret, commitSecret, groupContext []byte) ([]byte, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	initSecret, err := checkSecret(cs, "init_secret", initSecret, false)
	if err != nil {
		return nil, err
	}
	commitSecret, err = checkSecret(cs, "commit_secret", commitSecret, true)
	if err != nil {
		return nil, err
	}
	if len(groupContext) == 0 {
		return nil, errors.New("mls: empty GroupContext")
	}
	prk := cs.Extract(initSecret, commitSecret)
	defer zero(prk)
	return cs.ExpandWithLabel(prk, "joiner", groupContext, cs.Nh())
}

// memberSecret is the unnamed output of KDF.Extract(joiner_secret, psk_secret) in the key
// schedule diagram (RFC 9420, Section 8), the input of welcome_secret and epoch_secret.
func memberSecret(cs *suite.Suite, joinerSecret, pskSecret []byte) ([]byte, error) {
	joinerSecret, err := checkSecret(cs, "joiner_secret", joinerSecret, false)
	if err != nil {
		return nil, err
	}
	pskSecret, err = checkSecret(cs, "psk_secret", pskSecret, true)
	if err != nil {
		return nil, err
	}
	return cs.Extract(joinerSecret, pskSecret), nil
}

// WelcomeSecret is RFC 9420, Section 8:
//
//	welcome_secret = DeriveSecret(KDF.Extract(joiner_secret, psk_secret), "welcome")
//
// A new member computes it from the GroupSecrets of a Welcome before it knows the
// GroupContext. A nil pskSecret is the all-zero vector (no PSKs).
func WelcomeSecret(cs *suite.Suite, joinerSecret, pskSecret []byte) ([]byte, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	m, err := memberSecret(cs, joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	defer zero(m)
	return cs.DeriveSecret(m, "welcome"), nil
}

// WelcomeKeyNonce is RFC 9420, Section 12.4.3.1: the AEAD key and nonce that encrypt the
// GroupInfo of a Welcome.
//
//	welcome_nonce = ExpandWithLabel(welcome_secret, "nonce", "", AEAD.Nn)
//	welcome_key = ExpandWithLabel(welcome_secret, "key", "", AEAD.Nk)
func WelcomeKeyNonce(cs *suite.Suite, welcomeSecret []byte) (key, nonce []byte, err error) {
	if cs == nil {
		return nil, nil, errors.New("mls: no cipher suite")
	}
	if len(welcomeSecret) != cs.Nh() {
		return nil, nil, fmt.Errorf("mls: welcome_secret is %d bytes, want %d", len(welcomeSecret), cs.Nh())
	}
	if nonce, err = cs.ExpandWithLabel(welcomeSecret, "nonce", nil, cs.NonceSize()); err != nil {
		return nil, nil, err
	}
	if key, err = cs.ExpandWithLabel(welcomeSecret, "key", nil, cs.KeySize()); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// NewEpoch runs the key schedule of RFC 9420, Section 8, for a member that was in the
// previous epoch (or creates the group: Section 11, init_secret random and commit_secret
// zero):
//
//	init_secret_[n-1], commit_secret -> joiner_secret
//	joiner_secret, psk_secret -> welcome_secret, epoch_secret
//	epoch_secret -> the epoch-derived secrets and init_secret_[n]
//
// initSecret is the previous epoch's init_secret (or the secret from an ExternalInit,
// Section 8.3); commitSecret and pskSecret may be nil for the all-zero vector; groupContext
// is the encoded GroupContext of the new epoch. Inputs are not modified; the caller deletes
// initSecret and commitSecret once the Commit is applied.
func NewEpoch(cs *suite.Suite, initSecret, commitSecret, pskSecret, groupContext []byte) (*Epoch, error) {
	joiner, err := JoinerSecret(cs, initSecret, commitSecret, groupContext)
	if err != nil {
		return nil, err
	}
	e, err := newEpoch(cs, joiner, pskSecret, groupContext, true)
	if err != nil {
		zero(joiner)
		return nil, err
	}
	e.JoinerSecret = joiner
	return e, nil
}

// NewEpochFromJoiner runs the key schedule of RFC 9420, Section 8, from joiner_secret: this
// is how a new member joins from a Welcome (Section 12.4.3.1), with the joiner_secret of
// its GroupSecrets, the psk_secret of the PSKs it lists (nil for none) and the encoded
// GroupContext of the GroupInfo. The returned Epoch has no JoinerSecret or WelcomeSecret.
func NewEpochFromJoiner(cs *suite.Suite, joinerSecret, pskSecret, groupContext []byte) (*Epoch, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	if len(groupContext) == 0 {
		return nil, errors.New("mls: empty GroupContext")
	}
	return newEpoch(cs, joinerSecret, pskSecret, groupContext, false)
}

func newEpoch(cs *suite.Suite, joinerSecret, pskSecret, groupContext []byte, withWelcome bool) (*Epoch, error) {
	m, err := memberSecret(cs, joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	defer zero(m)
	epochSecret, err := cs.ExpandWithLabel(m, "epoch", groupContext, cs.Nh())
	if err != nil {
		return nil, err
	}
	defer zero(epochSecret)
	e := &Epoch{
		Suite:              cs,
		SenderDataSecret:   cs.DeriveSecret(epochSecret, "sender data"),
		EncryptionSecret:   cs.DeriveSecret(epochSecret, "encryption"),
		ExporterSecret:     cs.DeriveSecret(epochSecret, "exporter"),
		ExternalSecret:     cs.DeriveSecret(epochSecret, "external"),
		ConfirmationKey:    cs.DeriveSecret(epochSecret, "confirm"),
		MembershipKey:      cs.DeriveSecret(epochSecret, "membership"),
		ResumptionPSK:      cs.DeriveSecret(epochSecret, "resumption"),
		EpochAuthenticator: cs.DeriveSecret(epochSecret, "authentication"),
		InitSecret:         cs.DeriveSecret(epochSecret, "init"),
	}
	if withWelcome {
		e.WelcomeSecret = cs.DeriveSecret(m, "welcome")
	}
	return e, nil
}

// WelcomeKeyNonce returns the key and nonce that encrypt the GroupInfo of this epoch's
// Welcome (RFC 9420, Section 12.4.3.1). It fails once ForgetJoiner has been called, and for
// an Epoch made by NewEpochFromJoiner.
func (e *Epoch) WelcomeKeyNonce() (key, nonce []byte, err error) {
	if e.WelcomeSecret == nil {
		return nil, nil, errors.New("mls: welcome_secret is not available in this epoch")
	}
	return WelcomeKeyNonce(e.Suite, e.WelcomeSecret)
}

// ForgetJoiner deletes joiner_secret and welcome_secret (RFC 9420, Section 9.2) once the
// Welcome of the epoch has been built.
func (e *Epoch) ForgetJoiner() {
	zero(e.JoinerSecret, e.WelcomeSecret)
	e.JoinerSecret, e.WelcomeSecret = nil, nil
}

// Export is MLS-Exporter (RFC 9420, Section 8.5):
//
//	MLS-Exporter(Label, Context, Length) =
//	    ExpandWithLabel(DeriveSecret(exporter_secret, Label), "exported", Hash(Context), Length)
func (e *Epoch) Export(label string, context []byte, length int) ([]byte, error) {
	return Export(e.Suite, e.ExporterSecret, label, context, length)
}

// Export is MLS-Exporter (RFC 9420, Section 8.5) over a given exporter_secret.
func Export(cs *suite.Suite, exporterSecret []byte, label string, context []byte, length int) ([]byte, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	if len(exporterSecret) != cs.Nh() {
		return nil, fmt.Errorf("mls: exporter_secret is %d bytes, want %d", len(exporterSecret), cs.Nh())
	}
	if length < 0 || length > 255*cs.Nh() {
		return nil, fmt.Errorf("mls: cannot export %d bytes", length)
	}
	s := cs.DeriveSecret(exporterSecret, label)
	defer zero(s)
	return cs.ExpandWithLabel(s, "exported", cs.Hash(context), length)
}

// ExternalKeyPair is the group's external HPKE key pair (RFC 9420, Section 8):
//
//	external_priv, external_pub = KEM.DeriveKeyPair(external_secret)
//
// external_pub goes in the external_pub extension of the GroupInfo (Section 12.4.3.2);
// external_priv opens the ExternalInit of an external Commit (Section 8.3).
func (e *Epoch) ExternalKeyPair() (*suite.HPKEPrivateKey, error) {
	if len(e.ExternalSecret) != e.Suite.Nh() {
		return nil, errors.New("mls: external_secret is not available in this epoch")
	}
	return e.Suite.DeriveKeyPair(e.ExternalSecret)
}

// ExternalPub is the public half of ExternalKeyPair, in the KEM's SerializePublicKey form.
func (e *Epoch) ExternalPub() ([]byte, error) {
	k, err := e.ExternalKeyPair()
	if err != nil {
		return nil, err
	}
	return k.PublicKey(), nil
}

// SecretTree makes the secret tree of the epoch (RFC 9420, Section 9) for a ratchet tree of
// nLeaves leaves. encryption_secret moves into the tree: it is deleted from e, so a second
// call fails. opts may be nil for DefaultOptions.
func (e *Epoch) SecretTree(nLeaves uint32, opts *Options) (*SecretTree, error) {
	if e.EncryptionSecret == nil {
		return nil, errors.New("mls: encryption_secret already consumed by a secret tree")
	}
	t, err := NewSecretTree(e.Suite, e.EncryptionSecret, nLeaves, opts)
	if err != nil {
		return nil, err
	}
	zero(e.EncryptionSecret)
	e.EncryptionSecret = nil
	return t, nil
}

// SenderDataKeyNonce is SenderDataKeyNonce (RFC 9420, Section 6.3.2) with this epoch's
// sender_data_secret.
func (e *Epoch) SenderDataKeyNonce(ciphertext []byte) (key, nonce []byte, err error) {
	return SenderDataKeyNonce(e.Suite, e.SenderDataSecret, ciphertext)
}

// ConfirmationTag is the epoch's confirmation tag over confirmed_transcript_hash
// (RFC 9420, Section 6.1): MAC(confirmation_key, confirmed_transcript_hash).
func (e *Epoch) ConfirmationTag(confirmedTranscriptHash []byte) []byte {
	return ConfirmationTag(e.Suite, e.ConfirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag checks a confirmation tag in constant time (RFC 9420, Section 6.1).
func (e *Epoch) VerifyConfirmationTag(confirmedTranscriptHash, tag []byte) bool {
	return VerifyConfirmationTag(e.Suite, e.ConfirmationKey, confirmedTranscriptHash, tag)
}

// TakeInitSecret returns init_secret_[n] and removes it from e, so that Zero leaves it
// alone; the caller deletes it once the next epoch is computed.
func (e *Epoch) TakeInitSecret() []byte {
	s := e.InitSecret
	e.InitSecret = nil
	return s
}

// Zero deletes every secret of the epoch (RFC 9420, Section 9.2), init_secret included:
// call TakeInitSecret first if the next epoch is still to be computed.
func (e *Epoch) Zero() {
	zero(e.JoinerSecret, e.WelcomeSecret, e.SenderDataSecret, e.EncryptionSecret, e.ExporterSecret,
		e.ExternalSecret, e.ConfirmationKey, e.MembershipKey, e.ResumptionPSK,
		e.EpochAuthenticator, e.InitSecret)
	*e = Epoch{Suite: e.Suite}
}
