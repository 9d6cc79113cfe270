package chat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/mlsgroup"
	"github.com/tchat-p2p/tchat/net/node"
	"github.com/tchat-p2p/tchat/net/proto"
)

// testConfig, if set, adjusts the Config of the clients a test starts.
var testConfig func(*Config)

// testLogger logs the core's debug log through t when TCHAT_DEBUG is set.
func testLogger(t *testing.T, name string) *slog.Logger {
	if os.Getenv("TCHAT_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, strings.TrimSpace(string(b)))
	return len(b), nil
}

type testClient struct {
	*Client
	name   string
	events chan Event

	mu       sync.Mutex
	received map[string]MessageReceived // by text
	forks    int
}

// texts returns the texts of the messages tc received.
func (tc *testClient) got(text string) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	_, ok := tc.received[text]
	return ok
}

func newTestClient(t *testing.T, name string) *testClient {
	t.Helper()
	return newProfile(t).start(t, name)
}

// startTestClient starts a client on an existing profile.
func startTestClient(t *testing.T, name string, id *identity.Identity, dir string, st *store.Store, now func() time.Time) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{
		Dir:      dir,
		Identity: id,
		Store:    st,
		Now:      now,
		Logger:   testLogger(t, name),
		Node: node.Config{
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			DHT:         node.DHTOff,
			NoMDNS:      true,
		},
	}
	if testConfig != nil {
		testConfig(&cfg)
	}
	c, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testClient{Client: c, name: name, events: make(chan Event, 1<<16), received: map[string]MessageReceived{}}
	go func() {
		for ev := range c.Events() {
			switch e := ev.(type) {
			case Error:
				t.Logf("%s: event error: %v", name, e)
			case MessageReceived:
				tc.mu.Lock()
				tc.received[e.Text] = e
				tc.mu.Unlock()
			case ForkDetected:
				tc.mu.Lock()
				tc.forks++
				tc.mu.Unlock()
			}
			select {
			case tc.events <- ev:
			default: // nobody waits for so many events: drop
			}
		}
		close(tc.events)
	}()
	t.Cleanup(func() { c.Close() })
	return tc
}

// waitFor reads tc's events until one satisfies ok.
func (tc *testClient) waitFor(t *testing.T, what string, ok func(Event) bool) Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, open := <-tc.events:
			if !open {
				t.Fatalf("%s: events closed while waiting for %s", tc.name, what)
			}
			if ok(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("%s: timed out waiting for %s", tc.name, what)
		}
	}
}

