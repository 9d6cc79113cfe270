package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/framing"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/ratchettree"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// DefaultPastEpochs is how many past epochs a group keeps the receive side of, so that late
// application messages still decrypt.
const DefaultPastEpochs = 3

// Options tune a group. The zero value is valid.
type Options struct {
	// PastEpochs is how many past epochs keep their receive keys (0: DefaultPastEpochs;
	// negative: none).
	PastEpochs int
	// PSKs resolves external and resumption PSKs of other groups.
	PSKs PSKs
	// Now returns the time used to check key package lifetimes (nil: time.Now).
	Now func() time.Time
	// CheckCredential, if set, decides whether a credential is acceptable for its
	// signature key (RFC 9420, Section 5.3.1).
	CheckCredential func(identity []byte, signatureKey []byte) error

	// Extensions are a new group's GroupContext extensions, by type (Create only).
	Extensions map[uint16][]byte
	// SupportedExtensions are extension types this client supports beyond those of
	// Extensions, listed in the capabilities of the leaf it creates (Create, JoinExternal).
	SupportedExtensions []uint16
	// LeafExtensions are the extensions of the leaf this client creates (Create,
	// JoinExternal), by type, as KeyPackageOptions.Extensions are for a KeyPackage.
	LeafExtensions map[uint16][]byte
}

// sortedExtensions turns a map of extensions into a list ordered by type.
func sortedExtensions(m map[uint16][]byte) wire.Extensions {
	out := wire.Extensions{}
	for t, body := range m {
		out = append(out, wire.Extension{ExtensionType: wire.ExtensionType(t), ExtensionData: bytes.Clone(body)})
	}
	slices.SortFunc(out, func(a, b wire.Extension) int { return int(a.ExtensionType) - int(b.ExtensionType) })
	return out
}

// Extension returns the body of a GroupContext extension of the current epoch.
func (g *Group) Extension(t uint16) ([]byte, bool) {
	if e := g.cur.ctx.Extensions.Find(wire.ExtensionType(t)); e != nil {
		return bytes.Clone(e.ExtensionData), true
	}
	return nil, false
}

func (o *Options) pastEpochs() int {
	switch {
	case o.PastEpochs == 0:
		return DefaultPastEpochs
	case o.PastEpochs < 0:
		return 0
	}
	return o.PastEpochs
}

// Status says whether a member can still use the group.
type Status int

const (
	// Active: the member is in the group.
	Active Status = iota
	// Removed: a Commit removed this member; it can still read late messages of past
	// epochs, and nothing else.
	Removed
	// ReInitPending: a Commit with a ReInit proposal closed the group; members wait for
	// the Welcome to its successor (RFC 9420, Section 11.2).
	ReInitPending
)

