package chat

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/aes"
	"github.com/tchat-p2p/tchat/layers/mls"
	"github.com/tchat-p2p/tchat/mlsgroup"
	"github.com/tchat-p2p/tchat/net/gossip"
	"github.com/tchat-p2p/tchat/net/proto"
)

// snapshot is what a member shows of a group: bad input must leave it as it was.
func snapshot(t *testing.T, ctx context.Context, c *testClient, gid GroupID) string {
	t.Helper()
	s, err := c.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, err := c.History(ctx, gid, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join([]string{s.Name, string(rune('0' + len(s.Members))), string(s.Authenticator), string(rune('0' + len(msgs)))}, "|") +
		"|" + string(rune('0'+s.Epoch))
}

// waitError waits for an Error event whose text contains want.
func (tc *testClient) waitError(t *testing.T, want string) {
	t.Helper()
	tc.waitFor(t, "an error about "+want, func(ev Event) bool {
		e, ok := ev.(Error)
		return ok && strings.Contains(e.Err.Error(), want)
	})
}

func TestBadInput(t *testing.T) {
	fast(t, 400*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, b, d := newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "D")
	gid := formGroup(t, ctx, []*testClient{a, b})
	if err := a.Rename(ctx, gid, "g2"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, gid, "first"); err != nil {
		t.Fatal(err)
	}
	waitReceived(t, "first", b)
	before := snapshot(t, ctx, b, gid)

	// A member replays an old commit: B says so, and nothing changes.
	gb, _ := gid.Bytes()
	items, _, err := a.st.WireSince(ctx, gb, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var oldCommit []byte
	for _, it := range items {
		if it.Kind == store.WireCommit {
			oldCommit = it.Data
		}
	}
	if oldCommit == nil {
		t.Fatal("no commit in A's wire log")
	}
	time.Sleep(time.Second) // past the window in which a commit may come twice by two paths
	gB, _ := b.group(gid)
	if err := gB.do(ctx, func() error { gB.receive(a.PeerID(), oldCommit, false); return nil }); err != nil {
		t.Fatal(err)
	}
	b.waitError(t, "already applied came again")
	if got := snapshot(t, ctx, b, gid); got != before {
		t.Fatalf("a replayed commit changed B: %q, was %q", got, before)
	}

	// Someone who is not a member but knows the room secret (an old invite) publishes on
	// the group's topic a message from a group of its own with the same id.
	tok, err := a.Invite(gid)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := ParseInvite(tok)
	if err != nil {
		t.Fatal(err)
	}
	fake, err := mlsgroup.Create(d.sigKey, d.self, gb, d.mlsOptions())
	if err != nil {
		t.Fatal(err)
	}
	// At B's epoch, so that B tries its keys on it (a message of an epoch B never had,
	// such as one before it joined, is dropped quietly: B cannot tell it from a member's
	// message of before its join).
	bState, err := b.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	for fake.Epoch() < bState.Epoch {
		pc, err := fake.Commit(mlsgroup.CommitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := fake.Merge(pc); err != nil {
			t.Fatal(err)
		}
	}
	key, err := aes.NewKey(inv.RoomSecret)
	if err != nil {
		t.Fatal(err)
	}
	cas, err := layers.NewCascade(layers.MustParsePolicy("mls,aes"), mls.New(fake, nil), aes.New(key, nil))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := cas.Seal(&layers.Context{Group: gb, Sender: d.self}, []byte(`{"id":"00","t":1,"text":"forged","e":0}`))
	if err != nil {
		t.Fatal(err)
	}
	top, err := d.Node().JoinTopic(gb, inv.RoomSecret, func(context.Context, peer.ID, []byte) gossip.Result { return gossip.Accept })
	if err != nil {
		t.Fatal(err)
	}
	connectAll(t, ctx, []*testClient{a, b, d})
	time.Sleep(time.Second) // let D's subscription be known
	if err := top.Publish(ctx, appFrame(sealed)); err != nil {
		t.Fatal(err)
	}
	b.waitError(t, "did not open")
	top.Close()
	if got := snapshot(t, ctx, b, gid); got != before {
		t.Fatalf("a non-member's message changed B: %q, was %q", got, before)
	}

	// A join proof made for one group, presented for another group the inviter is in.
	other, err := a.CreateGroup("other")
	if err != nil {
		t.Fatal(err)
	}
	ob, _ := other.Bytes()
	_, bundle, err := d.newKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	kp := bundle.KeyPackage()
	_, err = d.Node().Join(ctx, a.PeerID(), &proto.JoinRequest{GroupID: ob, KeyPackage: kp, InviteProof: joinProof(inv.RoomSecret, inv.ID, d.PeerID(), kp)})
	if !errors.Is(err, proto.ErrRefused) || !strings.Contains(err.Error(), "invalid invite proof") {
		t.Fatalf("a proof for another group: %v", err)
	}
	// And a proof for the right group with someone else's KeyPackage.
	_, bundleB, err := b.newKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	kpB := bundleB.KeyPackage()
	_, err = d.Node().Join(ctx, a.PeerID(), &proto.JoinRequest{GroupID: gb, KeyPackage: kpB, InviteProof: joinProof(inv.RoomSecret, inv.ID, d.PeerID(), kpB)})
	if !errors.Is(err, proto.ErrRefused) {
		t.Fatalf("someone else's key package: %v", err)
	}
	if s, _ := a.Group(ctx, other); s.Epoch != 0 || len(s.Members) != 1 {
		t.Fatalf("the other group changed: %+v", s)
	}
	if got := snapshot(t, ctx, b, gid); got != before {
		t.Fatalf("refused joins changed B: %q, was %q", got, before)
	}
	// The invite was not used up by the refused attempts: D joins with it.
	if _, err := d.Join(ctx, tok); err != nil {
		t.Fatal(err)
	}
}

// A heartbeat whose signature does not verify is refused by the topic validator.
func TestForgedHeartbeat(t *testing.T) {
	c := newTestClient(t, "A")
	gid, err := c.CreateGroup("g")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := c.group(gid)
	h := &heartbeat{group: g.id, identity: c.self, epoch: 0, auth: make([]byte, authPrefix), nick: "x"}
	b, err := h.sign(c.id)
	if err != nil {
		t.Fatal(err)
	}
	if g.validate(context.Background(), "", b) != gossip.Accept {
		t.Fatal("a good heartbeat was refused")
	}
	bad := bytes.Clone(b)
	bad[len(bad)-70] ^= 1 // the epoch counts
	if g.validate(context.Background(), "", bad) != gossip.Reject {
		t.Fatal("a forged heartbeat was accepted")
	}
	other := bytes.Clone(b)
	other[2] ^= 1 // another group
	if g.validate(context.Background(), "", other) != gossip.Reject {
		t.Fatal("another group's heartbeat was accepted")
	}
}

// A sender key handed over on its own is taken only from a member, only if it opens, and
// only once; what is refused changes nothing.
func TestBadSenderKey(t *testing.T) {
	fast(t, 400*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b, d := newTestClient(t, "A"), newTestClient(t, "B"), newTestClient(t, "D")
	gid := formGroup(t, ctx, []*testClient{a, b})
	connectAll(t, ctx, []*testClient{a, b, d})
	ga, _ := a.group(gid)
	gb, _ := b.group(gid)
	// A and B have handed each other their keys: nothing else changes B's signal state
	// while we look at it.
	for _, h := range []struct {
		g  *group
		to []byte
	}{{ga, b.self}, {gb, a.self}} {
		for lacking := true; lacking; time.Sleep(20 * time.Millisecond) {
			if err := h.g.do(ctx, func() error { lacking = len(h.g.sig.SenderKeyLacking([][]byte{h.to})) > 0; return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	sigState := func() []byte {
		var st []byte
		if err := gb.do(ctx, func() error {
			var err error
			st, err = gb.sig.MarshalBinary()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	var sealed []byte
	if err := ga.do(ctx, func() error {
		ga.sig.Rekey() // a key B does not have yet
		var err error
		var keyID uint32
		sealed, keyID, err = ga.sig.SealSenderKey(b.self, ga.id)
		// The test hands it over itself: A's loop is not to hand it again meanwhile.
		ga.sig.SenderKeySent(b.self, keyID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	before := sigState()
	for _, c := range []struct {
		what, want string
		from       *testClient
		req        proto.SenderKeyRequest
	}{
		{"an unknown group", "not found", a, proto.SenderKeyRequest{GroupID: []byte("no such group"), Key: sealed}},
		{"a non-member", "not a member here", d, proto.SenderKeyRequest{GroupID: ga.id, Key: sealed}},
		{"garbage", "does not open", a, proto.SenderKeyRequest{GroupID: ga.id, Key: []byte("garbage")}},
		{"a flipped bit", "does not open", a, proto.SenderKeyRequest{GroupID: ga.id, Key: flipped}},
	} {
		_, err := c.from.Node().SenderKey(ctx, b.PeerID(), &c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want %q", c.what, err, c.want)
		}
		if !bytes.Equal(sigState(), before) {
			t.Fatalf("%s changed B's signal state", c.what)
		}
	}
	if _, err := a.Node().SenderKey(ctx, b.PeerID(), &proto.SenderKeyRequest{GroupID: ga.id, Key: sealed}); err != nil {
		t.Fatalf("the genuine key: %v", err)
	}
	after := sigState()
	if _, err := a.Node().SenderKey(ctx, b.PeerID(), &proto.SenderKeyRequest{GroupID: ga.id, Key: sealed}); err == nil ||
		!strings.Contains(err.Error(), "does not open") || !bytes.Equal(sigState(), after) {
		t.Fatalf("the same key again: %v", err)
	}
}

// Malformed proposal frames are refused by the parser (and so by the topic validator),
// and well-formed ones read back as sent.
func TestProposalFrames(t *testing.T) {
	one := (&proposalFrame{epoch: 7, hs: [][]byte{[]byte("alone")}}).marshal()
	two := (&proposalFrame{epoch: 7, hs: [][]byte{[]byte("first"), []byte("second")}}).marshal()
	if one[0] != frameProposal || two[0] != frameProposals {
		t.Fatalf("kinds %q and %q, want 'p' for one proposal and 'q' for two", one[0], two[0])
	}
	for _, b := range [][]byte{one, two} {
		f, err := parseProposalFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		if f.epoch != 7 || !bytes.Equal(f.marshal(), b) {
			t.Fatalf("%x reads back as epoch %d, %x", b, f.epoch, f.marshal())
		}
	}
	many := make([][]byte, maxFrameProposals+1)
	for i := range many {
		many[i] = []byte{byte(i)}
	}
	tooMany := (&proposalFrame{epoch: 1, hs: many}).marshal()
	bad := map[string][]byte{
		"empty":                  {},
		"no epoch":               {frameProposals, 0, 0},
		"no proposal":            one[:9],
		"one in a 'q' frame":     append([]byte{frameProposals}, two[1:9+4+5]...),
		"length past the end":    two[:len(two)-1],
		"empty proposal":         append(append([]byte{frameProposals}, two[1:9]...), 0, 0, 0, 0, 0, 0, 0, 1, 'x'),
		"more than maxProposals": tooMany,
	}
	for name, b := range bad {
		if _, err := parseProposalFrame(b); err == nil {
			t.Errorf("%s (%x): parsed", name, b)
		}
		var g group
		if r := g.validate(context.Background(), "", b); r != gossip.Reject {
			t.Errorf("%s: the validator gave %v, want Reject", name, r)
		}
	}
}
