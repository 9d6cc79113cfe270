package botrpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/identity"
)

// fakeChat is a Chat that records its calls.
type fakeChat struct {
	self   peer.ID
	events chan chat.Event

	mu     sync.Mutex
	nick   string
	groups map[chat.GroupID]chat.GroupState
	calls  []string
	sent   []string
	err    error // returned by the mutating methods when set
	joinFn func(ctx context.Context, token string) (chat.GroupID, error)
}

func newPeer(t testing.TB) peer.ID {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return id.PeerID()
}

func newFake(t testing.TB) *fakeChat {
	return &fakeChat{self: newPeer(t), events: make(chan chat.Event, 64), groups: map[chat.GroupID]chat.GroupState{}}
}

// exampleChat is a fake chat client for the examples.
func exampleChat() Chat {
	id, err := identity.Generate()
	if err != nil {
		panic(err)
	}
	return &fakeChat{self: id.PeerID(), events: make(chan chat.Event), groups: map[chat.GroupID]chat.GroupState{}}
}

func (f *fakeChat) record(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	return f.err
}

func (f *fakeChat) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeChat) PeerID() peer.ID { return f.self }
func (f *fakeChat) NetStatus() chat.NetStatus {
	return chat.NetStatus{PeerID: f.self, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Connected: 2, Reachability: "private"}
}
func (f *fakeChat) Nick() string { f.mu.Lock(); defer f.mu.Unlock(); return f.nick }
func (f *fakeChat) SetNick(ctx context.Context, nick string) error {
	if err := f.record("setNick %s", nick); err != nil {
		return err
	}
	f.mu.Lock()
	f.nick = nick
	f.mu.Unlock()
	return nil
}
func (f *fakeChat) Events() <-chan chat.Event { return f.events }
func (f *fakeChat) CreateGroupWith(o chat.GroupOptions) (chat.GroupID, error) {
	if err := f.record("create %s %s %d", o.Name, o.Policy, o.Suite); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := chat.GroupID(fmt.Sprintf("%02x", len(f.groups)+1))
	f.groups[id] = chat.GroupState{ID: id, Name: o.Name, Policy: "signal,mls,aes", Epoch: 0, Authenticator: []byte{1, 2},
		Active: true, Members: []chat.Member{{Peer: f.self, Self: true, Online: true, Nick: f.nick}}}
	return id, nil
}
func (f *fakeChat) Invite(id chat.GroupID) (string, error) {
	return "tchat1fake", f.record("invite %s", id)
}
func (f *fakeChat) InviteWith(id chat.GroupID, ttl time.Duration, maxUses int) (string, error) {
	return "tchat1fake", f.record("inviteWith %s %s %d", id, ttl, maxUses)
}
func (f *fakeChat) Join(ctx context.Context, token string) (chat.GroupID, error) {
	if f.joinFn != nil {
		f.record("join %s", token)
		return f.joinFn(ctx, token)
	}
	if err := f.record("join %s", token); err != nil {
		return "", err
	}
	return f.CreateGroupWith(chat.GroupOptions{Name: "joined"})
}
func (f *fakeChat) Add(ctx context.Context, id chat.GroupID, p peer.AddrInfo) error {
	return f.record("add %s %s %v", id, p.ID, p.Addrs)
}
func (f *fakeChat) Remove(ctx context.Context, id chat.GroupID, member peer.ID) error {
	return f.record("remove %s %s", id, member)
}
func (f *fakeChat) Leave(ctx context.Context, id chat.GroupID) error {
	return f.record("leave %s", id)
}
func (f *fakeChat) Rename(ctx context.Context, id chat.GroupID, name string) error {
	return f.record("rename %s %s", id, name)
}
func (f *fakeChat) Send(ctx context.Context, id chat.GroupID, text string) (chat.Message, error) {
	if err := f.record("send %s %s", id, text); err != nil {
		return chat.Message{}, err
	}
	if _, err := f.Group(ctx, id); err != nil {
		return chat.Message{}, err
	}
	f.mu.Lock()
	f.sent = append(f.sent, text)
	f.mu.Unlock()
	return chat.Message{Group: id, Sender: f.self, Text: text, Own: true}, nil
}
func (f *fakeChat) Groups() []chat.GroupID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []chat.GroupID
	for id := range f.groups {
		out = append(out, id)
	}
	return out
}
func (f *fakeChat) Group(ctx context.Context, id chat.GroupID) (chat.GroupState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[id]
	if !ok {
		return g, fmt.Errorf("%w %s", chat.ErrUnknownGroup, id)
	}
	return g, nil
}
func (f *fakeChat) Members(ctx context.Context, id chat.GroupID) ([]chat.Member, error) {
	g, err := f.Group(ctx, id)
	return g.Members, err
}
func (f *fakeChat) History(ctx context.Context, id chat.GroupID, before int64, limit int) ([]chat.Message, int64, error) {
	f.record("history %s %d %d", id, before, limit)
	if _, err := f.Group(ctx, id); err != nil {
		return nil, 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []chat.Message
	for i, text := range f.sent {
		out = append(out, chat.Message{Cursor: int64(i + 1), ID: fmt.Sprintf("%02x", i), Group: id, Sender: f.self,
			Time: time.UnixMilli(1000), Received: time.UnixMilli(2000), Own: true, Text: text})
	}
	return out, 0, nil
}
func (f *fakeChat) SafetyNumber(p peer.ID) (string, error) {
	return "12345 67890", f.record("sn %s", p)
}
func (f *fakeChat) Verify(ctx context.Context, p peer.ID) error {
	return f.record("verify %s", p)
}
func (f *fakeChat) Unverify(ctx context.Context, p peer.ID) error {
	return f.record("unverify %s", p)
}

// client drives a ServeConn over pipes.
type client struct {
	t     testing.TB
	in    *io.PipeWriter
	lines chan map[string]any
	raw   chan string
	done  chan error
	next  int
}

func startServer(t testing.TB, f *fakeChat, opts Options) (*Server, *client) {
	t.Helper()
	s := New(f, opts)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { s.Run(ctx); close(runDone) }()
	t.Cleanup(func() { cancel(); <-runDone; s.Close() })
	c := connect(t, s)
	waitConns(t, s, 1) // so that no notification is sent before the client is there
	return s, c
}

func connect(t testing.TB, s *Server) *client {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &client{t: t, in: inW, lines: make(chan map[string]any, 1024), raw: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		err := s.ServeConn(context.Background(), inR, outW)
		outW.Close()
		c.done <- err
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			c.raw <- line
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				// batches are arrays; tests read them from raw
				continue
			}
			c.lines <- m
		}
		close(c.lines)
	}()
	t.Cleanup(func() { inW.Close() })
	return c
}

