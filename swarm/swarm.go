// Package swarm runs many complete tchat peers in one process — each with its own
// identity, store and libp2p host — forms a group of them, sends load, injects faults
// (dropped gossip, partitions that heal, members removed and re-added) and reports what
// arrived, how fast, and whether every member ends on the same epoch.
//
// It uses only the public chat API, plus the libp2p host each client exposes
// (Client.Node().Host()) for the network faults and byte counts. Run does a whole
// scenario; Start, Form, Send, Partition, Heal, Churn, WaitDelivered, WaitAgree and Report
// are the same steps for tests of one's own:
//
//	s, err := swarm.Start(ctx, swarm.Config{Peers: 8})
//	defer s.Close()
//	gid, err := s.Form(ctx)
//	s.Send(ctx, 3, "hello")
//	s.WaitDelivered(ctx, 30*time.Second)
//	r := s.Report()
//
// The swarm runs on loopback (real TCP on 127.0.0.1), or on libp2p's simulated network
// (x/simlibp2p: real QUIC hosts over simulated links, 50 ms one way by default), which
// also runs under testing/synctest.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/marcopolo/simnet"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/mlsgroup"
)

// Net names the network the peers run on.
type Net string

const (
	// Loopback is real libp2p over TCP on 127.0.0.1.
	Loopback Net = "loopback"
	// Sim is libp2p's simulated network (x/simlibp2p, simnet): real QUIC hosts over
	// simulated links with latency and bandwidth.
	Sim Net = "sim"
)

// Tuning holds the chat core's ordering knobs given to every peer (0: the core's default).
type Tuning struct {
	Heartbeat     time.Duration
	CommitTimeout time.Duration
	BatchDelay    time.Duration
	Settle        time.Duration
	KeepEpochs    int
}

// Partition splits the swarm once: when At (0..1) of the messages have been sent, a
// Fraction of the peers (a contiguous run of the ring, so each side stays connected) is
// cut off from the rest for For, then the cut links are dialled again.
type Partition struct {
	At       float64
	For      time.Duration
	Fraction float64
}

// Defaults of Config.
const (
	DefaultRate      = 50
	DefaultDegree    = 4
	DefaultJoinBatch = 10
	DefaultDrain     = 90 * time.Second
	// DefaultLatency is the one-way delay of every simulated link.
	DefaultLatency = 50 * time.Millisecond
	// fullMeshMax: up to this many peers, every pair is connected.
	fullMeshMax = 8
)

// Config describes a swarm and its scenario.
type Config struct {
	// Peers is the number of peers (at least 2).
	Peers int
	// Messages is the number of text messages sent in all, from random members.
	Messages int
	// Rate is messages per second across the swarm (0: DefaultRate).
	Rate float64
	// Net is the network: ""/Loopback, or Sim.
	Net Net
	// Latency is the one-way delay of every link of the simulated network (0:
	// DefaultLatency).
	Latency time.Duration
	// Drop is the probability that one gossip message delivered to a peer (a published
	// message inside an incoming gossipsub RPC, on any hop) is thrown away.
	Drop float64
	// Partitions are the splits to make while messages are sent.
	Partitions []Partition
	// Churn is the number of remove-and-re-add cycles spread over the sending.
	Churn int
	// Policy and Suite are the group's cascade and MLS cipher suite (""/0: the defaults).
	Policy string
	Suite  mlsgroup.CipherSuite
	// Seed makes the scenario's choices repeatable (0: a random seed, reported).
	Seed uint64
	// Degree is the number of random peers each peer dials besides its ring neighbour
	// (0: DefaultDegree); swarms of up to 8 peers are fully meshed.
	Degree int
	// JoinBatch is how many joiners are let in at once (0: DefaultJoinBatch); the
	// creator's committer puts a batch into few commits.
	JoinBatch int
	// Drain bounds the wait, after the last message, for every delivery and for agreement
	// (0: DefaultDrain).
	Drain time.Duration
	// Chat tunes the ordering of every peer.
	Chat Tuning
	// Dir is where the peers' temporary profiles go ("": os.TempDir()).
	Dir string
	// Logger, if set, receives each peer's chat debug log (with attribute peer=N) and
	// the swarm's own notes.
	Logger *slog.Logger
	// Progress, if set, is called as the run advances (from the swarm's goroutines).
	Progress func(Progress)
	// OnEvent, if set, sees every chat event of every peer; it must return quickly.
	OnEvent func(peerIndex int, ev chat.Event)
}

// Progress says where a run is.
type Progress struct {
	Phase string // "start", "form", "keys" (hand-outs of sender keys), "send", "drain"
	Done  int
	Total int
}

