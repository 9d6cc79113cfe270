package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var ctx = context.Background()

func testKey(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func openT(t testing.TB, dir string, key [32]byte) *Store {
	t.Helper()
	s, err := Open(dir, key)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenSetsWALAndFullSync(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "new", "profile"), testKey(1))
	var mode string
	var sync, appID int64
	if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRow("PRAGMA application_id").Scan(&appID); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 2 || appID != applicationID {
		t.Errorf("journal_mode %q synchronous %d application_id %#x", mode, sync, appID)
	}
	// Readers run with synchronous FULL too and cannot write.
	if err := s.r.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Errorf("reader synchronous %d %v", sync, err)
	}
	if _, err := s.r.Exec("INSERT INTO meta (key, value) VALUES ('x', x'00')"); err == nil {
		t.Error("the read pool accepted a write")
	}
	var v int
	if err := s.w.QueryRow("SELECT version FROM schema_version").Scan(&v); err != nil || v != SchemaVersion {
		t.Errorf("schema version %d %v", v, err)
	}
	st, err := os.Stat(filepath.Dir(s.Path()))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v %v", st.Mode(), err)
	}
}

func TestGroupStateAndSessions(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testKey(1))
	g := []byte("group-1")
	if _, _, err := s.GroupState(ctx, g); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing group: %v", err)
	}
	if err := s.SaveGroupState(ctx, g, 7, []byte("state at 7")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveGroupState(ctx, g, 8, []byte("state at 8")); err != nil {
		t.Fatal(err)
	}
	k := SessionKey{GroupID: g, PeerID: []byte("peer-a"), Kind: "signal/ratchet"}
	if err := s.SaveSession(ctx, k, []byte("ratchet")); err != nil {
		t.Fatal(err)
	}
	sk := SessionKey{GroupID: g, Kind: "signal/sender-key"} // no peer: own sender key
	if err := s.SaveSession(ctx, sk, []byte("sender")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openT(t, dir, testKey(1))
	e, st, err := s.GroupState(ctx, g)
	if err != nil || e != 8 || string(st) != "state at 8" {
		t.Fatalf("group state: %d %q %v", e, st, err)
	}
	groups, err := s.Groups(ctx)
	if err != nil || len(groups) != 1 || groups[0].Epoch != 8 || !bytes.Equal(groups[0].GroupID, g) {
		t.Fatalf("groups: %+v %v", groups, err)
	}
	if b, err := s.Session(ctx, k); err != nil || string(b) != "ratchet" {
		t.Fatalf("session: %q %v", b, err)
	}
	if b, err := s.Session(ctx, sk); err != nil || string(b) != "sender" {
		t.Fatalf("own session: %q %v", b, err)
	}
	if _, err := s.Session(ctx, SessionKey{GroupID: g, PeerID: []byte("peer-b"), Kind: "signal/ratchet"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing session: %v", err)
	}
	err = s.View(ctx, func(tx *Tx) error {
		keys, err := tx.Sessions(g)
		if err != nil || len(keys) != 2 {
			return fmt.Errorf("sessions %v %v", keys, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.DeleteGroup(g) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session after group delete: %v", err)
	}
}

// TestValuesOfOneTransaction: values sealed one after another in a transaction share a
// buffer (the driver copies each as it binds it); every one must read back as written,
// after the commit and after a reopen.
func TestValuesOfOneTransaction(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testKey(1))
	g := []byte("group-1")
	value := func(c byte) []byte { return bytes.Repeat([]byte{c}, 4096) }
	var msgs []Message
	for i := range 5 {
		msgs = append(msgs, msg("group-1", i, 3, strings.Repeat(string(rune('a'+i)), 4096)))
	}
	err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.SaveGroupState(g, 3, value('S')); err != nil {
			return err
		}
		for i := range 3 {
			if err := tx.SaveSession(SessionKey{GroupID: g, PeerID: []byte{byte(i)}, Kind: "k"}, value(byte('0'+i))); err != nil {
				return err
			}
		}
		_, err := tx.AppendMessages(msgs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		if _, st, err := s.GroupState(ctx, g); err != nil || !bytes.Equal(st, value('S')) {
			t.Errorf("group state: %.8q… %v", st, err)
		}
		for i := range 3 {
			if b, err := s.Session(ctx, SessionKey{GroupID: g, PeerID: []byte{byte(i)}, Kind: "k"}); err != nil || !bytes.Equal(b, value(byte('0'+i))) {
				t.Errorf("session %d: %.8q… %v", i, b, err)
			}
		}
		got, _, err := s.History(ctx, g, 0, 10)
		if err != nil || len(got) != len(msgs) {
			t.Fatalf("history: %d messages, %v", len(got), err)
		}
		for _, m := range got {
			i := slices.IndexFunc(msgs, func(w Message) bool { return bytes.Equal(w.MsgID, m.MsgID) })
			if i < 0 || !bytes.Equal(m.Content, msgs[i].Content) {
				t.Errorf("message %s: %.8q…", m.MsgID, m.Content)
			}
		}
	}
	check(s)
	s.Close()
	check(openT(t, dir, testKey(1)))
}

func msg(g string, id, epoch int, content string) Message {
	return Message{
		GroupID: []byte(g),
		MsgID:   []byte(fmt.Sprintf("m%06d", id)),
		Epoch:   uint64(epoch),
		Sender:  []byte("peer-" + g),
		SentAt:  time.Unix(1700000000, int64(id)),
		Content: []byte(content),
	}
}

func TestHistoryPagingAndDedupe(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	var batch []Message
	for i := 1; i <= 120; i++ {
		batch = append(batch, msg("a", i, i/10, fmt.Sprintf("hello %d", i)))
		if i%3 == 0 {
			batch = append(batch, msg("b", i, 0, "other group"))
		}
	}
	batch[6].Flags = FlagLate | FlagOwn // a6
	n, err := s.AppendMessages(ctx, batch)
	if err != nil || n != len(batch) {
		t.Fatalf("append: %d %v", n, err)
	}
	for _, m := range batch {
		if m.Seq == 0 {
			t.Fatal("seq not set")
		}
	}
	// A repeated delivery is skipped.
	dup := []Message{msg("a", 7, 0, "changed"), msg("a", 121, 12, "new")}
	if n, err := s.AppendMessages(ctx, dup); err != nil || n != 1 || dup[0].Seq != 0 || dup[1].Seq == 0 {
		t.Fatalf("dedupe: %d %v %+v", n, err, dup)
	}

	var all []Message
	before := int64(0)
	pages := 0
	for {
		page, next, err := s.History(ctx, []byte("a"), before, 50)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(page, all...)
		if next == 0 {
			break
		}
		before = next
	}
	if pages != 3 || len(all) != 121 {
		t.Fatalf("%d pages, %d messages", pages, len(all))
	}
	for i, m := range all {
		want := fmt.Sprintf("hello %d", i+1)
		if i == 120 {
			want = "new"
		}
		if string(m.Content) != want || (i > 0 && m.Seq <= all[i-1].Seq) {
			t.Fatalf("message %d: %q seq %d", i, m.Content, m.Seq)
		}
	}
	m := all[5]
	if m.Flags != FlagLate|FlagOwn || m.Epoch != 0 || string(m.Sender) != "peer-a" || !m.SentAt.Equal(time.Unix(1700000000, 6)) || m.ReceivedAt.IsZero() {
		t.Errorf("metadata: %+v", m)
	}
	got, err := s.Message(ctx, []byte("a"), []byte("m000007"))
	if err != nil || string(got.Content) != "hello 7" {
		t.Errorf("message: %q %v", got.Content, err)
	}
	if _, err := s.Message(ctx, []byte("a"), []byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing message: %v", err)
	}
	if page, next, err := s.History(ctx, []byte("none"), 0, 10); err != nil || len(page) != 0 || next != 0 {
		t.Errorf("empty group: %v %d %v", page, next, err)
	}
}

// TestUpdateIsAtomic checks that a state change and the message depending on it
// commit together or not at all.
func TestUpdateIsAtomic(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	g := []byte("g")
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.SaveGroupState(g, 1, []byte("one")); err != nil {
			return err
		}
		if _, err := tx.AppendMessages([]Message{msg("g", 1, 1, "x")}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update: %v", err)
	}
	if _, _, err := s.GroupState(ctx, g); !errors.Is(err, ErrNotFound) {
		t.Errorf("state survived a rollback: %v", err)
	}
	func() {
		defer func() { recover() }()
		s.Update(ctx, func(tx *Tx) error {
			tx.SaveGroupState(g, 1, []byte("one"))
			panic("in the middle")
		})
	}()
	if _, _, err := s.GroupState(ctx, g); !errors.Is(err, ErrNotFound) {
		t.Errorf("state survived a panic: %v", err)
	}
	// The write connection is usable after both.
	if err := s.SaveGroupState(ctx, g, 2, []byte("two")); err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx *Tx) error { return tx.SaveGroupState(g, 3, nil) })
	if !errors.Is(err, ErrReadOnly) {
		t.Errorf("write in View: %v", err)
	}
}

func TestOutbox(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testKey(1))
	for i := range 3 {
		it := OutboxItem{GroupID: []byte("g"), MsgID: []byte{byte(i)}, Epoch: 4, CreatedAt: time.Unix(100+int64(i), 0), Payload: []byte(fmt.Sprint("payload ", i))}
		if err := s.PutOutbox(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutOutbox(ctx, OutboxItem{GroupID: []byte("h"), MsgID: []byte{9}, Payload: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.MarkOutboxSent([]byte("g"), []byte{1}, 5) }); err != nil {
		t.Fatal(err)
	}
	if err := s.AckOutbox(ctx, []byte("g"), []byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := s.AckOutbox(ctx, []byte("g"), []byte{0}); !errors.Is(err, ErrNotFound) {
		t.Errorf("second ack: %v", err)
	}
	s.Close()
	s = openT(t, dir, testKey(1))
	items, err := s.Outbox(ctx, []byte("g"))
	if err != nil || len(items) != 2 {
		t.Fatalf("outbox: %+v %v", items, err)
	}
	if items[0].Epoch != 5 || items[0].Attempts != 1 || string(items[0].Payload) != "payload 1" || string(items[1].Payload) != "payload 2" {
		t.Errorf("items: %+v", items)
	}
	if all, err := s.Outbox(ctx, nil); err != nil || len(all) != 3 {
		t.Errorf("all groups: %d %v", len(all), err)
	}
}

func TestPeersAndVerifiedSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testKey(1))
	p := []byte("peer-1")
	t0 := time.Unix(1000, 0)
	if err := s.PutPeer(ctx, p, "alice", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPeerAddrs(ctx, p, []string{"/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.2/udp/4001/quic-v1"}, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPeerAddrs(ctx, p, []string{"/ip4/10.0.0.2/udp/4001/quic-v1"}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVerified(ctx, p, []byte("identity key of alice")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVerified(ctx, []byte("peer-2"), []byte("key 2")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVerified(ctx, []byte("peer-2"), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openT(t, dir, testKey(1))
	got, err := s.Peer(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "alice" || !got.FirstSeen.Equal(t0) || !got.LastSeen.Equal(t0.Add(time.Minute)) ||
		string(got.VerifiedKey) != "identity key of alice" || len(got.Addrs) != 2 ||
		got.Addrs[0].Addr != "/ip4/10.0.0.2/udp/4001/quic-v1" {
		t.Errorf("peer: %+v", got)
	}
	if k, err := s.Verified(ctx, p); err != nil || string(k) != "identity key of alice" {
		t.Errorf("verified: %q %v", k, err)
	}
	if k, err := s.Verified(ctx, []byte("peer-2")); err != nil || k != nil {
		t.Errorf("cleared verified: %q %v", k, err)
	}
	if k, err := s.Verified(ctx, []byte("unknown")); err != nil || k != nil {
		t.Errorf("unknown peer verified: %q %v", k, err)
	}
	peers, err := s.Peers(ctx)
	if err != nil || len(peers) != 2 {
		t.Errorf("peers: %+v %v", peers, err)
	}
	// Copying alice's verified flag onto another peer does not verify it.
	if _, err := s.w.Exec("UPDATE peers SET verified = (SELECT verified FROM peers WHERE peer_id = ?) WHERE peer_id = ?", p, []byte("peer-2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verified(ctx, []byte("peer-2")); !errors.Is(err, errOpen) {
		t.Errorf("copied verified flag: %v", err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.DeletePeer(p) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Peer(ctx, p); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted peer: %v", err)
	}
}

func TestInvites(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	now := time.Unix(5000, 0)
	invs := []Invite{
		{ID: []byte("i1"), GroupID: []byte("g"), CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxUses: 2, Token: []byte("tchat1token")},
		{ID: []byte("i2"), GroupID: []byte("g"), CreatedAt: now.Add(time.Second), ExpiresAt: now.Add(time.Minute), Token: []byte("t2")},
		{ID: []byte("i3"), GroupID: []byte("g"), CreatedAt: now.Add(2 * time.Second), Token: []byte("t3")},
	}
	for _, inv := range invs {
		if err := s.PutInvite(ctx, inv); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutInvite(ctx, invs[0]); err == nil {
		t.Error("an invite id was reused")
	}
	use := func(id, peer string, at time.Time) error {
		_, err := s.UseInvite(ctx, []byte(id), []byte(peer), at)
		return err
	}
	if err := use("i1", "p1", now); err != nil {
		t.Fatal(err)
	}
	if err := use("i1", "p1", now); err != nil { // retried join
		t.Fatal(err)
	}
	if err := use("i1", "p2", now); err != nil {
		t.Fatal(err)
	}
	if err := use("i1", "p3", now); !errors.Is(err, ErrInviteUsedUp) {
		t.Errorf("third peer: %v", err)
	}
	if err := use("i2", "p1", now.Add(time.Minute)); !errors.Is(err, ErrInviteExpired) {
		t.Errorf("expired: %v", err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.RevokeInvite([]byte("i3")) }); err != nil {
		t.Fatal(err)
	}
	if err := use("i3", "p1", now); !errors.Is(err, ErrInviteRevoked) {
		t.Errorf("revoked: %v", err)
	}
	if err := use("nope", "p1", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	list, err := s.Invites(ctx, []byte("g"))
	if err != nil || len(list) != 3 || list[0].Uses != 2 || string(list[0].Token) != "tchat1token" || !list[2].Revoked || list[1].Uses != 0 {
		t.Errorf("invites: %+v %v", list, err)
	}
}

// TestSealedValuesAreBound checks that sealed values are not readable in the file
// and cannot be moved between rows.
func TestSealedValuesAreBound(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testKey(1))
	secret := "the secret content 1f0a"
	if _, err := s.AppendMessages(ctx, []Message{msg("g", 1, 0, secret), msg("g", 2, 0, "other")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveGroupState(ctx, []byte("g"), 3, []byte(secret)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, name := range []string{FileName, FileName + "-wal"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("plaintext in %s", name)
		}
	}
	s = openT(t, dir, testKey(1))
	// Swap the two contents.
	if _, err := s.w.Exec(`UPDATE messages SET content = (SELECT content FROM messages m2 WHERE m2.msg_id != messages.msg_id)`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.History(ctx, []byte("g"), 0, 10); !errors.Is(err, errOpen) {
		t.Errorf("swapped contents: %v", err)
	}
	// Edit the sender of a message.
	if _, err := s.w.Exec(`UPDATE messages SET content = (SELECT content FROM messages) , sender = x'00'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Message(ctx, []byte("g"), []byte("m000001")); !errors.Is(err, errOpen) {
		t.Errorf("edited sender: %v", err)
	}
	// Roll the epoch of a group state back.
	if _, err := s.w.Exec(`UPDATE group_states SET epoch = 2`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GroupState(ctx, []byte("g")); !errors.Is(err, errOpen) {
		t.Errorf("edited epoch: %v", err)
	}
	if strings.Contains(errOpen.Error(), secret) {
		t.Error("secret in error")
	}
}

func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testKey(1))
	if _, err := s.AppendMessages(ctx, []Message{msg("g", 1, 0, "kept")}); err != nil {
		t.Fatal(err)
	}
	snapDir := t.TempDir()
	if err := s.Snapshot(ctx, filepath.Join(snapDir, FileName)); err != nil {
		t.Fatal(err)
	}
	if err := s.Snapshot(ctx, filepath.Join(snapDir, FileName)); err == nil {
		t.Error("snapshot overwrote a file")
	}
	c := openT(t, snapDir, testKey(1))
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := c.Message(ctx, []byte("g"), []byte("m000001"))
	if err != nil || string(m.Content) != "kept" {
		t.Fatalf("snapshot content: %q %v", m.Content, err)
	}
}

// dirFiles returns the names and contents of the files in dir.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sameFiles(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	var names []string
	for n := range before {
		names = append(names, n)
	}
	for n := range after {
		if _, ok := before[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		if !bytes.Equal(before[n], after[n]) {
			t.Errorf("file %s changed (%d -> %d bytes, present before %v, after %v)", n, len(before[n]), len(after[n]), before[n] != nil, after[n] != nil)
		}
	}
}

// populated makes a closed store with some data in dir.
func populated(t *testing.T, key [32]byte) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	var ms []Message
	for i := range 300 {
		ms = append(ms, msg("g", i, 0, strings.Repeat("x", 200)))
	}
	if _, err := s.AppendMessages(ctx, ms); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveGroupState(ctx, []byte("g"), 1, []byte("s")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRefusedDatabasesAreNotTouched(t *testing.T) {
	key := testKey(1)
	cases := []struct {
		name  string
		spoil func(t *testing.T, dir string)
		key   [32]byte
		want  error
	}{
		{"wrong key", func(*testing.T, string) {}, testKey(2), ErrWrongKey},
		{"garbage", func(t *testing.T, dir string) {
			b := make([]byte, 64<<10)
			rand.Read(b)
			os.WriteFile(filepath.Join(dir, FileName), b, 0o600)
		}, key, ErrCorrupt},
		{"garbage after the header", func(t *testing.T, dir string) {
			p := filepath.Join(dir, FileName)
			b, _ := os.ReadFile(p)
			rand.Read(b[4096:])
			os.WriteFile(p, b, 0o600)
		}, key, ErrCorrupt},
		{"truncated to half", func(t *testing.T, dir string) {
			p := filepath.Join(dir, FileName)
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()/2)
		}, key, ErrCorrupt},
		{"truncated at a page boundary", func(t *testing.T, dir string) {
			p := filepath.Join(dir, FileName)
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()/4096/2*4096)
		}, key, ErrCorrupt},
		{"truncated mid-page", func(t *testing.T, dir string) {
			p := filepath.Join(dir, FileName)
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-100)
		}, key, ErrCorrupt},
		{"truncated header", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, FileName), 50)
		}, key, ErrCorrupt},
		{"newer schema", func(t *testing.T, dir string) {
			s, err := Open(dir, key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.w.Exec("UPDATE schema_version SET version = ?", SchemaVersion+1); err != nil {
				t.Fatal(err)
			}
			s.Close()
		}, key, ErrNewerSchema},
		{"not tchat's", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, FileName))
			s, err := Open(dir, key)
			if err != nil {
				t.Fatal(err)
			}
			s.w.Exec("PRAGMA application_id = 42")
			s.Close()
		}, key, ErrNotTchat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := populated(t, key)
			c.spoil(t, dir)
			before := dirFiles(t, dir)
			s, err := Open(dir, c.key)
			if err == nil {
				// Corruption past the pages Open reads is found by Check.
				err = s.Check(ctx)
				if err == nil {
					_, _, err = s.History(ctx, []byte("g"), 0, 1000)
				}
				s.Close()
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "store: ") {
				t.Errorf("error %q lacks the prefix", err)
			}
			t.Logf("%v", err)
			sameFiles(t, before, dirFiles(t, dir))
		})
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(t.TempDir(), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.SaveGroupState(ctx, []byte("g"), 1, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestSchemaVersionIsTheMigrationCount(t *testing.T) {
	if SchemaVersion != len(migrations) {
		t.Fatalf("SchemaVersion %d, %d migrations", SchemaVersion, len(migrations))
	}
}

// TestMigration adds a migration, as a later build would, and checks that an
// older database is upgraded with its data kept, and that the older build then
// refuses the upgraded database without touching it.
func TestMigration(t *testing.T) {
	dir := populated(t, testKey(1))
	old := migrations
	t.Cleanup(func() { migrations = old })
	migrations = append(slices.Clone(old), `CREATE TABLE drafts (group_id BLOB PRIMARY KEY, body BLOB NOT NULL);`)

	s := openT(t, dir, testKey(1))
	var v int
	if err := s.w.QueryRow("SELECT version FROM schema_version").Scan(&v); err != nil || v != len(old)+1 {
		t.Fatalf("version after upgrade %d, %v", v, err)
	}
	if _, err := s.w.Exec("INSERT INTO drafts VALUES (x'01', x'02')"); err != nil {
		t.Fatal(err)
	}
	if page, _, err := s.History(ctx, []byte("g"), 0, 1000); err != nil || len(page) != 300 {
		t.Fatalf("history after upgrade: %d %v", len(page), err)
	}
	s.Close()

	migrations = old
	before := dirFiles(t, dir)
	if _, err := Open(dir, testKey(1)); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("old build on the new schema: %v", err)
	}
	sameFiles(t, before, dirFiles(t, dir))
}

// TestConcurrentUse runs writers and readers at once.
func TestConcurrentUse(t *testing.T) {
	s := openT(t, t.TempDir(), testKey(1))
	const writers, each = 4, 40
	errs := make(chan error, writers+2)
	done := make(chan struct{})
	for w := range writers {
		go func() {
			for i := range each {
				err := s.Update(ctx, func(tx *Tx) error {
					if err := tx.SaveGroupState([]byte{byte(w)}, uint64(i), []byte("s")); err != nil {
						return err
					}
					_, err := tx.AppendMessages([]Message{msg("g", w*1000+i, i, "c")})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				if _, _, err := s.History(ctx, []byte("g"), 0, 20); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	n, err := view(ctx, s, func(tx *Tx) (int64, error) { return tx.CountMessages([]byte("g")) })
	if err != nil || n != writers*each {
		t.Fatalf("%d messages, %v", n, err)
	}
}

// TestUpdateUnsynced: an unsynced transaction commits (and survives closing the store),
// rolls back on error, runs with synchronous=NORMAL, and leaves the writer at FULL.
func TestUpdateUnsynced(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testKey(1))
	syncLevel := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int64 {
		t.Helper()
		var v int64
		if err := q.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var inside int64
	err := s.UpdateUnsynced(ctx, func(tx *Tx) error {
		inside = syncLevel(tx.tx)
		_, err := tx.AppendMessages([]Message{msg("g", 1, 1, "kept")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != 1 {
		t.Errorf("synchronous inside the transaction = %d, want 1 (NORMAL)", inside)
	}
	if got := syncLevel(s.w); got != 2 {
		t.Errorf("synchronous after = %d, want 2 (FULL)", got)
	}
	boom := errors.New("boom")
	if err := s.UpdateUnsynced(ctx, func(tx *Tx) error {
		if _, err := tx.AppendMessages([]Message{msg("g", 2, 1, "dropped")}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failing update: %v", err)
	}
	if got := syncLevel(s.w); got != 2 {
		t.Errorf("synchronous after a rollback = %d, want 2 (FULL)", got)
	}
	s.Close()
	s = openT(t, dir, testKey(1))
	ms, _, err := s.History(ctx, []byte("g"), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || string(ms[0].Content) != "kept" {
		t.Errorf("after reopening: %d messages %v", len(ms), ms)
	}
	if err := s.UpdateUnsynced(ctx, func(*Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.UpdateUnsynced(ctx, func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("on a closed store: %v", err)
	}
}
