package treemath

import (
	"slices"
	"testing"
)

// The reference functions below transcribe the Python of RFC 9420, Appendix C, on uint64
// (no overflow) so the package can be checked against it node by node.

func refLog2(x uint64) int {
	if x == 0 {
		return 0
	}
	k := 0
	for x>>k > 0 {
		k++
	}
	return k - 1
}

func refLevel(x uint64) int {
	if x&1 == 0 {
		return 0
	}
	k := 0
	for (x>>k)&1 == 1 {
		k++
	}
	return k
}

func refRoot(n uint64) uint64 { return 1<<refLog2(2*(n-1)+1) - 1 }

func refParent(x, n uint64) uint64 {
	k := refLevel(x)
	b := (x >> (k + 1)) & 1
	return (x | 1<<k) ^ (b << (k + 1))
}

func refDirectPath(x, n uint64) []uint64 {
	var d []uint64
	for r := refRoot(n); x != r; {
		x = refParent(x, n)
		d = append(d, x)
	}
	return d
}

func refCommonAncestor(x, y, n uint64) uint64 {
	dx := append([]uint64{x}, refDirectPath(x, n)...)
	dy := append([]uint64{y}, refDirectPath(y, n)...)
	for _, a := range dx { // ordered from low to high level
		if slices.Contains(dy, a) {
			return a
		}
	}
	panic("no common ancestor")
}

func TestAgainstAppendixC(t *testing.T) {
	for n := uint32(1); n <= 64; n *= 2 {
		w, ok := NodeWidth(n)
		if !ok || uint64(w) != 2*uint64(n)-1 {
			t.Fatalf("NodeWidth(%d) = %d, %v", n, w, ok)
		}
		if got, ok := LeafCount(w); !ok || got != n {
			t.Fatalf("LeafCount(%d) = %d, %v", w, got, ok)
		}
		r, ok := Root(n)
		if !ok || uint64(r) != refRoot(uint64(n)) {
			t.Fatalf("Root(%d) = %d, %v", n, r, ok)
		}
		for x := NodeIndex(0); uint32(x) < w; x++ {
			if Level(x) != refLevel(uint64(x)) {
				t.Fatalf("Level(%d) = %d", x, Level(x))
			}
			if l, ok := Left(x); ok != (Level(x) > 0) || ok && uint64(l) != uint64(x)^1<<(Level(x)-1) {
				t.Fatalf("Left(%d) = %d, %v", x, l, ok)
			}
			p, ok := Parent(x, n)
			if x == r {
				if ok {
					t.Fatalf("root %d has parent %d", x, p)
				}
				if s, ok := Sibling(x, n); ok {
					t.Fatalf("root %d has sibling %d", x, s)
				}
			} else if !ok || uint64(p) != refParent(uint64(x), uint64(n)) || uint32(p) >= w {
				t.Fatalf("Parent(%d, %d) = %d, %v", x, n, p, ok)
			} else {
				// x must be a child of its parent, and its sibling the other child.
				l, _ := Left(p)
				rr, _ := Right(p)
				s, _ := Sibling(x, n)
				if (x != l && x != rr) || (x == l && s != rr) || (x == rr && s != l) {
					t.Fatalf("node %d: parent %d has children %d, %d; sibling %d", x, p, l, rr, s)
				}
			}
			dp, ok := DirectPath(x, n)
			want := refDirectPath(uint64(x), uint64(n))
			if !ok || len(dp) != len(want) {
				t.Fatalf("DirectPath(%d, %d) = %v, want %v", x, n, dp, want)
			}
			for i := range dp {
				if uint64(dp[i]) != want[i] {
					t.Fatalf("DirectPath(%d, %d) = %v, want %v", x, n, dp, want)
				}
			}
			cp, ok := Copath(x, n)
			if !ok || len(cp) != len(dp) {
				t.Fatalf("Copath(%d, %d) = %v", x, n, cp)
			}
			prev := x
			for i := range cp {
				if s, _ := Sibling(prev, n); s != cp[i] {
					t.Fatalf("Copath(%d, %d) = %v", x, n, cp)
				}
				prev = dp[i]
			}
			for y := NodeIndex(0); uint32(y) < w; y++ {
				c, ok := CommonAncestor(x, y, n)
				if want := refCommonAncestor(uint64(x), uint64(y), uint64(n)); !ok || uint64(c) != want {
					t.Fatalf("CommonAncestor(%d, %d, %d) = %d, %v; want %d", x, y, n, c, ok, want)
				}
			}
		}
	}
}

