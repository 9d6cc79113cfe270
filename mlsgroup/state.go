package mlsgroup

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/framing"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/ratchettree"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// stateVersion is the version of the encoding of MarshalBinary.
const stateVersion = 1

// ErrBadState is returned (wrapped) by Restore for a state it cannot read.
var ErrBadState = errors.New("mls: invalid saved group state")

// MarshalBinary encodes the whole group state: the current epoch (tree, private keys,
// secrets, the secret tree's position), the proposals received in it, the receive side of
// the kept past epochs and the resumption PSKs. It holds every secret of the group, so it
// must only be stored encrypted (tchat's store seals it). Save it after every change that
// a sent message depends on, before the message leaves: a restored state must never reuse
// a key generation (RFC 9420, Section 6.3.1).
func (g *Group) MarshalBinary() ([]byte, error) {
	out, _, err := g.marshal(nil, 0)
	return out, err
}

// MarshalBinaryAhead is MarshalBinary with our application ratchet of the current epoch
// encoded n generations on from where it stands (the group does not change), and returns
// the generation the encoding holds. Until SealApplication reaches that generation (see
// AppGeneration), the saved state covers the messages it seals: a group restored from it
// never uses their generations again, so they need no save of their own. Receivers skip
// the generations never used, as they skip lost messages, within their
// MaxForwardDistance. If our ratchet cannot be read (we hold no leaf in the epoch's tree), the state is
// encoded as MarshalBinary does, and the generation returned is 0.
func (g *Group) MarshalBinaryAhead(n uint32) ([]byte, uint64, error) {
	return g.AppendBinaryAhead(nil, n)
}

// AppendBinaryAhead is MarshalBinaryAhead appending to dst, for a caller that saves the
// state and reuses its buffer: a large group's state is hundreds of KiB, saved several
// times a second in a busy group.
func (g *Group) AppendBinaryAhead(dst []byte, n uint32) ([]byte, uint64, error) {
	cur, err := g.AppGeneration()
	if err != nil {
		out, _, err := g.marshal(dst, 0)
		return out, 0, err
	}
	out, gen, err := g.marshal(dst, cur+uint64(n))
	return out, max(gen, cur), err
}

// AppGeneration returns the generation of the next application message we seal in the
// current epoch (2^32 once our ratchet is exhausted).
func (g *Group) AppGeneration() (uint64, error) {
	return g.cur.keys.SecretTree.Generation(g.cur.priv.Leaf(), schedule.ApplicationRatchet)
}

func (g *Group) marshal(dst []byte, next uint64) ([]byte, uint64, error) {
	if want := g.stateSize + g.stateSize/8; cap(dst)-len(dst) < want {
		dst = append(make([]byte, 0, len(dst)+want), dst...)
	}
	start := len(dst)
	b := cryptobyte.NewBuilder(dst)
	b.AddUint8(stateVersion)
	b.AddUint16(uint16(g.suite.ID()))
	b.AddUint8(uint8(g.status))
	var signer []byte
	if g.signer != nil {
		signer = g.signer.Bytes()
	}
	codec.AddOpaque(b, signer)
	codec.AddOptional(b, g.reinit != nil)
	if g.reinit != nil {
		g.reinit.Marshal(b)
	}
	gen, err := g.marshalEpoch(b, next)
	if err != nil {
		return nil, 0, err
	}
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, p := range g.proposals {
			codec.AddOpaque(b, p.ref)
			p.proposal.Marshal(b)
			p.sender.Marshal(b)
		}
	})
	var pastErr error
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, p := range g.past {
			b.AddUint64(p.epoch)
			p.keys.Context.Marshal(b)
			codec.AddOpaque(b, p.keys.MembershipKey)
			codec.AddOpaque(b, p.keys.SenderDataSecret)
			st, err := p.keys.SecretTree.MarshalBinary()
			if err != nil {
				pastErr = err
			}
			codec.AddOpaque(b, st)
			codec.AddVector(b, func(b *cryptobyte.Builder) {
				members := p.allMembers()
				for _, l := range slices.Sorted(maps.Keys(members)) {
					b.AddUint32(l)
					codec.AddOpaque(b, members[l].signatureKey)
					codec.AddOpaque(b, members[l].identity)
				}
			})
		}
	})
	if pastErr != nil {
		return nil, 0, pastErr
	}
	var keyErr error
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, pub := range slices.Sorted(maps.Keys(g.updateKeys)) {
			raw, err := g.updateKeys[pub].Bytes()
			if err != nil {
				keyErr = err
			}
			codec.AddOpaque(b, raw)
		}
	})
	if keyErr != nil {
		return nil, 0, keyErr
	}
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, e := range slices.Sorted(maps.Keys(g.resumption)) {
			b.AddUint64(e)
			codec.AddOpaque(b, g.resumption[e])
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, 0, err
	}
	g.stateSize = len(out) - start
	return out, gen, nil
}

