package mlsgroup

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/par"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/ratchettree"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// SigningKey is a member's signature private key for one cipher suite. It must be kept
// secret.
type SigningKey struct {
	k     *suite.SigningKey
	suite CipherSuite
}

// NewSigningKey returns the signing key of a suite from its private key bytes (the 32-byte
// seed for Ed25519, the scalar for ECDSA).
func NewSigningKey(cs CipherSuite, priv []byte) (*SigningKey, error) {
	s, err := suite.Lookup(cs)
	if err != nil {
		return nil, err
	}
	k, err := s.ParseSigningKey(priv)
	if err != nil {
		return nil, err
	}
	return &SigningKey{k, cs}, nil
}

// GenerateSigningKey returns a fresh random signing key of a suite.
func GenerateSigningKey(cs CipherSuite) (*SigningKey, error) {
	s, err := suite.Lookup(cs)
	if err != nil {
		return nil, err
	}
	k, err := s.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	return &SigningKey{k, cs}, nil
}

// PublicKey returns the signature public key.
func (k *SigningKey) PublicKey() []byte { return k.k.PublicKey() }

// KeyPackageOptions tune NewKeyPackage. The zero value is valid.
type KeyPackageOptions struct {
	// Lifetime is how long the KeyPackage is valid (0: 90 days).
	Lifetime time.Duration
	// Extensions are the leaf node's extensions; their types are added to the
	// capabilities.
	Extensions map[uint16][]byte
	// Capabilities lists extra extension types the client supports.
	SupportedExtensions []uint16
}

// defaultCapabilities is what tchat supports: version mls10, every implemented suite and
// the basic credential.
func defaultCapabilities(cs *suite.Suite, exts []uint16) wire.Capabilities {
	c := wire.Capabilities{
		Versions:    []wire.ProtocolVersion{wire.ProtocolVersionMLS10},
		Credentials: []wire.CredentialType{wire.CredentialTypeBasic},
	}
	c.CipherSuites = append(c.CipherSuites, wire.CipherSuite(cs.ID()))
	for _, id := range suite.All() {
		if id != cs.ID() {
			c.CipherSuites = append(c.CipherSuites, wire.CipherSuite(id))
		}
	}
	for _, e := range exts {
		if !containsType(c.Extensions, wire.ExtensionType(e)) {
			c.Extensions = append(c.Extensions, wire.ExtensionType(e))
		}
	}
	return c
}

// NewKeyPackage makes a KeyPackage for identity, signed with key (RFC 9420, Section 10),
// with a fresh init key and leaf encryption key.
func NewKeyPackage(key *SigningKey, identity []byte, opts KeyPackageOptions) (*KeyPackageBundle, error) {
	cs, err := suite.Lookup(key.suite)
	if err != nil {
		return nil, err
	}
	initKey, err := cs.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	leafKey, err := cs.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	ln, err := newLeafNode(cs, key, identity, leafKey.PublicKey(), opts)
	if err != nil {
		return nil, err
	}
	kp := wire.KeyPackage{
		Version:     wire.ProtocolVersionMLS10,
		CipherSuite: wire.CipherSuite(cs.ID()),
		InitKey:     initKey.PublicKey(),
		LeafNode:    *ln,
		Extensions:  wire.Extensions{},
	}
	tbs, err := codec.Marshal(kp.TBS())
	if err != nil {
		return nil, err
	}
	if kp.Signature, err = cs.SignWithLabel(key.k, "KeyPackageTBS", tbs); err != nil {
		return nil, err
	}
	enc, err := codec.Marshal(&kp)
	if err != nil {
		return nil, err
	}
	return &KeyPackageBundle{suite: cs, kp: kp, encoded: enc, initKey: initKey, leafKey: leafKey, signingKey: key.k}, nil
}

