package schedule

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
)

// --- helpers -------------------------------------------------------------------------

func mustMarshal(t testing.TB, tree *SecretTree) []byte {
	t.Helper()
	enc, err := tree.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// roundTrip encodes tree, decodes it and checks that the decoded tree re-encodes to the
// same bytes and that encoding did not change tree.
func roundTrip(t *testing.T, cs *suite.Suite, tree *SecretTree) *SecretTree {
	t.Helper()
	enc := mustMarshal(t, tree)
	got, err := UnmarshalSecretTree(cs, enc)
	if err != nil {
		t.Fatalf("decoding a fresh encoding: %v", err)
	}
	if again := mustMarshal(t, got); !bytes.Equal(again, enc) {
		t.Fatal("decoded tree re-encodes differently")
	}
	if again := mustMarshal(t, tree); !bytes.Equal(again, enc) {
		t.Fatal("encoding twice gives different bytes")
	}
	if got.LeafCount() != tree.LeafCount() || got.opts != tree.opts {
		t.Fatalf("decoded tree: %d leaves %+v, want %d %+v", got.LeafCount(), got.opts, tree.LeafCount(), tree.opts)
	}
	return got
}

type opKind int

const (
	opNext opKind = iota
	opKey
	opOpenOK
	opOpenFail
)

type treeOp struct {
	kind opKind
	leaf treemath.LeafIndex
	typ  RatchetType
	gen  uint32
}

var errForged = errors.New("forged")

// apply runs op on tree and describes the outcome: the key and nonce handed out, or the
// error.
func apply(tree *SecretTree, op treeOp) string {
	var kn KeyNonce
	var err error
	switch op.kind {
	case opNext:
		kn, err = tree.Next(op.leaf, op.typ)
	case opKey:
		kn, err = tree.Key(op.leaf, op.typ, op.gen)
	case opOpenOK, opOpenFail:
		err = tree.Open(op.leaf, op.typ, op.gen, func(k KeyNonce) error {
			kn = KeyNonce{Generation: k.Generation, Key: slices.Clone(k.Key), Nonce: slices.Clone(k.Nonce)}
			if op.kind == opOpenFail {
				return errForged
			}
			return nil
		})
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%d %x %x", kn.Generation, kn.Key, kn.Nonce)
}

// sameBehaviour runs ops on both trees and checks that every outcome is the same.
func sameBehaviour(t *testing.T, a, b *SecretTree, ops []treeOp) {
	t.Helper()
	for _, op := range ops {
		ra, rb := apply(a, op), apply(b, op)
		if ra != rb {
			t.Fatalf("%+v: original %s, decoded %s", op, ra, rb)
		}
	}
}

// sweep lists, for each leaf and both ratchets, Key for every generation from 0 to upTo-1 in
// order: consumed generations are refused, skipped ones handed out, and then every future
// generation in turn.
func sweep(leaves []treemath.LeafIndex, upTo uint32) []treeOp {
	var ops []treeOp
	for _, l := range leaves {
		for _, typ := range []RatchetType{HandshakeRatchet, ApplicationRatchet} {
			for g := range upTo {
				ops = append(ops, treeOp{kind: opKey, leaf: l, typ: typ, gen: g})
			}
			ops = append(ops, treeOp{kind: opNext, leaf: l, typ: typ})
		}
	}
	return ops
}

// script is a random mix of sends, receptions out of order, replays and forgeries.
func script(rng *rand.Rand, n uint32, count int, maxGen int) []treeOp {
	ops := make([]treeOp, count)
	for i := range ops {
		ops[i] = treeOp{
			kind: opKind(rng.IntN(4)),
			leaf: treemath.LeafIndex(rng.IntN(int(n))),
			typ:  RatchetType(rng.IntN(2)),
			gen:  uint32(rng.IntN(maxGen)),
		}
	}
	return ops
}

func run(t testing.TB, tree *SecretTree, ops []treeOp) {
	t.Helper()
	for _, op := range ops {
		apply(tree, op)
	}
}

// --- round trips -----------------------------------------------------------------------

// treeState builds a tree of n leaves and applies ops to it.
type treeState struct {
	name  string
	suite suite.ID
	n     uint32
	opts  *Options
	ops   func(rng *rand.Rand) []treeOp
	hack  func(t testing.TB, tree *SecretTree) // direct state changes, after ops
}

func treeStates() []treeState {
	small := &Options{MaxForwardDistance: 40, OutOfOrderTolerance: 7}
	return []treeState{
		{name: "fresh", n: 8},
		{name: "one leaf", n: 1, ops: func(*rand.Rand) []treeOp {
			return []treeOp{{kind: opNext, typ: ApplicationRatchet}}
		}},
		{name: "sent", n: 8, ops: func(*rand.Rand) []treeOp {
			return []treeOp{{kind: opNext, leaf: 3}, {kind: opNext, leaf: 3, typ: ApplicationRatchet},
				{kind: opNext, leaf: 3, typ: ApplicationRatchet}, {kind: opNext, leaf: 6}}
		}},
		{name: "out of order", n: 16, opts: small, ops: func(*rand.Rand) []treeOp {
			return []treeOp{
				{kind: opKey, leaf: 5, typ: ApplicationRatchet, gen: 9}, // skips 2..8 (tolerance 7)
				{kind: opKey, leaf: 5, typ: ApplicationRatchet, gen: 4},
				{kind: opOpenOK, leaf: 5, typ: ApplicationRatchet, gen: 7},
				{kind: opOpenFail, leaf: 5, typ: ApplicationRatchet, gen: 8},
				{kind: opKey, leaf: 12, typ: HandshakeRatchet, gen: 3},
				{kind: opKey, leaf: 12, typ: HandshakeRatchet, gen: 20}, // prunes below 13
				{kind: opKey, leaf: 0, typ: HandshakeRatchet, gen: 0},
			}
		}},
		{name: "random", n: 32, opts: small, ops: func(rng *rand.Rand) []treeOp {
			return script(rng, 32, 400, 60)
		}},
		{name: "strict order", n: 4, opts: &Options{}, ops: func(*rand.Rand) []treeOp {
			return []treeOp{{kind: opNext, leaf: 1}, {kind: opKey, leaf: 2, gen: 0}, {kind: opKey, leaf: 2, gen: 1}}
		}},
		{name: "every leaf derived", n: 4, ops: func(*rand.Rand) []treeOp {
			return []treeOp{{kind: opNext, leaf: 0}, {kind: opNext, leaf: 1}, {kind: opNext, leaf: 2},
				{kind: opKey, leaf: 3, typ: ApplicationRatchet, gen: 5}}
		}},
		{name: "1024 leaves", n: 1024, ops: func(rng *rand.Rand) []treeOp {
			var ops []treeOp
			for _, l := range []treemath.LeafIndex{0, 1, 511, 512, 700, 1023} {
				ops = append(ops, treeOp{kind: opNext, leaf: l, typ: ApplicationRatchet},
					treeOp{kind: opKey, leaf: l, typ: HandshakeRatchet, gen: uint32(rng.IntN(30))})
			}
			return ops
		}},
		{name: "SHA-512", suite: suite.MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448, n: 8, opts: small,
			ops: func(rng *rand.Rand) []treeOp { return script(rng, 8, 100, 30) }},
		{name: "exhausted", n: 2, opts: &Options{MaxForwardDistance: math.MaxUint32, OutOfOrderTolerance: 4},
			hack: func(t testing.TB, tree *SecretTree) {
				exhaust(t, tree, 1, ApplicationRatchet)
			}},
	}
}

// exhaust pretends that 2^32-3 generations of a ratchet were used, then receives the last
// one, 2^32-1: the ratchet is exhausted with two skipped keys.
func exhaust(t testing.TB, tree *SecretTree, leaf treemath.LeafIndex, typ RatchetType) {
	t.Helper()
	r, err := tree.ratchet(leaf, typ)
	if err != nil {
		t.Fatal(err)
	}
	r.next = math.MaxUint32 - 2
	if _, err := tree.Key(leaf, typ, math.MaxUint32); err != nil {
		t.Fatal(err)
	}
	if r.secret != nil || r.next != exhausted || len(r.skipped) != 2 {
		t.Fatalf("ratchet not exhausted: next %d, %d skipped", r.next, len(r.skipped))
	}
}

func (s treeState) build(t testing.TB) (*suite.Suite, *SecretTree) {
	t.Helper()
	id := s.suite
	if id == 0 {
		id = suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	}
	cs, err := suite.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := NewSecretTree(cs, testSecret(cs, 0x5a), s.n, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.ops != nil {
		run(t, tree, s.ops(rand.New(rand.NewPCG(uint64(s.n), 1))))
	}
	if s.hack != nil {
		s.hack(t, tree)
	}
	return cs, tree
}

func TestSecretTreeRoundTrip(t *testing.T) {
	for _, s := range treeStates() {
		t.Run(s.name, func(t *testing.T) {
			cs, tree := s.build(t)
			dec := roundTrip(t, cs, tree)
			// Every leaf derived or not, both ratchets, every generation up to well past the
			// newest used: same keys, same refusals, in the same order.
			var leaves []treemath.LeafIndex
			for l := range min(s.n, 64) {
				leaves = append(leaves, treemath.LeafIndex(l))
			}
			if s.n > 64 {
				for l := range tree.leaves {
					leaves = append(leaves, l)
				}
				leaves = append(leaves, treemath.LeafIndex(s.n-1), treemath.LeafIndex(s.n/2+3))
			}
			rng := rand.New(rand.NewPCG(7, uint64(s.n)))
			// A random script first, so that the trees also agree on pruning and
			// forgeries from this state on, then the sweeps.
			ops := script(rng, s.n, 300, 80)
			if s.name == "exhausted" {
				ops = exhaustedOps()
			}
			sameBehaviour(t, tree, dec, ops)
			sameBehaviour(t, tree, dec, sweep(leaves, 130))
			// Encodings taken now still agree: the trees evolved identically.
			if !bytes.Equal(mustMarshal(t, tree), mustMarshal(t, dec)) {
				t.Fatal("trees diverged")
			}
		})
	}
}

// exhaustedOps probes the exhausted ratchet of the "exhausted" state around 2^32.
func exhaustedOps() []treeOp {
	var ops []treeOp
	for _, g := range []uint32{math.MaxUint32 - 5, math.MaxUint32 - 4, math.MaxUint32 - 3, math.MaxUint32,
		math.MaxUint32 - 2, math.MaxUint32 - 1, math.MaxUint32 - 2, 0} {
		ops = append(ops, treeOp{kind: opOpenFail, leaf: 1, typ: ApplicationRatchet, gen: g},
			treeOp{kind: opKey, leaf: 1, typ: ApplicationRatchet, gen: g})
	}
	return append(ops, treeOp{kind: opNext, leaf: 1, typ: ApplicationRatchet},
		treeOp{kind: opNext, leaf: 1, typ: HandshakeRatchet})
}

// TestSecretTreeRoundTripReference checks decoded keys against RFC 9420, Section 9,
// computed from the root with no state (refKey), not only against the original tree.
func TestSecretTreeRoundTripReference(t *testing.T) {
	cs := testSuite(t)
	root := testSecret(cs, 0x33)
	tree, err := NewSecretTree(cs, root, 8, &Options{MaxForwardDistance: 50, OutOfOrderTolerance: 10})
	if err != nil {
		t.Fatal(err)
	}
	run(t, tree, []treeOp{{kind: opKey, leaf: 6, typ: ApplicationRatchet, gen: 12}, {kind: opKey, leaf: 6, typ: ApplicationRatchet, gen: 5}})
	dec, err := UnmarshalSecretTree(cs, mustMarshal(t, tree))
	if err != nil {
		t.Fatal(err)
	}
	tree.Zero()
	for _, g := range []uint32{3, 4, 6, 11, 13, 14, 40} {
		kn, err := dec.Key(6, ApplicationRatchet, g)
		if err != nil {
			t.Fatalf("generation %d: %v", g, err)
		}
		k, n := refKey(t, cs, root, 8, 6, ApplicationRatchet, g)
		checkKey(t, kn, k, n, g)
	}
	for _, g := range []uint32{1, 2, 5, 12, 13} {
		if _, err := dec.Key(6, ApplicationRatchet, g); !errors.Is(err, ErrGenerationConsumed) {
			t.Fatalf("generation %d after restart: %v", g, err)
		}
	}
	kn, err := dec.Next(1, HandshakeRatchet)
	if err != nil {
		t.Fatal(err)
	}
	k, n := refKey(t, cs, root, 8, 1, HandshakeRatchet, 0)
	checkKey(t, kn, k, n, 0)
}

func TestSecretTreeMarshalZeroed(t *testing.T) {
	cs := testSuite(t)
	tree, err := NewSecretTree(cs, testSecret(cs, 1), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	tree.Zero()
	if _, err := tree.MarshalBinary(); err == nil {
		t.Fatal("zeroed tree encoded")
	}
	if _, err := UnmarshalSecretTree(nil, []byte{'T', 1}); err == nil {
		t.Fatal("nil suite accepted")
	}
}

func TestSecretTreeWrongSuite(t *testing.T) {
	s := treeStates()[3] // out of order: node secrets, ratchet secrets and skipped keys
	_, tree := s.build(t)
	enc := mustMarshal(t, tree)
	for _, id := range []suite.ID{
		suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521,             // Nh 64
		suite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519, // same Nh, Nk 32
	} {
		cs, err := suite.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnmarshalSecretTree(cs, enc); !errors.Is(err, codec.ErrDecode) {
			t.Errorf("decoded with suite %v: %v", id, err)
		}
	}
}

// --- a second encoder, from the format's description ------------------------------------

// enc writes the presentation language by hand and remembers where each length is.
type enc struct {
	b    []byte
	lens [][2]int // offset and width of every variable-length integer
}

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u32(v uint32) { e.b = append(e.b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
func (e *enc) u64(v uint64) { e.u32(uint32(v >> 32)); e.u32(uint32(v)) }

func (e *enc) varint(v int) {
	off := len(e.b)
	switch {
	case v < 1<<6:
		e.u8(uint8(v))
	case v < 1<<14:
		e.b = append(e.b, byte(v>>8)|0x40, byte(v))
	default:
		e.u32(uint32(v) | 0x80000000)
	}
	e.lens = append(e.lens, [2]int{off, len(e.b) - off})
}

func (e *enc) opaque(data []byte) { e.varint(len(data)); e.b = append(e.b, data...) }

func (e *enc) vector(f func(sub *enc)) {
	var sub enc
	f(&sub)
	e.varint(len(sub.b))
	for _, l := range sub.lens {
		e.lens = append(e.lens, [2]int{l[0] + len(e.b), l[1]})
	}
	e.b = append(e.b, sub.b...)
}

type rawSkipped struct {
	gen        uint32
	key, nonce []byte
}

type rawRatchet struct {
	next    uint64
	low     uint32
	present uint8
	secret  []byte
	skipped []rawSkipped
}

type rawLeaf struct {
	leaf uint32
	r    [2]rawRatchet
}

type rawNode struct {
	node   uint32
	secret []byte
}

type rawTree struct {
	tag, version uint8
	n, mfd, tol  uint32
	nodes        []rawNode
	leaves       []rawLeaf
}

func (r *rawTree) encode() *enc {
	var e enc
	e.u8(r.tag)
	e.u8(r.version)
	e.u32(r.n)
	e.u32(r.mfd)
	e.u32(r.tol)
	e.vector(func(e *enc) {
		for _, x := range r.nodes {
			e.u32(x.node)
			e.opaque(x.secret)
		}
	})
	e.vector(func(e *enc) {
		for _, l := range r.leaves {
			e.u32(l.leaf)
			for _, rr := range l.r {
				e.u64(rr.next)
				e.u32(rr.low)
				e.u8(rr.present)
				if rr.present == 1 {
					e.opaque(rr.secret)
				}
				e.vector(func(e *enc) {
					for _, s := range rr.skipped {
						e.u32(s.gen)
						e.opaque(s.key)
						e.opaque(s.nonce)
					}
				})
			}
		}
	})
	return &e
}

// rawFrom reads a tree's state into a rawTree, copying every secret.
func rawFrom(tree *SecretTree) *rawTree {
	r := &rawTree{tag: 'T', version: 1, n: tree.n, mfd: tree.opts.MaxForwardDistance, tol: tree.opts.OutOfOrderTolerance}
	for x, s := range tree.nodes {
		r.nodes = append(r.nodes, rawNode{uint32(x), slices.Clone(s)})
	}
	slices.SortFunc(r.nodes, func(a, b rawNode) int { return cmp.Compare(a.node, b.node) })
	for l, rs := range tree.leaves {
		rl := rawLeaf{leaf: uint32(l)}
		for i, rt := range rs {
			rr := rawRatchet{next: rt.next, low: uint32(rt.low), secret: slices.Clone(rt.secret)}
			if rt.secret != nil {
				rr.present = 1
			}
			for g, kn := range rt.skipped {
				rr.skipped = append(rr.skipped, rawSkipped{g, slices.Clone(kn.Key), slices.Clone(kn.Nonce)})
			}
			slices.SortFunc(rr.skipped, func(a, b rawSkipped) int { return cmp.Compare(a.gen, b.gen) })
			rl.r[i] = rr
		}
		r.leaves = append(r.leaves, rl)
	}
	slices.SortFunc(r.leaves, func(a, b rawLeaf) int { return cmp.Compare(a.leaf, b.leaf) })
	return r
}

// TestSecretTreeFormat checks MarshalBinary against the format as documented, written by
// the independent encoder above.
func TestSecretTreeFormat(t *testing.T) {
	for _, s := range treeStates() {
		t.Run(s.name, func(t *testing.T) {
			_, tree := s.build(t)
			if got, want := mustMarshal(t, tree), rawFrom(tree).encode().b; !bytes.Equal(got, want) {
				t.Fatalf("encoding differs from the documented format:\n got %x\nwant %x", got, want)
			}
		})
	}
}

// badTree is the base state of the rejection tests: 8 leaves, leaf 2 derived with skipped
// application keys 3, 4, 5 and next generation 7, tolerance 5; stored nodes 1, 6 and 11.
func badTree(t *testing.T) (*suite.Suite, *rawTree) {
	t.Helper()
	cs := testSuite(t)
	tree, err := NewSecretTree(cs, testSecret(cs, 9), 8, &Options{MaxForwardDistance: 10, OutOfOrderTolerance: 5})
	if err != nil {
		t.Fatal(err)
	}
	run(t, tree, []treeOp{{kind: opKey, leaf: 2, typ: ApplicationRatchet, gen: 6},
		{kind: opKey, leaf: 2, typ: ApplicationRatchet, gen: 1}, {kind: opKey, leaf: 2, typ: ApplicationRatchet, gen: 2}})
	r := rawFrom(tree)
	if len(r.nodes) != 3 || r.nodes[0].node != 1 || r.nodes[1].node != 6 || r.nodes[2].node != 11 ||
		len(r.leaves) != 1 || r.leaves[0].r[1].next != 7 || len(r.leaves[0].r[1].skipped) != 3 || r.leaves[0].r[1].low != 1 {
		t.Fatalf("unexpected base state %+v", r)
	}
	if _, err := UnmarshalSecretTree(cs, r.encode().b); err != nil {
		t.Fatalf("base state rejected: %v", err)
	}
	return cs, r
}

func TestSecretTreeRejects(t *testing.T) {
	cs := testSuite(t)
	nh, nk, nn := cs.Nh(), cs.KeySize(), cs.NonceSize()
	app := func(r *rawTree) *rawRatchet { return &r.leaves[0].r[ApplicationRatchet] }
	sk := func(g uint32) rawSkipped { return rawSkipped{g, make([]byte, nk), make([]byte, nn)} }
	for _, c := range []struct {
		name string
		edit func(r *rawTree)
	}{
		{"wrong tag", func(r *rawTree) { r.tag = 'E' }},
		{"version 0", func(r *rawTree) { r.version = 0 }},
		{"version 2", func(r *rawTree) { r.version = 2 }},
		{"0 leaves", func(r *rawTree) { r.n = 0 }},
		{"6 leaves", func(r *rawTree) { r.n = 6 }},
		{"2^32-1 leaves", func(r *rawTree) { r.n = math.MaxUint32 }},
		{"16 leaves, half uncovered", func(r *rawTree) { r.n = 16 }},
		{"4 leaves, node outside", func(r *rawTree) { r.n = 4 }},
		{"short node secret", func(r *rawTree) { r.nodes[1].secret = r.nodes[1].secret[1:] }},
		{"long node secret", func(r *rawTree) { r.nodes[1].secret = append(r.nodes[1].secret, 0) }},
		{"empty node secret", func(r *rawTree) { r.nodes[0].secret = nil }},
		{"short ratchet secret", func(r *rawTree) { app(r).secret = make([]byte, nh-1) }},
		{"long ratchet secret", func(r *rawTree) { app(r).secret = make([]byte, nh+1) }},
		{"short skipped key", func(r *rawTree) { app(r).skipped[0].key = make([]byte, nk-1) }},
		{"long skipped nonce", func(r *rawTree) { app(r).skipped[2].nonce = make([]byte, nn+1) }},
		{"skipped key with Nh bytes", func(r *rawTree) { app(r).skipped[1].key = make([]byte, nh) }},
		{"node outside the tree", func(r *rawTree) { r.nodes = append(r.nodes, rawNode{15, make([]byte, nh)}) }},
		{"node 2^32-1", func(r *rawTree) { r.nodes = append(r.nodes, rawNode{math.MaxUint32, make([]byte, nh)}) }},
		{"leaf outside the tree", func(r *rawTree) {
			r.leaves = append(r.leaves, r.leaves[0])
			r.leaves[1].leaf = 8
		}},
		{"leaf 2^32-1", func(r *rawTree) {
			r.leaves = append(r.leaves, r.leaves[0])
			r.leaves[1].leaf = math.MaxUint32
		}},
		{"node and its ancestor", func(r *rawTree) {
			r.nodes = slices.Insert(r.nodes, 1, rawNode{3, make([]byte, nh)})
		}},
		{"node and its descendant", func(r *rawTree) {
			r.nodes = slices.Insert(r.nodes, 0, rawNode{0, make([]byte, nh)})
		}},
		{"root and everything", func(r *rawTree) {
			r.nodes = slices.Insert(r.nodes, 2, rawNode{7, make([]byte, nh)})
		}},
		{"derived leaf's own node", func(r *rawTree) {
			r.nodes = slices.Insert(r.nodes, 1, rawNode{4, make([]byte, nh)})
		}},
		{"derived leaf's parent", func(r *rawTree) {
			r.nodes = slices.Insert(r.nodes, 1, rawNode{5, make([]byte, nh)})
		}},
		{"node missing", func(r *rawTree) { r.nodes = slices.Delete(r.nodes, 1, 2) }},
		{"last node missing", func(r *rawTree) { r.nodes = r.nodes[:2] }},
		{"nothing stored", func(r *rawTree) { r.nodes, r.leaves = nil, nil }},
		{"derived leaf missing", func(r *rawTree) { r.leaves = nil }},
		{"duplicate node", func(r *rawTree) { r.nodes = slices.Insert(r.nodes, 1, r.nodes[1]) }},
		{"nodes out of order", func(r *rawTree) { r.nodes[0], r.nodes[1] = r.nodes[1], r.nodes[0] }},
		{"duplicate leaf", func(r *rawTree) {
			r.leaves = append(r.leaves, r.leaves[0])
			r.nodes = slices.Delete(r.nodes, 1, 2)
		}},
		{"leaves out of order", func(r *rawTree) {
			// Leaves 2 and 3 both derived, listed 3 then 2.
			r.nodes = slices.Delete(r.nodes, 1, 2)
			l3 := r.leaves[0]
			l3.leaf = 3
			r.leaves = []rawLeaf{l3, r.leaves[0]}
		}},
		{"duplicate skipped key", func(r *rawTree) { app(r).skipped = slices.Insert(app(r).skipped, 1, app(r).skipped[1]) }},
		{"skipped keys out of order", func(r *rawTree) { s := app(r).skipped; s[0], s[1] = s[1], s[0] }},
		{"skipped key at next", func(r *rawTree) { app(r).skipped = append(app(r).skipped, sk(7)) }},
		{"skipped key beyond next", func(r *rawTree) { app(r).skipped = append(app(r).skipped, sk(9)) }},
		{"skipped key at the newest used", func(r *rawTree) { app(r).skipped = append(app(r).skipped, sk(6)) }},
		{"skipped key at 2^32-1", func(r *rawTree) { app(r).skipped = append(app(r).skipped, sk(math.MaxUint32)) }},
		{"skipped key beyond tolerance", func(r *rawTree) { app(r).skipped = slices.Insert(app(r).skipped, 0, sk(0)) }},
		{"more skipped keys than tolerance", func(r *rawTree) { r.tol = 2 }},
		{"skipped keys with tolerance 0", func(r *rawTree) { r.tol = 0 }},
		{"skipped key below low", func(r *rawTree) { app(r).low = 4 }},
		{"skipped keys on a fresh ratchet", func(r *rawTree) {
			hs := &r.leaves[0].r[HandshakeRatchet]
			hs.skipped = []rawSkipped{sk(0)}
		}},
		{"low above next", func(r *rawTree) { app(r).low = 8 }},
		{"next beyond 2^32", func(r *rawTree) { app(r).next = 1<<32 + 1 }},
		{"next 2^64-1", func(r *rawTree) { app(r).next = math.MaxUint64 }},
		{"exhausted with a secret", func(r *rawTree) { app(r).next = 1 << 32 }},
		{"not exhausted without a secret", func(r *rawTree) { app(r).present = 0 }},
		{"presence octet 2", func(r *rawTree) { app(r).present = 2 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, r := badTree(t)
			c.edit(r)
			data := r.encode().b
			tree, err := UnmarshalSecretTree(cs, data)
			if err == nil {
				t.Fatalf("accepted: %+v", tree)
			}
			if !errors.Is(err, codec.ErrDecode) {
				t.Fatalf("error does not wrap codec.ErrDecode: %v", err)
			}
			t.Log(err)
		})
	}
}

func TestSecretTreeRejectsEncodingErrors(t *testing.T) {
	cs, r := badTree(t)
	good := r.encode().b
	check := func(name string, data []byte) {
		t.Helper()
		if _, err := UnmarshalSecretTree(cs, data); !errors.Is(err, codec.ErrDecode) {
			t.Errorf("%s: %v", name, err)
		}
	}
	check("trailing byte", append(slices.Clone(good), 0))
	check("trailing bytes", append(slices.Clone(good), good...))
	check("empty", nil)
	// The node vector's length is at offset 14; re-encode it with a non-minimal varint.
	nonMinimal := slices.Concat(good[:14], []byte{0x40}, good[14:])
	check("non-minimal length", nonMinimal)
	check("epoch tag", []byte{'E', 1})
}

// TestSecretTreeTruncated checks that every proper prefix of an encoding is rejected.
func TestSecretTreeTruncated(t *testing.T) {
	for _, s := range treeStates() {
		t.Run(s.name, func(t *testing.T) {
			cs, tree := s.build(t)
			data := mustMarshal(t, tree)
			for i := range data {
				if _, err := UnmarshalSecretTree(cs, data[:i]); err == nil {
					t.Fatalf("prefix of %d of %d bytes accepted", i, len(data))
				} else if !errors.Is(err, codec.ErrDecode) {
					t.Fatalf("prefix of %d bytes: %v", i, err)
				}
			}
		})
	}
}

// TestSecretTreeFlippedLength changes every length of an encoding by one in each direction
// and flips its high bit: every such change must be rejected. Every other byte is flipped
// too: the decoder must not panic, and what it accepts must re-encode to the same bytes.
func TestSecretTreeFlippedLength(t *testing.T) {
	for _, s := range treeStates() {
		t.Run(s.name, func(t *testing.T) {
			cs, tree := s.build(t)
			e := rawFrom(tree).encode()
			if !bytes.Equal(e.b, mustMarshal(t, tree)) {
				t.Fatal("raw encoding differs")
			}
			isLen := map[int]bool{}
			for _, l := range e.lens {
				last := l[0] + l[1] - 1 // the low-order byte of the length
				isLen[last] = true
				for _, d := range []byte{1, 0xff} {
					data := slices.Clone(e.b)
					data[last] += d
					if _, err := UnmarshalSecretTree(cs, data); err == nil {
						t.Fatalf("length at %d changed by %d accepted", last, int8(d))
					}
				}
				data := slices.Clone(e.b)
				data[l[0]] ^= 0x80
				if _, err := UnmarshalSecretTree(cs, data); err == nil {
					t.Fatalf("length at %d with high bit flipped accepted", l[0])
				}
			}
			if len(e.lens) == 0 {
				t.Fatal("no lengths found")
			}
			// Every byte of small encodings; in large ones, the lengths and a sample.
			positions := make([]int, len(e.b))
			for i := range positions {
				positions[i] = i
			}
			if len(e.b) > 2000 {
				rng := rand.New(rand.NewPCG(5, uint64(len(e.b))))
				rng.Shuffle(len(positions), func(i, j int) { positions[i], positions[j] = positions[j], positions[i] })
				positions = positions[:1000]
				for i := range isLen {
					positions = append(positions, i)
				}
			}
			for _, i := range positions {
				for _, x := range []byte{0x01, 0x80, 0xff} {
					data := slices.Clone(e.b)
					data[i] ^= x
					dec, err := UnmarshalSecretTree(cs, data)
					if err != nil {
						continue
					}
					if isLen[i] {
						t.Fatalf("length at %d xor %#x accepted", i, x)
					}
					if again := mustMarshal(t, dec); !bytes.Equal(again, data) {
						t.Fatalf("byte %d xor %#x: accepted and re-encoded differently", i, x)
					}
				}
			}
		})
	}
}

// --- epoch ------------------------------------------------------------------------------

func epochStates(t testing.TB, cs *suite.Suite) map[string]*Epoch {
	t.Helper()
	gc := []byte("group context")
	mk := func() *Epoch {
		e, err := NewEpoch(cs, testSecret(cs, 3), testSecret(cs, 4), nil, gc)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	states := map[string]*Epoch{"new": mk()}
	e := mk()
	e.ForgetJoiner()
	states["joiner forgotten"] = e
	e = mk()
	if _, err := e.SecretTree(8, nil); err != nil {
		t.Fatal(err)
	}
	states["tree taken"] = e
	e = mk()
	e.ForgetJoiner()
	if _, err := e.SecretTree(8, nil); err != nil {
		t.Fatal(err)
	}
	e.TakeInitSecret()
	states["minimal"] = e
	j, err := NewEpochFromJoiner(cs, states["new"].JoinerSecret, nil, gc)
	if err != nil {
		t.Fatal(err)
	}
	states["from joiner"] = j
	e = mk()
	forgetSendSecretsLike(e)
	states["cleared in place"] = e
	return states
}

// forgetSendSecretsLike clears some secrets in place, as the group does for past epochs:
// they stay Nh bytes long.
func forgetSendSecretsLike(e *Epoch) {
	zero(e.InitSecret, e.ExternalSecret, e.ExporterSecret, e.ConfirmationKey)
}

func sameEpoch(t *testing.T, a, b *Epoch) {
	t.Helper()
	if a.Suite != b.Suite {
		t.Fatal("suite differs")
	}
	fa, fb := a.fields(), b.fields()
	for i := range fa {
		x, y := *fa[i].p, *fb[i].p
		if (x == nil) != (y == nil) || !bytes.Equal(x, y) {
			t.Fatalf("%s: %x, want %x", fa[i].name, y, x)
		}
	}
}

func TestEpochRoundTrip(t *testing.T) {
	for _, id := range []suite.ID{suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521} {
		cs, err := suite.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		for name, e := range epochStates(t, cs) {
			t.Run(fmt.Sprintf("%v/%s", id, name), func(t *testing.T) {
				data, err := e.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				d, err := UnmarshalEpoch(cs, data)
				if err != nil {
					t.Fatal(err)
				}
				sameEpoch(t, e, d)
				again, err := d.MarshalBinary()
				if err != nil || !bytes.Equal(again, data) {
					t.Fatalf("re-encoding differs: %v", err)
				}
				// The decoded epoch works: the Welcome key, the secret tree, the exporter.
				if e.WelcomeSecret != nil {
					k1, _, _ := e.WelcomeKeyNonce()
					k2, _, err := d.WelcomeKeyNonce()
					if err != nil || !bytes.Equal(k1, k2) {
						t.Fatalf("Welcome key: %v", err)
					}
				} else if _, _, err := d.WelcomeKeyNonce(); err == nil {
					t.Fatal("Welcome key without welcome_secret")
				}
				if e.EncryptionSecret != nil {
					ta, _ := e.SecretTree(4, nil)
					tb, err := d.SecretTree(4, nil)
					if err != nil {
						t.Fatal(err)
					}
					sameBehaviour(t, ta, tb, sweep([]treemath.LeafIndex{0, 3}, 5))
				} else if _, err := d.SecretTree(4, nil); err == nil {
					t.Fatal("secret tree without encryption_secret")
				}
				x1, _ := e.Export("label", nil, 32)
				x2, _ := d.Export("label", nil, 32)
				if !bytes.Equal(x1, x2) {
					t.Fatal("exporter differs")
				}
				// Every prefix is rejected, and so is a trailing byte.
				for i := range data {
					if _, err := UnmarshalEpoch(cs, data[:i]); !errors.Is(err, codec.ErrDecode) {
						t.Fatalf("prefix of %d bytes: %v", i, err)
					}
				}
				if _, err := UnmarshalEpoch(cs, append(slices.Clone(data), 0)); !errors.Is(err, codec.ErrDecode) {
					t.Fatalf("trailing byte: %v", err)
				}
			})
		}
	}
}

func TestEpochRejects(t *testing.T) {
	cs := testSuite(t)
	e := epochStates(t, cs)["new"]
	good, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Layout: tag, version, then per field [presence octet] length octet and Nh bytes.
	nh := cs.Nh()
	check := func(name string, data []byte) {
		t.Helper()
		if _, err := UnmarshalEpoch(cs, data); !errors.Is(err, codec.ErrDecode) {
			t.Errorf("%s: %v", name, err)
		}
	}
	edit := func(i int, b byte) []byte {
		d := slices.Clone(good)
		d[i] = b
		return d
	}
	check("tag", edit(0, 'T'))
	check("version 0", edit(1, 0))
	check("version 2", edit(1, 2))
	check("presence 2", edit(2, 2))
	check("joiner_secret absent but bytes follow", edit(2, 0))
	check("short joiner_secret", edit(3, byte(nh-1)))
	check("long joiner_secret", edit(3, byte(nh+1)))
	check("non-minimal length", slices.Concat(good[:3], []byte{0x40}, good[3:]))
	check("empty", nil)
	check("tree tag", []byte{'T', 1})
	for _, id := range []suite.ID{suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521} {
		other, _ := suite.Lookup(id)
		if _, err := UnmarshalEpoch(other, good); !errors.Is(err, codec.ErrDecode) {
			t.Errorf("decoded with suite %v: %v", id, err)
		}
	}
	if _, err := UnmarshalEpoch(nil, good); err == nil {
		t.Error("nil suite accepted")
	}
	// Every length changed by one or with its high bit flipped: offsets of the length
	// octets follow from the layout.
	off, lens := 2, []int{}
	for _, f := range e.fields() {
		if f.optional {
			off++
		}
		lens = append(lens, off)
		off += 1 + nh
	}
	for _, l := range lens {
		for _, b := range []byte{good[l] + 1, good[l] - 1, good[l] ^ 0x80} {
			check(fmt.Sprintf("length at %d = %#x", l, b), edit(l, b))
		}
	}

	// Encoding refuses an epoch it could not decode.
	zeroed := epochStates(t, cs)["new"]
	zeroed.Zero()
	if _, err := zeroed.MarshalBinary(); err == nil {
		t.Error("zeroed epoch encoded")
	}
	short := epochStates(t, cs)["new"]
	short.MembershipKey = short.MembershipKey[1:]
	if _, err := short.MarshalBinary(); err == nil {
		t.Error("short membership_key encoded")
	}
	empty := epochStates(t, cs)["new"]
	empty.WelcomeSecret = []byte{}
	if _, err := empty.MarshalBinary(); err == nil {
		t.Error("empty, non-nil welcome_secret encoded")
	}
	if _, err := (&Epoch{}).MarshalBinary(); err == nil {
		t.Error("epoch without a suite encoded")
	}
}

// --- fuzzing and benchmark --------------------------------------------------------------

func FuzzUnmarshalSecretTree(f *testing.F) {
	// Real encodings of every state but the large ones, which slow the minimizer down.
	for _, s := range treeStates() {
		if s.suite != 0 || s.name == "random" {
			continue
		}
		_, tree := s.build(f)
		f.Add(mustMarshal(f, tree))
	}
	cs, err := suite.Lookup(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := UnmarshalSecretTree(cs, data)
		if err != nil {
			if !errors.Is(err, codec.ErrDecode) {
				t.Fatalf("error does not wrap codec.ErrDecode: %v", err)
			}
			return
		}
		again, err := tree.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, data)
		}
		// The decoded state is consistent: the first and last leaves have a secret.
		for _, l := range []treemath.LeafIndex{0, treemath.LeafIndex(tree.LeafCount() - 1)} {
			for _, typ := range []RatchetType{HandshakeRatchet, ApplicationRatchet} {
				if _, err := tree.Next(l, typ); err != nil && !errors.Is(err, ErrRatchetExhausted) {
					t.Fatalf("leaf %d %v: %v", l, typ, err)
				}
			}
		}
	})
}

func FuzzUnmarshalEpoch(f *testing.F) {
	cs, err := suite.Lookup(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range epochStates(f, cs) {
		data, err := e.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := UnmarshalEpoch(cs, data)
		if err != nil {
			if !errors.Is(err, codec.ErrDecode) {
				t.Fatalf("error does not wrap codec.ErrDecode: %v", err)
			}
			return
		}
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded epoch does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, data)
		}
	})
}

// BenchmarkSecretTreeMarshal1024 encodes and decodes the secret tree of a 1024-leaf group
// in which 50 members have sent messages, some received out of order (skipped keys kept).
func BenchmarkSecretTreeMarshal1024(b *testing.B) {
	cs := testSuite(b)
	tree, err := NewSecretTree(cs, testSecret(cs, 1), 1024, nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, l := range rng.Perm(1024)[:50] {
		leaf := treemath.LeafIndex(l)
		if _, err := tree.Next(leaf, HandshakeRatchet); err != nil {
			b.Fatal(err)
		}
		// Application messages 0..9 arrive with 3 and 7 missing.
		for g := range uint32(10) {
			if g == 3 || g == 7 {
				continue
			}
			if _, err := tree.Key(leaf, ApplicationRatchet, g); err != nil {
				b.Fatal(err)
			}
		}
	}
	data := mustMarshal(b, tree)
	b.ReportAllocs()
	for b.Loop() {
		enc, err := tree.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := UnmarshalSecretTree(cs, enc); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)), "bytes")
}
