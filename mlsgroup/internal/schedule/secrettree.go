package schedule

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
)

// RatchetType selects one of the two hash ratchets of a leaf (RFC 9420, Section 9).
type RatchetType uint8

const (
	// HandshakeRatchet protects proposals and commits sent as PrivateMessage.
	HandshakeRatchet RatchetType = iota
	// ApplicationRatchet protects application messages.
	ApplicationRatchet
)

func (t RatchetType) String() string {
	switch t {
	case HandshakeRatchet:
		return "handshake"
	case ApplicationRatchet:
		return "application"
	}
	return fmt.Sprintf("RatchetType(%d)", uint8(t))
}

// Defaults of Options.
const (
	DefaultMaxForwardDistance  = 1000
	DefaultOutOfOrderTolerance = 1000
)

// Options bound what a receiver keeps for out-of-order delivery (RFC 9420, Section 9.2: "Members
// MAY keep unconsumed values around for some reasonable amount of time").
type Options struct {
	// MaxForwardDistance is how many generations past the next unused one a receiver
	// ratchets forward to reach a requested generation; a generation further ahead is
	// refused with ErrGenerationTooFar. 0 accepts only the next generation, in order.
	MaxForwardDistance uint32
	// OutOfOrderTolerance is how many generations behind the newest one used the keys of
	// skipped generations are kept; older ones are deleted and then refused with
	// ErrGenerationConsumed. It bounds the keys kept per ratchet. 0 keeps none.
	OutOfOrderTolerance uint32
}

// DefaultOptions returns the options used when nil is passed: forward distance 1000,
// tolerance 1000 (at most 1000 skipped keys per ratchet, roughly 150 bytes each).
func DefaultOptions() Options {
	return Options{MaxForwardDistance: DefaultMaxForwardDistance, OutOfOrderTolerance: DefaultOutOfOrderTolerance}
}

// Errors of the secret tree; returned wrapped with the leaf, ratchet and generation.
var (
	// ErrGenerationConsumed: the key of that generation was used already, or was deleted
	// because it fell outside the out-of-order tolerance (a replay, or a message too late).
	ErrGenerationConsumed = errors.New("mls: key generation already used or deleted")
	// ErrGenerationTooFar: the generation is more than MaxForwardDistance ahead.
	ErrGenerationTooFar = errors.New("mls: key generation too far ahead")
	// ErrRatchetExhausted: every generation up to 2^32-1 has been used.
	ErrRatchetExhausted = errors.New("mls: hash ratchet exhausted")
	// ErrUnknownLeaf: the leaf index is not in the tree.
	ErrUnknownLeaf = errors.New("mls: leaf index outside the secret tree")
)

// KeyNonce is the key and nonce of one generation of a hash ratchet (RFC 9420, Section 9.1):
// ratchet_key_[N]_[j] and ratchet_nonce_[N]_[j]. The nonce is the one of the key schedule,
// before the reuse guard is applied.
type KeyNonce struct {
	Generation uint32
	Key        []byte // AEAD.Nk bytes
	Nonce      []byte // AEAD.Nn bytes
}

// Zero deletes the key and nonce (RFC 9420, Section 9.2).
func (k *KeyNonce) Zero() {
	zero(k.Key, k.Nonce)
	k.Key, k.Nonce = nil, nil
}

// ratchet is one hash ratchet of a leaf: ratchet_secret_[N]_[next] and the keys of skipped,
// not yet used generations.
type ratchet struct {
	next    uint64 // generation of secret; 2^32 once the ratchet is exhausted
	secret  []byte // ratchet_secret_[N]_[next]; nil once exhausted
	skipped map[uint32]KeyNonce
	low     uint64 // no skipped key has a generation below low
}

// SecretTree is the secret tree of one epoch (RFC 9420, Section 9) and the hash ratchets of
// its leaves.
//
// Secrets are derived lazily: the first key of a leaf derives the node secrets on the path
// from the nearest stored ancestor down to that leaf, keeps the secrets of the siblings
// along the way (O(log n) of them) and deletes every secret it passed through, as Section
// 9.2 requires. A key that is handed out is deleted from the tree, so each generation can
// be used once.
//
// A SecretTree is safe for concurrent use.
type SecretTree struct {
	mu     sync.Mutex
	cs     *suite.Suite
	n      uint32
	opts   Options
	nodes  map[treemath.NodeIndex][]byte      // stored, not yet consumed tree_node_[N]_secret
	leaves map[treemath.LeafIndex]*[2]ratchet // indexed by RatchetType
}

