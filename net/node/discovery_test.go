package node

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A private DHT of ten hosts on loopback, bootstrapped through host 0: eight
// servers and two clients (as laptops are), which are not connected to each
// other. Both clients join a group; each finds the other at the group's
// rendezvous and connects, though neither was given the other's address, and
// a message crosses. A third host, not a member, finds both.
func TestDHTRendezvous(t *testing.T) {
	const k = 10
	var boot []peer.AddrInfo
	nodes := make([]*Node, k)
	for i := range nodes {
		cfg := testConfig(t)
		cfg.DHT = DHTServer
		if i == 3 || i == 7 {
			cfg.DHT = DHTClient
		}
		cfg.Bootstrap = slices.Clone(boot)
		cfg.RendezvousInterval = 300 * time.Millisecond
		nodes[i] = startNode(t, cfg)
		if i == 0 {
			boot = []peer.AddrInfo{nodes[0].AddrInfo()}
		}
	}
	// Every routing table knows a few servers. A host that bootstrapped while
	// host 0 was the only one learns of the others when one of them queries it,
	// or at its next refresh: the DHT refreshes every ten minutes, the test
	// every two seconds, as long as a table is short.
	kicked := time.Now()
	waitFor(t, 60*time.Second, "routing tables", func() bool {
		full, kick := true, time.Since(kicked) > 2*time.Second
		for _, n := range nodes {
			if n.DHT().RoutingTableSize() < 3 {
				full = false
				if kick {
					n.DHT().Inner().RefreshRoutingTable()
				}
			}
		}
		if kick {
			kicked = time.Now()
		}
		return full
	})
	a, b, c := nodes[3], nodes[7], nodes[9]
	if ok, _ := a.Connected(b.ID()); ok {
		t.Fatal("the two clients are connected before the rendezvous")
	}
	ta, err := a.JoinTopic(groupID, roomSecret, validator)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.JoinTopic(groupID, roomSecret, validator)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, b, 60*time.Second, "b finds a at the rendezvous", func(e Event) bool {
		return e.Kind == PeerFound && e.Source == SourceRendezvous && e.Peer == a.ID()
	})
	waitFor(t, 30*time.Second, "a and b in each other's mesh", func() bool {
		return slices.Contains(ta.MeshPeers(), b.ID()) && slices.Contains(tb.MeshPeers(), a.ID())
	})
	if err := ta.Publish(context.Background(), []byte("msg via rendezvous")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, tb, 30*time.Second); string(m.Data) != "msg via rendezvous" {
		t.Fatalf("got %q", m.Data)
	}

	// A joiner who is not a member finds the members.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found, err := c.FindGroupPeers(ctx, groupID, roomSecret)
	if err != nil {
		t.Fatal(err)
	}
	var ids []peer.ID
	for ai := range found {
		ids = append(ids, ai.ID)
	}
	if !slices.Contains(ids, a.ID()) || !slices.Contains(ids, b.ID()) {
		t.Fatalf("found %v, want %s and %s", ids, a.ID(), b.ID())
	}
	// Another group's rendezvous is empty.
	found, err = c.FindGroupPeers(ctx, []byte("other group"), roomSecret)
	if err != nil {
		t.Fatal(err)
	}
	for ai := range found {
		t.Fatalf("found %s at an unused rendezvous", ai.ID)
	}
}

// multicastWorks reports whether a multicast datagram sent on this machine
// comes back to a listener on the same machine (mDNS needs that here).
func multicastWorks(t *testing.T) (bool, string) {
	group := &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 35353}
	ifaces, err := net.Interfaces()
	if err != nil {
		return false, err.Error()
	}
	var iface *net.Interface
	for i := range ifaces {
		f := ifaces[i].Flags
		if f&net.FlagUp != 0 && f&net.FlagMulticast != 0 && f&net.FlagLoopback == 0 {
			iface = &ifaces[i]
			break
		}
	}
	if iface == nil {
		return false, "no multicast-capable interface is up"
	}
	l, err := net.ListenMulticastUDP("udp4", iface, group)
	if err != nil {
		return false, "cannot join a multicast group: " + err.Error()
	}
	defer l.Close()
	s, err := net.DialUDP("udp4", nil, group)
	if err != nil {
		return false, "cannot send to a multicast group: " + err.Error()
	}
	defer s.Close()
	_ = l.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	for range 3 {
		if _, err := s.Write([]byte("tchat multicast probe")); err != nil {
			return false, "multicast send failed: " + err.Error()
		}
		n, _, err := l.ReadFromUDP(buf)
		if err == nil && string(buf[:n]) == "tchat multicast probe" {
			return true, ""
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
	}
	return false, "multicast datagrams are not looped back on " + iface.Name
}

// Two hosts on this machine find each other by mDNS and connect.
func TestMDNS(t *testing.T) {
	if ok, why := multicastWorks(t); !ok {
		t.Skip("mDNS not testable here: " + why)
	}
	nodes := startNodes(t, 2, func(i int, c *Config) {
		c.NoMDNS = false
		c.ListenAddrs = []string{"/ip4/0.0.0.0/tcp/0"}
	})
	for i, n := range nodes {
		other := nodes[1-i]
		waitEvent(t, n, 30*time.Second, "mDNS finds the other host", func(e Event) bool {
			return e.Kind == PeerFound && e.Source == SourceMDNS && e.Peer == other.ID()
		})
	}
	waitFor(t, 30*time.Second, "connection after mDNS", func() bool {
		ok, _ := nodes[0].Connected(nodes[1].ID())
		return ok
	})
}