// waitMesh waits until tc's topic of group gid has at least n mesh peers.
func (tc *testClient) waitMesh(t *testing.T, gid GroupID, n int) {
	t.Helper()
	g, err := tc.group(gid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(g.topic.MeshPeers()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: topic mesh has %d peers, want %d", tc.name, len(g.topic.MeshPeers()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPeers waits until tc knows at least n peers subscribed to group gid's topic. (A
// restarted peer may stay out of the mesh for gossipsub's prune backoff; flood publishing
// still reaches it.)
func (tc *testClient) waitPeers(t *testing.T, gid GroupID, n int) {
	t.Helper()
	g, err := tc.group(gid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(g.topic.Peers()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: topic has %d peers, want %d", tc.name, len(g.topic.Peers()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestThreeMembersChat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b, c := newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "C")

	gid, err := a.CreateGroup("friends")
	if err != nil {
		t.Fatal(err)
	}

	// B joins.
	tokB, err := a.Invite(gid)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tokB, TokenPrefix) || strings.ContainsAny(tokB, " \n") {
		t.Fatalf("token %q is not one tchat1 line", tokB)
	}
	got, err := b.Join(ctx, tokB)
	if err != nil {
		t.Fatal(err)
	}
	if got != gid {
		t.Fatalf("B joined %s, want %s", got, gid)
	}
	a.waitFor(t, "B joined", func(ev Event) bool {
		e, ok := ev.(MemberJoined)
		return ok && e.Member == b.PeerID()
	})
	// A single-use token cannot be used twice.
	if _, err := c.Join(ctx, tokB); err == nil {
		t.Fatal("C joined with B's single-use token")
	} else {
		t.Logf("reused token: %v", err)
	}
	b.waitMesh(t, gid, 1)

	// C joins; B follows A's commit.
	tokC, err := a.Invite(gid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join(ctx, tokC); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "C joined (at B)", func(ev Event) bool {
		e, ok := ev.(MemberJoined)
		return ok && e.Member == c.PeerID()
	})
	a.waitMesh(t, gid, 2)
	c.waitMesh(t, gid, 1)

	for _, tc := range []*testClient{a, b, c} {
		s, err := tc.Group(ctx, gid)
		if err != nil {
			t.Fatal(err)
		}
		if s.Epoch != 2 || len(s.Members) != 3 || s.Name != "friends" || s.Policy != DefaultPolicy {
			t.Fatalf("%s sees %+v", tc.name, s)
		}
	}

	// Everyone speaks; everyone else hears, with the right sender.
	all := []*testClient{a, b, c}
	for _, from := range all {
		text := fmt.Sprintf("hello from %s", from.name)
		if _, err := from.Send(ctx, gid, text); err != nil {
			t.Fatal(err)
		}
		for _, to := range all {
			if to == from {
				continue
			}
			ev := to.waitFor(t, text, func(ev Event) bool {
				e, ok := ev.(MessageReceived)
				return ok && e.Text == text
			}).(MessageReceived)
			if ev.Sender != from.PeerID() || ev.Group != gid {
				t.Fatalf("%s got %q from %s in %s, want from %s", to.name, text, ev.Sender, ev.Group, from.PeerID())
			}
		}
	}

	// History is stored, own messages included.
	msgs, _, err := b.History(ctx, gid, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("B's history has %d messages, want 3", len(msgs))
	}

	// A removes C: B follows, C is told, and C can no longer send.
	if err := a.Remove(ctx, gid, c.PeerID()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []*testClient{b, c} {
		tc.waitFor(t, "C removed", func(ev Event) bool {
			e, ok := ev.(MemberRemoved)
			return ok && e.Member == c.PeerID() && e.By == a.PeerID()
		})
	}
	if _, err := c.Send(ctx, gid, "still here?"); err == nil {
		t.Fatal("a removed member sent a message")
	}
	if _, err := a.Send(ctx, gid, "after C left"); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "a message after the removal", func(ev Event) bool {
		e, ok := ev.(MessageReceived)
		return ok && e.Text == "after C left"
	})
	if s, err := b.Group(ctx, gid); err != nil || len(s.Members) != 2 {
		t.Fatalf("B's roster after the removal: %+v, %v", s, err)
	}

	// An expired token is refused with a clear error, before anything is sent.
	expired, err := a.InviteWith(gid, -time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	d := newTestClient(t, "D")
	if _, err := d.Join(ctx, expired); !errors.Is(err, ErrInviteExpired) {
		t.Fatalf("expired token: %v, want ErrInviteExpired", err)
	} else {
		t.Logf("expired token: %v", err)
	}
	// A mistyped (forged) token is refused.
	tok, _ := a.Invite(gid)
	i := len(tok) - 10
	bad := tok[:i] + string("ab"[(strings.IndexByte("ab", tok[i])+1)%2]) + tok[i+1:]
	if _, err := d.Join(ctx, bad); !errors.Is(err, ErrInvalidInvite) {
		t.Fatalf("forged token: %v, want ErrInvalidInvite", err)
	}
}

func TestInviteRoundTrip(t *testing.T) {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	inv := &Invite{
		GroupID: []byte("group"), Name: "n", RoomSecret: make([]byte, 32), Inviter: id.PeerID(),
		ID: make([]byte, 16), Expires: time.Unix(2000000000, 0), MaxUses: 3,
	}
	tok, err := encodeInvite(inv, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseInvite(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Inviter != inv.Inviter || got.Name != "n" || got.MaxUses != 3 || !got.Expires.Equal(inv.Expires) {
		t.Fatalf("got %+v", got)
	}
	if err := got.Check(time.Unix(2000000001, 0)); !errors.Is(err, ErrInviteExpired) {
		t.Fatalf("Check after expiry: %v", err)
	}
	other, _ := identity.Generate()
	if _, err := encodeInvite(inv, other); err == nil {
		t.Fatal("signed someone else's invite")
	}
}

// A member that restarts resumes its groups from the store, without a new join.
func TestRestartResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := newTestClient(t, "A")

	pr := newProfile(t)
	id, dir, st := pr.id, pr.dir, pr.st
	b := startTestClient(t, "B", id, dir, st, nil)

	gid, err := a.CreateGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Invite(gid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctx, tok); err != nil {
		t.Fatal(err)
	}
	b.waitMesh(t, gid, 1)
	a.waitMesh(t, gid, 1) // A must know B subscribed: nothing re-sends missed messages yet
	if _, err := a.Send(ctx, gid, "before"); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "before", func(ev Event) bool { e, ok := ev.(MessageReceived); return ok && e.Text == "before" })

	// B stops and starts again on the same profile.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startTestClient(t, "B2", id, dir, st, nil)
	if gs := b.Groups(); len(gs) != 1 || gs[0] != gid {
		t.Fatalf("restarted B has groups %v", gs)
	}
	// Nothing finds peers on loopback without discovery: B dials A.
	if err := b.Node().Connect(ctx, a.Node().AddrInfo()); err != nil {
		t.Fatal(err)
	}
	b.waitPeers(t, gid, 1)
	a.waitPeers(t, gid, 1)
	if _, err := a.Send(ctx, gid, "after"); err != nil {
		t.Fatal(err)
	}
	ev := b.waitFor(t, "after", func(ev Event) bool { e, ok := ev.(MessageReceived); return ok && e.Text == "after" }).(MessageReceived)
	if ev.Sender != a.PeerID() {
		t.Fatalf("sender %s, want %s", ev.Sender, a.PeerID())
	}
	if _, err := b.Send(ctx, gid, "back"); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "back", func(ev Event) bool { e, ok := ev.(MessageReceived); return ok && e.Text == "back" })
	msgs, _, err := b.History(ctx, gid, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("B's history has %d messages, want 3", len(msgs))
	}
}

// The inviter refuses an expired invite even when the joiner's clock says otherwise.
func TestInviterRefusesExpired(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := newTestClient(t, "A")
	pr := newProfile(t)
	id, dir, st := pr.id, pr.dir, pr.st
	late := startTestClient(t, "late", id, dir, st, func() time.Time { return time.Now().Add(-time.Hour) })

	gid, err := a.CreateGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.InviteWith(gid, -time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = late.Join(ctx, tok)
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("join with an expired token (joiner clock behind): %v", err)
	}
	t.Logf("refused by the inviter: %v", err)

	// A join request without a valid proof of the token is refused.
	gb, _ := gid.Bytes()
	if err := late.Node().Connect(ctx, a.Node().AddrInfo()); err != nil {
		t.Fatal(err)
	}
	_, err = late.Node().Join(ctx, a.PeerID(), &proto.JoinRequest{GroupID: gb, KeyPackage: []byte("kp"), InviteProof: make([]byte, 48)})
	if !errors.Is(err, proto.ErrRefused) || !strings.Contains(err.Error(), "invalid invite proof") {
		t.Fatalf("forged proof: %v", err)
	}
	// And one for a group the inviter is not in is not found.
	_, err = late.Node().Join(ctx, a.PeerID(), &proto.JoinRequest{GroupID: []byte("other"), KeyPackage: []byte("kp"), InviteProof: make([]byte, 48)})
	if !errors.Is(err, proto.ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
	if s, err := a.Group(ctx, gid); err != nil || s.Epoch != 0 || len(s.Members) != 1 {
		t.Fatalf("group changed: %+v %v", s, err)
	}
}

// A joiner hands its sender key to each member over a stream of its own, and each member
// hands its own to the joiner: no message carries a key, the first ones are as small as
// the rest, and nothing but the messages is shown or logged.
func TestJoinerHandsOutItsKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b, c := newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "C")
	gid, err := a.CreateGroup("keys")
	if err != nil {
		t.Fatal(err)
	}
	connectAll(t, ctx, []*testClient{a, b, c}) // as mDNS would: B and C can reach each other
	for _, j := range []*testClient{b, c} {
		tok, err := a.Invite(gid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Join(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	ga, err := a.group(gid)
	if err != nil {
		t.Fatal(err)
	}
	// Every member ends up with every other's key, with no message sent.
	waitKeysOut(t, ctx, gid, a, b, c)
	frames := func(tc *testClient, from *testClient) []store.WireItem {
		g, err := tc.group(gid)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.do(ctx, func() error { g.flush(); return nil }); err != nil { // received, not stored yet
			t.Fatal(err)
		}
		items, _, err := tc.st.WireRead(ctx, ga.id, store.WireQuery{Messages: true, Sender: from.self})
		if err != nil {
			t.Fatal(err)
		}
		return items
	}
	for _, tc := range []*testClient{a, b, c} {
		if hist, _, err := tc.History(ctx, gid, 0, 10); err != nil || len(hist) != 0 {
			t.Fatalf("%s's history before any message was sent: %v, %v", tc.name, hist, err)
		}
	}
	for _, tc := range []*testClient{b, c} { // (A's log has its own proposals)
		if n := len(frames(a, tc)); n != 0 {
			t.Fatalf("%d messages of %s in A's log before any was sent", n, tc.name)
		}
	}
	for i, tc := range []*testClient{c, b, b} {
		if _, err := tc.Send(ctx, gid, fmt.Sprintf("hello %d from %s", i, tc.name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*testClient{a, b} {
		waitReceived(t, "hello 0 from C", m)
	}
	waitReceived(t, "hello 1 from B", a)
	waitReceived(t, "hello 2 from B", a)
	fromC, fromB := frames(a, c), frames(a, b)
	if len(fromC) != 1 || len(fromB) != 2 {
		t.Fatalf("%d frames of C and %d of B in A's wire log, want 1 and 2", len(fromC), len(fromB))
	}
	// C's first message is the size of B's second one: it carries no key.
	if first, later := len(fromC[0].Data), len(fromB[1].Data); first > later+100 {
		t.Fatalf("C's first message is %d bytes, B's second %d: the first still carries keys", first, later)
	}
}

// keyOnItsWay forms a group of A, B and C in which A's hand-out of its sender key to C
// is on its way (C holds the stream), and A has sent two messages, which reached B.
// release makes C reset that stream and every later one; restore gives C its handlers
// back; tries counts the hand-outs C got from A.
func keyOnItsWay(t *testing.T, ctx context.Context) (a, b, c *testClient, gid GroupID, release, restore func(), tries func() int) {
	t.Helper()
	a, b, c = newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "C")
	gid, err := a.CreateGroup("keys")
	if err != nil {
		t.Fatal(err)
	}
	connectAll(t, ctx, []*testClient{a, b, c})
	held := make(chan struct{})
	var n atomic.Int32
	c.Node().Host().SetStreamHandler(proto.SenderKeyID, func(s network.Stream) {
		if s.Conn().RemotePeer() == a.PeerID() {
			n.Add(1)
		}
		select {
		case <-held:
		case <-ctx.Done():
		}
		s.Reset()
	})
	for _, j := range []*testClient{b, c} {
		tok, err := a.Invite(gid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Join(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	ga, err := a.group(gid)
	if err != nil {
		t.Fatal(err)
	}
	lacks := func(to *testClient) (lacking, giving bool) {
		if err := ga.do(ctx, func() error {
			lacking = len(ga.sig.SenderKeyLacking([][]byte{to.self})) > 0
			giving = ga.keyGiving[string(to.self)]
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return lacking, giving
	}
	for {
		bLacks, _ := lacks(b)
		cLacks, giving := lacks(c)
		if !bLacks && cLacks && giving {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("A never handed its key to B, or never started handing it to C")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, err := a.Group(ctx, gid); err != nil || st.KeysOwed != 1 {
		t.Fatalf("A's sender key is on its way to C: A owes %d keys (%v)", st.KeysOwed, err)
	}
	for _, text := range []string{"while on its way 1", "while on its way 2"} {
		say(t, ctx, a, gid, text, b)
	}
	if c.got("while on its way 1") {
		t.Fatal("C read a message of A's before it had A's key")
	}
	release = func() { close(held) }
	restore = func() { c.Node().SetHandlers(handlersOf(c)) }
	return a, b, c, gid, release, restore, func() int { return int(n.Load()) }
}

// While A's sender key is on its way to a joiner, A's messages carry it for no one; when
// the hand-out fails, A's next message carries it from where the hand-out had it, and
// the joiner reads every message, those that skipped it included.
func TestKeyOnItsWay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b, c, gid, release, _, _ := keyOnItsWay(t, ctx)
	ga, err := a.group(gid)
	if err != nil {
		t.Fatal(err)
	}
	release()
	// Sent once the hand-out failed, in the same turn of A's loop that sees no hand-out to
	// C under way: A tries again later, and a message sealed while it does skips C.
	for sent := false; !sent; time.Sleep(10 * time.Millisecond) {
		if err := ga.do(ctx, func() error {
			if ga.keyGiving[string(c.self)] {
				return nil
			}
			sent = true
			_, err := ga.send(ctx, "after the hand-out failed")
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitReceived(t, "after the hand-out failed", b, c)
	waitReceived(t, "while on its way 1", c)
	waitReceived(t, "while on its way 2", c)
	items, _, err := a.st.WireRead(ctx, ga.id, store.WireQuery{Messages: true, Sender: a.self})
	if err != nil {
		t.Fatal(err)
	}
	var fs []store.WireItem
	for _, it := range items {
		if bytes.Equal(it.Sender, a.self) {
			fs = append(fs, it)
		}
	}
	if len(fs) < 3 { // (before them, A's message in the epoch C was added in)
		t.Fatalf("%d frames of A's in its log, want 3 at least", len(fs))
	}
	fs = fs[len(fs)-3:]
	// The two sent while the key was on its way carry none; the third carries C's (a
	// distribution sealed for C adds well over 100 bytes).
	if len(fs[0].Data) != len(fs[1].Data) || len(fs[2].Data) < len(fs[0].Data)+100 {
		t.Fatalf("frames of %d, %d and %d bytes: want the first two without a key, the third with C's",
			len(fs[0].Data), len(fs[1].Data), len(fs[2].Data))
	}
}

// A owes C two hand-outs, of two keys its messages skipped C for, and every try fails
// until A is past its last; then C takes them again. The older key's hand-out goes first,
// and the newer one must follow it: C reads every message. (A has one series of tries
// for C, so nothing else hands the newer key out: without the follow-up past the last
// try, this fails every time.)
func TestKeysOwedPastLastTry(t *testing.T) {
	fast(t, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b, c, gid, release, restore, tries := keyOnItsWay(t, ctx)
	ga, err := a.group(gid)
	if err != nil {
		t.Fatal(err)
	}
	// A new key whose hand-out to C counts as coming: A's next message skips C.
	var second uint32
	if err := ga.do(ctx, func() error {
		ga.sig.Rekey()
		second = ga.sig.HandOutsComing([][]byte{c.self})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	say(t, ctx, a, gid, "under the second key", b)
	// That hand-out did not leave, and A moves to a third key before sending again: only
	// a hand-out brings C the second one.
	if err := ga.do(ctx, func() error {
		ga.sig.SenderKeyNotSent(c.self, second)
		ga.sig.Rekey()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	release()
	waitNoTry(t, ctx, tries, 12*250*time.Millisecond) // longer than the tries before the last are apart
	restore()
	waitReceived(t, "while on its way 1", c)
	waitReceived(t, "under the second key", c)
}

// A's hand-out to C fails every time A tries, and A sends nothing more: A still owes C
// the key for the messages that skipped it, and keeps trying, if less often, until it
// arrives.
func TestKeyOwedAfterTries(t *testing.T) {
	fast(t, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _, c, _, release, restore, tries := keyOnItsWay(t, ctx)
	release()
	// Every try fails until A has not tried for longer than its tries are ever apart
	// (eight heartbeats): it has given up as it used to.
	waitNoTry(t, ctx, tries, 10*250*time.Millisecond)
	restore()
	waitReceived(t, "while on its way 1", c)
	waitReceived(t, "while on its way 2", c)
}

// C refuses A's hand-out, as a member does while a commit that gave A a new leaf has not
// reached it (the key does not open under A's old one), and A sends nothing more. A does
// not try again on its own (see handOutKey), but C, whose copies of A's messages do not
// open, tells A (see keyLacked): A hands the key over again, and C, once it takes the
// key, reads the messages that skipped it. A refusal used to end it there, and C never
// read them (seen in a 20-peer swarm run with churn: a member re-added during a
// partition).
func TestKeyRefusedTriedAgain(t *testing.T) {
	fast(t, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, _, c, _, release, restore, _ := keyOnItsWay(t, ctx)
	var refused atomic.Int32
	hs := handlersOf(c)
	hs.SenderKey = refusingKeys{from: a.PeerID(), n: &refused}
	c.Node().SetHandlers(hs)
	release()
	for refused.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("A never handed its key to C again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	restore()
	waitReceived(t, "while on its way 1", c)
	waitReceived(t, "while on its way 2", c)
}

// C loses what it had of A (its sender key, their sessions) while A counts C as having
// A's key: A's messages skip nothing for C and do not open there, and the message that
// carried the key is not in any sync. C tells A, which hands the key over again on a
// new session and sends its messages again: C reads them. Before, C never did. (A
// 200-peer sim swarm lost every message of one member at the same 26–29 members, its key
// missing there for a cause not found; this is one way to that state.)
func TestKeyLackingReported(t *testing.T) {
	fast(t, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b, c := newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "C")
	cs := []*testClient{a, b, c}
	gid := formGroup(t, ctx, cs)
	waitKeysOut(t, ctx, gid, cs...)
	say(t, ctx, a, gid, "before", b, c)
	gc, err := c.group(gid)
	if err != nil {
		t.Fatal(err)
	}
	if err := gc.do(ctx, func() error {
		gc.sig.RemovePeer(a.self)
		gc.sig.ForgetRemoved(func(m []byte) bool { return !bytes.Equal(m, a.self) })
		return gc.syncPeers(nil) // A afresh, from its leaf
	}); err != nil {
		t.Fatal(err)
	}
	say(t, ctx, a, gid, "after 1", b)
	say(t, ctx, a, gid, "after 2", b)
	waitReceived(t, "after 1", c)
	waitReceived(t, "after 2", c)
	for _, tc := range []*testClient{b, c} {
		hist, _, err := tc.History(ctx, gid, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(hist); n != 3 {
			t.Fatalf("%s has %d messages, want 3: one copy of each", tc.name, n)
		}
	}
}

// waitKeysOut waits until each of cs owes no member its sender key.
func waitKeysOut(t *testing.T, ctx context.Context, gid GroupID, cs ...*testClient) {
	t.Helper()
	for _, tc := range cs {
		for {
			st, err := tc.Group(ctx, gid)
			if err != nil {
				t.Fatal(err)
			}
			if st.KeysOwed == 0 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s's sender key never reached every member", tc.name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// handlersOf returns the handlers a client serves its protocols with.
func handlersOf(c *testClient) proto.Handlers {
	return proto.Handlers{Join: joinHandler{c.Client}, Sync: syncHandler{c.Client},
		KeyPackage: kpHandler{c.Client}, Welcome: welcomeHandler{c.Client}, SenderKey: senderKeyHandler{c.Client}}
}

// refusingKeys refuses every hand-out from one member, as one that does not open.
type refusingKeys struct {
	from peer.ID
	n    *atomic.Int32
}

func (r refusingKeys) HandleSenderKey(ctx context.Context, from peer.ID, req *proto.SenderKeyRequest) (*proto.SenderKeyResponse, error) {
	if from == r.from {
		r.n.Add(1)
	}
	return nil, proto.Refuse(proto.CodeRefused, "the sender key does not open")
}

// waitNoTry waits until tries (see keyOnItsWay) has not moved for quiet.
func waitNoTry(t *testing.T, ctx context.Context, tries func() int, quiet time.Duration) {
	t.Helper()
	for n, since := tries(), time.Now(); time.Since(since) < quiet; time.Sleep(10 * time.Millisecond) {
		if m := tries(); m != n {
			n, since = m, time.Now()
		}
		if ctx.Err() != nil {
			t.Fatal("A never stopped trying")
		}
	}
}

// A join request asked again (its answer was lost: the joiner gave up waiting, the
// stream broke) gets the answer of the first, whether the add is still under way or
// done: not a refusal as a member already, which left a leaf in the group no one held.
// Client.Join asks again with the KeyPackage of a request left unanswered.
func TestJoinAskedAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testConfig = func(c *Config) { c.BatchDelay = 2 * time.Second } // a slow commit
	t.Cleanup(func() { testConfig = nil })
	a, b, c := newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "C")
	gid, err := a.CreateGroup("g")
	if err != nil {
		t.Fatal(err)
	}

	// The member's side: the same request three times.
	tok, err := a.Invite(gid)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := ParseInvite(tok)
	if err != nil {
		t.Fatal(err)
	}
	_, bundle, err := c.newKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	kp := bundle.KeyPackage()
	req := &proto.JoinRequest{GroupID: inv.GroupID, KeyPackage: kp,
		InviteProof: append(joinProof(inv.RoomSecret, inv.ID, c.PeerID(), kp), []byte(tok)...)}
	h := joinHandler{a.Client}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = h.HandleJoin(short, c.PeerID(), req)
	cancelShort()
	if err == nil {
		t.Fatal("answered before the commit")
	}
	waited, err := h.HandleJoin(ctx, c.PeerID(), req) // under way: waits for the same add
	if err != nil {
		t.Fatalf("asked again while under way: %v", err)
	}
	again, err := h.HandleJoin(ctx, c.PeerID(), req) // done: the same answer at once
	if err != nil {
		t.Fatalf("asked again once done: %v", err)
	}
	if !bytes.Equal(waited.Welcome, again.Welcome) || !bytes.Equal(waited.RatchetTree, again.RatchetTree) {
		t.Fatal("asked again, a different answer")
	}
	if _, err := mlsgroup.Join(again.Welcome, bundle, again.RatchetTree, c.mlsOptions()); err != nil {
		t.Fatalf("the answer does not open: %v", err)
	}
	// Another KeyPackage of the same member is still refused.
	_, other, err := c.newKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	req2 := &proto.JoinRequest{GroupID: inv.GroupID, KeyPackage: other.KeyPackage(),
		InviteProof: append(joinProof(inv.RoomSecret, inv.ID, c.PeerID(), other.KeyPackage()), []byte(tok)...)}
	if _, err := h.HandleJoin(ctx, c.PeerID(), req2); err == nil || !strings.Contains(err.Error(), "already a member") {
		t.Fatalf("another KeyPackage: %v", err)
	}

	// The joiner's side: B gives up before the commit, then joins with a new invite.
	tok, err = a.Invite(gid)
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort = context.WithTimeout(ctx, time.Second)
	_, err = b.Join(short, tok)
	cancelShort()
	if err == nil {
		t.Fatal("joined before the commit")
	}
	time.Sleep(3 * time.Second) // the add is done meanwhile
	tok, err = a.Invite(gid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctx, tok); err != nil {
		t.Fatalf("join again: %v", err)
	}
	s, err := a.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Members) != 3 { // A, C's leaf, B: one leaf for B
		t.Fatalf("%d members, want 3: %+v", len(s.Members), s.Members)
	}
	if _, err := b.Send(ctx, gid, "hello after asking again"); err != nil {
		t.Fatal(err)
	}
	a.waitFor(t, "B's message", func(ev Event) bool {
		m, ok := ev.(MessageReceived)
		return ok && m.Text == "hello after asking again"
	})
}
