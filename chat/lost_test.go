package chat

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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

// A joiner a branch of ours that lost had added is re-admitted without an invite proof
// while we vouch for it, and not after, nor if we never saw it added.
func TestReadmitVouched(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b, x := newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "X")
	gid := formGroup(t, ctx, []*testClient{a, b})
	_, bundle, err := x.newKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	kp := bundle.KeyPackage()
	ga, _ := a.group(gid)
	readmit := func(until time.Time) (*intent, error) {
		var in *intent
		err := ga.do(ctx, func() error {
			if until.IsZero() {
				delete(ga.vouched, string(x.self))
			} else {
				ga.vouched[string(x.self)] = until
			}
			var err error
			in, err = ga.readmit(x.PeerID(), kp)
			return err
		})
		return in, err
	}
	if in, err := readmit(time.Now().Add(time.Minute)); err != nil || in.kind != intentAdd || !bytes.Equal(in.who, x.self) {
		t.Fatalf("vouched for: %+v, %v", in, err)
	}
	for what, until := range map[string]time.Time{"never vouched for": {}, "vouched for until a minute ago": time.Now().Add(-time.Minute)} {
		if in, err := readmit(until); err == nil || !strings.Contains(err.Error(), "invalid invite proof") {
			t.Fatalf("%s: %+v, %v", what, in, err)
		}
	}
}
