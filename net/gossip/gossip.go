// Package gossip carries each tchat group on its own gossipsub topic
// (libp2p gossipsub v1.1, with peer scoring).
//
// # Topics
//
// A group's topic is named from a MAC of its id under its room secret (see
// TopicName), so the name tells an observer nothing about the group, and only
// holders of an invite can compute it. Messages are opaque bytes: MLS messages
// wrapped by the cascade. Gossipsub signing is off (StrictNoSign, no author):
// the MLS layer authenticates every message, and unsigned messages do not carry
// the sender's peer id to the whole group. Message ids are a hash of the topic
// and the content, so a message is recognised whoever forwards it; publishing
// the same bytes twice within the seen-message window is a no-op.
//
// # Validation and scoring
//
// Every message passes three checks before the chat core sees it:
//  1. size: empty or larger than MaxMessageSize is Reject;
//  2. rate: more than PeerRate messages a second (burst PeerBurst) forwarded by
//     one peer on one topic are Ignore (dropped without penalty, since an
//     honest mesh neighbour forwards everyone's messages);
//  3. the chat core's Validator, which returns Accept, Reject (junk: it counts
//     against the forwarder's score) or Ignore (unknown or future epochs: not
//     the forwarder's fault, never Reject).
//
// Rejected messages lower the forwarding peer's score (P4, squared); a peer
// below GraylistThreshold has its traffic dropped by gossipsub and is then
// blacklisted for BlacklistFor. Memory stays bounded: gossipsub reads one RPC at
// a time per peer, at most MaxMessageSize plus framing; the validation queue and
// per-peer outbound queues are bounded and drop when full.
//
// # Relayed connections
//
// Gossipsub opens its streams without network.WithAllowLimitedConn, so it does
// not use relayed (circuit v2) connections: two members that can only reach
// each other through a relay exchange nothing on the topic until hole punching
// (DCUtR) gives them a direct connection, or another member bridges them. The
// chat core must then fetch what it missed with /tchat/sync/1 (package proto),
// which does work over relays, and should tell the user.
package gossip

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DefaultMaxMessageSize bounds a topic message. A commit of a 1,000-member group
// with post-quantum (X-Wing) HPKE keys carries an UpdatePath whose encrypted
// path secrets, in the worst case of a sparse tree, number up to one per
// member: 1,000 × about 1.2 KiB. A commit adding many members by value carries
// their KeyPackages (about 3 KiB each with X-Wing). 4 MiB covers both with room
// for the cascade's envelope. A commit that adds members travels with their
// Welcome, but not its ratchet tree: that and GroupInfo go over /tchat/join/2,
// /tchat/welcome/2 and /tchat/sync/1.
const DefaultMaxMessageSize = 4 << 20

// rpcOverhead is what a gossipsub RPC adds around one message (topic name,
// message id fields, control messages).
const rpcOverhead = 64 << 10

// Defaults for Config.
const (
	DefaultPeerRate     = 200
	DefaultPeerBurst    = 1000
	DefaultBlacklistFor = 10 * time.Minute
	messageBuffer       = 256
)

// maxBlacklisted is how many blacklist entries are kept before expired ones
// are pruned.
const maxBlacklisted = 1024

// ErrClosed is returned by operations on a closed Router or Topic.
var ErrClosed = errors.New("gossip: closed")

// Result is a validator's verdict on a message.
type Result int

const (
	// Accept delivers the message and forwards it.
	Accept Result = iota
	// Reject drops it and counts it against the peer that forwarded it.
	Reject
	// Ignore drops it without penalty (unknown or future epoch, duplicate, ...).
	Ignore
)

