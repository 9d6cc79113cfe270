// Package node is tchat's libp2p node: the host, discovery, the group topics
// and the direct protocols behind one small API for the chat core.
//
//	n, err := node.New(ctx, node.Config{Key: key})       // key: (*identity.Identity).Libp2pKey()
//	defer n.Close()
//	n.SetHandlers(proto.Handlers{Join: j, Sync: s, KeyPackage: k, Welcome: w})
//	t, err := n.JoinTopic(groupID, roomSecret, validator) // gossip + rendezvous for the group
//	go func() { for m := range t.Messages() { ... } }()
//	err = t.Publish(ctx, ciphertext)
//	resp, err := n.Sync(ctx, peerID, &proto.SyncRequest{...})
//	for ev := range n.Events() { ... }
//
// # What runs
//
// The host (see Config) listens on TCP and QUIC, secures connections with
// Noise or TLS, and runs AutoNAT v2, hole punching (DCUtR) and the circuit
// relay v2 client. Peers found by mDNS on the LAN, and the members of each
// joined group found at its rendezvous on the DHT (package discovery), are
// connected to automatically. Each joined group is a gossipsub topic (package
// gossip); the direct protocols (package proto) are served with the handlers
// the chat core sets, and called through Join, Sync, KeyPackage and Welcome.
//
// # Relayed peers
//
// Two peers behind NATs that cannot hole-punch are connected only through a
// relay. Gossipsub ignores such connections (Event.Relayed tells), so the
// chat core should pull with Sync from peers it reaches only that way; the
// direct protocols work over relays. Connect tries the static relays when a
// direct dial fails.
package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tchat-p2p/tchat/net/discovery"
	"github.com/tchat-p2p/tchat/net/gossip"
	"github.com/tchat-p2p/tchat/net/proto"
)

// ErrClosed is returned by a closed Node.
var ErrClosed = errors.New("node: closed")

// ErrNoDHT is returned by DHT lookups on a node without a DHT.
var ErrNoDHT = errors.New("node: DHT is off")

// foundConnectTimeout bounds a dial to a discovered peer.
const foundConnectTimeout = 30 * time.Second

// maxFoundDials bounds concurrent dials to discovered peers.
const maxFoundDials = 8

// Node is a running tchat libp2p node. Its methods are safe for concurrent use.
type Node struct {
	cfg    Config
	h      host.Host
	dht    *discovery.DHT // nil with DHTOff
	mdns   *discovery.MDNS
	gossip *gossip.Router
	svc    *proto.Service
	client *proto.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // eventLoop, rendezvous watchers, dials to found peers

	reach   atomic.Int32 // a Reachability; written by eventLoop
	dropped atomic.Uint64

	evMu     sync.RWMutex
	evClosed bool       // guarded by evMu
	events   chan Event // closed by Close, under evMu

	mu       sync.Mutex
	closed   bool                 // guarded by mu
	dialing  map[peer.ID]struct{} // guarded by mu: dials to found peers in flight
	dialSlot chan struct{}        // maxFoundDials tokens
}

// New starts a node. ctx bounds only the start; Close stops the node.
func New(ctx context.Context, cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h, err := newHost(cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, h: h,
		events:   make(chan Event, cfg.EventBuffer),
		dialing:  make(map[peer.ID]struct{}),
		dialSlot: make(chan struct{}, maxFoundDials),
	}
	n.ctx, n.cancel = context.WithCancel(context.WithoutCancel(ctx))
	fail := func(err error) (*Node, error) {
		_ = n.Close()
		return nil, err
	}

	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtPeerConnectednessChanged),
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
		new(event.EvtLocalAddressesUpdated),
	})
	if err != nil {
		return fail(fmt.Errorf("node: subscribe to host events: %w", err))
	}
	n.wg.Add(1)
	go n.eventLoop(sub)

	n.gossip, err = gossip.New(n.ctx, h, gossip.Config{
		MaxMessageSize: cfg.MaxMessageSize,
		PeerRate:       cfg.PeerRate,
		PeerBurst:      cfg.PeerBurst,
		OnPeerEvent:    n.gossipEvent,
		Logger:         cfg.Logger,
	})
	if err != nil {
		return fail(err)
	}
	n.svc = proto.NewService(h, cfg.Handlers, cfg.Limits, cfg.Logger)
	n.client = proto.NewClient(h, cfg.Limits)

	if cfg.DHT != DHTOff {
		mode := map[DHTMode]discovery.Mode{DHTClient: discovery.ModeClient,
			DHTServer: discovery.ModeServer, DHTAuto: discovery.ModeAuto}[cfg.DHT]
		n.dht, err = discovery.NewDHT(n.ctx, h, discovery.DHTConfig{
			Mode: mode, Bootstrap: cfg.Bootstrap, Logger: cfg.Logger})
		if err != nil {
			return fail(err)
		}
	}
	if !cfg.NoMDNS {
		n.mdns, err = discovery.StartMDNS(h, func(ai peer.AddrInfo) { n.found(ai, SourceMDNS) })
		if err != nil {
			// No multicast-capable interface is not fatal: the node still
			// works through the DHT and with peers it is told about.
			cfg.Logger.Warn("node: mDNS unavailable", "err", err)
		}
	}
	return n, nil
}

