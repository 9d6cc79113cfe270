package proto

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func connect(t *testing.T, a, b host.Host) {
	t.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// fakeCore answers like a chat core would, and can be told to block.
type fakeCore struct {
	block        chan struct{} // if non-nil, HandleSync waits on it
	welcomeBlock chan struct{} // if non-nil, HandleWelcome waits on it

	mu       sync.Mutex
	welcomed []WelcomeRequest // copies of the welcomes taken
}

func (f *fakeCore) HandleJoin(ctx context.Context, from peer.ID, req *JoinRequest) (*JoinResponse, error) {
	if string(req.InviteProof) == "expired" {
		return nil, Refuse(CodeRefused, "invite expired")
	}
	return &JoinResponse{Welcome: append([]byte("welcome for "), req.KeyPackage...)}, nil
}

func (f *fakeCore) HandleSync(ctx context.Context, from peer.ID, req *SyncRequest) (*SyncResponse, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if string(req.GroupID) == "unknown" {
		return nil, ErrNotFound
	}
	if len(req.Sender) > 0 {
		// A page of one sender's messages, resumed after the cursor.
		return &SyncResponse{Recent: [][]byte{append([]byte("from "), req.Sender...)}, More: true,
			Next: SyncCursor{Epoch: req.After.Epoch + req.RecentFrom(), Seq: req.After.Seq + 1}}, nil
	}
	return &SyncResponse{Commits: [][]byte{[]byte("c")}, GroupInfo: bytes.Repeat([]byte{7}, 100<<10)}, nil
}

func (f *fakeCore) HandleKeyPackage(ctx context.Context, from peer.ID, req *KeyPackageRequest) (*KeyPackageResponse, error) {
	return nil, errors.New("keystore locked: /home/secret/path")
}

func (f *fakeCore) HandleWelcome(ctx context.Context, from peer.ID, req *WelcomeRequest) (*WelcomeResponse, error) {
	if f.welcomeBlock != nil {
		select {
		case <-f.welcomeBlock:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if req.Name == "unwanted" {
		return nil, Refuse(CodeRefused, "no groups from strangers")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The request aliases the Service's buffer: keep copies.
	f.welcomed = append(f.welcomed, WelcomeRequest{GroupID: bytes.Clone(req.GroupID),
		Welcome: bytes.Clone(req.Welcome), RoomSecret: bytes.Clone(req.RoomSecret), Name: req.Name})
	return &WelcomeResponse{}, nil
}

func (f *fakeCore) lastWelcome() (WelcomeRequest, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.welcomed) == 0 {
		return WelcomeRequest{}, 0
	}
	return f.welcomed[len(f.welcomed)-1], len(f.welcomed)
}

func serve(t *testing.T, h host.Host, core *fakeCore, lim Limits) *Service {
	s := NewService(h, Handlers{Join: core, Sync: core, KeyPackage: core, Welcome: core}, lim, nil)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRoundTrips(t *testing.T) {
	srv, cli := newHost(t), newHost(t)
	serve(t, srv, &fakeCore{}, Limits{})
	connect(t, cli, srv)
	c := NewClient(cli, Limits{})
	ctx := context.Background()

	jr, err := c.Join(ctx, srv.ID(), &JoinRequest{GroupID: []byte("g"), KeyPackage: []byte("kp")})
	if err != nil || string(jr.Welcome) != "welcome for kp" {
		t.Fatal(jr, err)
	}
	_, err = c.Join(ctx, srv.ID(), &JoinRequest{InviteProof: []byte("expired")})
	if !errors.Is(err, ErrRefused) || err.Error() != "proto: refused: invite expired" {
		t.Fatal(err)
	}
	sr, err := c.Sync(ctx, srv.ID(), &SyncRequest{GroupID: []byte("g"), Want: WantCommits | WantGroupInfo})
	if err != nil || len(sr.Commits) != 1 || len(sr.GroupInfo) != 100<<10 {
		t.Fatal(err)
	}
	sr, err = c.Sync(ctx, srv.ID(), &SyncRequest{GroupID: []byte("g"), Want: WantRecent, SinceEpoch: 9, RecentSince: 4,
		Sender: []byte("alice"), After: SyncCursor{Epoch: 10, Seq: 41}})
	if err != nil || len(sr.Recent) != 1 || string(sr.Recent[0]) != "from alice" || !sr.More || sr.Next != (SyncCursor{Epoch: 14, Seq: 42}) {
		t.Fatal(sr, err)
	}
	if _, err = c.Sync(ctx, srv.ID(), &SyncRequest{GroupID: []byte("unknown")}); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	// A handler's own error text is not disclosed.
	_, err = c.KeyPackage(ctx, srv.ID(), &KeyPackageRequest{})
	if !errors.Is(err, ErrInternal) || bytes.Contains([]byte(err.Error()), []byte("secret")) {
		t.Fatal(err)
	}
}

func TestUnregisteredProtocol(t *testing.T) {
	srv, cli := newHost(t), newHost(t)
	s := NewService(srv, Handlers{Sync: &fakeCore{}}, Limits{}, nil)
	defer s.Close()
	connect(t, cli, srv)
	if _, err := NewClient(cli, Limits{}).Join(context.Background(), srv.ID(), &JoinRequest{}); err == nil {
		t.Fatal("join served without a handler")
	}
}

// rawStream opens a sync stream and returns it, for misbehaving by hand.
func rawStream(t *testing.T, from, to host.Host) network.Stream {
	t.Helper()
	return rawStreamFor(t, from, to, SyncID)
}

func rawStreamFor(t *testing.T, from, to host.Host, id protocol.ID) network.Stream {
	t.Helper()
	st, err := from.NewStream(context.Background(), to.ID(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readResponse(t *testing.T, st network.Stream) error {
	t.Helper()
	_ = st.SetReadDeadline(time.Now().Add(30 * time.Second))
	frame, err := ReadFrame(st, DefaultMaxResponse)
	if err != nil {
		return err
	}
	_, err = decodeResponse(frame)
	return err
}

// checkServes asserts that the service still answers a well-behaved peer.
func checkServes(t *testing.T, srv host.Host) {
	t.Helper()
	good := newHost(t)
	connect(t, good, srv)
	if _, err := NewClient(good, Limits{}).Sync(context.Background(), srv.ID(), &SyncRequest{GroupID: []byte("g")}); err != nil {
		t.Fatalf("a good peer is not served: %v", err)
	}
}

func TestGarbage(t *testing.T) {
	srv, bad := newHost(t), newHost(t)
	s := serve(t, srv, &fakeCore{}, Limits{})
	connect(t, bad, srv)

	// A well-framed request that does not parse.
	st := rawStream(t, bad, srv)
	if err := WriteFrame(st, []byte("\xff\xfegarbage, not a SyncRequest"), 1<<10); err != nil {
		t.Fatal(err)
	}
	if err := readResponse(t, st); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("garbage answered with %v", err)
	}
	// Bytes that are not even a frame, then EOF.
	st = rawStream(t, bad, srv)
	_, _ = st.Write([]byte{1, 2})
	_ = st.CloseWrite()
	if err := readResponse(t, st); err == nil {
		t.Fatal("a half header was answered")
	}
	if got := s.Stats().BadRequest; got != 1 {
		t.Fatalf("%d bad requests counted", got)
	}
	checkServes(t, srv)
}

func TestOversizeFrame(t *testing.T) {
	srv, bad := newHost(t), newHost(t)
	s := serve(t, srv, &fakeCore{}, Limits{})
	connect(t, bad, srv)
	for _, n := range []uint32{DefaultMaxRequest + 1, 1 << 30, 0xFFFFFFFF} {
		st := rawStream(t, bad, srv)
		_, _ = st.Write(binary.BigEndian.AppendUint32(nil, n))
		if err := readResponse(t, st); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("%d-byte frame answered with %v", n, err)
		}
	}
	if got := s.Stats().BadRequest; got != 3 {
		t.Fatalf("%d bad requests counted", got)
	}
	// And the client refuses to send one.
	c := NewClient(bad, Limits{})
	if _, err := c.Join(context.Background(), srv.ID(), &JoinRequest{KeyPackage: make([]byte, DefaultMaxRequest)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	checkServes(t, srv)
}

// A slowloris peer dribbles its request; the read deadline cuts it off, and
// others are served meanwhile.
func TestSlowloris(t *testing.T) {
	srv, bad := newHost(t), newHost(t)
	s := serve(t, srv, &fakeCore{}, Limits{ReadTimeout: 500 * time.Millisecond})
	connect(t, bad, srv)
	st := rawStream(t, bad, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // one byte of a 100-byte frame every 50 ms: 5 s in all
		defer wg.Done()
		_, _ = st.Write(binary.BigEndian.AppendUint32(nil, 100))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for range 100 {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if _, err := st.Write([]byte{0}); err != nil {
				return
			}
		}
	}()
	checkServes(t, srv)
	// The server resets the stream: our read fails, with no response.
	if err := readResponse(t, st); err == nil {
		t.Fatal("slowloris request was answered")
	}
	cancel()
	wg.Wait()
	if got := s.Stats().TimedOut; got != 1 {
		t.Fatalf("%d timeouts counted", got)
	}
}

// A peer cannot hold more than MaxStreamsPerPeer requests in service; others
// still get theirs.
func TestStreamLimits(t *testing.T) {
	srv, greedy := newHost(t), newHost(t)
	core := &fakeCore{block: make(chan struct{})}
	s := serve(t, srv, core, Limits{MaxStreamsPerPeer: 2, MaxStreams: 3})
	connect(t, greedy, srv)
	c := NewClient(greedy, Limits{})

	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := c.Sync(context.Background(), srv.ID(), &SyncRequest{GroupID: []byte("g")})
			errs <- err
		}()
	}
	// Two are admitted and block in the handler; the third is reset at once.
	if err := <-errs; err == nil {
		t.Fatal("a third concurrent request from one peer was admitted")
	}
	if got := s.Stats().Busy; got != 1 {
		t.Fatalf("busy = %d", got)
	}
	// Another peer takes the last global slot...
	other := newHost(t)
	connect(t, other, srv)
	done := make(chan error, 1)
	go func() {
		_, err := NewClient(other, Limits{}).Sync(context.Background(), srv.ID(), &SyncRequest{GroupID: []byte("g")})
		done <- err
	}()
	close(core.block) // ...and everyone admitted is answered.
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A response larger than the client's limit is refused without reading it.
func TestClientResponseLimit(t *testing.T) {
	srv, cli := newHost(t), newHost(t)
	serve(t, srv, &fakeCore{}, Limits{})
	connect(t, cli, srv)
	_, err := NewClient(cli, Limits{MaxResponse: 1 << 10}).Sync(context.Background(), srv.ID(), &SyncRequest{})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
}

// Cancelling the context aborts a request blocked in the peer's handler.
func TestClientCancel(t *testing.T) {
	srv, cli := newHost(t), newHost(t)
	core := &fakeCore{block: make(chan struct{})}
	defer close(core.block)
	serve(t, srv, core, Limits{})
	connect(t, cli, srv)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := NewClient(cli, Limits{}).Sync(ctx, srv.ID(), &SyncRequest{})
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func welcomeRequest(name string, welcomeSize int) *WelcomeRequest {
	w := make([]byte, welcomeSize)
	for i := range w {
		w[i] = byte(i * 7)
	}
	return &WelcomeRequest{GroupID: []byte("group"), Welcome: w, RoomSecret: bytes.Repeat([]byte{0x42}, 32), Name: name}
}

// A member pushes a Welcome to a peer it added: the peer's handler gets it
// whole, up to MaxWelcome (well beyond MaxRequest, as a Welcome carries the
// ratchet tree), and can refuse it with a reason.
func TestWelcome(t *testing.T) {
	srv, cli := newHost(t), newHost(t)
	core := &fakeCore{}
	s := serve(t, srv, core, Limits{})
	connect(t, cli, srv)
	c := NewClient(cli, Limits{})
	ctx := context.Background()

	for _, size := range []int{1, 4 << 20} { // 4 MiB: a Welcome for about 1,000 members
		want := welcomeRequest("Café", size)
		resp, err := c.Welcome(ctx, srv.ID(), want)
		if err != nil || resp == nil {
			t.Fatalf("%d-byte welcome: %v", size, err)
		}
		got, _ := core.lastWelcome()
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("%d-byte welcome arrived changed", size)
		}
	}
	_, err := c.Welcome(ctx, srv.ID(), welcomeRequest("unwanted", 10))
	if !errors.Is(err, ErrRefused) || err.Error() != "proto: refused: no groups from strangers" {
		t.Fatal(err)
	}
	if _, n := core.lastWelcome(); n != 2 {
		t.Fatalf("%d welcomes taken", n)
	}
	// An invalid request is refused by the client before it is sent.
	if _, err := c.Welcome(ctx, srv.ID(), &WelcomeRequest{GroupID: []byte("g"), Welcome: []byte("w")}); err == nil {
		t.Fatal("a welcome without a room secret was sent")
	}
	if st := s.Stats(); st.Served != 3 || st.BadRequest != 0 || st.Busy != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A node without a welcome handler does not speak the protocol: the requester
// is told so by protocol negotiation, as for the other protocols.
func TestWelcomeUnregistered(t *testing.T) {
	srv, cli := newHost(t), newHost(t)
	s := NewService(srv, Handlers{Sync: &fakeCore{}}, Limits{}, nil)
	defer s.Close()
	connect(t, cli, srv)
	_, err := NewClient(cli, Limits{}).Welcome(context.Background(), srv.ID(), welcomeRequest("", 10))
	if err == nil {
		t.Fatal("welcome served without a handler")
	}
	if _, ok := errors.AsType[*RemoteError](err); ok {
		t.Fatalf("the unregistered protocol answered: %v", err)
	}
	// Setting a handler later turns it on; removing it turns it off again.
	core := &fakeCore{}
	s.SetHandlers(Handlers{Sync: core, Welcome: core})
	if _, err := NewClient(cli, Limits{}).Welcome(context.Background(), srv.ID(), welcomeRequest("", 10)); err != nil {
		t.Fatal(err)
	}
	s.SetHandlers(Handlers{Sync: core})
	if _, err := NewClient(cli, Limits{}).Welcome(context.Background(), srv.ID(), welcomeRequest("", 10)); err == nil {
		t.Fatal("welcome served after its handler was removed")
	}
}

// Malformed and oversize welcome requests are answered with CodeBadRequest,
// and reach no handler.
func TestWelcomeBadRequests(t *testing.T) {
	srv, bad := newHost(t), newHost(t)
	core := &fakeCore{}
	s := serve(t, srv, core, Limits{MaxWelcome: 1 << 20})
	connect(t, bad, srv)

	for _, body := range [][]byte{
		[]byte("\xff\xfegarbage, not a WelcomeRequest"),
		{},
		welcomeEncoding([]byte("g"), []byte("w"), nil, "n"),                // no room secret
		welcomeEncoding([]byte("g"), nil, []byte("s"), "n"),                // no Welcome
		welcomeEncoding([]byte("g"), []byte("w"), make([]byte, 65), "n"),   // room secret too long
		welcomeEncoding([]byte("g"), []byte("w"), []byte("s"), "bad \xff"), // name not UTF-8
		append(welcomeEncoding([]byte("g"), []byte("w"), []byte("s"), "n"), 0),
	} {
		st := rawStreamFor(t, bad, srv, WelcomeID)
		if err := WriteFrame(st, body, 1<<10); err != nil {
			t.Fatal(err)
		}
		if err := readResponse(t, st); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("%q answered with %v", body, err)
		}
	}
	// A frame beyond MaxWelcome is refused before it is read; the client
	// refuses to send one.
	for _, n := range []uint32{1<<20 + 1, 0xFFFFFFFF} {
		st := rawStreamFor(t, bad, srv, WelcomeID)
		_, _ = st.Write(binary.BigEndian.AppendUint32(nil, n))
		if err := readResponse(t, st); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("%d-byte frame answered with %v", n, err)
		}
	}
	c := NewClient(bad, Limits{MaxWelcome: 1 << 20})
	if _, err := c.Welcome(context.Background(), srv.ID(), welcomeRequest("", 1<<20)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	if got := s.Stats().BadRequest; got != 9 {
		t.Fatalf("%d bad requests counted", got)
	}
	if _, n := core.lastWelcome(); n != 0 {
		t.Fatalf("%d bad welcomes reached the handler", n)
	}
	checkServes(t, srv)
}

// Welcome requests in service at once are bounded by MaxWelcomeStreams, and
// holding them does not keep the other protocols from being served.
func TestWelcomeStreamLimit(t *testing.T) {
	srv, a, b := newHost(t), newHost(t), newHost(t)
	core := &fakeCore{welcomeBlock: make(chan struct{})}
	s := serve(t, srv, core, Limits{MaxWelcomeStreams: 1})
	connect(t, a, srv)
	connect(t, b, srv)

	first := make(chan error, 1)
	go func() {
		_, err := NewClient(a, Limits{}).Welcome(context.Background(), srv.ID(), welcomeRequest("a", 100))
		first <- err
	}()
	waitBusy := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.mu.Lock()
			n := s.welcome
			s.mu.Unlock()
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d welcome streams in service, want %d", n, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitBusy(1)
	if _, err := NewClient(b, Limits{}).Welcome(context.Background(), srv.ID(), welcomeRequest("b", 100)); err == nil {
		t.Fatal("a second welcome was admitted")
	}
	if got := s.Stats().Busy; got != 1 {
		t.Fatalf("busy = %d", got)
	}
	checkServes(t, srv)
	close(core.welcomeBlock)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitBusy(0)
	if _, err := NewClient(b, Limits{}).Welcome(context.Background(), srv.ID(), welcomeRequest("b", 100)); err != nil {
		t.Fatal(err)
	}
}
