package chat

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers/signal"
)

// The chat package's tests run with the signal layer's stamp check on: a change to a
// member's record that a save would leave out panics (see signal.CheckSplitStamps).
func init() { signal.CheckSplitStamps(true) }

// A save of the signal layer writes only the records of the members whose state changed:
// right after a save, none; after a message from C (and the saves the group makes of
// itself), C's alone. What the saves leave in the store is the state encoded whole.
func TestSignalSaveWritesChangedRecords(t *testing.T) {
	fast(t, 400*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b, c := newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "C")
	gid := formGroup(t, ctx, []*testClient{a, b, c})
	say(t, ctx, b, gid, "from B", a, c)
	ga, _ := a.group(gid)
	// saved saves A's group and returns the layer's stamp saved, the records the store
	// holds, and how many records a save right after would write. The store must then
	// hold the state encoded whole.
	saved := func() (since uint64, held map[string][]byte, again int) {
		t.Helper()
		if err := ga.do(ctx, func() error {
			if err := ga.save(ctx, nil); err != nil {
				return err
			}
			since = ga.sigSums.since
			s, _, err := ga.marshalSignal(sendAhead)
			if err != nil {
				return err
			}
			again = len(s.Records)
			st, head, records, err := signalStoredAndWhole(ctx, a, ga)
			if err != nil {
				return err
			}
			if !bytes.Equal(st.head, head) || !maps.EqualFunc(st.recs, records, bytes.Equal) {
				return errors.New("the store does not hold the state encoded whole")
			}
			if len(ga.sigSums.ids) != len(st.recs) {
				return fmt.Errorf("the group counts %d records saved, the store holds %d", len(ga.sigSums.ids), len(st.recs))
			}
			held = st.recs
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return since, held, again
	}
	// A's hand-outs of its sender key done, nothing but messages changes its records.
	waitHandedOut(t, ctx, ga)
	since, before, again := saved()
	if again != 0 {
		t.Fatalf("right after a save, %d records changed", again)
	}
	say(t, ctx, c, gid, "from C", a, b)
	_, after, _ := saved()
	// What the saves since wrote: the records stamped since, and the records whose
	// bytes changed in the store.
	var stamped []string
	if err := ga.do(ctx, func() error {
		s, err := ga.sig.MarshalSplitSince(sendAhead, since)
		for id := range s.Records {
			stamped = append(stamped, hex.EncodeToString([]byte(id)))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var changed []string
	for id, r := range after {
		if !bytes.Equal(before[id], r) {
			changed = append(changed, hex.EncodeToString([]byte(id)))
		}
	}
	wantC := []string{hex.EncodeToString(c.self)}
	if len(after) != 2 || !slices.Equal(changed, wantC) || !slices.Equal(stamped, wantC) {
		t.Fatalf("after a message from C, %d records, those of %v changed, of %v stamped (C is %x)",
			len(after), changed, stamped, c.self)
	}
}

// A group whose signal state an earlier version saved whole loads, carries on, and is
// saved split from its first save on.
func TestSignalStateSavedWholeLoads(t *testing.T) {
	fast(t, 400*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pb := newProfile(t)
	a, b := newTestClient(t, "A"), pb.start(t, "B")
	gid := formGroup(t, ctx, []*testClient{a, b})
	say(t, ctx, a, gid, "before", b)
	say(t, ctx, b, gid, "before, from B", a)
	id, err := hex.DecodeString(string(gid))
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := b.group(gid)
	var whole []byte
	if err := gb.do(ctx, func() error {
		if err := gb.save(ctx, nil); err != nil {
			return err
		}
		whole, err = gb.sig.MarshalBinary()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	// The store as an earlier version left it: the state whole, no head, no records.
	if err := pb.st.Update(ctx, func(tx *store.Tx) error {
		keys, err := tx.Sessions(id)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Kind == sigPeerKind || k.Kind == sigHeadKey(id).Kind {
				if err := tx.DeleteSession(k); err != nil {
					return err
				}
			}
		}
		return tx.SaveSession(sigLayerKey(id), whole)
	}); err != nil {
		t.Fatal(err)
	}
	b = pb.start(t, "B again")
	connectAll(t, ctx, []*testClient{a, b})
	say(t, ctx, a, gid, "after", b)
	say(t, ctx, b, gid, "after, from B", a)
	if err := a.Rename(ctx, gid, "saved split"); err != nil { // B saves at the commit
		t.Fatal(err)
	}
	waitAgree(t, ctx, gid, []*testClient{a, b}, 2)
	if _, err := pb.st.Session(ctx, sigLayerKey(id)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the state saved whole is still there: %v", err)
	}
	if _, err := pb.st.Session(ctx, sigHeadKey(id)); err != nil {
		t.Fatalf("no head saved: %v", err)
	}
	b.Close()
	b = pb.start(t, "B once more")
	connectAll(t, ctx, []*testClient{a, b})
	say(t, ctx, a, gid, "after the split save", b)
	say(t, ctx, b, gid, "after the split save, from B", a)
}

// A member re-added with a fresh leaf has a new signal layer: its first save writes
// that layer's state whole, so that after a restart it still opens the others' messages
// and they open its.
func TestReaddedThenRestarted(t *testing.T) {
	fast(t, 400*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pb := newProfile(t)
	a, b, c := newTestClient(t, "A"), pb.start(t, "B"), newTestClient(t, "C")
	cs := []*testClient{a, b, c}
	gid := formGroup(t, ctx, cs)
	// Many changes to B's layer before: the new layer's changes are fewer.
	for i := range 30 {
		say(t, ctx, a, gid, fmt.Sprint("before the re-add ", i), b, c)
	}
	g, _ := b.group(gid)
	if err := g.do(ctx, func() error { g.rejoin(a.PeerID()); return nil }); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "re-added", func(ev Event) bool { e, ok := ev.(ForkResolved); return ok && e.How == "re-added" })
	waitAgree(t, ctx, gid, cs, 3)
	storeHoldsLayer(t, ctx, b, g) // right away, before the others' keys come
	say(t, ctx, a, gid, "after the re-add", b, c)
	say(t, ctx, b, gid, "B after the re-add", a, c)
	storeHoldsLayer(t, ctx, b, g)
	b.Close()
	b = pb.start(t, "B again")
	cs[1] = b
	connectAll(t, ctx, cs)
	say(t, ctx, c, gid, "after the restart", a, b)
	say(t, ctx, b, gid, "B after the restart", a, c)
}

func countDiff(a, b map[string][]byte) int {
	n := 0
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			n++
		}
	}
	return n + max(len(b)-len(a), 0)
}

// storeHoldsLayer saves g's state and checks that the store holds its signal layer's
// state as the layer encodes it whole.
func storeHoldsLayer(t *testing.T, ctx context.Context, c *testClient, g *group) {
	t.Helper()
	if err := g.do(ctx, func() error {
		if err := g.save(ctx, nil); err != nil {
			return err
		}
		st, head, records, err := signalStoredAndWhole(ctx, c, g)
		if err != nil {
			return err
		}
		if !bytes.Equal(st.head[:1], head[:1]) || !maps.EqualFunc(st.recs, records, bytes.Equal) {
			return fmt.Errorf("the store holds %d records, %d of them not the layer's", len(st.recs), countDiff(st.recs, records))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// signalStoredAndWhole returns, on g's actor, what c's store holds of g's signal state,
// and the head and records of that state encoded whole now.
func signalStoredAndWhole(ctx context.Context, c *testClient, g *group) (*savedSignal, []byte, map[string][]byte, error) {
	head, records, _, err := g.sig.MarshalSplitAhead(sendAhead)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := loadSignal(ctx, c.st, g.id)
	return st, head, records, err
}
