package chat

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/mlsgroup"
)

// keptEpochs returns the epochs c keeps of its branch of gid, with their authenticators
// and commit frames.
func keptEpochs(t *testing.T, ctx context.Context, c *testClient, gid GroupID) []epochRec {
	t.Helper()
	g, err := c.group(gid)
	if err != nil {
		t.Fatal(err)
	}
	var out []epochRec
	if err = g.do(ctx, func() error {
		for _, r := range g.hist {
			out = append(out, epochRec{epoch: r.epoch, auth: clone(r.auth), frame: clone(r.frame), key: r.key})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameEpochs(a, b []epochRec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].epoch != b[i].epoch || !bytes.Equal(a[i].auth, b[i].auth) || !bytes.Equal(a[i].frame, b[i].frame) || a[i].key != b[i].key {
			return false
		}
	}
	return true
}

// A member that restarts keeps the epochs of its branch it kept before, as many as
// KeepEpochs; an epoch record that does not parse loses the epochs before it, and the
// group still loads.
func TestKeptEpochsSurviveRestart(t *testing.T) {
	fastWith(t, 300*time.Millisecond, func(c *Config) { c.KeepEpochs = 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pa, pb := newProfile(t), newProfile(t)
	a, b := pa.start(t, "A"), pb.start(t, "B")
	gid := formGroup(t, ctx, []*testClient{a, b})
	for i := range 4 {
		if err := a.Rename(ctx, gid, fmt.Sprintf("name %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitAgree(t, ctx, gid, []*testClient{a, b}, 2)
	before := keptEpochs(t, ctx, b, gid)
	if len(before) != 3 {
		t.Fatalf("B keeps %d epochs, want 3", len(before))
	}
	b.Close()
	b = pb.start(t, "B again")
	after := keptEpochs(t, ctx, b, gid)
	if !sameEpochs(before, after) {
		t.Fatalf("B kept epochs %v before the restart, %v after", epochsOf(before), epochsOf(after))
	}
	// The saved state of a kept epoch opens: the member can judge from it.
	g, _ := b.group(gid)
	if err := g.do(ctx, func() error { _, err := mlsgroup.Restore(g.hist[0].state, g.c.mlsOptions()); return err }); err != nil {
		t.Fatalf("the oldest kept epoch does not restore: %v", err)
	}

	// The records of the epochs kept no longer are gone from the store.
	keys := histKeys(t, ctx, pb.st, g.id)
	if len(keys) != 3 {
		t.Fatalf("%d epoch records stored, want 3", len(keys))
	}

	// The middle record damaged: only the epoch after it is kept.
	b.Close()
	if err := pb.st.Update(ctx, func(tx *store.Tx) error {
		return tx.SaveSession(histKey(g.id, before[1].epoch), []byte{histVersion, 1, 2, 3})
	}); err != nil {
		t.Fatal(err)
	}
	b = pb.start(t, "B once more")
	if got := keptEpochs(t, ctx, b, gid); !sameEpochs(got, before[2:]) {
		t.Fatalf("after a damaged record B keeps epochs %v, want %v", epochsOf(got), epochsOf(before[2:]))
	}
	if _, err := b.Send(ctx, gid, "still here"); err != nil {
		t.Fatal(err)
	}
	waitReceived(t, "still here", a)
}

func epochsOf(rs []epochRec) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.epoch)
	}
	return out
}

func histKeys(t *testing.T, ctx context.Context, st *store.Store, id []byte) []store.SessionKey {
	t.Helper()
	var out []store.SessionKey
	if err := st.View(ctx, func(tx *store.Tx) error {
		keys, err := tx.Sessions(id)
		for _, k := range keys {
			if k.Kind == histKind {
				out = append(out, k)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// An epoch record encodes and parses back to itself; bad input is refused.
func TestEpochRecRoundTrip(t *testing.T) {
	r := epochRec{epoch: 9, auth: bytes.Repeat([]byte{5}, 32), state: []byte("state"), frame: []byte("frame"),
		key: commitKey{rank: 2, hash: [32]byte{7}}, props: [][]byte{[]byte("p1"), []byte("p2")},
		idents: map[string]bool{"b": true, "a": true}}
	b, err := r.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshalEpochRec(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.epoch != r.epoch || !bytes.Equal(got.auth, r.auth) || !bytes.Equal(got.state, r.state) ||
		!bytes.Equal(got.frame, r.frame) || got.key != r.key || len(got.props) != 2 ||
		!bytes.Equal(got.props[1], r.props[1]) || len(got.idents) != 2 || !got.idents["a"] {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range [][]byte{nil, {histVersion + 1}, b[:len(b)-1], append(clone(b), 0)} {
		if _, err := unmarshalEpochRec(bad); err == nil {
			t.Errorf("%x parsed", bad)
		}
	}
}