func TestLeafConversion(t *testing.T) {
	for _, l := range []LeafIndex{0, 1, 7, MaxLeaves - 1} {
		x, ok := LeafNode(l)
		if !ok || uint64(x) != 2*uint64(l) || !IsLeaf(x) {
			t.Fatalf("LeafNode(%d) = %d, %v", l, x, ok)
		}
		if back, ok := NodeLeaf(x); !ok || back != l {
			t.Fatalf("NodeLeaf(%d) = %d, %v", x, back, ok)
		}
	}
	for _, l := range []LeafIndex{MaxLeaves, MaxLeaves + 1, 0xffffffff} {
		if x, ok := LeafNode(l); ok {
			t.Fatalf("LeafNode(%d) = %d, want !ok", l, x)
		}
	}
	for _, x := range []NodeIndex{1, 3, 0xffffffff} {
		if l, ok := NodeLeaf(x); ok {
			t.Fatalf("NodeLeaf(%d) = %d, want !ok", x, l)
		}
	}
}

// TestBoundaries checks the largest tree (2^31 leaves, node indices up to 2^32-2) and
// every kind of invalid input: none may panic or wrap around.
func TestBoundaries(t *testing.T) {
	const n = MaxLeaves
	w, ok := NodeWidth(n)
	if !ok || w != 0xffffffff {
		t.Fatalf("NodeWidth(2^31) = %d, %v", w, ok)
	}
	r, ok := Root(n)
	if !ok || r != 0x7fffffff || Level(r) != 31 {
		t.Fatalf("Root(2^31) = %d, %v", r, ok)
	}
	if c, ok := Right(r); !ok || c != 0xbfffffff {
		t.Fatalf("Right(root) = %d, %v", c, ok)
	}
	if c, ok := Left(r); !ok || c != 0x3fffffff {
		t.Fatalf("Left(root) = %d, %v", c, ok)
	}
	last := NodeIndex(0xfffffffe) // leaf 2^31-1
	if l, ok := NodeLeaf(last); !ok || l != MaxLeaves-1 {
		t.Fatalf("NodeLeaf(%d) = %d, %v", last, l, ok)
	}
	if p, ok := Parent(last, n); !ok || p != 0xfffffffd {
		t.Fatalf("Parent(last) = %d, %v", p, ok)
	}
	if s, ok := Sibling(last, n); !ok || s != 0xfffffffc {
		t.Fatalf("Sibling(last) = %d, %v", s, ok)
	}
	dp, ok := DirectPath(last, n)
	if !ok || len(dp) != 31 || dp[30] != r {
		t.Fatalf("DirectPath(last) = %v, %v", dp, ok)
	}
	for i, x := range dp {
		if Level(x) != i+1 {
			t.Fatalf("DirectPath(last)[%d] = %d at level %d", i, x, Level(x))
		}
	}
	cp, ok := Copath(last, n)
	if !ok || len(cp) != 31 || cp[30] != 0x3fffffff {
		t.Fatalf("Copath(last) = %v, %v", cp, ok)
	}
	if c, ok := CommonAncestor(0, last, n); !ok || c != r {
		t.Fatalf("CommonAncestor(0, last) = %d, %v", c, ok)
	}
	if c, ok := CommonAncestor(last, 0xfffffffc, n); !ok || c != 0xfffffffd {
		t.Fatalf("CommonAncestor(last, last-2) = %d, %v", c, ok)
	}
	if !IsAncestor(r, last, n) || IsAncestor(last, r, n) {
		t.Fatal("IsAncestor")
	}

	// 0xffffffff is in no tree: no children, no parent.
	if _, ok := Left(0xffffffff); ok {
		t.Fatal("Left(0xffffffff)")
	}
	if _, ok := Right(0xffffffff); ok {
		t.Fatal("Right(0xffffffff)")
	}
	if Level(0xffffffff) != 32 {
		t.Fatal("Level(0xffffffff)")
	}
	for _, bad := range []struct {
		x NodeIndex
		n uint32
	}{
		{0xffffffff, n}, // just past the largest tree
		{0, 0},          // empty tree
		{0, 3},          // not a power of two
		{2, 6},
		{0, MaxLeaves + 1},
		{0, 0xffffffff},
		{15, 8}, // width is 15: index 15 is outside
		{16, 8}, // outside
		{1, 1},  // one-leaf tree has only node 0
	} {
		if p, ok := Parent(bad.x, bad.n); ok {
			t.Errorf("Parent(%d, %d) = %d, want !ok", bad.x, bad.n, p)
		}
		if s, ok := Sibling(bad.x, bad.n); ok {
			t.Errorf("Sibling(%d, %d) = %d, want !ok", bad.x, bad.n, s)
		}
		if d, ok := DirectPath(bad.x, bad.n); ok {
			t.Errorf("DirectPath(%d, %d) = %v, want !ok", bad.x, bad.n, d)
		}
		if d, ok := Copath(bad.x, bad.n); ok {
			t.Errorf("Copath(%d, %d) = %v, want !ok", bad.x, bad.n, d)
		}
		if c, ok := CommonAncestor(bad.x, 0, bad.n); ok {
			t.Errorf("CommonAncestor(%d, 0, %d) = %d, want !ok", bad.x, bad.n, c)
		}
	}
	for _, bad := range []uint32{0, 3, 5, 6, 12, MaxLeaves + 1, 0xffffffff, 1<<31 - 1} {
		if r, ok := Root(bad); ok {
			t.Errorf("Root(%d) = %d, want !ok", bad, r)
		}
	}
	if _, ok := NodeWidth(MaxLeaves + 1); ok {
		t.Error("NodeWidth(2^31+1)")
	}
	if w, ok := NodeWidth(0); !ok || w != 0 {
		t.Error("NodeWidth(0)")
	}
	if w, ok := NodeWidth(3); !ok || w != 5 {
		t.Error("NodeWidth(3)")
	}
	for _, bad := range []uint32{0, 2, 5, 0xfffffffe, 0xffffffff - 2} {
		if n, ok := LeafCount(bad); ok {
			t.Errorf("LeafCount(%d) = %d, want !ok", bad, n)
		}
	}
	if n, ok := LeafCount(0xffffffff); !ok || n != MaxLeaves {
		t.Error("LeafCount(2^32-1)")
	}

	// The root of a one-leaf tree is its leaf.
	if r, ok := Root(1); !ok || r != 0 {
		t.Fatalf("Root(1) = %d, %v", r, ok)
	}
	if d, ok := DirectPath(0, 1); !ok || len(d) != 0 {
		t.Fatalf("DirectPath(0, 1) = %v, %v", d, ok)
	}
	if _, ok := Parent(0, 1); ok {
		t.Fatal("Parent(0, 1)")
	}
}

