package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func wire(epoch uint64, kind WireKind, data string) WireItem {
	return WireItem{Epoch: epoch, Kind: kind, Data: []byte(data)}
}

// wireData lists the items' data, for comparisons.
func wireData(items []WireItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, string(it.Data))
	}
	return out
}

func TestWireLogOrderAndPages(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testKey(1))
	g, h := []byte("group-g"), []byte("group-h")
	// Arrival order differs from epoch order: a late message of epoch 2 comes
	// after epoch 3 began.
	items := []WireItem{
		wire(2, WireMessage, "m2a"),
		wire(2, WireCommit, "c2"),
		wire(3, WireMessage, "m3a"),
		wire(2, WireMessage, "m2-late"),
		wire(3, WireMessage, "m3b"),
		wire(3, WireCommit, "c3"),
		wire(4, WireMessage, "m4a"),
	}
	if err := s.AppendWire(ctx, g, items); err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if it.Seq == 0 || (i > 0 && it.Seq <= items[i-1].Seq) {
			t.Fatalf("item %d: seq %d", i, it.Seq)
		}
	}
	if err := s.AppendWire(ctx, h, []WireItem{wire(2, WireMessage, "other group")}); err != nil {
		t.Fatal(err)
	}

	all, more, err := s.WireSince(ctx, g, 0, 0)
	want := []string{"m2a", "c2", "m2-late", "m3a", "m3b", "c3", "m4a"}
	if err != nil || more || !slices.Equal(wireData(all), want) {
		t.Fatalf("all: %q more %v %v", wireData(all), more, err)
	}
	if it := all[2]; it.Epoch != 2 || it.Kind != WireMessage || it.Seq != items[3].Seq {
		t.Fatalf("late item read back as %+v", it)
	}
	if it := all[5]; it.Epoch != 3 || it.Kind != WireCommit || it.Seq != items[5].Seq {
		t.Fatalf("commit read back as %+v", it)
	}
	got, more, err := s.WireSince(ctx, g, 3, 0)
	if err != nil || more || !slices.Equal(wireData(got), want[3:]) {
		t.Fatalf("from 3: %q more %v %v", wireData(got), more, err)
	}
	if got, more, err := s.WireSince(ctx, g, 5, 0); err != nil || more || len(got) != 0 {
		t.Fatalf("from 5: %q more %v %v", wireData(got), more, err)
	}
	if got, _, err := s.WireSince(ctx, []byte("none"), 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("unknown group: %v %v", got, err)
	}

	// Limits: exactly the rest is not "more"; one short is.
	got, more, err = s.WireSince(ctx, g, 0, 3)
	if err != nil || !more || !slices.Equal(wireData(got), want[:3]) {
		t.Fatalf("limit 3: %q more %v %v", wireData(got), more, err)
	}
	if got, more, err = s.WireSince(ctx, g, 3, 4); err != nil || more || len(got) != 4 {
		t.Fatalf("limit 4 from 3: %q more %v %v", wireData(got), more, err)
	}
	if got, more, err = s.WireSince(ctx, g, 3, 3); err != nil || !more || len(got) != 3 {
		t.Fatalf("limit 3 from 3: %q more %v %v", wireData(got), more, err)
	}

	// The default limit applies to limit <= 0.
	var many []WireItem
	for i := range DefaultWireLimit + 5 {
		many = append(many, wire(10+uint64(i/100), WireMessage, fmt.Sprint("bulk ", i)))
	}
	if err := s.AppendWire(ctx, h, many); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, -1} {
		got, more, err := s.WireSince(ctx, h, 10, limit)
		if err != nil || !more || len(got) != DefaultWireLimit || string(got[0].Data) != "bulk 0" {
			t.Fatalf("limit %d: %d items, more %v, %v", limit, len(got), more, err)
		}
	}

	// It all survives a restart.
	s.Close()
	s = openT(t, dir, testKey(1))
	again, more, err := s.WireSince(ctx, g, 0, 0)
	if err != nil || more || !slices.EqualFunc(again, all, func(a, b WireItem) bool {
		return a.Seq == b.Seq && a.Epoch == b.Epoch && a.Kind == b.Kind && string(a.Data) == string(b.Data)
	}) {
		t.Fatalf("after reopen: %+v %v", again, err)
	}
}

