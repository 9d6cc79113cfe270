package node

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/net/discovery"
	"github.com/tchat-p2p/tchat/net/proto"
)

// DHTMode chooses how the node takes part in the Kademlia DHT.
type DHTMode int

const (
	// DHTClient queries and advertises but does not serve (the default).
	DHTClient DHTMode = iota
	// DHTServer also serves queries and stores records.
	DHTServer
	// DHTAuto serves while AutoNAT finds us publicly reachable.
	DHTAuto
	// DHTOff runs no DHT: discovery is mDNS and peers we are told about.
	DHTOff
)

// ParseDHTMode parses the names front ends use for a DHTMode: client, server, auto, off.
func ParseDHTMode(s string) (DHTMode, error) {
	switch s {
	case "client":
		return DHTClient, nil
	case "server":
		return DHTServer, nil
	case "auto":
		return DHTAuto, nil
	case "off":
		return DHTOff, nil
	}
	return 0, fmt.Errorf("%q: want client, server, auto or off", s)
}

// ForceReachability overrides AutoNAT's verdict (for servers and tests).
type ForceReachability int

const (
	// ReachabilityAuto lets AutoNAT decide (the default).
	ReachabilityAuto ForceReachability = iota
	// ForcePublic declares the node publicly reachable: no relay reservations.
	ForcePublic
	// ForcePrivate declares the node unreachable: it reserves relay slots.
	ForcePrivate
)

// Defaults of Config.
const (
	DefaultConnLow       = 200
	DefaultConnHigh      = 400
	DefaultConnGrace     = time.Minute
	DefaultRelayDuration = time.Hour
	DefaultRelayData     = 64 << 20
	DefaultEventBuffer   = 1024
)

// Config configures a Node. The zero value with Key set is the configuration
// for a person's laptop: all interfaces on a random port, mDNS on, DHT client
// through the public bootstrap peers, no relay service, no port mapping.
type Config struct {
	// Key is the identity key and so the peer id:
	// (*identity.Identity).Libp2pKey(). Required.
	Key crypto.PrivKey

	// ListenAddrs replaces the default listen addresses, which are TCP and
	// QUIC v1 on all IPv4 and IPv6 interfaces at Port.
	ListenAddrs []string
	// Port for the default listen addresses; 0 picks a free port (TCP and
	// QUIC then get different ones).
	Port int

	// StaticRelays are circuit relay v2 relays: while we are not publicly
	// reachable we reserve a slot on them (so peers reach us through them), and
	// Connect falls back to them to reach a peer it cannot dial directly.
	StaticRelays []peer.AddrInfo
	// RelayService makes this node a circuit relay v2 for others.
	RelayService bool
	// RelayDuration and RelayData bound each relayed connection through our
	// relay service (defaults 1 h and 64 MiB each way; libp2p's own defaults,
	// 2 min and 128 KiB, are too small for a Welcome).
	RelayDuration time.Duration
	RelayData     int64
	// RelayRetry is how long a static relay that refused or failed is left
	// alone before we try it again (default 1 min).
	RelayRetry time.Duration
	// NATPortMap asks the router for a port mapping (UPnP, NAT-PMP).
	NATPortMap bool
	// Reachability overrides AutoNAT.
	Reachability ForceReachability

	// DHT is the DHT mode; DHTOff disables the DHT.
	DHT DHTMode
	// Bootstrap are the DHT bootstrap peers; nil means the public libp2p
	// set unless NoPublicBootstrap. None reachable degrades quietly to the LAN.
	Bootstrap         []peer.AddrInfo
	NoPublicBootstrap bool
	// RendezvousInterval is how often a joined group's rendezvous is
	// re-advertised and looked up (default 5 min; failures retry sooner).
	RendezvousInterval time.Duration

	// NoMDNS turns LAN discovery off.
	NoMDNS bool

	// ConnLow and ConnHigh are the connection manager's watermarks: above
	// ConnHigh connections, it trims down to ConnLow, sparing connections
	// younger than ConnGrace and peers protected by gossipsub.
	ConnLow, ConnHigh int
	ConnGrace         time.Duration

	// MaxMessageSize bounds topic messages (default gossip.DefaultMaxMessageSize).
	MaxMessageSize int
	// PeerRate and PeerBurst bound the messages one peer forwards on one topic
	// (see gossip.Config).
	PeerRate  float64
	PeerBurst int

	// Handlers answer the direct protocols; see also Node.SetHandlers.
	Handlers proto.Handlers

	// HostOptions are appended to the libp2p options the node builds its host with
	// (last wins): for tests and the swarm, e.g. libp2p's simulated network.
	HostOptions []libp2p.Option
	// Limits bound the direct protocols.
	Limits proto.Limits

	// Gater, if set, vets every connection (block lists; tests).
	Gater connmgr.ConnectionGater

	// EventBuffer is the size of the Events channel (default 1024). Events
	// that do not fit are dropped and counted (see Node.DroppedEvents).
	EventBuffer int

	// Logger receives the node's logs (default: none).
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Key == nil {
		return c, fmt.Errorf("node: no identity key")
	}
	if c.ConnLow <= 0 {
		c.ConnLow = DefaultConnLow
	}
	if c.ConnHigh <= 0 {
		c.ConnHigh = DefaultConnHigh
	}
	if c.ConnHigh < c.ConnLow {
		return c, fmt.Errorf("node: ConnHigh %d below ConnLow %d", c.ConnHigh, c.ConnLow)
	}
	if c.ConnGrace <= 0 {
		c.ConnGrace = DefaultConnGrace
	}
	if c.RelayDuration <= 0 {
		c.RelayDuration = DefaultRelayDuration
	}
	if c.RelayData <= 0 {
		c.RelayData = DefaultRelayData
	}
	if c.RelayRetry <= 0 {
		c.RelayRetry = time.Minute
	}
	if c.EventBuffer <= 0 {
		c.EventBuffer = DefaultEventBuffer
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if len(c.ListenAddrs) == 0 {
		if c.Port < 0 || c.Port > 65535 {
			return c, fmt.Errorf("node: port %d out of range", c.Port)
		}
		c.ListenAddrs = []string{
			fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", c.Port),
			fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", c.Port),
			fmt.Sprintf("/ip6/::/tcp/%d", c.Port),
			fmt.Sprintf("/ip6/::/udp/%d/quic-v1", c.Port),
		}
	}
	if c.Bootstrap == nil && !c.NoPublicBootstrap {
		c.Bootstrap = discovery.PublicBootstrapPeers()
	}
	return c, nil
}