// Close stops everything the node runs and closes the Events channel.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()

	var errs []error
	if n.mdns != nil {
		errs = append(errs, n.mdns.Close())
	}
	if n.gossip != nil {
		errs = append(errs, n.gossip.Close())
	}
	if n.svc != nil {
		errs = append(errs, n.svc.Close())
	}
	n.cancel()
	n.wg.Wait()
	if n.dht != nil {
		errs = append(errs, n.dht.Close())
	}
	errs = append(errs, n.h.Close())

	n.evMu.Lock()
	n.evClosed = true
	close(n.events)
	n.evMu.Unlock()
	return errors.Join(errs...)
}

// ID returns our peer id.
func (n *Node) ID() peer.ID { return n.h.ID() }

// Addrs returns the addresses we listen on and know we are reachable at.
func (n *Node) Addrs() []ma.Multiaddr { return n.h.Addrs() }

// AddrInfo returns our id and addresses, for an invite.
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()} }

// Host returns the libp2p host, for what this package does not wrap.
func (n *Node) Host() host.Host { return n.h }

// DHT returns the DHT node, or nil with DHTOff.
func (n *Node) DHT() *discovery.DHT { return n.dht }

// Events returns the node's events. The channel is closed by Close.
func (n *Node) Events() <-chan Event { return n.events }

// DroppedEvents is the number of events dropped because the channel was full.
func (n *Node) DroppedEvents() uint64 { return n.dropped.Load() }

// Reachability returns our reachability as last determined.
func (n *Node) Reachability() Reachability { return Reachability(n.reach.Load()) }

// Peers returns the peers we are connected to.
func (n *Node) Peers() []peer.ID { return n.h.Network().Peers() }

// Connected reports whether we have a connection to p, and whether it goes
// only through relays.
func (n *Node) Connected(p peer.ID) (connected, relayedOnly bool) {
	switch n.h.Network().Connectedness(p) {
	case network.Connected:
		return true, false
	case network.Limited:
		return true, true
	}
	return false, false
}

// Connect connects to a peer: at the given addresses, else at addresses the
// DHT knows, else through each static relay. A relayed connection counts as
// connected (see the package doc).
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == n.h.ID() {
		return fmt.Errorf("node: connect to self")
	}
	if ok, _ := n.Connected(ai.ID); ok {
		return nil
	}
	ctx = network.WithAllowLimitedConn(ctx, "tchat")
	// An explicit connect is not refused because an earlier dial failed
	// moments ago (libp2p backs off from failed addresses for a while).
	if sw, ok := n.h.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(ai.ID)
	}
	if len(ai.Addrs) == 0 && len(n.h.Peerstore().Addrs(ai.ID)) == 0 && n.dht != nil {
		if found, err := n.dht.FindPeer(ctx, ai.ID); err == nil {
			ai.Addrs = found.Addrs
		}
	}
	err := n.h.Connect(ctx, ai)
	if err == nil {
		return nil
	}
	errs := []error{err}
	for _, r := range n.cfg.StaticRelays {
		if r.ID == ai.ID || ctx.Err() != nil {
			continue
		}
		if err := n.connectVia(ctx, r, ai.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		return nil
	}
	return fmt.Errorf("node: connect to %s: %w", ai.ID, errors.Join(errs...))
}

// connectVia connects to p through relay r (circuit relay v2); p must hold a
// reservation on r.
func (n *Node) connectVia(ctx context.Context, r peer.AddrInfo, p peer.ID) error {
	if err := n.h.Connect(ctx, r); err != nil {
		return fmt.Errorf("relay %s: %w", r.ID, err)
	}
	suffix, err := ma.NewMultiaddr("/p2p/" + r.ID.String() + "/p2p-circuit")
	if err != nil {
		return err
	}
	addrs := []ma.Multiaddr{suffix}
	for _, a := range r.Addrs {
		addrs = append(addrs, a.Encapsulate(suffix))
	}
	n.h.Peerstore().AddAddrs(p, addrs, peerstore.TempAddrTTL)
	return n.h.Connect(ctx, peer.AddrInfo{ID: p, Addrs: addrs})
}