// NewSecretTree makes the secret tree of an epoch (RFC 9420, Section 9) with
// encryptionSecret (encryption_secret, copied) at the root, for a ratchet tree of nLeaves
// leaves (a power of two, Section 7.7). opts may be nil for DefaultOptions. The caller
// deletes its copy of encryptionSecret.
func NewSecretTree(cs *suite.Suite, encryptionSecret []byte, nLeaves uint32, opts *Options) (*SecretTree, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	if len(encryptionSecret) != cs.Nh() {
		return nil, fmt.Errorf("mls: encryption_secret is %d bytes, want %d", len(encryptionSecret), cs.Nh())
	}
	root, ok := treemath.Root(nLeaves)
	if !ok {
		return nil, fmt.Errorf("mls: invalid secret tree size of %d leaves", nLeaves)
	}
	o := DefaultOptions()
	if opts != nil {
		o = *opts
	}
	return &SecretTree{
		cs:     cs,
		n:      nLeaves,
		opts:   o,
		nodes:  map[treemath.NodeIndex][]byte{root: append([]byte(nil), encryptionSecret...)},
		leaves: map[treemath.LeafIndex]*[2]ratchet{},
	}, nil
}

// LeafCount returns the number of leaves of the tree (0 once zeroed).
func (t *SecretTree) LeafCount() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Next returns the key and nonce of the next unused generation of a ratchet of leaf, for
// sending (RFC 9420, Section 6.3.1), and deletes them from the tree. The caller deletes
// them (KeyNonce.Zero) after encrypting.
func (t *SecretTree) Next(leaf treemath.LeafIndex, typ RatchetType) (KeyNonce, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet(leaf, typ)
	if err != nil {
		return KeyNonce{}, err
	}
	if r.next > math.MaxUint32 {
		return KeyNonce{}, fmt.Errorf("%w: leaf %d %s ratchet", ErrRatchetExhausted, leaf, typ)
	}
	return t.take(r, leaf, typ, uint32(r.next), nil)
}

// Key returns the key and nonce of generation gen of a ratchet of leaf and deletes them from
// the tree: generation gen is consumed whatever the caller does with it. A receiver should
// prefer Open, which consumes the key only if the message decrypts. The caller deletes the
// key (KeyNonce.Zero) after use.
func (t *SecretTree) Key(leaf treemath.LeafIndex, typ RatchetType, gen uint32) (KeyNonce, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet(leaf, typ)
	if err != nil {
		return KeyNonce{}, err
	}
	return t.take(r, leaf, typ, gen, nil)
}

// Open calls use with the key and nonce of generation gen of a ratchet of leaf, and consumes
// (deletes) them only if use returns nil (RFC 9420, Section 9.2: a key is consumed when it
// "(successfully) decrypt[s] a message"). If use fails, or the generation is refused, the
// tree is unchanged, so a forged message cannot destroy the key of a genuine one. use must
// not keep the slices: they are zeroed when it returns, and must not call back into t.
func (t *SecretTree) Open(leaf treemath.LeafIndex, typ RatchetType, gen uint32, use func(KeyNonce) error) error {
	if use == nil {
		return errors.New("mls: Open without a function")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet(leaf, typ)
	if err != nil {
		return err
	}
	_, err = t.take(r, leaf, typ, gen, use)
	return err
}

// Zero deletes every secret and key the tree still holds (RFC 9420, Section 9.2). The tree
// cannot be used afterwards.
func (t *SecretTree) Zero() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for x, s := range t.nodes {
		zero(s)
		delete(t.nodes, x)
	}
	for l, rs := range t.leaves {
		for i := range rs {
			r := &rs[i]
			zero(r.secret)
			for g, kn := range r.skipped {
				kn.Zero()
				delete(r.skipped, g)
			}
			*r = ratchet{next: math.MaxUint32 + 1}
		}
		delete(t.leaves, l)
	}
	t.n = 0
}