// marshalEpoch encodes the current epoch, with our application ratchet at generation next
// or later, and returns that generation (0 for next 0: the ratchet as it stands, unread).
func (g *Group) marshalEpoch(b *cryptobyte.Builder, next uint64) (uint64, error) {
	st := &g.cur
	st.ctx.Marshal(b)
	rt, err := g.encodedTree()
	if err != nil {
		return 0, err
	}
	b.AddBytes(rt)
	b.AddUint32(uint32(st.priv.Leaf()))
	var keyErr error
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, x := range st.priv.Nodes() {
			raw, err := st.priv.Key(x).Bytes()
			if err != nil {
				keyErr = err
			}
			b.AddUint32(uint32(x))
			codec.AddOpaque(b, raw)
		}
	})
	if keyErr != nil {
		return 0, keyErr
	}
	secrets, err := st.secrets.MarshalBinary()
	if err != nil {
		return 0, err
	}
	codec.AddOpaque(b, secrets)
	var tree []byte
	var gen uint64
	if next > 0 {
		tree, gen, err = st.keys.SecretTree.MarshalBinaryAhead(st.priv.Leaf(), schedule.ApplicationRatchet, next)
	} else {
		tree, err = st.keys.SecretTree.MarshalBinary()
	}
	if err != nil {
		return 0, err
	}
	codec.AddOpaque(b, tree)
	codec.AddOpaque(b, st.interim)
	codec.AddOpaque(b, st.tag)
	return gen, nil
}