func FuzzTreeMath(f *testing.F) {
	f.Add(uint32(0), uint32(0), uint32(1))
	f.Add(uint32(0xffffffff), uint32(0xfffffffe), uint32(MaxLeaves))
	f.Fuzz(func(t *testing.T, x, y, n uint32) {
		// Nothing may panic; whatever is returned must be consistent.
		p, ok := Parent(NodeIndex(x), n)
		if ok {
			if !InTree(p, n) || Level(p) <= Level(NodeIndex(x)) {
				t.Fatalf("Parent(%d, %d) = %d", x, n, p)
			}
		}
		Sibling(NodeIndex(x), n)
		Left(NodeIndex(x))
		Right(NodeIndex(x))
		if c, ok := CommonAncestor(NodeIndex(x), NodeIndex(y), n); ok {
			dx, _ := DirectPath(NodeIndex(x), n)
			dy, _ := DirectPath(NodeIndex(y), n)
			dx = append(dx, NodeIndex(x))
			dy = append(dy, NodeIndex(y))
			if !slices.Contains(dx, c) || !slices.Contains(dy, c) {
				t.Fatalf("CommonAncestor(%d, %d, %d) = %d", x, y, n, c)
			}
		}
		NodeWidth(n)
		LeafCount(x)
	})
}
