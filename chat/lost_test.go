package chat

import (
	"fmt"
	"slices"
	"testing"

	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/mlsgroup"
)

// lostChanges finds, from the rosters where two branches part, at the end of the one that
// lost and at the winning one, the adds and removals the winner lacks: by leaf (signal
// prekeys), never our own.
func TestLostChanges(t *testing.T) {
	leaf := func(id, pk string) mlsgroup.Member {
		return mlsgroup.Member{Identity: []byte(id), Extensions: map[uint16][]byte{layers.ExtensionSignalPrekeys: []byte(pk)}}
	}
	roster := func(ms ...mlsgroup.Member) []mlsgroup.Member { return ms }
	show := func(cs []lostChange) []string {
		var out []string
		for _, c := range cs {
			out = append(out, fmt.Sprintf("%d %s %s", c.kind, c.who, c.prekeys))
		}
		slices.Sort(out)
		return out
	}
	add, remove := fmt.Sprint(intentAdd), fmt.Sprint(intentRemove)
	for _, c := range []struct {
		what            string
		base, lost, won []mlsgroup.Member
		want            []string
	}{
		{"nothing changed", roster(leaf("me", "1"), leaf("a", "1")), roster(leaf("me", "1"), leaf("a", "1")),
			roster(leaf("me", "1"), leaf("a", "1")), nil},
		{"a joiner", roster(leaf("me", "1")), roster(leaf("me", "1"), leaf("x", "1")), roster(leaf("me", "1")),
			[]string{add + " x "}},
		{"a joiner the winner has too", roster(leaf("me", "1")), roster(leaf("me", "1"), leaf("x", "1")),
			roster(leaf("me", "1"), leaf("x", "2")), nil},
		{"a removal", roster(leaf("me", "1"), leaf("a", "1")), roster(leaf("me", "1")), roster(leaf("me", "1"), leaf("a", "1")),
			[]string{remove + " a 1"}},
		{"a removal the winner made too", roster(leaf("me", "1"), leaf("a", "1")), roster(leaf("me", "1")), roster(leaf("me", "1")), nil},
		{"a removal of a leaf the winner replaced", roster(leaf("me", "1"), leaf("a", "1")), roster(leaf("me", "1")),
			roster(leaf("me", "1"), leaf("a", "2")), nil},
		{"removed and added again, removed by the winner", roster(leaf("me", "1"), leaf("y", "1")),
			roster(leaf("me", "1"), leaf("y", "2")), roster(leaf("me", "1")), []string{add + " y "}},
		{"removed and added again, old leaf kept by the winner (it resyncs itself)", roster(leaf("me", "1"), leaf("y", "1")),
			roster(leaf("me", "1"), leaf("y", "2")), roster(leaf("me", "1"), leaf("y", "1")), nil},
		{"our own removal and join are not ours to make", roster(leaf("me", "1"), leaf("a", "1")),
			roster(leaf("me", "2"), leaf("a", "1")), roster(leaf("a", "1")), nil},
	} {
		if got := show(lostChanges(c.base, c.lost, c.won, []byte("me"))); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.what, got, c.want)
		}
	}
}