func (r Result) String() string {
	switch r {
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	case Ignore:
		return "ignore"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Validator classifies a message that arrived from (was forwarded by) peer
// from. It runs for our own published messages too (from is then our id). It
// must not block for long: gossipsub gives it a few seconds and drops the
// message after. It is called concurrently.
type Validator func(ctx context.Context, from peer.ID, data []byte) Result

// Message is a validated message from a topic.
type Message struct {
	ID   string  // gossipsub message id (a hash of topic and content)
	From peer.ID // the peer that forwarded it to us, not necessarily its author
	Data []byte
}

// EventKind tells what a PeerEvent reports.
type EventKind int

const (
	// PeerJoined: a connected peer subscribed to the topic.
	PeerJoined EventKind = iota
	// PeerLeft: a peer unsubscribed or disconnected.
	PeerLeft
	// PeerBlacklisted: a peer's score fell below the graylist threshold and it
	// is ignored for BlacklistFor. Topic is empty.
	PeerBlacklisted
)

func (k EventKind) String() string {
	switch k {
	case PeerJoined:
		return "joined"
	case PeerLeft:
		return "left"
	case PeerBlacklisted:
		return "blacklisted"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// PeerEvent reports a change in a topic's peers.
type PeerEvent struct {
	Kind  EventKind
	Topic string
	Peer  peer.ID
}

// Config configures a Router. Zero fields take the defaults.
type Config struct {
	MaxMessageSize int           // largest message accepted or published
	PeerRate       float64       // messages/s accepted from one forwarding peer on one topic
	PeerBurst      int           // burst above PeerRate
	BlacklistFor   time.Duration // how long a graylisted peer is ignored
	// OnPeerEvent is called for topic joins and leaves and for blacklisting.
	// It must not block; it is called from the Router's goroutines.
	OnPeerEvent func(PeerEvent)
	Logger      *slog.Logger
}

// Router is one gossipsub instance on a host, holding the group topics.
type Router struct {
	h      host.Host
	ps     *pubsub.PubSub
	cfg    Config
	log    *slog.Logger
	tracer *meshTracer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // topic goroutines

	mu          sync.Mutex
	closed      bool                  // guarded by mu
	topics      map[string]*Topic     // guarded by mu
	blacklisted map[peer.ID]time.Time // guarded by mu; until when
}

// New starts gossipsub on h. Close stops it.
func New(ctx context.Context, h host.Host, cfg Config) (*Router, error) {
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.PeerRate <= 0 {
		cfg.PeerRate = DefaultPeerRate
	}
	if cfg.PeerBurst <= 0 {
		cfg.PeerBurst = DefaultPeerBurst
	}
	if cfg.BlacklistFor <= 0 {
		cfg.BlacklistFor = DefaultBlacklistFor
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{h: h, cfg: cfg, log: cfg.Logger, topics: make(map[string]*Topic), tracer: newMeshTracer(),
		blacklisted: make(map[peer.ID]time.Time)}
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))

	bl := newExpiringBlacklist(cfg.BlacklistFor, time.Now)
	ps, err := pubsub.NewGossipSub(r.ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithMaxMessageSize(cfg.MaxMessageSize+rpcOverhead),
		pubsub.WithPeerScore(peerScoreParams(), thresholds()),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(r.inspect), inspectEvery),
		pubsub.WithBlacklist(bl),
		pubsub.WithPeerExchange(false),
		// The author sends to every member it is connected to (all of them, once the
		// sender keys are handed out), so a calm group's mesh carries copies members
		// have. A mesh degree of 4 instead of gossipsub's 6 halved a 50-member
		// swarm's gossip, but its fault runs (partitions, drops, churn) then ended
		// apart or lost messages twice as often: the mesh mends a partition's gaps.
		pubsub.WithFloodPublish(true),
		pubsub.WithGossipSubParams(gossipParams()),
		pubsub.WithValidateQueueSize(validateQueue),
		pubsub.WithPeerOutboundQueueSize(128),
		pubsub.WithLogger(cfg.Logger),
		pubsub.WithRawTracer(r.tracer),
	)
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("gossip: start gossipsub: %w", err)
	}
	r.ps = ps
	return r, nil
}

// messageID is a hash of the topic and the content (gossipsub's message-id
// function); with StrictNoSign there is no author or sequence number to use.
func messageID(m *pb.Message) string {
	h := sha256.New()
	h.Write([]byte(m.GetTopic()))
	h.Write([]byte{0})
	h.Write(m.GetData())
	return string(h.Sum(nil)[:20])
}

// TopicName returns the gossipsub topic name of a group:
// "/tchat/g/1/" and the hex of HMAC-SHA256(roomSecret, "tchat topic v1" || groupID).
// Without the room secret the name cannot be linked to the group id.
func TopicName(groupID, roomSecret []byte) string {
	m := hmac.New(sha256.New, roomSecret)
	m.Write([]byte("tchat topic v1"))
	m.Write(groupID)
	return "/tchat/g/1/" + hex.EncodeToString(m.Sum(nil))
}

// inspectEvery is how often inspect gets the scores. Each time, gossipsub computes
// every peer's score: every second, that was 2% of the CPU of 200 members in one
// process. Gossipsub ignores a graylisted peer at once; the blacklist only follows.
const inspectEvery = 5 * time.Second

// inspect runs every inspectEvery with all peer scores (in its own goroutine):
// peers below the graylist threshold are blacklisted.
func (r *Router) inspect(scores map[peer.ID]float64) {
	for p, s := range scores {
		if s >= GraylistThreshold {
			continue
		}
		now := time.Now()
		r.mu.Lock()
		until, seen := r.blacklisted[p]
		seen = seen && now.Before(until)
		if !seen && !r.closed {
			// Gossipsub's blacklist expires after BlacklistFor; so does ours,
			// so that a repeat offence is seen again.
			r.blacklisted[p] = now.Add(r.cfg.BlacklistFor)
			if len(r.blacklisted) > maxBlacklisted {
				for q, until := range r.blacklisted {
					if !now.Before(until) {
						delete(r.blacklisted, q)
					}
				}
			}
		}
		closed := r.closed
		r.mu.Unlock()
		if seen || closed {
			continue
		}
		r.log.Info("gossip: blacklisting peer", "peer", p, "score", s)
		r.ps.BlacklistPeer(p)
		r.emit(PeerEvent{Kind: PeerBlacklisted, Peer: p})
	}
}

// Stats returns the validation counters (our own published messages included).
func (r *Router) Stats() Stats {
	r.tracer.mu.Lock()
	defer r.tracer.mu.Unlock()
	return r.tracer.stats
}

// Blacklisted reports whether p is being ignored for a low score.
func (r *Router) Blacklisted(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.blacklisted[p]
	return ok && time.Now().Before(until)
}

func (r *Router) emit(ev PeerEvent) {
	if r.cfg.OnPeerEvent != nil {
		r.cfg.OnPeerEvent(ev)
	}
}

// Join subscribes to a group's topic. v classifies every message (see the
// package doc); nil accepts every message of a valid size. A group can be
// joined once per Router; Close the Topic to leave.
func (r *Router) Join(groupID, roomSecret []byte, v Validator) (*Topic, error) {
	name := TopicName(groupID, roomSecret)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if _, ok := r.topics[name]; ok {
		return nil, fmt.Errorf("gossip: group already joined")
	}
	t := &Topic{r: r, name: name, validate: v, rates: newRateTable(r.cfg.PeerRate, r.cfg.PeerBurst),
		out: make(chan Message, messageBuffer), done: make(chan struct{})}
	if err := r.ps.RegisterTopicValidator(name, t.validator,
		pubsub.WithValidatorTimeout(5*time.Second)); err != nil {
		return nil, fmt.Errorf("gossip: register validator: %w", err)
	}
	fail := func(err error) (*Topic, error) {
		if t.sub != nil {
			t.sub.Cancel()
		}
		if t.evh != nil {
			t.evh.Cancel()
		}
		if t.topic != nil {
			_ = t.topic.Close()
		}
		_ = r.ps.UnregisterTopicValidator(name)
		return nil, err
	}
	var err error
	if t.topic, err = r.ps.Join(name); err != nil {
		return fail(fmt.Errorf("gossip: join topic: %w", err))
	}
	if err := t.topic.SetScoreParams(topicScoreParams()); err != nil {
		return fail(fmt.Errorf("gossip: topic score parameters: %w", err))
	}
	if t.evh, err = t.topic.EventHandler(); err != nil {
		return fail(fmt.Errorf("gossip: topic events: %w", err))
	}
	if t.sub, err = t.topic.Subscribe(pubsub.WithBufferSize(messageBuffer)); err != nil {
		return fail(fmt.Errorf("gossip: subscribe: %w", err))
	}
	t.ctx, t.cancel = context.WithCancel(r.ctx)
	r.topics[name] = t
	r.wg.Add(2)
	go t.readLoop()
	go t.eventLoop()
	return t, nil
}

// Close leaves every topic and stops gossipsub.
func (r *Router) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	topics := make([]*Topic, 0, len(r.topics))
	for _, t := range r.topics {
		topics = append(topics, t)
	}
	r.mu.Unlock()
	for _, t := range topics {
		_ = t.Close()
	}
	r.cancel()
	r.wg.Wait()
	return nil
}