func (s Status) String() string {
	switch s {
	case Active:
		return "active"
	case Removed:
		return "removed"
	case ReInitPending:
		return "reinit pending"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ErrNotActive is returned when a member that was removed, or whose group was
// reinitialized, tries to use the group.
var ErrNotActive = errors.New("mls: not an active member of the group")

// epochState is one epoch of a group as a member sees it.
type epochState struct {
	ctx     wire.GroupContext
	tree    *ratchettree.Tree
	priv    *ratchettree.PrivateKeys
	secrets *schedule.Epoch
	keys    *framing.Keys
	interim []byte // interim_transcript_hash
	tag     []byte // confirmation_tag of the Commit that started the epoch
}

// pastEpoch keeps what is needed to read late application messages of an old epoch.
type pastEpoch struct {
	epoch uint64
	keys  *framing.Keys
	// The signature keys of that epoch's members: its tree while the group runs (trees
	// are never modified in place, so keeping one costs nothing), or the keys alone after
	// a restore.
	tree    *ratchettree.Tree
	members map[uint32]pastMember
}

// pastMember is what late messages need of a member of a past epoch.
type pastMember struct {
	signatureKey, identity []byte
}

// member returns leaf l of the past epoch.
func (p *pastEpoch) member(l uint32) (pastMember, bool) {
	if p.tree != nil {
		if ln := p.tree.Leaf(ratchettree.LeafIndex(l)); ln != nil {
			return pastMember{ln.SignatureKey, ln.Credential.Identity}, true
		}
		return pastMember{}, false
	}
	m, ok := p.members[l]
	return m, ok
}

// allMembers lists the past epoch's members by leaf index.
func (p *pastEpoch) allMembers() map[uint32]pastMember {
	if p.tree == nil {
		return p.members
	}
	m := map[uint32]pastMember{}
	for l, ln := range p.tree.Leaves() {
		m[uint32(l)] = pastMember{ln.SignatureKey, ln.Credential.Identity}
	}
	return m
}

// proposalEntry is a proposal received in the current epoch, kept for commits that
// reference it (RFC 9420, Section 12.4).
type proposalEntry struct {
	ref      []byte
	proposal *wire.Proposal
	sender   wire.Sender
}

// Group is one member's state of an MLS group. A Group is not safe for concurrent use: give
// it a single writer.
type Group struct {
	suite  *suite.Suite
	opts   Options
	signer *suite.SigningKey // nil for a member that only reads (test vectors)
	status Status

	cur        epochState
	proposals  []proposalEntry
	past       []pastEpoch
	resumption map[uint64][]byte // resumption_psk of this and recent epochs
	reinit     *wire.ReInit      // set when a ReInit was committed
	// updateKeys are the leaf keys of this member's own Update proposals of the current
	// epoch, by public key, for when one of them is committed.
	updateKeys map[string]*suite.HPKEPrivateKey

	// encTree is cur.tree encoded, and encTreeOf the tree it is of (trees are never
	// modified in place): a member saves its state after every message it sends, and
	// the tree is most of it. stateSize is the size of the last state encoded, to size
	// the buffer of the next.
	encTree   []byte
	encTreeOf *ratchettree.Tree
	// encNodes holds the encoding of each node of encTreeOf. Nodes are never modified
	// once in a tree either, and the tree of the next epoch shares all of them but the
	// path a commit changed and the leaves it added: in a group of 200, encoding the
	// tree node by node anew each epoch was most of what a save allocated.
	encNodes  map[*wire.Node][]byte
	stateSize int
	roster    atomic.Pointer[rosterCache] // atomic: Members only reads the group otherwise
}

// Join joins a group from a Welcome (RFC 9420, Section 12.4.3.1). ratchetTree is the
// encoded tree (`optional<Node> ratchet_tree<V>`) when the Welcome's GroupInfo does not
// carry a ratchet_tree extension, else nil. The bundle must hold its encryption key; a
// bundle without a signature key gives a member that can follow the group but not send.
func Join(welcome []byte, bundle *KeyPackageBundle, ratchetTree []byte, opts Options) (*Group, error) {
	p, err := bundle.OpenWelcome(welcome, opts.PSKs)
	if err != nil {
		return nil, err
	}
	return p.Join(ratchetTree, opts)
}

// Join finishes joining (RFC 9420, Section 12.4.3.1): it loads the tree (from the
// ratchet_tree extension, else from ratchetTree), validates it against the GroupContext,
// checks the GroupInfo signature by the signer's leaf, finds this member's leaf and
// installs the path secret.
func (p *PendingJoin) Join(ratchetTree []byte, opts Options) (*Group, error) {
	cs := p.bundle.suite
	if p.bundle.leafKey == nil {
		return nil, errors.New("mls: key package bundle has no encryption key")
	}
	info := p.info
	g := &Group{suite: cs, opts: opts, signer: p.bundle.signingKey, resumption: map[uint64][]byte{}}
	ctx := info.GroupContext
	// RFC 9420, Section 13: a joiner must support every GroupContext extension.
	for _, e := range ctx.Extensions {
		if !isDefaultExtension(e.ExtensionType) && !containsType(p.bundle.kp.LeafNode.Capabilities.Extensions, e.ExtensionType) {
			return nil, fmt.Errorf("mls: the group uses extension %d, which this client does not support", e.ExtensionType)
		}
	}
	tree, err := g.loadTree(info, ratchetTree)
	if err != nil {
		return nil, err
	}
	me, ok := tree.FindLeaf(&p.bundle.kp.LeafNode)
	if !ok {
		return nil, errors.New("mls: our key package's leaf is not in the tree")
	}
	priv, err := ratchettree.NewPrivateKeys(tree, me, p.bundle.leafKey)
	if err != nil {
		return nil, err
	}
	if ps := p.secrets.PathSecret; ps != nil {
		x, ok := treemath.CommonAncestor(2*treemath.NodeIndex(me), 2*treemath.NodeIndex(info.Signer), tree.LeafCount())
		if !ok {
			return nil, errors.New("mls: no common ancestor with the group info signer")
		}
		if err := priv.InstallPathSecret(tree, x, ps.PathSecret); err != nil {
			return nil, err
		}
	}
	// Resumption PSKs of usage reinit or branch are only valid for joining epoch 1 of the
	// new group, and only one of them (RFC 9420, Section 12.4.3.1).
	if err := checkJoinPSKs(p.secrets.PSKs, ctx.Epoch); err != nil {
		return nil, err
	}
	interim, err := schedule.InterimTranscriptHash(cs, ctx.ConfirmedTranscriptHash, info.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	if err := g.install(epochState{ctx: ctx, tree: tree, priv: priv, secrets: p.epoch, interim: interim, tag: info.ConfirmationTag}); err != nil {
		return nil, err
	}
	return g, nil
}

// loadTree builds the tree of a GroupInfo, from its ratchet_tree extension or else from
// ratchetTree, and checks everything a joiner must (RFC 9420, Section 12.4.3.1): the
// GroupContext extensions, the tree against the GroupContext's tree hash, every leaf and
// parent hash, and the GroupInfo signature by the signer's leaf.
func (g *Group) loadTree(info *wire.GroupInfo, ratchetTree []byte) (*ratchettree.Tree, error) {
	var rt wire.RatchetTree
	if ext := info.Extensions.Find(wire.ExtensionTypeRatchetTree); ext != nil {
		var err error
		if rt, err = ext.RatchetTree(); err != nil {
			return nil, fmt.Errorf("mls: ratchet_tree extension: %w", err)
		}
	} else if ratchetTree != nil {
		if err := codec.Unmarshal(ratchetTree, &rt); err != nil {
			return nil, fmt.Errorf("mls: ratchet tree: %w", err)
		}
	} else {
		return nil, ErrNoTree
	}
	tree, err := ratchettree.FromWire(g.suite, rt)
	if err != nil {
		return nil, err
	}
	ctx := &info.GroupContext
	if err := g.checkGroupContextExtensions(&ctx.Extensions); err != nil {
		return nil, err
	}
	if err := tree.Validate(ctx.TreeHash, &g.leafOptions(ctx).LeafNodeOptions); err != nil {
		return nil, err
	}
	signer := tree.Leaf(ratchettree.LeafIndex(info.Signer))
	if signer == nil {
		return nil, fmt.Errorf("mls: group info signer %d is not a member", info.Signer)
	}
	if err := verifyGroupInfo(g.suite, info, signer.SignatureKey); err != nil {
		return nil, err
	}
	return tree, nil
}

// checkJoinPSKs enforces RFC 9420, Section 12.4.3.1 on the PSKs of a Welcome.
func checkJoinPSKs(ids []wire.PreSharedKeyID, epoch uint64) error {
	n := 0
	for _, id := range ids {
		if id.PSKType != wire.PSKTypeResumption {
			continue
		}
		switch id.Usage {
		case wire.ResumptionPSKUsageReInit, wire.ResumptionPSKUsageBranch:
			n++
			if epoch != 1 {
				return fmt.Errorf("mls: a welcome with a %d resumption PSK must start at epoch 1, not %d", id.Usage, epoch)
			}
		case wire.ResumptionPSKUsageApplication:
		default:
			return fmt.Errorf("mls: unknown resumption PSK usage %d", id.Usage)
		}
	}
	if n > 1 {
		return errors.New("mls: more than one reinit or branch PSK in a welcome")
	}
	return nil
}

// install makes st the current epoch: it builds the secret tree and message keys, and
// records the epoch's resumption PSK.
func (g *Group) install(st epochState) error {
	secretTree, err := st.secrets.SecretTree(st.tree.LeafCount(), nil)
	if err != nil {
		return err
	}
	ctx := st.ctx
	st.keys = &framing.Keys{
		Suite:            g.suite,
		Context:          &ctx,
		MembershipKey:    st.secrets.MembershipKey,
		SenderDataSecret: st.secrets.SenderDataSecret,
		SecretTree:       secretTree,
	}
	if g.cur.keys != nil {
		g.retire()
	}
	g.cur = st
	g.proposals = nil
	g.updateKeys = nil
	g.resumption[st.ctx.Epoch] = bytes.Clone(st.secrets.ResumptionPSK)
	// Keep the resumption PSKs of as many epochs as receive keys, and at least one.
	keep := max(g.opts.pastEpochs(), 1)
	for e := range g.resumption {
		if e+uint64(keep) < st.ctx.Epoch {
			delete(g.resumption, e)
		}
	}
	return nil
}

// retire moves the current epoch's receive side to the past epochs.
func (g *Group) retire() {
	n := g.opts.pastEpochs()
	if n == 0 {
		g.cur.keys.SecretTree.Zero()
		return
	}
	g.past = append(g.past, pastEpoch{epoch: g.cur.ctx.Epoch, keys: g.cur.keys, tree: g.cur.tree})
	for len(g.past) > n {
		g.past[0].keys.SecretTree.Zero()
		g.past = g.past[1:]
	}
}

// leafOpts is the validation context of leaf nodes and KeyPackages in a group.
type leafOpts struct {
	ratchettree.LeafNodeOptions
	groupExtensions []wire.ExtensionType // the GroupContext's extension types
}

// leafOptions returns the leaf node validation context of a GroupContext.
func (g *Group) leafOptions(ctx *wire.GroupContext) *leafOpts {
	o := &leafOpts{LeafNodeOptions: ratchettree.LeafNodeOptions{GroupID: ctx.GroupID}, groupExtensions: ctx.Extensions.Types()}
	if ext := ctx.Extensions.Find(wire.ExtensionTypeRequiredCapabilities); ext != nil {
		if rc, err := ext.RequiredCapabilities(); err == nil {
			o.RequiredCapabilities = rc
		}
	}
	if g.opts.Now != nil {
		o.Now = g.opts.Now()
	}
	if check := g.opts.CheckCredential; check != nil {
		o.CheckCredential = func(c *wire.Credential, key []byte) error {
			return check(c.Identity, key)
		}
	}
	return o
}

// checkGroupContextExtensions checks that the known extensions of a GroupContext decode.
func (g *Group) checkGroupContextExtensions(exts *wire.Extensions) error {
	seen := map[wire.ExtensionType]bool{}
	for i := range *exts {
		e := &(*exts)[i]
		if seen[e.ExtensionType] {
			return fmt.Errorf("mls: duplicate group context extension %d", e.ExtensionType)
		}
		seen[e.ExtensionType] = true
		var err error
		switch e.ExtensionType {
		case wire.ExtensionTypeRequiredCapabilities:
			_, err = e.RequiredCapabilities()
		case wire.ExtensionTypeExternalSenders:
			_, err = e.ExternalSenders()
		case wire.ExtensionTypeExternalPub, wire.ExtensionTypeRatchetTree:
			err = fmt.Errorf("extension %d is not a group context extension", e.ExtensionType)
		}
		if err != nil {
			return fmt.Errorf("mls: group context extension %d: %w", e.ExtensionType, err)
		}
	}
	return nil
}

// Epoch returns the current epoch number.
func (g *Group) Epoch() uint64 { return g.cur.ctx.Epoch }

// GroupID returns the group id.
func (g *Group) GroupID() []byte { return bytes.Clone(g.cur.ctx.GroupID) }

// EpochAuthenticator returns the epoch_authenticator of the current epoch (RFC 9420,
// Section 8.7): members that agree on it agree on the whole group state.
func (g *Group) EpochAuthenticator() []byte { return bytes.Clone(g.cur.secrets.EpochAuthenticator) }

// Status reports whether this member can still use the group.
func (g *Group) Status() Status { return g.status }

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return g.suite.ID() }

// LeafIndex returns this member's leaf index.
func (g *Group) LeafIndex() uint32 { return uint32(g.cur.priv.Leaf()) }

// Export is the MLS-Exporter of the current epoch (RFC 9420, Section 8.5).
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	return g.cur.secrets.Export(label, context, length)
}

// Member is one member of the group as the roster shows it.
type Member struct {
	LeafIndex    uint32
	Identity     []byte // the basic credential's identity
	SignatureKey []byte
	// Extensions are the leaf node's extensions, by type.
	Extensions map[uint16][]byte
}

// RatchetTree returns the current epoch's ratchet tree (optional<Node> ratchet_tree<V>),
// for a joiner whose Welcome does not carry it. It costs O(group size).
func (g *Group) RatchetTree() ([]byte, error) {
	t, err := g.encodedTree()
	return bytes.Clone(t), err
}

// encodedTree returns the current epoch's ratchet tree encoded (not to be modified).
func (g *Group) encodedTree() ([]byte, error) {
	if g.encTreeOf == g.cur.tree {
		return g.encTree, nil
	}
	// As RatchetTree.Marshal writes it: a vector of optional<Node>, from the encodings of
	// the nodes kept from the last tree encoded and of the new ones.
	nodes := g.cur.tree.Wire()
	encs := make(map[*wire.Node][]byte, len(nodes))
	body := 0
	for _, n := range nodes {
		body++ // the presence octet
		if n == nil {
			continue
		}
		enc, ok := g.encNodes[n]
		if !ok {
			var err error
			if enc, err = codec.Marshal(n); err != nil {
				return nil, err
			}
		}
		encs[n] = enc
		body += len(enc)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, body+4))
	codec.AddVarint(b, uint64(body))
	for _, n := range nodes {
		codec.AddOptional(b, n != nil)
		if n != nil {
			b.AddBytes(encs[n])
		}
	}
	t, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	g.encTree, g.encTreeOf, g.encNodes = t, g.cur.tree, encs
	return g.encTree, nil
}

// Members returns the current roster, by leaf index. The byte slices and maps of the
// Members returned are shared by every call in the epoch: do not modify them.
func (g *Group) Members() []Member {
	tree := g.cur.tree
	if c := g.roster.Load(); c != nil && c.of == tree {
		return slices.Clone(c.members)
	}
	ms := members(tree)
	g.roster.Store(&rosterCache{of: tree, members: ms})
	return slices.Clone(ms)
}

// rosterCache is Members of a tree (trees are never modified in place): tchat looks at
// the roster many times per message and per commit, and each list costs a copy of
// every leaf's credential and extensions.
type rosterCache struct {
	of      *ratchettree.Tree
	members []Member
}

func members(t *ratchettree.Tree) []Member {
	var out []Member
	for l, ln := range t.Leaves() {
		m := Member{LeafIndex: uint32(l), Identity: bytes.Clone(ln.Credential.Identity), SignatureKey: bytes.Clone(ln.SignatureKey)}
		for _, e := range ln.Extensions {
			if m.Extensions == nil {
				m.Extensions = map[uint16][]byte{}
			}
			m.Extensions[uint16(e.ExtensionType)] = bytes.Clone(e.ExtensionData)
		}
		out = append(out, m)
	}
	return out
}
