package chat

import (
	"context"
	"encoding/hex"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/internal/store"
)

// A save of the signal layer writes only the records of the members whose state changed:
// right after a save, none; after a message from C, C's alone.
func TestSignalSaveWritesChangedRecords(t *testing.T) {
	fast(t, 400*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b, c := newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "C")
	gid := formGroup(t, ctx, []*testClient{a, b, c})
	say(t, ctx, b, gid, "from B", a, c)
	ga, _ := a.group(gid)
	// saved saves A's group and returns the digests of its signal records, and how many
	// records a save right after would write.
	saved := func() (map[string][32]byte, int) {
		t.Helper()
		var sums map[string][32]byte
		var again int
		if err := ga.do(ctx, func() error {
			if err := ga.save(ctx, nil); err != nil {
				return err
			}
			sums = maps.Clone(ga.sigSums)
			s, _, err := ga.marshalSignal(sendAhead)
			if err == nil {
				again = len(s.put)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return sums, again
	}
	// A's hand-outs of its sender key done, nothing but messages changes its records.
	waitHandedOut(t, ctx, ga)
	before, again := saved()
	if again != 0 {
		t.Fatalf("right after a save, %d records changed", again)
	}
	say(t, ctx, c, gid, "from C", a, b)
	after, _ := saved()
	var changed []string
	for id, sum := range after {
		if before[id] != sum {
			changed = append(changed, hex.EncodeToString([]byte(id)))
		}
	}
	if len(after) != 2 || len(changed) != 1 || changed[0] != hex.EncodeToString(c.self) {
		t.Fatalf("after a message from C, %d records, of %v changed (C is %x)", len(after), changed, c.self)
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
