package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/ratchettree"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

func leafIndex(l uint32) ratchettree.LeafIndex { return ratchettree.LeafIndex(l) }

// committed is one proposal of a Commit with the member who proposed it.
type committed struct {
	p      *wire.Proposal
	sender wire.Sender
	byRef  bool
}

// resolveProposals turns a Commit's ProposalOrRef list into proposals, looking references
// up among the proposals received in this epoch (RFC 9420, Section 12.4).
func (g *Group) resolveProposals(c *wire.Commit, committer wire.Sender) ([]committed, error) {
	out := make([]committed, 0, len(c.Proposals))
	for i := range c.Proposals {
		por := &c.Proposals[i]
		if por.Proposal != nil {
			out = append(out, committed{p: por.Proposal, sender: committer})
			continue
		}
		found := false
		for _, e := range g.proposals {
			if bytes.Equal(e.ref, por.Reference) {
				out = append(out, committed{p: e.proposal, sender: e.sender, byRef: true})
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %x", ErrUnknownProposal, []byte(por.Reference))
		}
	}
	return out, nil
}

// validateProposals checks a Commit's proposal list (RFC 9420, Section 12.2) apart from
// what applying it checks (leaf node and key package validity, tree constraints).
//
// successor allows one resumption PSK of usage reinit or branch: only the creator of a
// successor group commits one, in its first Commit (RFC 9420, Sections 11.2 and 11.3).
func (g *Group) validateProposals(props []committed, committer wire.Sender, successor bool) error {
	external := committer.SenderType == wire.SenderTypeNewMemberCommit
	var nExtInit, nRemove, nGCE, nReInit int
	touched := map[uint32]bool{} // leaves with an Update or Remove
	psks := map[string]bool{}
	for _, c := range props {
		p := c.p
		switch p.ProposalType {
		case wire.ProposalTypeAdd:
			if external {
				return errors.New("mls: an external commit may not add members")
			}
		case wire.ProposalTypeUpdate:
			if external {
				return errors.New("mls: an external commit may not contain an Update")
			}
			if c.sender.SenderType != wire.SenderTypeMember {
				return errors.New("mls: an Update must come from a member")
			}
			if c.sender.LeafIndex == committer.LeafIndex {
				return errors.New("mls: a committer may not commit its own Update")
			}
			if touched[c.sender.LeafIndex] {
				return fmt.Errorf("mls: several Update or Remove proposals for leaf %d", c.sender.LeafIndex)
			}
			touched[c.sender.LeafIndex] = true
		case wire.ProposalTypeRemove:
			nRemove++
			r := p.Remove.Removed
			if !external && committer.SenderType == wire.SenderTypeMember && r == committer.LeafIndex {
				return errors.New("mls: a commit may not remove its committer")
			}
			if g.cur.tree.Leaf(leafIndex(r)) == nil {
				return fmt.Errorf("mls: Remove of leaf %d, which is not a member", r)
			}
			if touched[r] {
				return fmt.Errorf("mls: several Update or Remove proposals for leaf %d", r)
			}
			touched[r] = true
		case wire.ProposalTypePSK:
			id := &p.PreSharedKey.PSK
			if len(id.PSKNonce) != g.suite.Nh() {
				return fmt.Errorf("mls: PSK nonce of %d bytes, want %d", len(id.PSKNonce), g.suite.Nh())
			}
			if id.PSKType == wire.PSKTypeResumption && id.Usage != wire.ResumptionPSKUsageApplication {
				if !successor || g.cur.ctx.Epoch != 0 || c.byRef {
					return fmt.Errorf("mls: a PreSharedKey proposal may not carry a resumption PSK of usage %d", id.Usage)
				}
				successor = false // at most one
			}
			enc, err := codec.Marshal(id)
			if err != nil {
				return err
			}
			if psks[string(enc)] {
				return errors.New("mls: the same PSK is proposed twice")
			}
			psks[string(enc)] = true
		case wire.ProposalTypeReInit:
			nReInit++
			if external {
				return errors.New("mls: an external commit may not contain a ReInit")
			}
			if p.ReInit.Version < wire.ProtocolVersionMLS10 {
				return fmt.Errorf("mls: ReInit to protocol version %d", p.ReInit.Version)
			}
		case wire.ProposalTypeExternalInit:
			nExtInit++
			if !external {
				return errors.New("mls: an ExternalInit in a regular commit")
			}
			if c.byRef {
				return errors.New("mls: an external commit may not reference proposals")
			}
		case wire.ProposalTypeGroupContextExtensions:
			nGCE++
			if external {
				return errors.New("mls: an external commit may not change the group context extensions")
			}
		default:
			return fmt.Errorf("mls: unsupported proposal type %d", p.ProposalType)
		}
		if external && c.byRef {
			return errors.New("mls: an external commit may not reference proposals")
		}
	}
	if nGCE > 1 {
		return errors.New("mls: several GroupContextExtensions proposals")
	}
	if nReInit > 0 && len(props) > 1 {
		return errors.New("mls: a ReInit must be committed alone")
	}
	if external {
		if nExtInit != 1 {
			return fmt.Errorf("mls: an external commit needs exactly one ExternalInit, has %d", nExtInit)
		}
		if nRemove > 1 {
			return errors.New("mls: an external commit may remove at most one member")
		}
	}
	return nil
}

// pathRequired reports whether a Commit with these proposals must carry a path
// (RFC 9420, Section 12.4 and the "Path Required" column of Section 17.4).
func pathRequired(props []committed) bool {
	if len(props) == 0 {
		return true
	}
	for _, c := range props {
		switch c.p.ProposalType {
		case wire.ProposalTypeUpdate, wire.ProposalTypeRemove, wire.ProposalTypeExternalInit, wire.ProposalTypeGroupContextExtensions:
			return true
		}
	}
	return false
}

// removes reports whether a proposal list removes leaf l. (The leaf may be taken again by
// an Add in the same list, so looking at the new tree is not enough.)
func removes(props []committed, l ratchettree.LeafIndex) bool {
	for _, c := range props {
		if c.p.ProposalType == wire.ProposalTypeRemove && c.p.Remove.Removed == uint32(l) {
			return true
		}
	}
	return false
}

// applied is the result of applying a proposal list to copies of the tree and context.
type applied struct {
	tree    *ratchettree.Tree
	ctx     wire.GroupContext
	added   []ratchettree.LeafIndex
	psks    []wire.PreSharedKeyID
	extInit *wire.ExternalInit
	reinit  *wire.ReInit
}

// applyProposals applies a validated proposal list to copies of the current tree and
// GroupContext in the order of RFC 9420, Section 12.3.
func (g *Group) applyProposals(props []committed) (*applied, error) {
	a := &applied{tree: g.cur.tree.Clone(), ctx: g.cur.ctx}
	a.ctx.Extensions = append(wire.Extensions(nil), g.cur.ctx.Extensions...)
	for _, c := range props {
		if c.p.ProposalType == wire.ProposalTypeGroupContextExtensions {
			exts := c.p.GroupContextExtensions.Extensions
			if err := g.checkGroupContextExtensions(&exts); err != nil {
				return nil, err
			}
			if err := checkMembersSupport(a.tree, exts); err != nil {
				return nil, err
			}
			a.ctx.Extensions = exts
		}
	}
	opts := g.leafOptions(&a.ctx)
	for _, c := range props {
		if c.p.ProposalType != wire.ProposalTypeUpdate {
			continue
		}
		l := leafIndex(c.sender.LeafIndex)
		ln := &c.p.Update.LeafNode
		if err := a.tree.ValidateLeafNode(ln, l, wire.LeafNodeSourceUpdate, &opts.LeafNodeOptions); err != nil {
			return nil, err
		}
		if err := a.tree.Update(l, ln); err != nil {
			return nil, err
		}
	}
	for _, c := range props {
		if c.p.ProposalType == wire.ProposalTypeRemove {
			if err := a.tree.Remove(leafIndex(c.p.Remove.Removed)); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range props {
		if c.p.ProposalType != wire.ProposalTypeAdd {
			continue
		}
		kp := &c.p.Add.KeyPackage
		if err := g.validateKeyPackage(kp, a.tree, opts); err != nil {
			return nil, err
		}
		l, err := a.tree.AddLeaf(&kp.LeafNode)
		if err != nil {
			return nil, err
		}
		a.added = append(a.added, l)
	}
	for _, c := range props {
		switch c.p.ProposalType {
		case wire.ProposalTypePSK:
			a.psks = append(a.psks, c.p.PreSharedKey.PSK)
		case wire.ProposalTypeExternalInit:
			a.extInit = c.p.ExternalInit
		case wire.ProposalTypeReInit:
			a.reinit = c.p.ReInit
		}
	}
	// Every member must support the group's required capabilities, including members
	// whose leaf did not change (RFC 9420, Section 11.1).
	if ext := a.ctx.Extensions.Find(wire.ExtensionTypeRequiredCapabilities); ext != nil {
		rc, err := ext.RequiredCapabilities()
		if err != nil {
			return nil, err
		}
		for l, ln := range a.tree.Leaves() {
			if err := supportsRequired(&ln.Capabilities, rc); err != nil {
				return nil, fmt.Errorf("mls: member %d: %w", l, err)
			}
		}
	}
	return a, nil
}

// checkMembersSupport checks that every member lists every non-default extension type of a
// new GroupContext in its capabilities (RFC 9420, Section 12.1.7).
func checkMembersSupport(tree *ratchettree.Tree, exts wire.Extensions) error {
	for l, ln := range tree.Leaves() {
		for _, e := range exts {
			if isDefaultExtension(e.ExtensionType) {
				continue
			}
			if !containsType(ln.Capabilities.Extensions, e.ExtensionType) {
				return fmt.Errorf("mls: member %d does not support extension %d", l, e.ExtensionType)
			}
		}
	}
	return nil
}

func isDefaultExtension(t wire.ExtensionType) bool {
	return t >= wire.ExtensionTypeApplicationID && t <= wire.ExtensionTypeExternalSenders
}

func containsType[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// supportsRequired checks capabilities against a required_capabilities extension.
func supportsRequired(c *wire.Capabilities, rc *wire.RequiredCapabilities) error {
	for _, t := range rc.ExtensionTypes {
		if !isDefaultExtension(t) && !containsType(c.Extensions, t) {
			return fmt.Errorf("required extension %d not supported", t)
		}
	}
	for _, t := range rc.ProposalTypes {
		if !t.Known() && !containsType(c.Proposals, t) {
			return fmt.Errorf("required proposal type %d not supported", t)
		}
	}
	for _, t := range rc.CredentialTypes {
		if !containsType(c.Credentials, t) {
			return fmt.Errorf("required credential type %d not supported", t)
		}
	}
	return nil
}

// validateKeyPackage checks an added KeyPackage (RFC 9420, Section 10.1).
func (g *Group) validateKeyPackage(kp *wire.KeyPackage, tree *ratchettree.Tree, opts *leafOpts) error {
	if kp.Version != wire.ProtocolVersionMLS10 {
		return fmt.Errorf("mls: key package of protocol version %d", kp.Version)
	}
	if suite.ID(kp.CipherSuite) != g.suite.ID() {
		return fmt.Errorf("mls: key package of suite 0x%04x in a 0x%04x group", uint16(kp.CipherSuite), uint16(g.suite.ID()))
	}
	if err := verifyKeyPackageSignature(g.suite, kp); err != nil {
		return err
	}
	// RFC 9420, Section 13: the new member's capabilities must list every extension of
	// the GroupContext.
	for _, e := range opts.groupExtensions {
		if !isDefaultExtension(e) && !containsType(kp.LeafNode.Capabilities.Extensions, e) {
			return fmt.Errorf("mls: the added client does not support group extension %d", e)
		}
	}
	if bytes.Equal(kp.InitKey, kp.LeafNode.EncryptionKey) {
		return errors.New("mls: key package init key equals its leaf encryption key")
	}
	if err := g.suite.ValidateHPKEPublicKey(kp.InitKey); err != nil {
		return err
	}
	// The leaf index does not enter a key_package leaf node's signature; validate it
	// where AddLeaf will put it (tree is the caller's working copy, so reserving a leaf,
	// which may extend it, changes nothing AddLeaf would not).
	l, err := tree.ReserveLeaf()
	if err != nil {
		return err
	}
	return tree.ValidateLeafNode(&kp.LeafNode, l, wire.LeafNodeSourceKeyPackage, &opts.LeafNodeOptions)
}

// applyCommit processes a Commit (RFC 9420, Section 12.4.2) and moves the group to the new
// epoch. The group is unchanged if anything fails.
func (g *Group) applyCommit(ac *wire.AuthenticatedContent) error {
	c := ac.Content.Commit
	sender := ac.Content.Sender
	if sender.SenderType != wire.SenderTypeMember && sender.SenderType != wire.SenderTypeNewMemberCommit {
		return fmt.Errorf("mls: sender type %d may not commit", sender.SenderType)
	}
	props, err := g.resolveProposals(c, sender)
	if err != nil {
		return err
	}
	if err := g.validateProposals(props, sender, false); err != nil {
		return err
	}
	a, err := g.applyProposals(props)
	if err != nil {
		return err
	}
	external := sender.SenderType == wire.SenderTypeNewMemberCommit
	committer := leafIndex(sender.LeafIndex)
	if external {
		if committer, err = a.tree.ReserveLeaf(); err != nil {
			return err
		}
	}
	if c.Path == nil && (external || pathRequired(props)) {
		return errors.New("mls: this commit must carry a path")
	}

	me := g.cur.priv.Leaf()
	if removes(props, me) {
		// This commit removes us. Everything that could be checked without the new
		// epoch's secrets was; we cannot derive them, so the group ends here.
		g.status = Removed
		return nil
	}

	priv := g.cur.priv
	// If the commit applies our own Update, our leaf now has the key of that proposal.
	for _, pr := range props {
		if pr.p.ProposalType == wire.ProposalTypeUpdate && pr.sender.LeafIndex == uint32(me) {
			key := g.updateKeys[string(pr.p.Update.LeafNode.EncryptionKey)]
			if key == nil {
				return errors.New("mls: our Update was committed, but its private key is not known")
			}
			priv = priv.Clone()
			if err := priv.SetLeafKey(a.tree, key); err != nil {
				return err
			}
		}
	}
	var commitSecret []byte
	if c.Path != nil {
		if err := a.tree.ApplyUpdatePath(committer, c.Path, &g.leafOptions(&a.ctx).LeafNodeOptions); err != nil {
			return err
		}
		provisional := a.ctx
		provisional.Epoch++
		provisional.TreeHash = a.tree.TreeHash()
		encProvisional, err := codec.Marshal(&provisional)
		if err != nil {
			return err
		}
		if committer == me {
			return errors.New("mls: a commit from our own leaf that we did not create")
		}
		priv = priv.Clone()
		dec, err := priv.DecryptUpdatePath(a.tree, committer, c.Path, encProvisional, a.added)
		if err != nil {
			return err
		}
		commitSecret = dec.CommitSecret
	}

	return g.enterEpoch(ac, a, priv, commitSecret)
}

// nextEpoch computes the GroupContext and key schedule of the epoch a Commit starts
// (RFC 9420, Sections 8.2 and 12.4): the confirmed transcript hash over the Commit, the
// tree hash of the new tree, and the epoch secrets from initSecret, commitSecret and
// pskSecret. base is the GroupContext after the Commit's proposals.
func nextEpoch(cs *suite.Suite, interimBefore []byte, ac *wire.AuthenticatedContent, base wire.GroupContext, tree *ratchettree.Tree, initSecret, commitSecret, pskSecret []byte) (wire.GroupContext, *schedule.Epoch, error) {
	input, err := codec.Marshal(ac.ConfirmedTranscriptHashInput())
	if err != nil {
		return wire.GroupContext{}, nil, err
	}
	ctx := base
	ctx.Epoch++
	ctx.TreeHash = tree.TreeHash()
	ctx.ConfirmedTranscriptHash = schedule.ConfirmedTranscriptHash(cs, interimBefore, input)
	encCtx, err := codec.Marshal(&ctx)
	if err != nil {
		return wire.GroupContext{}, nil, err
	}
	next, err := schedule.NewEpoch(cs, initSecret, commitSecret, pskSecret, encCtx)
	if err != nil {
		return wire.GroupContext{}, nil, err
	}
	return ctx, next, nil
}

// enterEpoch finishes a Commit (own or received) once the new tree and commit_secret are
// known: transcript hashes, key schedule, confirmation tag, and the switch to the new epoch
// (RFC 9420, Sections 8 and 12.4.2).
func (g *Group) enterEpoch(ac *wire.AuthenticatedContent, a *applied, priv *ratchettree.PrivateKeys, commitSecret []byte) error {
	cs := g.suite
	pskSecret, err := g.resolvePSKs(a.psks)
	if err != nil {
		return err
	}
	initSecret := g.cur.secrets.InitSecret
	if a.extInit != nil {
		kp, err := g.cur.secrets.ExternalKeyPair()
		if err != nil {
			return err
		}
		initSecret, err = cs.ExportReceiver(kp, a.extInit.KEMOutput, nil, externalInitLabel, cs.Nh())
		if err != nil {
			return fmt.Errorf("%w: external init", ErrAuth)
		}
	}
	ctx, next, err := nextEpoch(cs, g.cur.interim, ac, a.ctx, a.tree, initSecret, commitSecret, pskSecret)
	if err != nil {
		return err
	}
	if !next.VerifyConfirmationTag(ctx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag) {
		next.Zero()
		return fmt.Errorf("%w: confirmation tag", ErrAuth)
	}
	interim, err := schedule.InterimTranscriptHash(cs, ctx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag)
	if err != nil {
		return err
	}
	next.ForgetJoiner()
	priv.Prune(a.tree)
	old := g.cur.secrets
	if err := g.install(epochState{ctx: ctx, tree: a.tree, priv: priv, secrets: next, interim: interim, tag: ac.Auth.ConfirmationTag}); err != nil {
		return err
	}
	forgetSendSecrets(old)
	if a.reinit != nil {
		g.status = ReInitPending
		g.reinit = a.reinit
	}
	return nil
}

// forgetSendSecrets deletes the secrets of a finished epoch that only its members' future
// actions needed; the sender-data secret and membership key stay with the past epoch's
// receive keys. Best effort: Go may have copied them.
func forgetSendSecrets(e *schedule.Epoch) {
	for _, s := range [][]byte{e.InitSecret, e.ExternalSecret, e.ExporterSecret, e.ConfirmationKey, e.JoinerSecret, e.WelcomeSecret} {
		clear(s)
	}
}

// resolvePSKs computes psk_secret for the PSKs of a Commit: resumption PSKs of this group
// come from its own past epochs, the rest from Options.PSKs.
func (g *Group) resolvePSKs(ids []wire.PreSharedKeyID) ([]byte, error) {
	own := g.opts.PSKs
	own.Resumption = func(groupID []byte, epoch uint64) ([]byte, bool) {
		if bytes.Equal(groupID, g.cur.ctx.GroupID) {
			psk, ok := g.resumption[epoch]
			return psk, ok
		}
		if g.opts.PSKs.Resumption != nil {
			return g.opts.PSKs.Resumption(groupID, epoch)
		}
		return nil, false
	}
	return own.resolve(g.suite, ids)
}
