package store

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// A database written by a build with schema version 1 is upgraded (to the
// current version) when opened: its data is kept and the wire log works.
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
		t.Fatalf("version-1 build on schema %d: %v", len(all), err)
	}
	sameFiles(t, before, dirFiles(t, dir))
}

// msgFrom is an application message logged with its sender.
func msgFrom(epoch uint64, sender, data string) WireItem {
	it := wire(epoch, WireMessage, data)
	if sender != "" {
		it.Sender = []byte(sender)
	}
	return it
}

// readAll pages through q with the cursor, limit items a page, and checks that
// every page but the last is full and says more.
func readAll(t *testing.T, s *Store, g []byte, q WireQuery) []WireItem {
	t.Helper()
	var all []WireItem
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		page, more, err := s.WireRead(ctx, g, q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if !more {
			return all
		}
		if len(page) != q.Limit {
			t.Fatalf("page %d: %d items with more (limit %d)", pages, len(page), q.Limit)
		}
		q.After = page[len(page)-1].Cursor()
	}
}

func TestWireReadSender(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	g := []byte("g")
	commit := wire(1, WireCommit, "c1")
	commit.Sender = []byte("bob") // a committer recorded: still never filtered
	items := []WireItem{
		msgFrom(1, "alice", "a1"),
		msgFrom(1, "bob", "b1"),
		msgFrom(1, "", "p1"), // a proposal: no sender
		commit,
		msgFrom(2, "bob", "b2"),
		msgFrom(2, "alice", "a2"),
		wire(2, WireCommit, "c2"),
		msgFrom(3, "alicia", "x3"), // a prefix of another sender is another sender
		msgFrom(3, "alice", "a3"),
	}
	if err := s.AppendWire(ctx, g, items); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendWire(ctx, []byte("h"), []WireItem{msgFrom(1, "alice", "other group")}); err != nil {
		t.Fatal(err)
	}
	both := WireQuery{Commits: true, Messages: true}
	for _, c := range []struct {
		sender string
		want   []string
	}{
		{"", []string{"a1", "b1", "p1", "c1", "b2", "a2", "c2", "x3", "a3"}},
		{"alice", []string{"a1", "p1", "c1", "a2", "c2", "a3"}},
		{"bob", []string{"b1", "p1", "c1", "b2", "c2"}},
		{"ali", []string{"p1", "c1", "c2"}},
		{"carol", []string{"p1", "c1", "c2"}},
	} {
		q := both
		if c.sender != "" {
			q.Sender = []byte(c.sender)
		}
		got, more, err := s.WireRead(ctx, g, q)
		if err != nil || more || !slices.Equal(wireData(got), c.want) {
			t.Errorf("sender %q: %q more %v %v", c.sender, wireData(got), more, err)
		}
	}
	// An empty, non-nil sender asks for everyone's.
	q := both
	q.Sender = []byte{}
	if got, _, err := s.WireRead(ctx, g, q); err != nil || len(got) != len(items) {
		t.Errorf("empty sender: %q %v", wireData(got), err)
	}

	// Senders are read back as logged; an unknown one is nil.
	got, _, err := s.WireRead(ctx, g, both)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range got {
		if string(it.Sender) != string(items[i].Sender) || (items[i].Sender == nil) != (it.Sender == nil) {
			t.Errorf("item %q: sender %q, logged %q", it.Data, it.Sender, items[i].Sender)
		}
	}
	// WireSince reads them too.
	if got, _, err := s.WireSince(ctx, g, 2, 0); err != nil || len(got) != 5 || string(got[0].Sender) != "bob" {
		t.Errorf("WireSince: %+v %v", got, err)
	}
	// An empty sender is stored as NULL, not as an empty blob that would
	// match no one.
	if err := s.AppendWire(ctx, g, []WireItem{{Epoch: 4, Kind: WireMessage, Data: []byte("p4"), Sender: []byte{}}}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.w.QueryRow("SELECT count(*) FROM wire_log WHERE sender IS NULL").Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d NULL senders, %v", n, err)
	}
	q = WireQuery{Messages: true, MessagesFrom: 4, Sender: []byte("alice")}
	if got, _, err := s.WireRead(ctx, g, q); err != nil || !slices.Equal(wireData(got), []string{"p4"}) {
		t.Fatalf("empty sender logged: %q %v", wireData(got), err)
	}
}