// Restore rebuilds a group saved with MarshalBinary. opts are the options the group runs
// with (they are not saved).
func Restore(state []byte, opts Options) (*Group, error) {
	g, err := restore(cryptobyte.String(state), opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	return g, nil
}

func restore(s cryptobyte.String, opts Options) (*Group, error) {
	var version, status uint8
	var suiteID uint16
	var signer []byte
	var hasReInit bool
	if !s.ReadUint8(&version) || version != stateVersion || !s.ReadUint16(&suiteID) || !s.ReadUint8(&status) ||
		!codec.ReadOpaque(&s, &signer) || !codec.ReadOptional(&s, &hasReInit) {
		return nil, errors.New("malformed header")
	}
	cs, err := suite.Lookup(suite.ID(suiteID))
	if err != nil {
		return nil, err
	}
	if Status(status) > ReInitPending {
		return nil, fmt.Errorf("unknown status %d", status)
	}
	g := &Group{suite: cs, opts: opts, status: Status(status), resumption: map[uint64][]byte{}}
	if len(signer) > 0 {
		if g.signer, err = cs.ParseSigningKey(signer); err != nil {
			return nil, err
		}
	}
	if hasReInit {
		g.reinit = new(wire.ReInit)
		if !g.reinit.Unmarshal(&s) {
			return nil, errors.New("malformed reinit")
		}
	}
	if err := g.restoreEpoch(&s); err != nil {
		return nil, err
	}
	if !codec.ReadList(&s, func(s *cryptobyte.String) bool {
		var e proposalEntry
		e.proposal = new(wire.Proposal)
		if !codec.ReadOpaque(s, &e.ref) || !e.proposal.Unmarshal(s) || !e.sender.Unmarshal(s) {
			return false
		}
		g.proposals = append(g.proposals, e)
		return true
	}) {
		return nil, errors.New("malformed proposals")
	}
	var pastErr error
	if !codec.ReadList(&s, func(s *cryptobyte.String) bool {
		var p pastEpoch
		var ctx wire.GroupContext
		var membership, senderData, tree []byte
		if !s.ReadUint64(&p.epoch) || !ctx.Unmarshal(s) || !codec.ReadOpaque(s, &membership) ||
			!codec.ReadOpaque(s, &senderData) || !codec.ReadOpaque(s, &tree) {
			return false
		}
		st, err := schedule.UnmarshalSecretTree(cs, tree)
		if err != nil {
			pastErr = err
			return false
		}
		if len(membership) != cs.Nh() || len(senderData) != cs.Nh() || ctx.Epoch != p.epoch {
			pastErr = errors.New("inconsistent past epoch")
			return false
		}
		p.keys = &framing.Keys{Suite: cs, Context: &ctx, MembershipKey: membership, SenderDataSecret: senderData, SecretTree: st}
		p.members = map[uint32]pastMember{}
		if !codec.ReadList(s, func(s *cryptobyte.String) bool {
			var l uint32
			var m pastMember
			if !s.ReadUint32(&l) || !codec.ReadOpaque(s, &m.signatureKey) || !codec.ReadOpaque(s, &m.identity) {
				return false
			}
			p.members[l] = m
			return true
		}) {
			return false
		}
		g.past = append(g.past, p)
		return true
	}) {
		if pastErr != nil {
			return nil, pastErr
		}
		return nil, errors.New("malformed past epochs")
	}
	if !codec.ReadList(&s, func(s *cryptobyte.String) bool {
		var raw []byte
		if !codec.ReadOpaque(s, &raw) {
			return false
		}
		key, err := cs.ParseHPKEPrivateKey(raw)
		if err != nil {
			return false
		}
		if g.updateKeys == nil {
			g.updateKeys = map[string]*suite.HPKEPrivateKey{}
		}
		g.updateKeys[string(key.PublicKey())] = key
		return true
	}) {
		return nil, errors.New("malformed update keys")
	}
	if !codec.ReadList(&s, func(s *cryptobyte.String) bool {
		var e uint64
		var psk []byte
		if !s.ReadUint64(&e) || !codec.ReadOpaque(s, &psk) || len(psk) != cs.Nh() {
			return false
		}
		g.resumption[e] = psk
		return true
	}) {
		return nil, errors.New("malformed resumption PSKs")
	}
	if !s.Empty() {
		return nil, errors.New("trailing bytes")
	}
	return g, nil
}

func (g *Group) restoreEpoch(s *cryptobyte.String) error {
	cs := g.suite
	var st epochState
	var rt wire.RatchetTree
	var leaf uint32
	type nodeKey struct {
		x   uint32
		raw []byte
	}
	var keys []nodeKey
	var secrets, tree []byte
	if !st.ctx.Unmarshal(s) || !rt.Unmarshal(s) || !s.ReadUint32(&leaf) ||
		!codec.ReadList(s, func(s *cryptobyte.String) bool {
			var k nodeKey
			if !s.ReadUint32(&k.x) || !codec.ReadOpaque(s, &k.raw) {
				return false
			}
			keys = append(keys, k)
			return true
		}) ||
		!codec.ReadOpaque(s, &secrets) || !codec.ReadOpaque(s, &tree) ||
		!codec.ReadOpaque(s, &st.interim) || !codec.ReadOpaque(s, &st.tag) {
		return errors.New("malformed epoch")
	}
	if suite.ID(st.ctx.CipherSuite) != cs.ID() {
		return errors.New("group context of another suite")
	}
	var err error
	if st.tree, err = ratchettree.FromWire(cs, rt); err != nil {
		return err
	}
	var leafKey *suite.HPKEPrivateKey
	for _, k := range keys {
		if k.x == 2*leaf {
			if leafKey, err = cs.ParseHPKEPrivateKey(k.raw); err != nil {
				return err
			}
		}
	}
	if st.priv, err = ratchettree.NewPrivateKeys(st.tree, ratchettree.LeafIndex(leaf), leafKey); err != nil {
		return err
	}
	for _, k := range keys {
		if k.x == 2*leaf {
			continue
		}
		key, err := cs.ParseHPKEPrivateKey(k.raw)
		if err != nil {
			return err
		}
		if err := st.priv.SetKey(st.tree, treemath.NodeIndex(k.x), key); err != nil {
			return err
		}
	}
	if st.secrets, err = schedule.UnmarshalEpoch(cs, secrets); err != nil {
		return err
	}
	secretTree, err := schedule.UnmarshalSecretTree(cs, tree)
	if err != nil {
		return err
	}
	if secretTree.LeafCount() != st.tree.LeafCount() {
		return errors.New("secret tree and ratchet tree sizes differ")
	}
	ctx := st.ctx
	st.keys = &framing.Keys{Suite: cs, Context: &ctx, MembershipKey: st.secrets.MembershipKey,
		SenderDataSecret: st.secrets.SenderDataSecret, SecretTree: secretTree}
	g.cur = st
	return nil
}
