package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/net/proto"
)

// testConfig is a node on loopback only, with no DHT, no mDNS and no public
// bootstrap: tests never leave the machine.
func testConfig(t testing.TB) Config {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Key:               key,
		ListenAddrs:       []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		DHT:               DHTOff,
		NoMDNS:            true,
		NoPublicBootstrap: true,
	}
}

func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return n
}

func startNodes(t testing.TB, k int, mutate func(i int, c *Config)) []*Node {
	nodes := make([]*Node, k)
	for i := range nodes {
		cfg := testConfig(t)
		if mutate != nil {
			mutate(i, &cfg)
		}
		nodes[i] = startNode(t, cfg)
	}
	return nodes
}

func mustConnect(t testing.TB, a, b *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after timeout. It is
// for state that has no event to wait on (routing tables, reservations); the
// timeout is a failure bound, not a synchronisation delay.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvent reads n's events until one satisfies match.
func waitEvent(t testing.TB, n *Node, timeout time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-n.Events():
			if !ok {
				t.Fatalf("events closed waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// core is a fake chat core for the direct protocols.
type core struct{ name string }

func (c *core) HandleJoin(ctx context.Context, from peer.ID, req *proto.JoinRequest) (*proto.JoinResponse, error) {
	if string(req.InviteProof) != "valid" {
		return nil, proto.Refuse(proto.CodeRefused, "forged invite")
	}
	return &proto.JoinResponse{Welcome: fmt.Appendf(nil, "welcome to %s from %s", req.GroupID, c.name)}, nil
}

func (c *core) HandleSync(ctx context.Context, from peer.ID, req *proto.SyncRequest) (*proto.SyncResponse, error) {
	resp := &proto.SyncResponse{}
	for e := req.SinceEpoch; e < req.SinceEpoch+3; e++ {
		resp.Commits = append(resp.Commits, fmt.Appendf(nil, "commit %d", e))
	}
	if req.Want&proto.WantGroupInfo != 0 {
		resp.GroupInfo = []byte("group info of " + c.name)
	}
	return resp, nil
}

func (c *core) HandleKeyPackage(ctx context.Context, from peer.ID, req *proto.KeyPackageRequest) (*proto.KeyPackageResponse, error) {
	return &proto.KeyPackageResponse{KeyPackage: fmt.Appendf(nil, "kp %04x of %s", req.CipherSuite, c.name)}, nil
}

func (c *core) HandleWelcome(ctx context.Context, from peer.ID, req *proto.WelcomeRequest) (*proto.WelcomeResponse, error) {
	if req.Name == "unwanted" {
		return nil, proto.Refuse(proto.CodeRefused, "not from you")
	}
	if !bytes.HasPrefix(req.Welcome, []byte("welcome to "+string(req.GroupID))) {
		return nil, proto.Refuse(proto.CodeRefused, "not a welcome for "+c.name)
	}
	return &proto.WelcomeResponse{}, nil
}

func handlers(name string) proto.Handlers {
	c := &core{name: name}
	return proto.Handlers{Join: c, Sync: c, KeyPackage: c, Welcome: c}
}

// runProtocols runs each direct protocol from a to b and checks the answers.
func runProtocols(t testing.TB, a, b *Node, bName string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jr, err := a.Join(ctx, b.ID(), &proto.JoinRequest{GroupID: []byte("g1"), KeyPackage: []byte("kp"), InviteProof: []byte("valid")})
	if err != nil || string(jr.Welcome) != "welcome to g1 from "+bName {
		t.Fatalf("join: %v %q", err, jr)
	}
	if _, err := a.Join(ctx, b.ID(), &proto.JoinRequest{GroupID: []byte("g1"), InviteProof: []byte("forged")}); err == nil {
		t.Fatal("join with a forged invite succeeded")
	}
	sr, err := a.Sync(ctx, b.ID(), &proto.SyncRequest{GroupID: []byte("g1"), SinceEpoch: 5, Want: proto.WantCommits | proto.WantGroupInfo})
	if err != nil || len(sr.Commits) != 3 || string(sr.Commits[0]) != "commit 5" || string(sr.GroupInfo) != "group info of "+bName {
		t.Fatalf("sync: %v %+v", err, sr)
	}
	kr, err := a.KeyPackage(ctx, b.ID(), &proto.KeyPackageRequest{CipherSuite: 0xF001})
	if err != nil || string(kr.KeyPackage) != "kp f001 of "+bName {
		t.Fatalf("kp: %v %+v", err, kr)
	}
	wr := &proto.WelcomeRequest{GroupID: []byte("g1"), Welcome: []byte("welcome to g1"), RoomSecret: []byte("room secret"), Name: "g one"}
	if _, err := a.Welcome(ctx, b.ID(), wr); err != nil {
		t.Fatalf("welcome: %v", err)
	}
	wr.Name = "unwanted"
	if _, err := a.Welcome(ctx, b.ID(), wr); !errors.Is(err, proto.ErrRefused) {
		t.Fatalf("unwanted welcome: %v", err)
	}
}
