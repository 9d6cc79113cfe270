package mlsgroup

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// The tree a member saves, encoded from the nodes kept from the last epoch and the new
// ones, is the tree's own encoding, through adds, removals (blank leaves and parents),
// commits with a path, and a restore (which encodes every node afresh).
func TestEncodedTreeFromKeptNodes(t *testing.T) {
	creator := newMember(t, DefaultCipherSuite, "creator")
	g, err := Create(creator.key, []byte("creator"), []byte("tree group"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	creator.g = g
	check := func(step string) {
		t.Helper()
		got, err := creator.g.encodedTree()
		if err != nil {
			t.Fatal(err)
		}
		want, err := codec.Marshal(ptr(creator.g.cur.tree.Wire()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the tree encoded from kept nodes (%d bytes) is not the tree's encoding (%d bytes)", step, len(got), len(want))
		}
	}
	check("alone")
	for round := range 3 {
		var joiners []*member
		for i := range 5 {
			joiners = append(joiners, newMember(t, DefaultCipherSuite, fmt.Sprint("m", round, i)))
		}
		add(t, creator, nil, joiners...)
		check(fmt.Sprint("add ", round))
		pc, err := creator.g.Commit(CommitOptions{Remove: []uint32{uint32(2 + round)}, Path: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := creator.g.Merge(pc); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprint("remove ", round))
		pc, err = creator.g.Commit(CommitOptions{Path: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := creator.g.Merge(pc); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprint("path ", round))
	}
	st, err := creator.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if creator.g, err = Restore(st, Options{}); err != nil {
		t.Fatal(err)
	}
	check("restored")
}