// ratchet returns the ratchet of a leaf, deriving the leaf's ratchets if needed.
func (t *SecretTree) ratchet(leaf treemath.LeafIndex, typ RatchetType) (*ratchet, error) {
	if typ != HandshakeRatchet && typ != ApplicationRatchet {
		return nil, fmt.Errorf("mls: unknown ratchet type %d", typ)
	}
	rs, err := t.leaf(leaf)
	if err != nil {
		return nil, err
	}
	return &rs[typ], nil
}

// leaf returns the two ratchets of a leaf, deriving them on first use (RFC 9420, Section 9):
//
//	tree_node_[left(N)]_secret = ExpandWithLabel(tree_node_[N]_secret, "tree", "left", KDF.Nh)
//	tree_node_[right(N)]_secret = ExpandWithLabel(tree_node_[N]_secret, "tree", "right", KDF.Nh)
//	handshake_ratchet_secret_[N]_[0] = ExpandWithLabel(tree_node_[N]_secret, "handshake", "", KDF.Nh)
//	application_ratchet_secret_[N]_[0] = ExpandWithLabel(tree_node_[N]_secret, "application", "", KDF.Nh)
//
// Only the path from the nearest stored ancestor is derived; each parent secret is deleted
// once its children are, and the leaf secret once the ratchets are.
func (t *SecretTree) leaf(leaf treemath.LeafIndex) (*[2]ratchet, error) {
	if rs := t.leaves[leaf]; rs != nil {
		return rs, nil
	}
	if !treemath.LeafInTree(leaf, t.n) {
		return nil, fmt.Errorf("%w: leaf %d of %d", ErrUnknownLeaf, leaf, t.n)
	}
	x, _ := treemath.LeafNode(leaf)
	a := x
	secret, ok := t.nodes[a]
	for !ok {
		// Every leaf without ratchets has exactly one stored ancestor.
		p, pok := treemath.Parent(a, t.n)
		if !pok {
			return nil, fmt.Errorf("mls: internal error: no secret above leaf %d", leaf)
		}
		a = p
		secret, ok = t.nodes[a]
	}
	delete(t.nodes, a)
	nh := t.cs.Nh()
	for a != x {
		l, _ := treemath.Left(a)
		r, _ := treemath.Right(a)
		ls, err := t.cs.ExpandWithLabel(secret, "tree", []byte("left"), nh)
		if err != nil {
			t.nodes[a] = secret
			return nil, err
		}
		rsec, err := t.cs.ExpandWithLabel(secret, "tree", []byte("right"), nh)
		if err != nil {
			zero(ls)
			t.nodes[a] = secret
			return nil, err
		}
		zero(secret)
		if x < a {
			t.nodes[r] = rsec
			secret, a = ls, l
		} else {
			t.nodes[l] = ls
			secret, a = rsec, r
		}
	}
	hs, err := t.cs.ExpandWithLabel(secret, "handshake", nil, nh)
	if err != nil {
		t.nodes[x] = secret
		return nil, err
	}
	as, err := t.cs.ExpandWithLabel(secret, "application", nil, nh)
	if err != nil {
		zero(hs)
		t.nodes[x] = secret
		return nil, err
	}
	zero(secret)
	rs := &[2]ratchet{HandshakeRatchet: {secret: hs}, ApplicationRatchet: {secret: as}}
	t.leaves[leaf] = rs
	return rs, nil
}

// keyNonce derives the key and nonce of generation gen from ratchet_secret_[N]_[gen]
// (RFC 9420, Section 9.1):
//
//	ratchet_nonce_[N]_[j] = DeriveTreeSecret(ratchet_secret_[N]_[j], "nonce", j, AEAD.Nn)
//	ratchet_key_[N]_[j] = DeriveTreeSecret(ratchet_secret_[N]_[j], "key", j, AEAD.Nk)
func (t *SecretTree) keyNonce(secret []byte, gen uint32) (KeyNonce, error) {
	nonce, err := t.cs.DeriveTreeSecret(secret, "nonce", gen, t.cs.NonceSize())
	if err != nil {
		return KeyNonce{}, err
	}
	key, err := t.cs.DeriveTreeSecret(secret, "key", gen, t.cs.KeySize())
	if err != nil {
		zero(nonce)
		return KeyNonce{}, err
	}
	return KeyNonce{Generation: gen, Key: key, Nonce: nonce}, nil
}

