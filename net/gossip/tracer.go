package gossip

import (
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// meshTracer follows gossipsub's mesh (the peers each topic's messages are
// pushed to at once) and counts rejected and ignored messages. Gossipsub calls it from
// its event loop, so every method is short and never blocks.
type meshTracer struct {
	mu    sync.Mutex
	mesh  map[string]map[peer.ID]struct{} // guarded by mu
	stats Stats                           // guarded by mu
}

// Stats counts the messages our validators turned down, and those gossipsub
// dropped for want of room in a queue.
type Stats struct {
	Rejected    uint64 // Reject: counted against the forwarding peer
	Ignored     uint64 // Ignore, including over the per-peer rate
	Dropped     uint64 // not validated: the validation queue was full
	SendDropped uint64 // not sent to a peer: its outbound queue was full
	Undelivered uint64 // not handed to us: our subscription's buffer was full
}

var _ pubsub.RawTracer = (*meshTracer)(nil)

func newMeshTracer() *meshTracer {
	return &meshTracer{mesh: make(map[string]map[peer.ID]struct{})}
}

func (mt *meshTracer) peers(topic string) []peer.ID {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	out := make([]peer.ID, 0, len(mt.mesh[topic]))
	for p := range mt.mesh[topic] {
		out = append(out, p)
	}
	return out
}

func (mt *meshTracer) Graft(p peer.ID, topic string) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if mt.mesh[topic] == nil {
		mt.mesh[topic] = make(map[peer.ID]struct{})
	}
	mt.mesh[topic][p] = struct{}{}
}

func (mt *meshTracer) Prune(p peer.ID, topic string) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	delete(mt.mesh[topic], p)
}

func (mt *meshTracer) Leave(topic string) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	delete(mt.mesh, topic)
}

func (mt *meshTracer) OnClosedOutboundStream(p peer.ID) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	for _, m := range mt.mesh {
		delete(m, p)
	}
}

func (mt *meshTracer) RejectMessage(msg *pubsub.Message, reason string) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	switch reason {
	case pubsub.RejectValidationFailed:
		mt.stats.Rejected++
	case pubsub.RejectValidationIgnored:
		mt.stats.Ignored++
	case pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled:
		mt.stats.Dropped++
	}
}

func (mt *meshTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (mt *meshTracer) Join(string)                                          {}
func (mt *meshTracer) ValidateMessage(*pubsub.Message)                      {}
func (mt *meshTracer) DeliverMessage(*pubsub.Message)                       {}
func (mt *meshTracer) DuplicateMessage(*pubsub.Message)                     {}
func (mt *meshTracer) ThrottlePeer(peer.ID)                                 {}
func (mt *meshTracer) RecvRPC(*pubsub.RPC)                                  {}
func (mt *meshTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (mt *meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

func (mt *meshTracer) DropRPC(rpc *pubsub.RPC, _ peer.ID) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	mt.stats.SendDropped += uint64(len(rpc.GetPublish()))
}

func (mt *meshTracer) UndeliverableMessage(*pubsub.Message) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	mt.stats.Undelivered++
}
