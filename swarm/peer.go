package swarm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/net/node"
)

// Peer is one complete tchat peer of the swarm: an identity, a store in a folder of its
// own and a chat Client with its libp2p host. Restart replaces the Client on the same
// identity and store, as a user who quits and starts tchat again.
type Peer struct {
	Index int
	s     *Swarm
	id    *identity.Identity
	dir   string
	st    *store.Store

	mu     sync.Mutex
	client *chat.Client  // guarded by mu
	pumped chan struct{} // guarded by mu: closed when the client's events are drained
}

func newPeer(s *Swarm, i int) (*Peer, error) {
	id, err := identity.Generate()
	if err != nil {
		return nil, fmt.Errorf("swarm: peer %d: %w", i, err)
	}
	dir := filepath.Join(s.dir, fmt.Sprintf("peer%03d", i))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	var key [32]byte
	rand.Read(key[:])
	st, err := store.Open(dir, key)
	if err != nil {
		return nil, fmt.Errorf("swarm: peer %d: %w", i, err)
	}
	return &Peer{Index: i, s: s, id: id, dir: dir, st: st}, nil
}

// ID returns the peer's id.
func (p *Peer) ID() peer.ID { return p.id.PeerID() }

// Client returns the peer's current chat client (nil while it restarts or once closed).
func (p *Peer) Client() *chat.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client
}

// AddrInfo returns the peer's id and current addresses.
func (p *Peer) AddrInfo() peer.AddrInfo {
	if c := p.Client(); c != nil {
		return c.Node().AddrInfo()
	}
	return peer.AddrInfo{ID: p.ID()}
}

// startClient starts a chat client on the peer's identity and store, and instruments its
// host.
func (p *Peer) startClient(ctx context.Context) error {
	cfg := p.s.cfg
	ccfg := chat.Config{
		Dir:           p.dir,
		Identity:      p.id,
		Store:         p.st,
		EventBuffer:   1 << 14,
		InviteTTL:     time.Hour,
		Heartbeat:     cfg.Chat.Heartbeat,
		CommitTimeout: cfg.Chat.CommitTimeout,
		BatchDelay:    cfg.Chat.BatchDelay,
		Settle:        cfg.Chat.Settle,
		KeepEpochs:    cfg.Chat.KeepEpochs,
		Logger:        cfg.Logger.With("peer", p.Index),
		Node: node.Config{
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			DHT:         node.DHTOff,
			NoMDNS:      true,
			Gater:       peerGate{p.s.gate, p.Index},
			// Above the swarm's size, so the connection manager never trims the links
			// the harness made.
			ConnLow:  2*cfg.Peers + 16,
			ConnHigh: 4*cfg.Peers + 32,
		},
	}
	if p.s.sim != nil {
		link := simnet.NodeBiDiLinkSettings{
			Downlink: simnet.LinkSettings{BitsPerSecond: 100 * simlibp2p.OneMbps},
			Uplink:   simnet.LinkSettings{BitsPerSecond: 100 * simlibp2p.OneMbps},
		}
		ccfg.Node.ListenAddrs = []string{fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", simnet.IntToPublicIPv4(p.Index))}
		ccfg.Node.HostOptions = []libp2p.Option{simlibp2p.QUICSimnet(p.s.sim, link), libp2p.DisableIdentifyAddressDiscovery()}
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := chat.New(sctx, ccfg)
	if err != nil {
		return fmt.Errorf("swarm: peer %d: %w", p.Index, err)
	}
	if err := instrument(c.Node().Host(), p.Index, p.s.meter, p.s.byID); err != nil {
		c.Close()
		return fmt.Errorf("swarm: peer %d: %w", p.Index, err)
	}
	pumped := make(chan struct{})
	p.mu.Lock()
	p.client, p.pumped = c, pumped
	p.mu.Unlock()
	go p.pump(c, pumped)
	return nil
}

// pump reads a client's events until it is closed.
func (p *Peer) pump(c *chat.Client, done chan struct{}) {
	defer close(done)
	s := p.s
	for ev := range c.Events() {
		now := time.Now()
		switch e := ev.(type) {
		case chat.MessageReceived:
			s.col.received(p.Index, e.Text, now, e.Late)
		case chat.ForkDetected:
			s.col.forksDetected.Add(1)
		case chat.ForkResolved:
			s.col.forksResolved.Add(1)
		case chat.EpochChanged:
			s.col.epochChanges.Add(1)
		case chat.Error:
			s.col.noteError(e.Err)
			s.cfg.Logger.Debug("swarm: error event", "peer", p.Index, "err", e.Err)
		}
		if s.cfg.OnEvent != nil {
			s.cfg.OnEvent(p.Index, ev)
		}
	}
}

// stopClient closes the current client and waits until its events are drained.
func (p *Peer) stopClient() error {
	p.mu.Lock()
	c, pumped := p.client, p.pumped
	p.client = nil
	p.mu.Unlock()
	if c == nil {
		return nil
	}
	err := c.Close()
	<-pumped
	return err
}

// Restart closes the peer's client and starts a new one on the same identity and store,
// then dials the peer's links again. A link that does not come up (its other end is
// restarting too, or a partition began meanwhile) is noted in the report, not an error:
// the peer is up, and whoever adds it back dials it.
func (p *Peer) Restart(ctx context.Context) error {
	if err := p.stopClient(); err != nil {
		return fmt.Errorf("swarm: peer %d: close: %w", p.Index, err)
	}
	if err := p.startClient(ctx); err != nil {
		return err
	}
	var mine [][2]int
	for _, e := range p.s.edges {
		if e[0] == p.Index || e[1] == p.Index {
			mine = append(mine, e)
		}
	}
	if err := p.s.connect(ctx, mine); err != nil {
		p.s.note("restart peer %d: %v", p.Index, err)
	}
	return nil
}

func (p *Peer) close() error {
	return errors.Join(p.stopClient(), p.st.Close())
}