// newLeafNode builds and signs a leaf node of source key_package.
func newLeafNode(cs *suite.Suite, key *SigningKey, identity, encKey []byte, opts KeyPackageOptions) (*wire.LeafNode, error) {
	lifetime := opts.Lifetime
	if lifetime == 0 {
		lifetime = 90 * 24 * time.Hour
	}
	now := time.Now()
	var exts wire.Extensions = wire.Extensions{}
	var types []uint16
	for t, body := range opts.Extensions {
		exts = append(exts, wire.Extension{ExtensionType: wire.ExtensionType(t), ExtensionData: bytes.Clone(body)})
		types = append(types, t)
	}
	types = append(types, opts.SupportedExtensions...)
	ln := &wire.LeafNode{
		EncryptionKey:  encKey,
		SignatureKey:   key.PublicKey(),
		Credential:     wire.NewBasicCredential(bytes.Clone(identity)),
		Capabilities:   defaultCapabilities(cs, types),
		LeafNodeSource: wire.LeafNodeSourceKeyPackage,
		Lifetime: wire.Lifetime{
			NotBefore: uint64(now.Add(-time.Hour).Unix()), // tolerate clock skew
			NotAfter:  uint64(now.Add(lifetime).Unix()),
		},
		Extensions: exts,
	}
	if err := signLeafNode(cs, key.k, ln, nil, 0); err != nil {
		return nil, err
	}
	return ln, nil
}

// signLeafNode signs ln (RFC 9420, Section 7.2).
func signLeafNode(cs *suite.Suite, key *suite.SigningKey, ln *wire.LeafNode, groupID []byte, leaf uint32) error {
	tbs, err := codec.Marshal(ln.TBS(groupID, leaf))
	if err != nil {
		return err
	}
	ln.Signature, err = cs.SignWithLabel(key, "LeafNodeTBS", tbs)
	return err
}

// KeyPackage returns the KeyPackage as an MLSMessage, to hand to whoever adds this client.
func (b *KeyPackageBundle) KeyPackage() []byte {
	out, err := codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatKeyPackage, KeyPackage: &b.kp})
	if err != nil {
		panic("mls: internal error: " + err.Error())
	}
	return out
}

// Create makes a new group with this client as its only member (RFC 9420, Section 11).
// groupID should be unique and unpredictable (nil: 32 random bytes).
func Create(key *SigningKey, identity, groupID []byte, opts Options) (*Group, error) {
	cs, err := suite.Lookup(key.suite)
	if err != nil {
		return nil, err
	}
	if groupID == nil {
		groupID = make([]byte, 32)
		if _, err := rand.Read(groupID); err != nil {
			return nil, err
		}
	}
	leafKey, err := cs.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	supported := append([]uint16(nil), opts.SupportedExtensions...)
	for t := range opts.Extensions {
		supported = append(supported, t)
	}
	ln, err := newLeafNode(cs, key, identity, leafKey.PublicKey(), KeyPackageOptions{
		Lifetime: 100 * 365 * 24 * time.Hour, SupportedExtensions: supported, Extensions: opts.LeafExtensions})
	if err != nil {
		return nil, err
	}
	tree, err := ratchettree.New(cs, ln)
	if err != nil {
		return nil, err
	}
	priv, err := ratchettree.NewPrivateKeys(tree, 0, leafKey)
	if err != nil {
		return nil, err
	}
	ctx := wire.GroupContext{
		Version:                 wire.ProtocolVersionMLS10,
		CipherSuite:             wire.CipherSuite(cs.ID()),
		GroupID:                 bytes.Clone(groupID),
		Epoch:                   0,
		TreeHash:                tree.TreeHash(),
		ConfirmedTranscriptHash: []byte{},
		Extensions:              sortedExtensions(opts.Extensions),
	}
	g0 := &Group{suite: cs, opts: opts}
	if err := g0.checkGroupContextExtensions(&ctx.Extensions); err != nil {
		return nil, err
	}
	enc, err := codec.Marshal(&ctx)
	if err != nil {
		return nil, err
	}
	initSecret := make([]byte, cs.Nh())
	if _, err := rand.Read(initSecret); err != nil {
		return nil, err
	}
	epoch, err := schedule.NewEpoch(cs, initSecret, nil, nil, enc)
	clear(initSecret)
	if err != nil {
		return nil, err
	}
	epoch.ForgetJoiner()
	// RFC 9420, Section 11: the interim transcript hash of epoch 0 follows from a
	// confirmation tag over the empty confirmed transcript hash.
	tag := epoch.ConfirmationTag(ctx.ConfirmedTranscriptHash)
	interim, err := schedule.InterimTranscriptHash(cs, ctx.ConfirmedTranscriptHash, tag)
	if err != nil {
		return nil, err
	}
	g := &Group{suite: cs, opts: opts, signer: key.k, resumption: map[uint64][]byte{}}
	if err := g.install(epochState{ctx: ctx, tree: tree, priv: priv, secrets: epoch, interim: interim, tag: tag}); err != nil {
		return nil, err
	}
	return g, nil
}