func TestWireReadKindsAndEpochs(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	g := []byte("g")
	var items []WireItem
	for e := uint64(1); e <= 5; e++ {
		items = append(items,
			wire(e, WireMessage, fmt.Sprint("m", e, "a")),
			wire(e, WireCommit, fmt.Sprint("c", e)),
			wire(e, WireMessage, fmt.Sprint("m", e, "b")))
	}
	if err := s.AppendWire(ctx, g, items); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		q    WireQuery
		want []string
	}{
		{"commits from 4, messages from 2",
			WireQuery{Commits: true, CommitsFrom: 4, Messages: true, MessagesFrom: 2},
			[]string{"m2a", "m2b", "m3a", "m3b", "m4a", "c4", "m4b", "m5a", "c5", "m5b"}},
		{"commits from 2, messages from 5",
			WireQuery{Commits: true, CommitsFrom: 2, Messages: true, MessagesFrom: 5},
			[]string{"c2", "c3", "c4", "m5a", "c5", "m5b"}},
		{"commits only",
			WireQuery{Commits: true, CommitsFrom: 3, MessagesFrom: 1},
			[]string{"c3", "c4", "c5"}},
		{"messages only",
			WireQuery{CommitsFrom: 1, Messages: true, MessagesFrom: 4},
			[]string{"m4a", "m4b", "m5a", "m5b"}},
		{"messages only, sender filter leaves commits out",
			WireQuery{Messages: true, MessagesFrom: 5, Sender: []byte("anyone")},
			[]string{"m5a", "m5b"}},
		{"neither", WireQuery{CommitsFrom: 1, MessagesFrom: 1}, nil},
		{"past the end", WireQuery{Commits: true, CommitsFrom: 6, Messages: true, MessagesFrom: 6}, nil},
		// The cursor and the epochs combine: the later bound wins.
		{"after a cursor before the epochs",
			WireQuery{Commits: true, CommitsFrom: 4, Messages: true, MessagesFrom: 4, After: WireCursor{Epoch: 2, Seq: items[14].Seq}},
			[]string{"m4a", "c4", "m4b", "m5a", "c5", "m5b"}},
		{"after a cursor past the epochs",
			WireQuery{Commits: true, CommitsFrom: 1, Messages: true, MessagesFrom: 2, After: items[10].Cursor()},
			[]string{"m4b", "m5a", "c5", "m5b"}},
	} {
		got, more, err := s.WireRead(ctx, g, c.q)
		if err != nil || more || !slices.Equal(wireData(got), c.want) {
			t.Errorf("%s: %q more %v %v", c.what, wireData(got), more, err)
		}
	}
}

