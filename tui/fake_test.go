package tui

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/net/node"
)

// testPeer returns a fixed peer id for a name.
func testPeer(name string) peer.ID {
	seed := sha256.Sum256([]byte(name))
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		panic(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		panic(err)
	}
	return id
}

func testFingerprint(name string) string {
	s := sha256.Sum256([]byte("fp" + name))
	h := fmt.Sprintf("%x", s[:10])
	return h[0:4] + " " + h[4:8] + " " + h[8:12] + " " + h[12:16]
}

// fakeBackend is an in-memory chat core.
type fakeBackend struct {
	mu      sync.Mutex
	self    peer.ID
	nick    string
	net     chat.NetStatus
	groups  map[chat.GroupID]*chat.GroupState
	order   []chat.GroupID
	history map[chat.GroupID][]chat.Message
	events  chan chat.Event
	sent    []string
	calls   []string
	fail    map[string]error
	seq     int
}

func newFake(nick string) *fakeBackend {
	self := testPeer(nick)
	return &fakeBackend{
		self: self, nick: nick,
		net:    chat.NetStatus{PeerID: self, Connected: 3, Reachability: "private", Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}},
		groups: map[chat.GroupID]*chat.GroupState{}, history: map[chat.GroupID][]chat.Message{},
		events: make(chan chat.Event, 64), fail: map[string]error{},
	}
}

func (f *fakeBackend) call(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	return f.fail[name]
}

// addGroup adds a group with members (the first is us).
func (f *fakeBackend) addGroup(name string, epoch uint64, members ...string) chat.GroupID {
	f.mu.Lock()
	f.seq++
	id := chat.GroupID(fmt.Sprintf("%02x%s", f.seq, "aabbccddeeff"))
	f.mu.Unlock()
	f.addGroupID(id, name, epoch, members...)
	return id
}

func (f *fakeBackend) addGroupID(id chat.GroupID, name string, epoch uint64, members ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &chat.GroupState{ID: id, Name: name, Policy: "signal,mls,aes", Suite: 0xF001,
		SuiteName: "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519", Epoch: epoch,
		Authenticator: []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}, Active: true}
	for i, mname := range members {
		m := chat.Member{Peer: testPeer(mname), LeafIndex: uint32(i), Nick: mname, Fingerprint: testFingerprint(mname),
			Online: i%3 != 2, Self: i == 0, Verified: i == 1}
		if m.Self {
			m.Peer = f.self
			m.Nick = f.nick
		}
		st.Members = append(st.Members, m)
	}
	f.groups[id] = st
	f.order = append(f.order, id)
}

func (f *fakeBackend) PeerID() peer.ID           { return f.self }
func (f *fakeBackend) NetStatus() chat.NetStatus { return f.net }
func (f *fakeBackend) Nick() string              { f.mu.Lock(); defer f.mu.Unlock(); return f.nick }
func (f *fakeBackend) SetNick(_ context.Context, nick string) error {
	if err := f.call("SetNick"); err != nil {
		return err
	}
	f.mu.Lock()
	f.nick = nick
	f.mu.Unlock()
	return nil
}
func (f *fakeBackend) Groups() []chat.GroupID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order)
}
func (f *fakeBackend) Group(_ context.Context, id chat.GroupID) (chat.GroupState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[id]
	if !ok {
		return chat.GroupState{}, chat.ErrUnknownGroup
	}
	s := *g
	s.Members = slices.Clone(g.Members)
	return s, nil
}
func (f *fakeBackend) CreateGroupWith(o chat.GroupOptions) (chat.GroupID, error) {
	if err := f.call("Create"); err != nil {
		return "", err
	}
	id := f.addGroup(o.Name, 0, f.nick)
	if o.Policy != "" {
		f.mu.Lock()
		f.groups[id].Policy = o.Policy
		f.mu.Unlock()
	}
	return id, nil
}
func (f *fakeBackend) InviteWith(id chat.GroupID, ttl time.Duration, uses int) (string, error) {
	if err := f.call("Invite"); err != nil {
		return "", err
	}
	return fmt.Sprintf("tchat1fake%s%d", id, uses), nil
}

// Join joins the invite's group, with alice in it, and tells it as the core does: the epoch of
// the Welcome.
func (f *fakeBackend) Join(ctx context.Context, token string) (chat.GroupID, error) {
	if err := f.call("Join"); err != nil {
		return "", err
	}
	inv, err := chat.ParseInvite(token)
	if err != nil {
		return "", err
	}
	id := chat.GroupID(hex.EncodeToString(inv.GroupID))
	f.mu.Lock()
	_, in := f.groups[id]
	f.mu.Unlock()
	if in {
		return "", chat.ErrAlreadyIn
	}
	f.addGroupID(id, inv.Name, 1, f.nick, "alice")
	f.events <- chat.EpochChanged{Group: id, Epoch: 1, Authenticator: f.groups[id].Authenticator}
	return id, nil
}