func TestWireLogDeleteAndPrune(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	g, h := []byte("g"), []byte("h")
	var items []WireItem
	for e := uint64(1); e <= 5; e++ {
		items = append(items, wire(e, WireMessage, fmt.Sprint("m", e)), wire(e, WireCommit, fmt.Sprint("c", e)))
	}
	if err := s.AppendWire(ctx, g, items); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendWire(ctx, h, slices.Clone(items)); err != nil {
		t.Fatal(err)
	}

	// Our commits from epoch 4 on lost to another branch: only they go.
	n, err := s.DeleteWireFrom(ctx, g, WireCommit, 4)
	if err != nil || n != 2 {
		t.Fatalf("delete commits from 4: %d %v", n, err)
	}
	got, _, _ := s.WireSince(ctx, g, 0, 0)
	if want := []string{"m1", "c1", "m2", "c2", "m3", "c3", "m4", "m5"}; !slices.Equal(wireData(got), want) {
		t.Fatalf("after delete: %q", wireData(got))
	}
	if n, err := s.DeleteWireFrom(ctx, g, WireMessage, 5); err != nil || n != 1 {
		t.Fatalf("delete messages from 5: %d %v", n, err)
	}
	if n, err := s.DeleteWireFrom(ctx, g, WireCommit, 4); err != nil || n != 0 {
		t.Fatalf("delete again: %d %v", n, err)
	}

	n, err = s.PruneWire(ctx, g, 3)
	if err != nil || n != 4 {
		t.Fatalf("prune below 3: %d %v", n, err)
	}
	got, _, _ = s.WireSince(ctx, g, 0, 0)
	if want := []string{"m3", "c3", "m4"}; !slices.Equal(wireData(got), want) {
		t.Fatalf("after prune: %q", wireData(got))
	}
	if n, err := s.PruneWire(ctx, g, 0); err != nil || n != 0 {
		t.Fatalf("prune below 0: %d %v", n, err)
	}
	// The other group was not touched.
	if got, _, _ := s.WireSince(ctx, h, 0, 0); len(got) != len(items) {
		t.Fatalf("other group: %d items", len(got))
	}

	// A seq is never reused after deletions.
	last := got[len(got)-1].Seq
	next := []WireItem{wire(6, WireMessage, "m6")}
	if err := s.AppendWire(ctx, h, next); err != nil || next[0].Seq <= last {
		t.Fatalf("seq after deletions: %d (last %d) %v", next[0].Seq, last, err)
	}

	// DeleteGroup takes the wire log with it.
	if err := s.Update(ctx, func(tx *Tx) error { return tx.DeleteGroup(h) }); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.WireSince(ctx, h, 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("after DeleteGroup: %d items %v", len(got), err)
	}
	if got, _, _ := s.WireSince(ctx, g, 0, 0); len(got) != 3 {
		t.Fatalf("DeleteGroup took another group's log: %d items", len(got))
	}
}

