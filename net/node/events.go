package node

import (
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/tchat-p2p/tchat/net/gossip"
)

// EventKind tells what an Event reports.
type EventKind int

const (
	// PeerFound: discovery (Source) found a peer; the node connects to it.
	PeerFound EventKind = iota
	// PeerConnected: we have a connection to Peer. Relayed says that it only
	// goes through a relay: gossipsub will not use it, the direct protocols will.
	PeerConnected
	// PeerLost: we no longer have any connection to Peer.
	PeerLost
	// TopicPeerJoined: Peer subscribed to Topic.
	TopicPeerJoined
	// TopicPeerLeft: Peer left Topic (or disconnected).
	TopicPeerLeft
	// PeerBlacklisted: Peer's gossip score fell below the graylist threshold;
	// gossipsub ignores it for a while.
	PeerBlacklisted
	// ReachabilityChanged: our reachability is now Reachability.
	ReachabilityChanged
)

func (k EventKind) String() string {
	switch k {
	case PeerFound:
		return "peer-found"
	case PeerConnected:
		return "peer-connected"
	case PeerLost:
		return "peer-lost"
	case TopicPeerJoined:
		return "topic-peer-joined"
	case TopicPeerLeft:
		return "topic-peer-left"
	case PeerBlacklisted:
		return "peer-blacklisted"
	case ReachabilityChanged:
		return "reachability"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Source says how a peer was found.
type Source int

const (
	SourceMDNS Source = iota
	SourceRendezvous
)

func (s Source) String() string {
	if s == SourceMDNS {
		return "mdns"
	}
	return "rendezvous"
}

// Reachability is how peers can reach us.
type Reachability int

const (
	// ReachabilityUnknown: not determined yet.
	ReachabilityUnknown Reachability = iota
	// ReachabilityPublic: peers can dial us directly.
	ReachabilityPublic
	// ReachabilityPrivate: behind a NAT or firewall, and no relay slot yet.
	ReachabilityPrivate
	// ReachabilityRelayed: not directly reachable, but reachable through a
	// relay (hole punching may still upgrade connections).
	ReachabilityRelayed
)

func (r Reachability) String() string {
	switch r {
	case ReachabilityPublic:
		return "public"
	case ReachabilityPrivate:
		return "private"
	case ReachabilityRelayed:
		return "relayed"
	}
	return "unknown"
}

// Event is a change the chat core may want to show or act on. Events are
// hints: one that does not fit the channel is dropped, so state is read from
// the Node and Topics (Node.Peers, Topic.Peers, Node.Reachability).
type Event struct {
	Kind         EventKind
	Peer         peer.ID
	Addrs        []ma.Multiaddr // PeerFound: the addresses found
	Source       Source         // PeerFound
	Relayed      bool           // PeerConnected
	Topic        string         // TopicPeerJoined, TopicPeerLeft
	Reachability Reachability   // ReachabilityChanged
}

// emit queues ev without blocking; it drops ev when the channel is full or the
// node is closed.
func (n *Node) emit(ev Event) {
	n.evMu.RLock()
	defer n.evMu.RUnlock()
	if n.evClosed {
		return
	}
	select {
	case n.events <- ev:
	default:
		n.dropped.Add(1)
	}
}

func (n *Node) gossipEvent(ev gossip.PeerEvent) {
	switch ev.Kind {
	case gossip.PeerJoined:
		n.emit(Event{Kind: TopicPeerJoined, Peer: ev.Peer, Topic: ev.Topic})
	case gossip.PeerLeft:
		n.emit(Event{Kind: TopicPeerLeft, Peer: ev.Peer, Topic: ev.Topic})
	case gossip.PeerBlacklisted:
		n.emit(Event{Kind: PeerBlacklisted, Peer: ev.Peer})
	}
}

// reachState combines what libp2p tells about our reachability.
type reachState struct {
	v1        network.Reachability // AutoNAT v1 (or the forced value)
	reachable bool                 // AutoNAT v2 confirmed a public address
	relayAddr bool                 // we hold a relay reservation with addresses
}

func (s reachState) value() Reachability {
	switch {
	case s.v1 == network.ReachabilityPublic || s.reachable:
		return ReachabilityPublic
	case s.relayAddr:
		return ReachabilityRelayed
	case s.v1 == network.ReachabilityPrivate:
		return ReachabilityPrivate
	}
	return ReachabilityUnknown
}

// eventLoop turns libp2p's event bus into Events. It owns reach.
func (n *Node) eventLoop(sub event.Subscription) {
	defer n.wg.Done()
	defer sub.Close()
	var reach reachState
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := e.(type) {
			case event.EvtPeerConnectednessChanged:
				switch e.Connectedness {
				case network.Connected:
					n.emit(Event{Kind: PeerConnected, Peer: e.Peer})
				case network.Limited:
					n.emit(Event{Kind: PeerConnected, Peer: e.Peer, Relayed: true})
				case network.NotConnected:
					n.emit(Event{Kind: PeerLost, Peer: e.Peer})
				}
				continue
			case event.EvtLocalReachabilityChanged:
				reach.v1 = e.Reachability
			case event.EvtHostReachableAddrsChanged:
				reach.reachable = slices.ContainsFunc(e.Reachable, manet.IsPublicAddr)
			case event.EvtLocalAddressesUpdated:
				reach.relayAddr = slices.ContainsFunc(e.Current, func(a event.UpdatedAddress) bool {
					return isRelayed(a.Address)
				})
			}
			if r := reach.value(); r != n.Reachability() {
				n.reach.Store(int32(r))
				n.emit(Event{Kind: ReachabilityChanged, Reachability: r})
			}
		}
	}
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