// Topic is one joined group topic.
type Topic struct {
	r        *Router
	name     string
	validate Validator
	rates    *rateTable

	topic *pubsub.Topic
	sub   *pubsub.Subscription
	evh   *pubsub.TopicEventHandler

	ctx    context.Context
	cancel context.CancelFunc
	out    chan Message // closed by readLoop

	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

// Name returns the topic name.
func (t *Topic) Name() string { return t.name }

// Messages returns the validated messages from other peers (our own published
// messages are not echoed). The channel is closed when the topic is closed. If
// the reader falls behind by more than a few hundred messages, gossipsub drops
// messages for it; the chat core recovers them with /tchat/sync/1.
func (t *Topic) Messages() <-chan Message { return t.out }

// Peers returns the peers we know to be subscribed to the topic.
func (t *Topic) Peers() []peer.ID { return t.topic.ListPeers() }

// MeshPeers returns the peers in our gossipsub mesh for the topic: those our
// messages and the messages we forward are pushed to at once. The mesh is
// built at gossipsub's heartbeat (every second), so a peer that just joined
// is in Peers before it is in MeshPeers; a message forwarded in between does
// not reach it (the chat core recovers such gaps with /tchat/sync/1).
func (t *Topic) MeshPeers() []peer.ID { return t.r.tracer.peers(t.name) }

// Publish sends a copy of data to the group. It is validated like any
// message, so data the chat core's Validator rejects or ignores is refused
// here too. Publishing succeeds with no peers connected (nothing is sent then).
func (t *Topic) Publish(ctx context.Context, data []byte) error {
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	if len(data) == 0 || len(data) > t.r.cfg.MaxMessageSize {
		return fmt.Errorf("gossip: message of %d bytes (limit %d)", len(data), t.r.cfg.MaxMessageSize)
	}
	if err := t.topic.Publish(ctx, bytes.Clone(data)); err != nil {
		return fmt.Errorf("gossip: publish: %w", err)
	}
	return nil
}

// Close leaves the topic and waits for its goroutines.
func (t *Topic) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		t.sub.Cancel()
		t.evh.Cancel()
		_ = t.topic.Close()
		_ = t.r.ps.UnregisterTopicValidator(t.name)
		t.r.mu.Lock()
		delete(t.r.topics, t.name)
		t.r.mu.Unlock()
		close(t.done)
	})
	return nil
}

