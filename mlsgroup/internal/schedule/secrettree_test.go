package schedule

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
)

func testSuite(t testing.TB) *suite.Suite {
	t.Helper()
	cs, err := suite.Lookup(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func testSecret(cs *suite.Suite, b byte) []byte { return bytes.Repeat([]byte{b}, cs.Nh()) }

// refKey derives ratchet key/nonce j of a leaf directly from RFC 9420, Section 9, walking
// from the root with no state, to check the lazy tree against.
func refKey(t *testing.T, cs *suite.Suite, root []byte, n uint32, leaf treemath.LeafIndex, typ RatchetType, j uint32) (key, nonce []byte) {
	t.Helper()
	x, _ := treemath.LeafNode(leaf)
	a, _ := treemath.Root(n)
	s := root
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for a != x {
		if x < a {
			s = must(cs.ExpandWithLabel(s, "tree", []byte("left"), cs.Nh()))
			a, _ = treemath.Left(a)
		} else {
			s = must(cs.ExpandWithLabel(s, "tree", []byte("right"), cs.Nh()))
			a, _ = treemath.Right(a)
		}
	}
	label := "handshake"
	if typ == ApplicationRatchet {
		label = "application"
	}
	s = must(cs.ExpandWithLabel(s, label, nil, cs.Nh()))
	for g := uint32(0); g < j; g++ {
		s = must(cs.DeriveTreeSecret(s, "secret", g, cs.Nh()))
	}
	return must(cs.DeriveTreeSecret(s, "key", j, cs.KeySize())), must(cs.DeriveTreeSecret(s, "nonce", j, cs.NonceSize()))
}

func checkKey(t *testing.T, kn KeyNonce, key, nonce []byte, gen uint32) {
	t.Helper()
	if kn.Generation != gen || !bytes.Equal(kn.Key, key) || !bytes.Equal(kn.Nonce, nonce) {
		t.Fatalf("generation %d: got %d %x %x, want %x %x", gen, kn.Generation, kn.Key, kn.Nonce, key, nonce)
	}
}

func TestSecretTreeMatchesReference(t *testing.T) {
	cs := testSuite(t)
	root := testSecret(cs, 7)
	const n = 16
	tree, err := NewSecretTree(cs, root, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Leaves in a scrambled order, both ratchets, a few generations each.
	for _, leaf := range []treemath.LeafIndex{9, 0, 15, 3, 8, 1, 14, 7} {
		for _, typ := range []RatchetType{ApplicationRatchet, HandshakeRatchet} {
			for g := uint32(0); g < 3; g++ {
				kn, err := tree.Next(leaf, typ)
				if err != nil {
					t.Fatal(err)
				}
				k, nn := refKey(t, cs, root, n, leaf, typ, g)
				checkKey(t, kn, k, nn, g)
			}
		}
	}
	// The tree stores only the frontier: no secret of a consumed node or of an ancestor of
	// a derived leaf.
	for x := range tree.nodes {
		for l := range tree.leaves {
			ln, _ := treemath.LeafNode(l)
			if treemath.IsAncestor(x, ln, n) {
				t.Fatalf("node %d is stored but leaf %d below it was derived", x, l)
			}
		}
	}
}

func TestSecretTreeOneLeaf(t *testing.T) {
	cs := testSuite(t)
	root := testSecret(cs, 1)
	tree, err := NewSecretTree(cs, root, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	kn, err := tree.Next(0, HandshakeRatchet)
	if err != nil {
		t.Fatal(err)
	}
	k, nn := refKey(t, cs, root, 1, 0, HandshakeRatchet, 0)
	checkKey(t, kn, k, nn, 0)
	if _, err := tree.Next(1, HandshakeRatchet); !errors.Is(err, ErrUnknownLeaf) {
		t.Fatalf("leaf 1 of 1: %v", err)
	}
}

func TestSecretTreeOutOfOrder(t *testing.T) {
	cs := testSuite(t)
	root := testSecret(cs, 2)
	tree, err := NewSecretTree(cs, root, 4, &Options{MaxForwardDistance: 10, OutOfOrderTolerance: 5})
	if err != nil {
		t.Fatal(err)
	}
	get := func(gen uint32) error {
		kn, err := tree.Key(2, ApplicationRatchet, gen)
		if err == nil {
			k, nn := refKey(t, cs, root, 4, 2, ApplicationRatchet, gen)
			checkKey(t, kn, k, nn, gen)
		}
		return err
	}
	// Generation 4 first, then the skipped 0..3 in any order.
	for _, g := range []uint32{4, 1, 3, 0, 2} {
		if err := get(g); err != nil {
			t.Fatalf("generation %d: %v", g, err)
		}
	}
	// Replays are refused.
	for _, g := range []uint32{0, 2, 4} {
		if err := get(g); !errors.Is(err, ErrGenerationConsumed) {
			t.Fatalf("replay of generation %d: %v", g, err)
		}
	}
	// Exactly MaxForwardDistance ahead of the next (5) is accepted; one more is refused.
	if err := get(5 + 11); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("generation 16: %v", err)
	}
	if err := get(5 + 10); err != nil {
		t.Fatalf("generation 15: %v", err)
	}
	// Skipped keys within the tolerance (5 behind 15: 10..14) are kept, older ones gone.
	if n := len(tree.leaves[2][ApplicationRatchet].skipped); n != 5 {
		t.Fatalf("%d skipped keys kept, want 5", n)
	}
	for _, g := range []uint32{5, 9} {
		if err := get(g); !errors.Is(err, ErrGenerationConsumed) {
			t.Fatalf("generation %d beyond tolerance: %v", g, err)
		}
	}
	for _, g := range []uint32{14, 10} {
		if err := get(g); err != nil {
			t.Fatalf("generation %d within tolerance: %v", g, err)
		}
	}
	// Moving on in order prunes 11 once it is more than 5 behind the newest (17).
	for g := uint32(16); g <= 17; g++ {
		if err := get(g); err != nil {
			t.Fatal(err)
		}
	}
	if err := get(11); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("generation 11, 6 behind 17: %v", err)
	}
	if err := get(12); err != nil {
		t.Fatalf("generation 12: %v", err)
	}
	// The other ratchet and the other leaves are untouched.
	kn, err := tree.Key(2, HandshakeRatchet, 0)
	if err != nil {
		t.Fatal(err)
	}
	k, nn := refKey(t, cs, root, 4, 2, HandshakeRatchet, 0)
	checkKey(t, kn, k, nn, 0)
}

func TestSecretTreeStrictOrder(t *testing.T) {
	cs := testSuite(t)
	tree, err := NewSecretTree(cs, testSecret(cs, 3), 2, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Key(1, HandshakeRatchet, 1); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("skip with forward distance 0: %v", err)
	}
	for g := uint32(0); g < 3; g++ {
		if _, err := tree.Key(1, HandshakeRatchet, g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tree.Key(1, HandshakeRatchet, 1); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("replay: %v", err)
	}
}

func TestSecretTreeOpenFailureKeepsState(t *testing.T) {
	cs := testSuite(t)
	root := testSecret(cs, 4)
	tree, err := NewSecretTree(cs, root, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := errors.New("forged")
	var seen []byte
	// A forged message claiming generation 500 fails: nothing is consumed or skipped.
	if err := tree.Open(5, ApplicationRatchet, 500, func(kn KeyNonce) error {
		seen = append([]byte(nil), kn.Key...)
		return bad
	}); !errors.Is(err, bad) {
		t.Fatalf("Open: %v", err)
	}
	k500, _ := refKey(t, cs, root, 8, 5, ApplicationRatchet, 500)
	if !bytes.Equal(seen, k500) {
		t.Fatal("Open passed the wrong key")
	}
	if r := tree.leaves[5][ApplicationRatchet]; r.next != 0 || len(r.skipped) != 0 {
		t.Fatalf("failed Open changed the ratchet: next %d, %d skipped", r.next, len(r.skipped))
	}
	// The genuine messages still decrypt, generation 0 first, then 500 (skipping 1..499).
	for _, g := range []uint32{0, 500} {
		if err := tree.Open(5, ApplicationRatchet, g, func(kn KeyNonce) error {
			k, nn := refKey(t, cs, root, 8, 5, ApplicationRatchet, g)
			checkKey(t, kn, k, nn, g)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A failed Open of a skipped key keeps it; a successful one consumes it.
	if err := tree.Open(5, ApplicationRatchet, 250, func(KeyNonce) error { return bad }); !errors.Is(err, bad) {
		t.Fatal(err)
	}
	var kept KeyNonce
	if err := tree.Open(5, ApplicationRatchet, 250, func(kn KeyNonce) error { kept = kn; return nil }); err != nil {
		t.Fatal(err)
	}
	if kept.Key != nil && !bytes.Equal(kept.Key, make([]byte, len(kept.Key))) {
		t.Fatal("key was not zeroed after use")
	}
	if err := tree.Open(5, ApplicationRatchet, 250, func(KeyNonce) error { return nil }); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("replay through Open: %v", err)
	}
	if err := tree.Open(5, ApplicationRatchet, 0, nil); err == nil {
		t.Fatal("Open with nil function")
	}
}

// TestSecretTreeLastGeneration drives a ratchet to generation 2^32-1, the last one a uint32
// can name: it can be used once, and the ratchet is exhausted afterwards.
func TestSecretTreeLastGeneration(t *testing.T) {
	cs := testSuite(t)
	tree, err := NewSecretTree(cs, testSecret(cs, 5), 2, &Options{MaxForwardDistance: math.MaxUint32, OutOfOrderTolerance: 4})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tree.ratchet(0, ApplicationRatchet)
	if err != nil {
		t.Fatal(err)
	}
	// Pretend 2^32-3 generations were used: the secret is ratchet_secret_[2^32-3] for
	// some secret s.
	s := testSecret(cs, 9)
	r.secret, r.next, r.low = append([]byte(nil), s...), math.MaxUint32-2, math.MaxUint32-2
	want := func(gen uint32) (key, nonce []byte) {
		cur := s
		for g := uint32(math.MaxUint32 - 2); g < gen; g++ {
			cur, _ = cs.DeriveTreeSecret(cur, "secret", g, cs.Nh())
		}
		k, _ := cs.DeriveTreeSecret(cur, "key", gen, cs.KeySize())
		n, _ := cs.DeriveTreeSecret(cur, "nonce", gen, cs.NonceSize())
		return k, n
	}
	kn, err := tree.Key(0, ApplicationRatchet, math.MaxUint32)
	if err != nil {
		t.Fatal(err)
	}
	k, n := want(math.MaxUint32)
	checkKey(t, kn, k, n, math.MaxUint32)
	if r.secret != nil || r.next != math.MaxUint32+1 {
		t.Fatalf("after the last generation: secret %x, next %d", r.secret, r.next)
	}
	if _, err := tree.Next(0, ApplicationRatchet); !errors.Is(err, ErrRatchetExhausted) {
		t.Fatalf("Next after the last generation: %v", err)
	}
	if _, err := tree.Key(0, ApplicationRatchet, math.MaxUint32); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("replay of the last generation: %v", err)
	}
	// The two skipped generations are still there, once.
	for _, g := range []uint32{math.MaxUint32 - 1, math.MaxUint32 - 2} {
		kn, err := tree.Key(0, ApplicationRatchet, g)
		if err != nil {
			t.Fatalf("generation %d: %v", g, err)
		}
		k, n := want(g)
		checkKey(t, kn, k, n, g)
		if _, err := tree.Key(0, ApplicationRatchet, g); !errors.Is(err, ErrGenerationConsumed) {
			t.Fatalf("replay of generation %d: %v", g, err)
		}
	}
}

func TestSecretTreeInvalid(t *testing.T) {
	cs := testSuite(t)
	if _, err := NewSecretTree(cs, testSecret(cs, 1), 3, nil); err == nil {
		t.Fatal("3 leaves accepted")
	}
	if _, err := NewSecretTree(cs, testSecret(cs, 1), 0, nil); err == nil {
		t.Fatal("0 leaves accepted")
	}
	if _, err := NewSecretTree(cs, []byte{1}, 2, nil); err == nil {
		t.Fatal("short secret accepted")
	}
	if _, err := NewSecretTree(nil, testSecret(cs, 1), 2, nil); err == nil {
		t.Fatal("nil suite accepted")
	}
	tree, err := NewSecretTree(cs, testSecret(cs, 1), 1<<31, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Next(1<<31-1, HandshakeRatchet); err != nil {
		t.Fatalf("last leaf of the largest tree: %v", err)
	}
	if got := len(tree.nodes); got != 31 {
		t.Fatalf("%d node secrets stored after one leaf of 2^31, want 31", got)
	}
	for _, leaf := range []treemath.LeafIndex{1 << 31, math.MaxUint32} {
		if _, err := tree.Next(leaf, HandshakeRatchet); !errors.Is(err, ErrUnknownLeaf) {
			t.Fatalf("leaf %d: %v", leaf, err)
		}
	}
	if _, err := tree.Next(0, RatchetType(7)); err == nil {
		t.Fatal("unknown ratchet type accepted")
	}
	tree.Zero()
	if _, err := tree.Next(0, HandshakeRatchet); err == nil {
		t.Fatal("zeroed tree still hands out keys")
	}
}

func TestEpochSecretTreeConsumesSecret(t *testing.T) {
	cs := testSuite(t)
	e, err := NewEpoch(cs, testSecret(cs, 1), nil, nil, []byte("group context"))
	if err != nil {
		t.Fatal(err)
	}
	enc := append([]byte(nil), e.EncryptionSecret...)
	tree, err := e.SecretTree(4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.EncryptionSecret != nil {
		t.Fatal("encryption_secret still in the epoch")
	}
	if _, err := e.SecretTree(4, nil); err == nil {
		t.Fatal("second secret tree from one epoch")
	}
	kn, err := tree.Next(3, ApplicationRatchet)
	if err != nil {
		t.Fatal(err)
	}
	k, n := refKey(t, cs, enc, 4, 3, ApplicationRatchet, 0)
	checkKey(t, kn, k, n, 0)
}

// BenchmarkSecretTreeKey1024 derives the application key of a random sender in a tree of
// 1024 leaves. "fresh-tree" starts every key from a new epoch's tree, so the whole path from
// the root is derived (the worst case); "steady" uses one tree, where after the first
// message of each sender a key is one ratchet step.
func BenchmarkSecretTreeKey1024(b *testing.B) {
	cs := testSuite(b)
	root := testSecret(cs, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("fresh-tree", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tree, err := NewSecretTree(cs, root, 1024, nil)
			if err != nil {
				b.Fatal(err)
			}
			kn, err := tree.Next(treemath.LeafIndex(rng.IntN(1024)), ApplicationRatchet)
			if err != nil {
				b.Fatal(err)
			}
			kn.Zero()
		}
	})
	b.Run("steady", func(b *testing.B) {
		tree, err := NewSecretTree(cs, root, 1024, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			kn, err := tree.Next(treemath.LeafIndex(rng.IntN(1024)), ApplicationRatchet)
			if err != nil {
				b.Fatal(err)
			}
			kn.Zero()
		}
	})
}

// TestSecretTreeAllocs checks that the first key of a sender costs O(log n) allocations,
// not O(n): the whole 1024-leaf tree has 2047 nodes.
func TestSecretTreeAllocs(t *testing.T) {
	cs := testSuite(t)
	root := testSecret(cs, 1)
	for _, n := range []uint32{1024, 1 << 20} {
		allocs := testing.AllocsPerRun(20, func() {
			tree, err := NewSecretTree(cs, root, n, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tree.Next(treemath.LeafIndex(n-1), ApplicationRatchet); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 40*float64(20+2*len32(n)) {
			t.Errorf("%d leaves: %.0f allocations for one key", n, allocs)
		}
		t.Logf("%d leaves: %.0f allocations for the first key", n, allocs)
	}
}

func len32(n uint32) int {
	k := 0
	for n > 1 {
		n >>= 1
		k++
	}
	return k
}

// TestSecretTreeConcurrent runs senders and receivers on one tree at once (run with -race).
func TestSecretTreeConcurrent(t *testing.T) {
	cs := testSuite(t)
	root := testSecret(cs, 6)
	tree, err := NewSecretTree(cs, root, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for w := range 8 {
		go func() {
			for g := range uint32(20) {
				kn, err := tree.Key(treemath.LeafIndex(w), ApplicationRatchet, 19-g)
				if err != nil {
					done <- err
					return
				}
				if k, _ := refKey(t, cs, root, 8, treemath.LeafIndex(w), ApplicationRatchet, 19-g); !bytes.Equal(k, kn.Key) {
					done <- errors.New("wrong key")
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(tree.nodes) != 0 {
		t.Fatalf("%d node secrets left after every leaf was derived", len(tree.nodes))
	}
}