// Paging with the cursor reads every item exactly once, in order, also when
// one epoch holds many pages' worth and when arrival order differs from epoch
// order.
func TestWireReadCursorPaging(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	g := []byte("g")
	var items []WireItem
	items = append(items, wire(1, WireMessage, "m1"), wire(1, WireCommit, "c1"))
	for i := range 23 {
		sender := []string{"alice", "bob", ""}[i%3]
		items = append(items, msgFrom(2, sender, fmt.Sprint("m2-", i)))
	}
	items = append(items, wire(3, WireMessage, "m3"), wire(2, WireCommit, "c2"),
		msgFrom(2, "alice", "m2-late"), wire(3, WireMessage, "m3b"))
	if err := s.AppendWire(ctx, g, items); err != nil {
		t.Fatal(err)
	}
	all, more, err := s.WireRead(ctx, g, WireQuery{Commits: true, Messages: true})
	if err != nil || more || len(all) != len(items) {
		t.Fatalf("all: %d items more %v %v", len(all), more, err)
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.Epoch > b.Epoch || (a.Epoch == b.Epoch && a.Seq >= b.Seq) {
			t.Fatalf("out of order: %+v then %+v", a, b)
		}
	}
	if wireData(all)[len(all)-3] != "m2-late" || wireData(all)[len(all)-4] != "c2" {
		t.Fatalf("order: %q", wireData(all))
	}

	// Every limit, from one item a page to all of them: limits that divide
	// the count and limits that do not, pages that end inside epoch 2.
	for limit := 1; limit <= len(items)+1; limit++ {
		got := readAll(t, s, g, WireQuery{Commits: true, Messages: true, Limit: limit})
		if !slices.Equal(wireData(got), wireData(all)) {
			t.Fatalf("limit %d: %q", limit, wireData(got))
		}
	}
	// With a sender filter and separate epochs.
	q := WireQuery{Commits: true, CommitsFrom: 2, Messages: true, MessagesFrom: 2, Sender: []byte("alice"), Limit: 3}
	var want []string
	for _, it := range all {
		if it.Epoch >= 2 && (it.Kind == WireCommit || it.Sender == nil || string(it.Sender) == "alice") {
			want = append(want, string(it.Data))
		}
	}
	if got := readAll(t, s, g, q); !slices.Equal(wireData(got), want) {
		t.Fatalf("alice's from 2: %q, want %q", wireData(got), want)
	}

	// The cursor is strictly after: a page from an item's cursor starts with
	// the next item, whatever its Seq; the last item's cursor gives nothing.
	for i, it := range all {
		got, _, err := s.WireRead(ctx, g, WireQuery{Commits: true, Messages: true, After: it.Cursor(), Limit: 1})
		switch {
		case err != nil:
			t.Fatal(err)
		case i == len(all)-1 && len(got) != 0:
			t.Fatalf("after the last item: %q", wireData(got))
		case i < len(all)-1 && (len(got) != 1 || got[0].Seq != all[i+1].Seq):
			t.Fatalf("after %q: %q, want %q", it.Data, wireData(got), all[i+1].Data)
		}
	}
	// Within the transaction API too, and the zero cursor is the start.
	err = s.View(ctx, func(tx *Tx) error {
		got, more, err := tx.WireRead(g, WireQuery{Commits: true, Messages: true, After: WireCursor{}, Limit: 2})
		if err != nil || !more || !slices.Equal(wireData(got), wireData(all[:2])) {
			return fmt.Errorf("first page: %q more %v %v", wireData(got), more, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The read walks the index in order: no full scan, no sort.
func TestWireReadQueryPlan(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	rows, err := s.r.Query("EXPLAIN QUERY PLAN "+wireReadQuery,
		sql.Named("group", []byte("g")), sql.Named("low", 1), sql.Named("after_epoch", 1),
		sql.Named("after_seq", 5), sql.Named("commits", true), sql.Named("commits_from", 1),
		sql.Named("messages", true), sql.Named("messages_from", 2), sql.Named("sender", []byte("a")),
		sql.Named("limit", 10))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "; ")
	if !strings.Contains(text, "USING INDEX wire_log_by_group (group_id=? AND epoch>?)") || strings.Contains(text, "TEMP B-TREE") {
		t.Fatalf("query plan: %s", text)
	}
}

func TestWireReadBadInput(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	g := []byte("g")
	for _, q := range []WireQuery{
		{Commits: true, CommitsFrom: 1 << 63},
		{Messages: true, MessagesFrom: 1 << 63},
		{Commits: true, Messages: true, After: WireCursor{Epoch: 1 << 63}},
	} {
		if _, _, err := s.WireRead(ctx, g, q); err == nil {
			t.Errorf("%+v: read", q)
		}
	}
	// A row of an unknown kind is reported, not skipped.
	if err := s.AppendWire(ctx, g, []WireItem{wire(1, WireCommit, "c1"), msgFrom(2, "a", "m2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec("INSERT INTO wire_log (group_id, epoch, kind, data) VALUES (?, 1, 7, x'00')", g); err != nil {
		t.Fatal(err)
	}
	for _, q := range []WireQuery{
		{Commits: true, Messages: true},
		{Commits: true},
		{Messages: true, Sender: []byte("a")},
	} {
		if _, _, err := s.WireRead(ctx, g, q); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%+v: unknown kind read as %v", q, err)
		}
	}
	// Past it, the log reads again.
	if got, _, err := s.WireRead(ctx, g, WireQuery{Messages: true, MessagesFrom: 2}); err != nil || len(got) != 1 {
		t.Errorf("past the bad row: %q %v", wireData(got), err)
	}
}

// A database written with schema version 2 is upgraded when opened: its wire
// log is kept, with no senders, and reads with a sender filter include it.
func TestMigrationFromVersion2(t *testing.T) {
	all := migrations
	t.Cleanup(func() { migrations = all })
	migrations = all[:2]
	dir := populated(t, testKey(1)) // written with schema 2
	old := openT(t, dir, testKey(1))
	var v, n int
	if err := old.w.QueryRow("SELECT version FROM schema_version").Scan(&v); err != nil || v != 2 {
		t.Fatalf("version before upgrade %d, %v", v, err)
	}
	if err := old.w.QueryRow("SELECT count(*) FROM pragma_table_info('wire_log') WHERE name = 'sender'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("version 2 has a sender column: %d %v", n, err)
	}
	// What a version-2 build logged (its AppendWire had no sender).
	for _, it := range []WireItem{wire(1, WireMessage, "m1"), wire(1, WireCommit, "c1"), wire(2, WireMessage, "m2")} {
		if _, err := old.w.Exec("INSERT INTO wire_log (group_id, epoch, kind, data) VALUES (?, ?, ?, ?)",
			[]byte("g"), it.Epoch, it.Kind, it.Data); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	migrations = all
	s := openT(t, dir, testKey(1))
	if err := s.w.QueryRow("SELECT version FROM schema_version").Scan(&v); err != nil || v != len(all) || v != 3 {
		t.Fatalf("version after upgrade %d, %v", v, err)
	}
	got, more, err := s.WireRead(ctx, []byte("g"), WireQuery{Commits: true, Messages: true})
	if err != nil || more || !slices.Equal(wireData(got), []string{"m1", "c1", "m2"}) {
		t.Fatalf("wire log after upgrade: %q %v", wireData(got), err)
	}
	for _, it := range got {
		if it.Sender != nil {
			t.Fatalf("%q has sender %q", it.Data, it.Sender)
		}
	}
	if err := s.AppendWire(ctx, []byte("g"), []WireItem{msgFrom(2, "alice", "a2"), msgFrom(2, "bob", "b2")}); err != nil {
		t.Fatal(err)
	}
	got, _, err = s.WireRead(ctx, []byte("g"), WireQuery{Messages: true, MessagesFrom: 1, Sender: []byte("alice")})
	if err != nil || !slices.Equal(wireData(got), []string{"m1", "m2", "a2"}) || string(got[2].Sender) != "alice" {
		t.Fatalf("alice's after upgrade: %q %v", wireData(got), err)
	}
	if page, _, err := s.History(ctx, []byte("g"), 0, 1000); err != nil || len(page) != 300 {
		t.Fatalf("history after upgrade: %d %v", len(page), err)
	}
	if e, st, err := s.GroupState(ctx, []byte("g")); err != nil || e != 1 || string(st) != "s" {
		t.Fatalf("group state after upgrade: %d %q %v", e, st, err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A version-2 build refuses the upgraded database, untouched.
	migrations = all[:2]
	before := dirFiles(t, dir)
	if _, err := Open(dir, testKey(1)); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("version-2 build on schema 3: %v", err)
	}
	sameFiles(t, before, dirFiles(t, dir))
}