// drainRaw forgets the raw lines of the responses already read from lines.
func (c *client) drainRaw() {
	for {
		select {
		case <-c.raw:
		default:
			return
		}
	}
}

func (c *client) writeLine(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, s+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

// call sends a request and returns its response, skipping notifications.
func (c *client) call(method string, params any) map[string]any {
	c.t.Helper()
	c.next++
	req := map[string]any{"jsonrpc": "2.0", "id": c.next, "method": method}
	if params != nil {
		req["params"] = params
	}
	b, _ := json.Marshal(req)
	c.writeLine(string(b))
	return c.response(float64(c.next))
}

func (c *client) response(id any) map[string]any {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("connection closed waiting for response %v", id)
			}
			if _, isNote := m["method"]; isNote {
				continue
			}
			if m["id"] != id {
				c.t.Fatalf("response %v, want id %v", m, id)
			}
			return m
		case <-timeout:
			c.t.Fatalf("no response %v", id)
		}
	}
}

// notification waits for the next notification named method.
func (c *client) notification(method string) map[string]any {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("connection closed waiting for %s", method)
			}
			if m["method"] == method {
				return m["params"].(map[string]any)
			}
		case <-timeout:
			c.t.Fatalf("no %s notification", method)
		}
	}
}

func result(t testing.TB, resp map[string]any) any {
	t.Helper()
	if e, ok := resp["error"]; ok {
		t.Fatalf("error response: %v", e)
	}
	r, ok := resp["result"]
	if !ok {
		t.Fatalf("no result in %v", resp)
	}
	return r
}

func errCode(t testing.TB, resp map[string]any) (int, string) {
	t.Helper()
	e, ok := resp["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error response: %v", resp)
	}
	if _, ok := resp["result"]; ok {
		t.Fatalf("error response with a result: %v", resp)
	}
	return int(e["code"].(float64)), e["message"].(string)
}

var errBoom = errors.New("chat: boom")

func contains(s, sub string) bool { return strings.Contains(s, sub) }
