package node

import (
	"fmt"
	"math"
	"net/netip"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// Floors for the resource manager's system and transient limits, so that a
// hundred peers on one LAN (or one machine, for `tchat swarm`) can all connect
// to one node, each with a few streams (gossipsub, identify, DHT, the direct
// protocols), even where libp2p's memory-based scaling would give less.
const (
	minSystemConns    = 1024
	minSystemConnsIn  = 512
	minSystemStreams  = 8192
	minSystemStreamIn = 4096
	minTransientConns = 256
	// localPrefixConns caps connections from all of one private network
	// prefix together; libp2p's per-address default (8 per IPv4 address) would
	// refuse many peers on one machine of the LAN.
	localPrefixConns = 1024
)

func raise(v *rcmgr.LimitVal, floor int) {
	if int(*v) < floor && *v != rcmgr.Unlimited {
		*v = rcmgr.LimitVal(floor)
	}
}

func resourceManager() (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	scaled := scaling.AutoScale()
	partial := scaled.ToPartialLimitConfig()
	raise(&partial.System.Conns, minSystemConns)
	raise(&partial.System.ConnsInbound, minSystemConnsIn)
	raise(&partial.System.ConnsOutbound, minSystemConns)
	raise(&partial.System.Streams, minSystemStreams)
	raise(&partial.System.StreamsInbound, minSystemStreamIn)
	raise(&partial.System.StreamsOutbound, minSystemStreams)
	raise(&partial.Transient.Conns, minTransientConns)
	raise(&partial.Transient.ConnsInbound, minTransientConns)
	raise(&partial.Transient.ConnsOutbound, minTransientConns)

	var v4, v6 []rcmgr.NetworkPrefixLimit
	for _, s := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} {
		v4 = append(v4, rcmgr.NetworkPrefixLimit{Network: netip.MustParsePrefix(s), ConnCount: localPrefixConns})
	}
	for _, s := range []string{"fc00::/7", "fe80::/10"} {
		v6 = append(v6, rcmgr.NetworkPrefixLimit{Network: netip.MustParsePrefix(s), ConnCount: localPrefixConns})
	}
	v4 = append(v4, rcmgr.NetworkPrefixLimit{Network: netip.MustParsePrefix("127.0.0.0/8"), ConnCount: math.MaxInt})
	v6 = append(v6, rcmgr.NetworkPrefixLimit{Network: netip.MustParsePrefix("::1/128"), ConnCount: math.MaxInt})

	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(scaled)),
		rcmgr.WithNetworkPrefixLimit(v4, v6))
	if err != nil {
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	return rm, nil
}

// newHost builds the libp2p host: TCP and QUIC, Noise and TLS, the resource
// and connection managers, AutoNAT v2, hole punching (DCUtR), the relay v2
// client (with auto-relay on the static relays), and, when asked, the relay
// service and NAT port mapping.
func newHost(cfg Config) (host.Host, error) {
	rm, err := resourceManager()
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(cfg.ConnGrace))
	if err != nil {
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(),
		libp2p.EnableAutoNATv2(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("tchat"),
	}
	if len(cfg.StaticRelays) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(cfg.StaticRelays,
			autorelay.WithBootDelay(0), autorelay.WithBackoff(cfg.RelayRetry)))
	}
	if cfg.RelayService {
		res := relayv2.DefaultResources()
		res.Limit = &relayv2.RelayLimit{Duration: cfg.RelayDuration, Data: cfg.RelayData}
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(res)),
			libp2p.EnableNATService())
	}
	if cfg.NATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	switch cfg.Reachability {
	case ForcePublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ForcePrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.Gater != nil {
		opts = append(opts, libp2p.ConnectionGater(cfg.Gater))
	}
	opts = append(opts, cfg.HostOptions...)
	h, err := libp2p.New(opts...)
	if err != nil {
		_ = rm.Close()
		return nil, fmt.Errorf("node: start libp2p host: %w", err)
	}
	return h, nil
}