func (c *Config) defaults() error {
	if c.Peers < 2 {
		return fmt.Errorf("swarm: %d peers: at least 2 are needed", c.Peers)
	}
	if c.Messages < 0 {
		return fmt.Errorf("swarm: %d messages", c.Messages)
	}
	if c.Drop < 0 || c.Drop >= 1 {
		return fmt.Errorf("swarm: drop probability %v not in [0, 1)", c.Drop)
	}
	switch c.Net {
	case "":
		c.Net = Loopback
	case Loopback:
	case Sim:
	default:
		return fmt.Errorf("swarm: unknown network %q (loopback or sim)", c.Net)
	}
	for _, p := range c.Partitions {
		if p.At < 0 || p.At > 1 || p.For <= 0 || p.Fraction <= 0 || p.Fraction >= 1 {
			return fmt.Errorf("swarm: bad partition %+v", p)
		}
	}
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.Degree <= 0 {
		c.Degree = DefaultDegree
	}
	if c.JoinBatch <= 0 {
		c.JoinBatch = DefaultJoinBatch
	}
	if c.Drain <= 0 {
		c.Drain = DefaultDrain
	}
	if c.Latency <= 0 {
		c.Latency = DefaultLatency
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Swarm is a running set of peers.
type Swarm struct {
	cfg   Config
	dir   string // the peers' profiles, removed by Close
	peers []*Peer
	byID  map[peer.ID]int // immutable after Start
	edges [][2]int        // the links dialled at the start (and again after a heal)
	gate  *gate
	sim   *simnet.Simnet // nil on loopback
	meter *meter
	col   *collector
	start time.Time

	rngMu sync.Mutex
	rng   *rand.Rand // guarded by rngMu

	mu        sync.Mutex
	gid       chat.GroupID  // guarded by mu; set by Form
	member    []bool        // guarded by mu: in the group, as far as the harness knows
	uncertain []bool        // guarded by mu: being removed or re-added: not counted
	formation time.Duration // guarded by mu
	keysOut   time.Duration // guarded by mu: from the first invite to WaitKeysOut's end
	joinFails int           // guarded by mu
	notes     []string      // guarded by mu: what went wrong in the harness's own steps
}

// Start starts cfg.Peers peers and connects them: a ring plus cfg.Degree random links
// each (every pair when there are at most 8).
func Start(ctx context.Context, cfg Config) (*Swarm, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.Dir, "tchat-swarm-")
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	s := &Swarm{
		cfg:       cfg,
		dir:       dir,
		byID:      map[peer.ID]int{},
		meter:     newMeter(cfg.Peers),
		col:       newCollector(cfg.Peers),
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		member:    make([]bool, cfg.Peers),
		uncertain: make([]bool, cfg.Peers),
		start:     time.Now(),
	}
	s.gate = &gate{byID: s.byID}
	s.meter.dropP = cfg.Drop
	s.meter.rng = rand.New(rand.NewPCG(cfg.Seed^0x5bd1e995, cfg.Seed))
	if cfg.Net == Sim {
		s.sim = &simnet.Simnet{LatencyFunc: simnet.StaticLatency(cfg.Latency)}
		s.sim.Start()
	}
	// Identities first, so that the gate knows every peer id before any host starts.
	for i := range cfg.Peers {
		p, err := newPeer(s, i)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.peers = append(s.peers, p)
		s.byID[p.id.PeerID()] = i
	}
	var wg sync.WaitGroup
	errs := make([]error, cfg.Peers)
	sem := make(chan struct{}, 8)
	var done int
	var dmu sync.Mutex
	for i, p := range s.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = p.startClient(ctx)
			dmu.Lock()
			done++
			s.progress("start", done, cfg.Peers)
			dmu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return nil, err
	}
	// Every peer knows every other's addresses, as mDNS or the DHT would tell it (the
	// swarm runs neither, to choose the links itself): a member reaches any other
	// directly when it must (a sender key, a Welcome), within the partitions' gate.
	for _, p := range s.peers {
		ps := p.Client().Node().Host().Peerstore()
		for _, q := range s.peers {
			if q != p {
				ps.AddAddrs(q.id.PeerID(), q.Client().Node().AddrInfo().Addrs, peerstore.PermanentAddrTTL)
			}
		}
	}
	s.edges = s.topology()
	if err := s.connect(ctx, s.edges); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Peers returns the peers, by index.
func (s *Swarm) Peers() []*Peer { return s.peers }

// Group returns the group formed by Form ("" before).
func (s *Swarm) Group() chat.GroupID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gid
}

// Seed returns the seed of the scenario's choices.
func (s *Swarm) Seed() uint64 { return s.cfg.Seed }

// Close stops every peer and removes their profiles.
func (s *Swarm) Close() error {
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range s.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if s.sim != nil {
		s.sim.Close()
	}
	errs = append(errs, os.RemoveAll(s.dir))
	return errors.Join(errs...)
}

func (s *Swarm) progress(phase string, done, total int) {
	if s.cfg.Progress != nil {
		s.cfg.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

func (s *Swarm) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.cfg.Logger.Warn("swarm: " + msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.notes) < 50 {
		s.notes = append(s.notes, msg)
	}
}

func (s *Swarm) intn(n int) int {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.IntN(n)
}

// topology returns the links to dial: every pair for small swarms, else a ring plus
// Degree random chords per peer.
func (s *Swarm) topology() [][2]int {
	n := len(s.peers)
	seen := map[[2]int]bool{}
	var out [][2]int
	add := func(a, b int) {
		if a == b {
			return
		}
		k := [2]int{min(a, b), max(a, b)}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if n <= fullMeshMax {
		for a := range n {
			for b := a + 1; b < n; b++ {
				add(a, b)
			}
		}
		return out
	}
	for a := range n {
		add(a, (a+1)%n)
		for range s.cfg.Degree {
			add(a, s.intn(n))
		}
	}
	return out
}

// connect dials the given links, a few at a time (not those a partition cuts).
func (s *Swarm) connect(ctx context.Context, edges [][2]int) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make([]error, len(edges))
	for i, e := range edges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			a, b := s.peers[e[0]].Client(), s.peers[e[1]].Client()
			if a == nil || b == nil || s.gate.blocked(e[0], e[1]) {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if err := a.Node().Connect(cctx, b.Node().AddrInfo()); err != nil {
				errs[i] = fmt.Errorf("swarm: connect peer %d to %d: %w", e[0], e[1], err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
