package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// noDirect is a connection gater that refuses any connection with the
// blocked peers except through a relay: two hosts on loopback then behave as
// if firewalled from each other.
type noDirect struct{ blocked map[peer.ID]bool }

func (g noDirect) InterceptPeerDial(peer.ID) bool { return true }
func (g noDirect) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return !g.blocked[p] || isRelayed(a)
}
func (g noDirect) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g noDirect) InterceptSecured(_ network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return !g.blocked[p] || isRelayed(c.RemoteMultiaddr())
}
func (g noDirect) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// Three hosts where A and B can only meet through relay R: A reaches B over
// R's circuit (Connect falls back to the static relay), the connection is
// reported as relayed, and join, sync and kp run over it in both directions.
func TestRelay(t *testing.T) {
	r := startNode(t, func() Config {
		c := testConfig(t)
		c.RelayService = true
		c.Reachability = ForcePublic
		return c
	}())
	ca, cb := testConfig(t), testConfig(t)
	ida, _ := peer.IDFromPrivateKey(ca.Key)
	idb, _ := peer.IDFromPrivateKey(cb.Key)
	for _, c := range []*Config{&ca, &cb} {
		c.StaticRelays = []peer.AddrInfo{r.AddrInfo()}
		c.Reachability = ForcePrivate
	}
	ca.Gater = noDirect{blocked: map[peer.ID]bool{idb: true}}
	cb.Gater = noDirect{blocked: map[peer.ID]bool{ida: true}}
	ca.Handlers, cb.Handlers = handlers("a"), handlers("b")
	a, b := startNode(t, ca), startNode(t, cb)

	// B's relay reservation is made in the background; A's dial through the
	// relay succeeds once it exists.
	waitFor(t, 60*time.Second, "a connected to b through the relay", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}) == nil
	})
	if ok, relayed := a.Connected(b.ID()); !ok || !relayed {
		t.Fatalf("connected %v, relayed only %v", ok, relayed)
	}
	waitEvent(t, a, 10*time.Second, "relayed connection event", func(e Event) bool {
		return e.Kind == PeerConnected && e.Peer == b.ID() && e.Relayed
	})
	runProtocols(t, a, b, "b")
	runProtocols(t, b, a, "a")
	// Still only relayed: hole punching could not bypass the gaters.
	if _, relayed := a.Connected(b.ID()); !relayed {
		t.Fatal("a direct connection appeared")
	}
}