// take hands out generation gen of r. With use == nil the key is removed from r and
// returned; otherwise use is called with it, and r changes only if use returns nil (the
// key is then deleted).
//
// Stepping the ratchet (RFC 9420, Section 9.1):
//
//	ratchet_secret_[N]_[j+1] = DeriveTreeSecret(ratchet_secret_[N]_[j], "secret", j, KDF.Nh)
//
// The chain up to gen is derived into temporaries and committed at the end; skipped
// generations within OutOfOrderTolerance of gen keep their keys.
func (t *SecretTree) take(r *ratchet, leaf treemath.LeafIndex, typ RatchetType, gen uint32, use func(KeyNonce) error) (KeyNonce, error) {
	g64 := uint64(gen)
	if g64 < r.next {
		kn, ok := r.skipped[gen]
		if !ok {
			return KeyNonce{}, fmt.Errorf("%w: leaf %d %s generation %d", ErrGenerationConsumed, leaf, typ, gen)
		}
		if use != nil {
			if err := use(kn); err != nil {
				return KeyNonce{}, err
			}
			kn.Zero()
			kn = KeyNonce{}
		}
		delete(r.skipped, gen)
		return kn, nil
	}
	if r.secret == nil {
		return KeyNonce{}, fmt.Errorf("%w: leaf %d %s ratchet", ErrRatchetExhausted, leaf, typ)
	}
	if g64-r.next > uint64(t.opts.MaxForwardDistance) {
		return KeyNonce{}, fmt.Errorf("%w: leaf %d %s generation %d, next is %d, at most %d ahead",
			ErrGenerationTooFar, leaf, typ, gen, r.next, t.opts.MaxForwardDistance)
	}

	// Skipped generations at or above keepFrom stay within the tolerance of gen.
	keepFrom := r.next
	if tol := uint64(t.opts.OutOfOrderTolerance); g64 > tol && g64-tol > keepFrom {
		keepFrom = g64 - tol
	}
	var pending []KeyNonce
	s, owned := r.secret, false // owned: s is a temporary, not r.secret
	drop := func() {
		if owned {
			zero(s)
		}
	}
	abort := func(err error) (KeyNonce, error) {
		drop()
		for i := range pending {
			pending[i].Zero()
		}
		return KeyNonce{}, err
	}
	nh := t.cs.Nh()
	for g := r.next; g < g64; g++ {
		if g >= keepFrom {
			kn, err := t.keyNonce(s, uint32(g))
			if err != nil {
				return abort(err)
			}
			pending = append(pending, kn)
		}
		ns, err := t.cs.DeriveTreeSecret(s, "secret", uint32(g), nh)
		if err != nil {
			return abort(err)
		}
		drop()
		s, owned = ns, true
	}
	kn, err := t.keyNonce(s, gen)
	if err != nil {
		return abort(err)
	}
	var after []byte // ratchet_secret_[N]_[gen+1]; none past 2^32-1
	if gen < math.MaxUint32 {
		if after, err = t.cs.DeriveTreeSecret(s, "secret", gen, nh); err != nil {
			kn.Zero()
			return abort(err)
		}
	}
	drop()
	if use != nil {
		if err := use(kn); err != nil {
			kn.Zero()
			zero(after)
			for i := range pending {
				pending[i].Zero()
			}
			return KeyNonce{}, err
		}
		kn.Zero()
		kn = KeyNonce{}
	}

	// Commit: the old secret and everything up to gen are consumed.
	zero(r.secret)
	r.secret, r.next = after, g64+1
	if len(pending) > 0 {
		if r.skipped == nil {
			r.skipped = make(map[uint32]KeyNonce, len(pending))
		}
		for _, p := range pending {
			r.skipped[p.Generation] = p
		}
	}
	r.prune(g64, uint64(t.opts.OutOfOrderTolerance))
	return kn, nil
}

// prune deletes the skipped keys more than tol generations behind newest.
func (r *ratchet) prune(newest, tol uint64) {
	if newest <= tol {
		return
	}
	limit := newest - tol // keep generations ≥ limit
	if r.low >= limit {
		return
	}
	if uint64(len(r.skipped)) < limit-r.low {
		for g, kn := range r.skipped {
			if uint64(g) < limit {
				kn.Zero()
				delete(r.skipped, g)
			}
		}
	} else {
		for g := r.low; g < limit; g++ {
			if kn, ok := r.skipped[uint32(g)]; ok {
				kn.Zero()
				delete(r.skipped, uint32(g))
			}
		}
	}
	r.low = limit
}