// Done is closed when the topic is closed (by Close, or by the Router's Close).
func (t *Topic) Done() <-chan struct{} { return t.done }

func (t *Topic) validator(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	data := m.GetData()
	if len(data) == 0 || len(data) > t.r.cfg.MaxMessageSize {
		return pubsub.ValidationReject
	}
	if from != t.r.h.ID() && !t.rates.allow(from, time.Now()) {
		return pubsub.ValidationIgnore
	}
	if t.validate == nil {
		return pubsub.ValidationAccept
	}
	switch t.validate(ctx, from, data) {
	case Accept:
		return pubsub.ValidationAccept
	case Ignore:
		return pubsub.ValidationIgnore
	default:
		return pubsub.ValidationReject
	}
}

func (t *Topic) readLoop() {
	defer t.r.wg.Done()
	defer close(t.out)
	for {
		m, err := t.sub.Next(t.ctx)
		if err != nil {
			return
		}
		if m.ReceivedFrom == t.r.h.ID() {
			continue
		}
		select {
		case t.out <- Message{ID: m.ID, From: m.ReceivedFrom, Data: m.GetData()}:
		case <-t.ctx.Done():
			return
		}
	}
}

func (t *Topic) eventLoop() {
	defer t.r.wg.Done()
	for {
		ev, err := t.evh.NextPeerEvent(t.ctx)
		if err != nil {
			return
		}
		kind := PeerJoined
		if ev.Type == pubsub.PeerLeave {
			kind = PeerLeft
		}
		t.r.emit(PeerEvent{Kind: kind, Topic: t.name, Peer: ev.Peer})
	}
}

// rateTable is a token bucket per forwarding peer.
type rateTable struct {
	rate  float64
	burst float64

	mu      sync.Mutex
	buckets map[peer.ID]*bucket // guarded by mu
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateTable(rate float64, burst int) *rateTable {
	return &rateTable{rate: rate, burst: float64(burst), buckets: make(map[peer.ID]*bucket)}
}

// maxBuckets bounds the table; past it, idle (full) buckets are dropped.
const maxBuckets = 4096

func (rt *rateTable) allow(p peer.ID, now time.Time) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	b, ok := rt.buckets[p]
	if !ok {
		if len(rt.buckets) >= maxBuckets {
			rt.prune(now)
		}
		b = &bucket{tokens: rt.burst, last: now}
		rt.buckets[p] = b
	}
	b.tokens = min(rt.burst, b.tokens+now.Sub(b.last).Seconds()*rt.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (rt *rateTable) prune(now time.Time) {
	for p, b := range rt.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*rt.rate >= rt.burst {
			delete(rt.buckets, p)
		}
	}
}