// CommitOptions say what a Commit does. The zero value is an empty Commit with a path,
// which refreshes the committer's keys.
type CommitOptions struct {
	// Add adds the clients of these KeyPackages (MLSMessage or bare).
	Add [][]byte
	// Remove removes the members at these leaf indexes.
	Remove []uint32
	// ExternalPSKs injects external PSKs by id (resolved through Options.PSKs).
	ExternalPSKs [][]byte
	// Path forces an UpdatePath even when the proposals do not require one.
	Path bool
	// Public sends the Commit as a PublicMessage (default: PrivateMessage).
	Public bool
	// RatchetTreeInWelcome puts the tree into the Welcome's GroupInfo, so joiners need
	// nothing else.
	RatchetTreeInWelcome bool
	// ReferencePending commits every proposal received in this epoch by reference.
	ReferencePending bool
	// Extensions, if not nil, replaces the GroupContext extensions (a
	// GroupContextExtensions proposal); every member must support their types.
	Extensions map[uint16][]byte
	// ReInit commits a ReInit proposal (alone): the group closes and its members move to
	// a successor with these parameters (RFC 9420, Section 11.2); see Reinitialize.
	ReInit *ReInitParams

	// resumption is the reinit or branch PSK of a successor group's first commit.
	resumption *wire.PreSharedKeyID
}

// ReInitParams are the parameters of a reinitialized group.
type ReInitParams struct {
	GroupID     []byte
	CipherSuite CipherSuite
}

// PendingCommit is a Commit this member created and has not applied yet: send Message to
// the group (and Welcome to the added members), then Merge it once it is accepted.
type PendingCommit struct {
	// Message is the Commit, as an MLSMessage.
	Message []byte
	// Welcome is the Welcome for the added members (nil if none).
	Welcome []byte
	// RatchetTree is the new epoch's tree (optional<Node> ratchet_tree<V>) when the
	// Commit adds members, for joiners if it is not in the Welcome; else nil (encoding the
	// tree costs O(group size), which a plain commit should not pay).
	RatchetTree []byte

	epoch  uint64 // the epoch it was made in
	next   epochState
	reinit *wire.ReInit
}