// newTestInvite returns a real invite token to a group named name, made by a chat
// client started for the purpose.
func newTestInvite(t testing.TB, name string) string {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	dir := t.TempDir()
	st, err := store.Open(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := chat.New(ctx, chat.Config{Dir: dir, Identity: id, Store: st,
		Node: node.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DHT: node.DHTOff, NoMDNS: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gid, err := c.CreateGroupWith(chat.GroupOptions{Name: name, Policy: "mls,aes"})
	if err != nil {
		t.Fatal(err)
	}
	token, err := c.Invite(gid)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// commit applies a change to group id as a settled commit: a new epoch, its events.
// f.mu is held.
func (f *fakeBackend) commit(id chat.GroupID, change func(g *chat.GroupState), evs ...func(epoch uint64) chat.Event) {
	g := f.groups[id]
	change(g)
	g.Epoch++
	g.Authenticator = []byte{byte(g.Epoch), 0, 0, 0}
	f.events <- chat.EpochChanged{Group: id, Epoch: g.Epoch, Authenticator: g.Authenticator}
	for _, ev := range evs {
		f.events <- ev(g.Epoch)
	}
}

func (f *fakeBackend) Add(_ context.Context, id chat.GroupID, p peer.AddrInfo) error {
	if err := f.call("Add"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.groups[id].Members {
		if m.Peer == p.ID {
			return chat.ErrAlreadyIn
		}
	}
	f.commit(id, func(g *chat.GroupState) {
		g.Members = append(g.Members, chat.Member{Peer: p.ID, LeafIndex: uint32(len(g.Members)), Fingerprint: "0000 1111 2222 3333"})
	}, func(e uint64) chat.Event { return chat.MemberJoined{Group: id, Member: p.ID, Epoch: e} })
	return nil
}
func (f *fakeBackend) Remove(_ context.Context, id chat.GroupID, p peer.ID) error {
	if err := f.call("Remove"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commit(id, func(g *chat.GroupState) {
		g.Members = slices.DeleteFunc(g.Members, func(m chat.Member) bool { return m.Peer == p })
	}, func(e uint64) chat.Event { return chat.MemberRemoved{Group: id, Member: p, By: f.self, Epoch: e} })
	return nil
}
func (f *fakeBackend) Leave(_ context.Context, id chat.GroupID) error {
	if err := f.call("Leave"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.groups[id].Active {
		return chat.ErrNotMember
	}
	f.commit(id, func(g *chat.GroupState) {
		g.Members = slices.DeleteFunc(g.Members, func(m chat.Member) bool { return m.Self })
		g.Active = false
	}, func(e uint64) chat.Event { return chat.MemberLeft{Group: id, Member: f.self, Epoch: e} })
	return nil
}
func (f *fakeBackend) Rename(_ context.Context, id chat.GroupID, name string) error {
	if err := f.call("Rename"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commit(id, func(g *chat.GroupState) { g.Name = name },
		func(e uint64) chat.Event { return chat.GroupRenamed{Group: id, Name: name, By: f.self, Epoch: e} })
	return nil
}
func (f *fakeBackend) Send(_ context.Context, id chat.GroupID, text string) (chat.Message, error) {
	if err := f.call("Send"); err != nil {
		return chat.Message{}, err
	}
	if err := f.fail["Publish"]; err != nil {
		return chat.Message{ID: "saved", Group: id, Sender: f.self, Text: text, Own: true}, err
	}
	f.mu.Lock()
	f.sent = append(f.sent, text)
	f.mu.Unlock()
	return chat.Message{ID: fmt.Sprintf("%032x", len(f.sent)), Group: id, Sender: f.self, Text: text, Own: true}, nil
}
func (f *fakeBackend) History(_ context.Context, id chat.GroupID, before int64, limit int) ([]chat.Message, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.history[id]
	end := len(h)
	if before > 0 {
		end = int(before)
	}
	start := max(end-limit, 0)
	next := int64(0)
	if start > 0 {
		next = int64(start)
	}
	return slices.Clone(h[start:end]), next, nil
}
func (f *fakeBackend) SafetyNumber(p peer.ID) (string, error) {
	return "12345 67890 12345 67890 12345 67890 12345 67890 12345 67890 12345 67890", nil
}
func (f *fakeBackend) Verify(_ context.Context, p peer.ID) error {
	if err := f.call("Verify"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.groups {
		for i := range g.Members {
			if g.Members[i].Peer == p {
				g.Members[i].Verified = true
			}
		}
	}
	return nil
}
func (f *fakeBackend) Unverify(context.Context, peer.ID) error { return f.call("Unverify") }
func (f *fakeBackend) Events() <-chan chat.Event               { return f.events }

var _ Backend = (*fakeBackend)(nil)