// found handles a peer that discovery found: report it and connect to it in
// the background, unless we are connected or dialing already.
func (n *Node) found(ai peer.AddrInfo, src Source) {
	if ai.ID == n.h.ID() {
		return
	}
	n.emit(Event{Kind: PeerFound, Peer: ai.ID, Addrs: slices.Clone(ai.Addrs), Source: src})
	if ok, _ := n.Connected(ai.ID); ok {
		return
	}
	n.mu.Lock()
	if _, busy := n.dialing[ai.ID]; busy || n.closed {
		n.mu.Unlock()
		return
	}
	n.dialing[ai.ID] = struct{}{}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		defer func() {
			n.mu.Lock()
			delete(n.dialing, ai.ID)
			n.mu.Unlock()
		}()
		select {
		case n.dialSlot <- struct{}{}:
			defer func() { <-n.dialSlot }()
		case <-n.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, foundConnectTimeout)
		defer cancel()
		if err := n.Connect(ctx, ai); err != nil {
			n.cfg.Logger.Debug("node: connect to found peer", "peer", ai.ID, "source", src, "err", err)
		}
	}()
}

// JoinTopic joins a group: subscribes to its gossip topic with validator v
// (see gossip.Validator) and, with the DHT on, advertises and looks up the
// group's rendezvous until the topic is closed, connecting to the members it
// finds.
func (n *Node) JoinTopic(groupID, roomSecret []byte, v gossip.Validator) (*gossip.Topic, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	t, err := n.gossip.Join(groupID, roomSecret, v)
	if err != nil {
		return nil, err
	}
	if n.dht != nil {
		rv := n.dht.StartRendezvous(groupID, roomSecret, n.cfg.RendezvousInterval,
			func(ai peer.AddrInfo) { n.found(ai, SourceRendezvous) })
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			select {
			case <-t.Done():
			case <-n.ctx.Done():
			}
			rv.Stop()
		}()
	}
	return t, nil
}

// FindGroupPeers looks up a group's members at its rendezvous (today's and,
// early in the day, yesterday's key), for a joiner who is not a member yet.
// The channel is closed when the lookup ends. Finding does not connect.
func (n *Node) FindGroupPeers(ctx context.Context, groupID, roomSecret []byte) (<-chan peer.AddrInfo, error) {
	if n.dht == nil {
		return nil, ErrNoDHT
	}
	now := time.Now()
	keys := []string{discovery.RendezvousKey(groupID, roomSecret, discovery.Day(now))}
	if discovery.Day(now.Add(-2*time.Hour)) != discovery.Day(now) {
		keys = append(keys, discovery.RendezvousKey(groupID, roomSecret, discovery.Day(now)-1))
	}
	out := make(chan peer.AddrInfo)
	var chans []<-chan peer.AddrInfo
	for _, k := range keys {
		c, err := n.dht.FindPeers(ctx, k, 0)
		if err != nil {
			return nil, err
		}
		chans = append(chans, c)
	}
	go func() {
		defer close(out)
		seen := make(map[peer.ID]bool)
		for _, c := range chans {
			for ai := range c {
				if seen[ai.ID] {
					continue
				}
				seen[ai.ID] = true
				select {
				case out <- ai:
				case <-ctx.Done():
				}
			}
		}
	}()
	return out, nil
}

// SetHandlers sets the chat core's handlers for the direct protocols.
func (n *Node) SetHandlers(hs proto.Handlers) { n.svc.SetHandlers(hs) }

// ProtoStats returns the direct-protocol service's counters.
func (n *Node) ProtoStats() proto.Stats { return n.svc.Stats() }

// GossipStats returns the gossip validation counters.
func (n *Node) GossipStats() gossip.Stats { return n.gossip.Stats() }

// Blacklisted reports whether gossip ignores p for a low score.
func (n *Node) Blacklisted(p peer.ID) bool { return n.gossip.Blacklisted(p) }

// Join asks p to add us to a group (/tchat/join/2) and returns its Welcome.
func (n *Node) Join(ctx context.Context, p peer.ID, req *proto.JoinRequest) (*proto.JoinResponse, error) {
	return n.client.Join(ctx, p, req)
}

// Sync asks p for what we missed of a group (/tchat/sync/1).
func (n *Node) Sync(ctx context.Context, p peer.ID, req *proto.SyncRequest) (*proto.SyncResponse, error) {
	return n.client.Sync(ctx, p, req)
}

// KeyPackage fetches one of p's KeyPackages (/tchat/kp/1).
func (n *Node) KeyPackage(ctx context.Context, p peer.ID, req *proto.KeyPackageRequest) (*proto.KeyPackageResponse, error) {
	return n.client.KeyPackage(ctx, p, req)
}

// SenderKey hands p our sender key for a group (/tchat/senderkey/1).
func (n *Node) SenderKey(ctx context.Context, p peer.ID, req *proto.SenderKeyRequest) (*proto.SenderKeyResponse, error) {
	return n.client.SenderKey(ctx, p, req)
}

// Welcome pushes a Welcome, with the group's room secret and name, to a peer
// our commit added directly (/tchat/welcome/2), and waits for its
// acknowledgement.
func (n *Node) Welcome(ctx context.Context, p peer.ID, req *proto.WelcomeRequest) (*proto.WelcomeResponse, error) {
	return n.client.Welcome(ctx, p, req)
}
