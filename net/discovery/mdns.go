package discovery

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// MDNSService is the DNS-SD service name tchat peers announce on the LAN, so
// they find each other and not every libp2p program around.
const MDNSService = "_tchat-p2p._udp"

// MDNS announces this host on the local network and reports other tchat hosts
// announcing themselves there.
type MDNS struct {
	svc interface{ Close() error }
}

type notifee struct {
	self  peer.ID
	found func(peer.AddrInfo)
}

func (n notifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.self || len(ai.Addrs) == 0 {
		return
	}
	n.found(ai)
}

// StartMDNS starts announcing h on the LAN and calls found (from the mDNS
// goroutines; it must not block for long) for every other tchat host heard.
func StartMDNS(h host.Host, found func(peer.AddrInfo)) (*MDNS, error) {
	svc := mdns.NewMdnsService(h, MDNSService, notifee{self: h.ID(), found: found})
	if err := svc.Start(); err != nil {
		return nil, fmt.Errorf("discovery: start mdns: %w", err)
	}
	return &MDNS{svc: svc}, nil
}

// Close stops announcing and listening.
func (m *MDNS) Close() error { return m.svc.Close() }