// Commit creates a Commit (RFC 9420, Section 12.4.1). The group does not change until
// Merge.
func (g *Group) Commit(opts CommitOptions) (*PendingCommit, error) {
	if g.status != Active {
		return nil, ErrNotActive
	}
	if g.signer == nil {
		return nil, errors.New("mls: this member has no signing key")
	}
	cs := g.suite
	me := g.cur.priv.Leaf()
	self := wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: uint32(me)}

	var pors []wire.ProposalOrRef
	if opts.ReferencePending {
		for _, e := range g.proposals {
			pors = append(pors, wire.ProposalOrRef{Type: wire.ProposalOrRefTypeReference, Reference: e.ref})
		}
	}
	addValue := func(p *wire.Proposal) {
		pors = append(pors, wire.ProposalOrRef{Type: wire.ProposalOrRefTypeProposal, Proposal: p})
	}
	for _, r := range opts.Remove {
		addValue(&wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: r}})
	}
	for _, raw := range opts.Add {
		kp, _, err := decodeKeyPackage(raw)
		if err != nil {
			return nil, err
		}
		addValue(&wire.Proposal{ProposalType: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}})
	}
	for _, id := range opts.ExternalPSKs {
		nonce := make([]byte, cs.Nh())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		addValue(&wire.Proposal{ProposalType: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{
			PSKType: wire.PSKTypeExternal, PSKID: bytes.Clone(id), PSKNonce: nonce}}})
	}
	if opts.Extensions != nil {
		addValue(&wire.Proposal{ProposalType: wire.ProposalTypeGroupContextExtensions,
			GroupContextExtensions: &wire.GroupContextExtensions{Extensions: sortedExtensions(opts.Extensions)}})
	}
	if r := opts.ReInit; r != nil {
		if _, err := suite.Lookup(r.CipherSuite); err != nil {
			return nil, err
		}
		addValue(&wire.Proposal{ProposalType: wire.ProposalTypeReInit, ReInit: &wire.ReInit{
			GroupID: bytes.Clone(r.GroupID), Version: wire.ProtocolVersionMLS10,
			CipherSuite: wire.CipherSuite(r.CipherSuite), Extensions: wire.Extensions{}}})
	}
	if opts.resumption != nil {
		addValue(&wire.Proposal{ProposalType: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: *opts.resumption}})
	}
	commit := &wire.Commit{Proposals: pors}
	props, err := g.resolveProposals(commit, self)
	if err != nil {
		return nil, err
	}
	if err := g.validateProposals(props, self, opts.resumption != nil); err != nil {
		return nil, err
	}
	a, err := g.applyProposals(props)
	if err != nil {
		return nil, err
	}
	if a.tree.Leaf(me) == nil {
		return nil, errors.New("mls: a commit may not remove its committer")
	}

	priv := g.cur.priv
	var commitSecret []byte
	var path *ratchettree.PendingPath
	if opts.Path || pathRequired(props) {
		path, err = a.tree.GenerateUpdatePath(me, nil, g.signer, g.cur.ctx.GroupID)
		if err != nil {
			return nil, err
		}
		provisional := a.ctx
		provisional.Epoch++
		provisional.TreeHash = a.tree.TreeHash()
		encProvisional, err := codec.Marshal(&provisional)
		if err != nil {
			return nil, err
		}
		if commit.Path, err = path.Encrypt(encProvisional, a.added); err != nil {
			return nil, err
		}
		commitSecret = path.CommitSecret()
		priv = path.PrivateKeys()
	}

	wf := wire.WireFormatPrivateMessage
	if opts.Public {
		wf = wire.WireFormatPublicMessage
	}
	ac, err := g.cur.keys.Sign(g.signer, wf, &wire.FramedContent{
		GroupID: g.cur.ctx.GroupID, Epoch: g.cur.ctx.Epoch, Sender: self,
		AuthenticatedData: []byte{}, ContentType: wire.ContentTypeCommit, Commit: commit,
	})
	if err != nil {
		return nil, err
	}

	// The new epoch, as every member will compute it.
	pskSecret, err := g.resolvePSKs(a.psks)
	if err != nil {
		return nil, err
	}
	ctx, next, err := nextEpoch(cs, g.cur.interim, ac, a.ctx, a.tree, g.cur.secrets.InitSecret, commitSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	ac.Auth.ConfirmationTag = next.ConfirmationTag(ctx.ConfirmedTranscriptHash)
	interim, err := schedule.InterimTranscriptHash(cs, ctx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, err
	}

	msg := &wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wf}
	if opts.Public {
		if msg.PublicMessage, err = g.cur.keys.ProtectPublic(ac); err != nil {
			return nil, err
		}
	} else {
		if msg.PrivateMessage, err = g.cur.keys.ProtectPrivate(ac, 0); err != nil {
			return nil, err
		}
	}
	pc := &PendingCommit{epoch: g.cur.ctx.Epoch, reinit: a.reinit}
	if pc.Message, err = codec.Marshal(msg); err != nil {
		return nil, err
	}
	pc.next = epochState{ctx: ctx, tree: a.tree, priv: priv, secrets: next, interim: interim, tag: ac.Auth.ConfirmationTag}
	if len(a.added) > 0 {
		if pc.RatchetTree, err = codec.Marshal(ptr(a.tree.Wire())); err != nil {
			return nil, err
		}
		if pc.Welcome, err = g.welcome(props, a, pc, path, ac.Auth.ConfirmationTag, opts.RatchetTreeInWelcome); err != nil {
			return nil, err
		}
	}
	return pc, nil
}

func ptr[T any](v T) *T { return &v }

