// Package discovery finds tchat peers: mDNS on the local network, and the
// Kademlia DHT (libp2p's Amino DHT by default) across the internet, where the
// members of a group meet at a rendezvous key derived from the group id and
// room secret that changes every day (see RendezvousKey).
//
// Discovery only finds peers; connecting is the caller's business (package
// node connects to what it finds).
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	coredisc "github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
)

// Mode is the DHT mode.
type Mode int

const (
	// ModeClient queries the DHT and advertises on it but does not answer
	// queries (the default: most tchat peers are laptops behind NATs).
	ModeClient Mode = iota
	// ModeServer also answers queries and stores records.
	ModeServer
	// ModeAuto is a server while AutoNAT says we are publicly reachable.
	ModeAuto
)

func (m Mode) String() string {
	switch m {
	case ModeClient:
		return "client"
	case ModeServer:
		return "server"
	case ModeAuto:
		return "auto"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DHTConfig configures a DHT.
type DHTConfig struct {
	Mode Mode
	// Bootstrap are the peers to join the DHT through. The caller decides the
	// default (package node uses the public libp2p set, PublicBootstrapPeers).
	// None reachable is not an error: the DHT stays empty and the node works on
	// the LAN and with peers it is told about.
	Bootstrap []peer.AddrInfo
	// BootstrapTimeout bounds each bootstrap dial; default 15 s.
	BootstrapTimeout time.Duration
	Logger           *slog.Logger
}

// PublicBootstrapPeers returns the public libp2p bootstrap peers.
func PublicBootstrapPeers() []peer.AddrInfo {
	return dht.GetDefaultBootstrapPeerAddrInfos()
}

// DHT is a Kademlia DHT node with tchat's rendezvous on top.
type DHT struct {
	h   host.Host
	d   *dht.IpfsDHT
	rd  *drouting.RoutingDiscovery
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the bootstrap goroutine

	bootMu    sync.Mutex
	bootDone  chan struct{} // closed when the first bootstrap attempt ends
	connected int           // guarded by bootMu: bootstrap peers reached
}

// NewDHT starts a DHT node on h and joins it through the bootstrap peers in
// the background.
func NewDHT(ctx context.Context, h host.Host, cfg DHTConfig) (*DHT, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BootstrapTimeout <= 0 {
		cfg.BootstrapTimeout = 15 * time.Second
	}
	mode := dht.ModeClient
	switch cfg.Mode {
	case ModeServer:
		mode = dht.ModeServer
	case ModeAuto:
		mode = dht.ModeAuto
	}
	x := &DHT{h: h, log: cfg.Logger, bootDone: make(chan struct{})}
	x.ctx, x.cancel = context.WithCancel(context.WithoutCancel(ctx))
	d, err := dht.New(h, dht.Mode(mode), dht.BootstrapPeers(cfg.Bootstrap...))
	if err != nil {
		x.cancel()
		return nil, fmt.Errorf("discovery: start dht: %w", err)
	}
	x.d = d
	x.rd = drouting.NewRoutingDiscovery(d)
	x.wg.Add(1)
	go x.bootstrap(cfg.Bootstrap, cfg.BootstrapTimeout)
	return x, nil
}

// bootstrap dials the bootstrap peers in parallel and then fills the routing
// table. Failures are logged, not returned: an offline node degrades to the LAN.
func (x *DHT) bootstrap(peers []peer.AddrInfo, timeout time.Duration) {
	defer x.wg.Done()
	defer close(x.bootDone)
	var wg sync.WaitGroup
	for _, ai := range peers {
		if ai.ID == x.h.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(x.ctx, timeout)
			defer cancel()
			if err := x.h.Connect(ctx, ai); err != nil {
				x.log.Debug("discovery: bootstrap peer unreachable", "peer", ai.ID, "err", err)
				return
			}
			x.bootMu.Lock()
			x.connected++
			x.bootMu.Unlock()
		}()
	}
	wg.Wait()
	if n := x.BootstrapConnected(); n == 0 && len(peers) > 0 {
		x.log.Info("discovery: no DHT bootstrap peer reachable; LAN only until one is")
	}
	if err := x.d.Bootstrap(x.ctx); err != nil {
		x.log.Debug("discovery: dht bootstrap", "err", err)
	}
}

// BootstrapDone is closed when the first round of bootstrap dials has ended.
func (x *DHT) BootstrapDone() <-chan struct{} { return x.bootDone }

// BootstrapConnected is the number of bootstrap peers reached so far.
func (x *DHT) BootstrapConnected() int {
	x.bootMu.Lock()
	defer x.bootMu.Unlock()
	return x.connected
}

// RoutingTableSize is the number of DHT servers we know.
func (x *DHT) RoutingTableSize() int { return x.d.RoutingTable().Size() }

// Inner returns the underlying kad-dht node (for routing by peer id, tests).
func (x *DHT) Inner() *dht.IpfsDHT { return x.d }

// ErrNoDHTPeers is returned when the DHT knows no server to talk to.
var ErrNoDHTPeers = errors.New("discovery: no DHT peers")

// Advertise announces once that this host can be found under ns.
func (x *DHT) Advertise(ctx context.Context, ns string) error {
	if x.d.RoutingTable().Size() == 0 {
		return ErrNoDHTPeers
	}
	if _, err := x.rd.Advertise(ctx, ns); err != nil {
		return fmt.Errorf("discovery: advertise: %w", err)
	}
	return nil
}

// FindPeers looks up who advertised ns; at most limit peers (0: no limit). The
// channel is closed when the lookup ends. Our own id is left out.
func (x *DHT) FindPeers(ctx context.Context, ns string, limit int) (<-chan peer.AddrInfo, error) {
	if x.d.RoutingTable().Size() == 0 {
		return nil, ErrNoDHTPeers
	}
	var opts []coredisc.Option
	if limit > 0 {
		opts = append(opts, coredisc.Limit(limit))
	}
	in, err := x.rd.FindPeers(ctx, ns, opts...)
	if err != nil {
		return nil, fmt.Errorf("discovery: find peers: %w", err)
	}
	out := make(chan peer.AddrInfo)
	go func() {
		defer close(out)
		for ai := range in {
			if ai.ID == x.h.ID() {
				continue
			}
			select {
			case out <- ai:
			case <-ctx.Done():
				for range in {
				}
				return
			}
		}
	}()
	return out, nil
}

// FindPeer looks up a peer's addresses by id.
func (x *DHT) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	return x.d.FindPeer(ctx, p)
}

// Close stops the DHT and waits for the bootstrap goroutine.
func (x *DHT) Close() error {
	x.cancel()
	x.wg.Wait()
	return x.d.Close()
}
