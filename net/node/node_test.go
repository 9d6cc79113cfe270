package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tchat-p2p/tchat/net/gossip"
	"github.com/tchat-p2p/tchat/net/proto"
)

var (
	groupID    = []byte("group-1")
	roomSecret = bytes.Repeat([]byte{0x42}, 32)
)

// validator accepts messages that start with "msg", rejects "junk", and
// ignores "future" (an epoch we do not know yet).
func validator(ctx context.Context, from peer.ID, data []byte) gossip.Result {
	switch {
	case bytes.HasPrefix(data, []byte("msg")):
		return gossip.Accept
	case bytes.HasPrefix(data, []byte("future")):
		return gossip.Ignore
	}
	return gossip.Reject
}

func recv(t *testing.T, topic *gossip.Topic, timeout time.Duration) gossip.Message {
	t.Helper()
	select {
	case m, ok := <-topic.Messages():
		if !ok {
			t.Fatal("topic closed")
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no message within %v on a topic with peers %v", timeout, topic.Peers())
	}
	panic("unreachable")
}

// Eight hosts on loopback in a star around hub 0, one of them with an
// unreachable bootstrap peer: they exchange on a group topic (forwarded by the
// hub) and run each direct protocol.
func TestLoopbackGroup(t *testing.T) {
	const k = 8
	deadKey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	deadID, _ := peer.IDFromPrivateKey(deadKey)
	nodes := startNodes(t, k, func(i int, c *Config) {
		c.Handlers = handlers(fmt.Sprint("n", i))
		if i == 2 {
			// No bootstrap peer reachable: the node must work regardless.
			c.DHT = DHTClient
			c.Bootstrap = []peer.AddrInfo{{ID: deadID, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}}
		}
	})
	topics := make([]*gossip.Topic, k)
	for i, n := range nodes {
		var err error
		if topics[i], err = n.JoinTopic(groupID, roomSecret, validator); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < k; i++ {
		mustConnect(t, nodes[i], nodes[0])
	}
	select {
	case <-nodes[2].DHT().BootstrapDone():
	case <-time.After(30 * time.Second):
		t.Fatal("bootstrap did not give up")
	}
	if nodes[2].DHT().BootstrapConnected() != 0 {
		t.Fatal("connected to a dead bootstrap peer")
	}
	// The hub sees everyone on the topic, and the mesh is built: the hub's is full (it
	// keeps at most 6 peers, gossip's mesh ceiling, so one leaf of the 7 is left out),
	// and each leaf in it has the hub in its own. The leaf left out gets what the hub
	// forwards by gossip (IHAVE, then IWANT), a heartbeat later: the deliveries below
	// check that too.
	waitFor(t, 20*time.Second, "mesh", func() bool {
		hubMesh := topics[0].MeshPeers()
		if len(topics[0].Peers()) != k-1 || len(hubMesh) != min(k-1, 6) {
			return false
		}
		for i, tp := range topics[1:] {
			if slices.Contains(hubMesh, nodes[i+1].ID()) && !slices.Contains(tp.MeshPeers(), nodes[0].ID()) {
				return false
			}
		}
		return true
	})

	// Publish from a leaf: every other node gets it once, the author does not.
	if err := topics[3].Publish(context.Background(), []byte("msg hello")); err != nil {
		t.Fatal(err)
	}
	for i, tp := range topics {
		if i == 3 {
			continue
		}
		if m := recv(t, tp, 30*time.Second); string(m.Data) != "msg hello" {
			t.Fatalf("node %d got %q", i, m.Data)
		}
	}
	// What our own validator rejects is not published.
	if err := topics[2].Publish(context.Background(), []byte("junk")); err == nil {
		t.Fatal("junk published")
	}
	// An ignored message is not delivered; the next good one is.
	if err := topics[0].Publish(context.Background(), []byte("future epoch")); err == nil {
		t.Fatal("ignored message published")
	}
	if err := topics[0].Publish(context.Background(), []byte("msg two")); err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics[1:] {
		if m := recv(t, tp, 30*time.Second); string(m.Data) != "msg two" {
			t.Fatalf("got %q", m.Data)
		}
	}
	// Events: a topic join was reported.
	waitEvent(t, nodes[0], 10*time.Second, "topic peer joined", func(e Event) bool {
		return e.Kind == TopicPeerJoined && e.Topic == topics[0].Name()
	})

	runProtocols(t, nodes[5], nodes[0], "n0")
	runProtocols(t, nodes[0], nodes[7], "n7")

	// Leaving: the topic's channel is closed, the others see it go.
	_ = topics[4].Close()
	if _, ok := <-topics[4].Messages(); ok {
		t.Fatal("message channel not closed")
	}
	waitFor(t, 20*time.Second, "topic peer left", func() bool {
		return !slices.Contains(topics[0].Peers(), nodes[4].ID())
	})
}

func TestConfig(t *testing.T) {
	if _, err := New(context.Background(), Config{}); err == nil {
		t.Fatal("node without a key")
	}
	c, err := Config{Key: testConfig(t).Key}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ListenAddrs) != 4 || len(c.Bootstrap) == 0 || c.DHT != DHTClient {
		t.Fatalf("defaults: %+v", c)
	}
	n := startNode(t, testConfig(t))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-n.Events(); ok {
		t.Fatal("events open after close")
	}
	if _, err := n.JoinTopic(groupID, roomSecret, nil); err == nil {
		t.Fatal("join on a closed node")
	}
}

// A member pushes a Welcome as large as a big group's (the ratchet tree of
// about 1,000 members with post-quantum keys) to a peer it added; a node
// without a welcome handler does not speak the protocol.
func TestWelcomeDirectAdd(t *testing.T) {
	nodes := startNodes(t, 3, func(i int, c *Config) {
		if i < 2 {
			c.Handlers = handlers(fmt.Sprint("n", i))
		} else {
			c.Handlers = proto.Handlers{Sync: &core{name: "n2"}}
		}
	})
	mustConnect(t, nodes[0], nodes[1])
	mustConnect(t, nodes[0], nodes[2])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	big := append([]byte("welcome to g1"), make([]byte, 4<<20)...)
	req := &proto.WelcomeRequest{GroupID: []byte("g1"), Welcome: big, RoomSecret: roomSecret, Name: "big group"}
	if _, err := nodes[0].Welcome(ctx, nodes[1].ID(), req); err != nil {
		t.Fatalf("large welcome: %v", err)
	}
	if _, err := nodes[0].Welcome(ctx, nodes[2].ID(), req); err == nil {
		t.Fatal("welcome served by a node without a handler")
	}
	if st := nodes[1].ProtoStats(); st.Served != 1 || st.Busy != 0 {
		t.Fatalf("stats %+v", st)
	}
}