// welcome builds the Welcome for the members a Commit adds (RFC 9420, Section 12.4.3.1).
func (g *Group) welcome(props []committed, a *applied, pc *PendingCommit, path *ratchettree.PendingPath, tag []byte, withTree bool) ([]byte, error) {
	cs := g.suite
	next := pc.next.secrets
	info := wire.GroupInfo{
		GroupContext:    pc.next.ctx,
		Extensions:      wire.Extensions{},
		ConfirmationTag: tag,
		Signer:          uint32(pc.next.priv.Leaf()),
	}
	if withTree {
		ext, err := wire.NewRatchetTreeExtension(pc.next.tree.Wire())
		if err != nil {
			return nil, err
		}
		info.Extensions = append(info.Extensions, ext)
	}
	tbs, err := codec.Marshal(info.TBS())
	if err != nil {
		return nil, err
	}
	if info.Signature, err = cs.SignWithLabel(g.signer, "GroupInfoTBS", tbs); err != nil {
		return nil, err
	}
	infoEnc, err := codec.Marshal(&info)
	if err != nil {
		return nil, err
	}
	key, nonce, err := next.WelcomeKeyNonce()
	if err != nil {
		return nil, err
	}
	aead, err := cs.NewAEAD(key)
	if err != nil {
		return nil, err
	}
	w := wire.Welcome{CipherSuite: wire.CipherSuite(cs.ID()), EncryptedGroupInfo: aead.Seal(nil, nonce, infoEnc, nil)}
	var kps []*wire.KeyPackage
	for _, c := range props {
		if c.p.ProposalType == wire.ProposalTypeAdd {
			kps = append(kps, &c.p.Add.KeyPackage)
		}
	}
	psks := a.psks
	if psks == nil {
		psks = []wire.PreSharedKeyID{}
	}
	// One HPKE encryption per new member, independent of each other: in parallel.
	w.Secrets = make([]wire.EncryptedGroupSecrets, len(kps))
	err = par.Do(len(kps), func(i int) error {
		kp := kps[i]
		gs := wire.GroupSecrets{JoinerSecret: next.JoinerSecret, PSKs: psks}
		if path != nil {
			ps, err := path.PathSecret(a.added[i])
			if err != nil {
				return err
			}
			gs.PathSecret = &wire.PathSecret{PathSecret: ps}
		}
		plain, err := codec.Marshal(&gs)
		if err != nil {
			return err
		}
		kem, ct, err := cs.EncryptWithLabel(kp.InitKey, "Welcome", w.EncryptedGroupInfo, plain)
		clear(plain)
		if err != nil {
			return err
		}
		kpEnc, err := codec.Marshal(kp)
		if err != nil {
			return err
		}
		w.Secrets[i] = wire.EncryptedGroupSecrets{
			NewMember:             cs.MakeKeyPackageRef(kpEnc),
			EncryptedGroupSecrets: wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct},
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatWelcome, Welcome: &w})
}

// Merge applies a Commit this member created (RFC 9420, Section 12.4.1: the committer
// moves to the new epoch once it knows the Commit is accepted). It fails if the group has
// moved on since the Commit was made.
func (g *Group) Merge(pc *PendingCommit) error {
	if pc.epoch != g.cur.ctx.Epoch || pc.next.secrets == nil {
		return fmt.Errorf("%w: the commit was made in epoch %d, the group is in %d", ErrWrongEpoch, pc.epoch, g.cur.ctx.Epoch)
	}
	next := pc.next
	next.secrets.ForgetJoiner()
	next.priv.Prune(next.tree)
	old := g.cur.secrets
	if err := g.install(next); err != nil {
		return err
	}
	forgetSendSecrets(old)
	pc.next = epochState{}
	if pc.reinit != nil {
		g.status = ReInitPending
		g.reinit = pc.reinit
	}
	return nil
}

// Seal protects application data as a PrivateMessage of the current epoch (RFC 9420,
// Section 6.3), with authenticated (unencrypted) data ad.
func (g *Group) Seal(data, ad []byte) ([]byte, error) {
	if g.status != Active {
		return nil, ErrNotActive
	}
	if g.signer == nil {
		return nil, errors.New("mls: this member has no signing key")
	}
	if ad == nil {
		ad = []byte{}
	}
	ac, err := g.cur.keys.Sign(g.signer, wire.WireFormatPrivateMessage, &wire.FramedContent{
		GroupID: g.cur.ctx.GroupID, Epoch: g.cur.ctx.Epoch,
		Sender:            wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: uint32(g.cur.priv.Leaf())},
		AuthenticatedData: ad, ContentType: wire.ContentTypeApplication, ApplicationData: data,
	})
	if err != nil {
		return nil, err
	}
	pm, err := g.cur.keys.ProtectPrivate(ac, 0)
	if err != nil {
		return nil, err
	}
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: pm})
}