func TestWireLogBadInput(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	g := []byte("g")
	for _, c := range []struct {
		what  string
		group []byte
		items []WireItem
	}{
		{"no group id", nil, []WireItem{wire(1, WireMessage, "x")}},
		{"kind 0", g, []WireItem{wire(1, 0, "x")}},
		{"kind 3", g, []WireItem{wire(1, 3, "x")}},
		{"no data", g, []WireItem{wire(1, WireCommit, "")}},
		{"epoch out of range", g, []WireItem{wire(1<<63, WireMessage, "x")}},
		// A bad item fails the whole batch, good items before it too.
		{"bad item after a good one", g, []WireItem{wire(1, WireMessage, "ok"), wire(1, 9, "x")}},
	} {
		if err := s.AppendWire(ctx, c.group, c.items); err == nil {
			t.Errorf("%s: appended", c.what)
		}
	}
	if got, _, err := s.WireSince(ctx, g, 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("a refused batch left %d items (%v)", len(got), err)
	}
	if err := s.AppendWire(ctx, g, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	if _, _, err := s.WireSince(ctx, g, 1<<63, 0); err == nil {
		t.Error("read from an epoch out of range")
	}
	if _, err := s.DeleteWireFrom(ctx, g, 7, 0); err == nil {
		t.Error("deleted an unknown kind")
	}
	if _, err := s.PruneWire(ctx, g, 1<<63); err == nil {
		t.Error("pruned below an epoch out of range")
	}
	// Writes in a read-only transaction are refused; reads work in both.
	err := s.View(ctx, func(tx *Tx) error {
		if err := tx.AppendWire(g, []WireItem{wire(1, WireMessage, "x")}); !errors.Is(err, ErrReadOnly) {
			return fmt.Errorf("append: %v", err)
		}
		if _, err := tx.DeleteWireFrom(g, WireCommit, 0); !errors.Is(err, ErrReadOnly) {
			return fmt.Errorf("delete: %v", err)
		}
		if _, err := tx.PruneWire(g, 1); !errors.Is(err, ErrReadOnly) {
			return fmt.Errorf("prune: %v", err)
		}
		_, _, err := tx.WireSince(g, 0, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A commit and the group state it leads to are logged in one transaction:
// both or neither.
func TestWireLogInTransaction(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	g := []byte("g")
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.SaveGroupState(g, 2, []byte("state 2")); err != nil {
			return err
		}
		if err := tx.AppendWire(g, []WireItem{wire(1, WireCommit, "c1")}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got, _, err := s.WireSince(ctx, g, 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("logged commit survived a rollback: %d %v", len(got), err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		if err := tx.SaveGroupState(g, 2, []byte("state 2")); err != nil {
			return err
		}
		return tx.AppendWire(g, []WireItem{wire(1, WireCommit, "c1")})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.WireSince(ctx, g, 1, 0); err != nil || len(got) != 1 {
		t.Fatalf("after commit: %d %v", len(got), err)
	}
}

// A database written by a build with schema version 1 is upgraded (to 2 and on)
// when opened: its data is kept and the wire log works.
func TestMigrationFromVersion1(t *testing.T) {
	all := migrations
	t.Cleanup(func() { migrations = all })
	migrations = all[:1]
	dir := populated(t, testKey(1)) // written with schema 1 only
	old := openT(t, dir, testKey(1))
	var v, n int
	if err := old.w.QueryRow("SELECT version FROM schema_version").Scan(&v); err != nil || v != 1 {
		t.Fatalf("version before upgrade %d, %v", v, err)
	}
	if err := old.w.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 'wire_log'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("version 1 has a wire log: %d %v", n, err)
	}
	old.Close()

	migrations = all
	s := openT(t, dir, testKey(1))
	if err := s.w.QueryRow("SELECT version FROM schema_version").Scan(&v); err != nil || v != len(all) {
		t.Fatalf("version after upgrade %d, %v", v, err)
	}
	var idx int
	if err := s.w.QueryRow("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'wire_log_by_group'").Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("wire log index: %d %v", idx, err)
	}
	if page, _, err := s.History(ctx, []byte("g"), 0, 1000); err != nil || len(page) != 300 {
		t.Fatalf("history after upgrade: %d %v", len(page), err)
	}
	if e, st, err := s.GroupState(ctx, []byte("g")); err != nil || e != 1 || string(st) != "s" {
		t.Fatalf("group state after upgrade: %d %q %v", e, st, err)
	}
	if err := s.AppendWire(ctx, []byte("g"), []WireItem{wire(1, WireCommit, "c1")}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.WireSince(ctx, []byte("g"), 0, 0); err != nil || len(got) != 1 {
		t.Fatalf("wire log after upgrade: %d %v", len(got), err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A version-1 build refuses the upgraded database.
	migrations = all[:1]
	before := dirFiles(t, dir)
	if _, err := Open(dir, testKey(1)); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("version-1 build on schema 2: %v", err)
	}
	sameFiles(t, before, dirFiles(t, dir))
}
