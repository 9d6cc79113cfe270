package swarm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"
)

// gate is the partition state the peers' gaters share: while a partition holds, no
// connection between its two sides is dialled or accepted. It is what keeps a partition
// whole — gossipsub's peer exchange or a redial would otherwise mend it behind the
// harness's back. Partitions may overlap: two peers are kept apart while any partition
// in force separates them.
type gate struct {
	byID map[peer.ID]int        // immutable once the hosts start
	mu   sync.Mutex             // serialises changes to cuts
	cuts atomic.Pointer[[]*Cut] // the partitions in force; the slice is never modified
}

// Cut is one partition in force, as Partition returns it: Side[i] is true for the
// peers cut off.
type Cut struct {
	Side []bool
}

func (c *Cut) separates(a, b int) bool { return c.Side[a] != c.Side[b] }

// blocked reports whether peers a and b are on different sides of a partition.
func (g *gate) blocked(a, b int) bool {
	if a < 0 || b < 0 {
		return false
	}
	cuts := g.cuts.Load()
	if cuts == nil {
		return false
	}
	for _, c := range *cuts {
		if c.separates(a, b) {
			return true
		}
	}
	return false
}

// add puts c in force.
func (g *gate) add(c *Cut) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var cuts []*Cut
	if old := g.cuts.Load(); old != nil {
		cuts = slices.Clone(*old)
	}
	cuts = append(cuts, c)
	g.cuts.Store(&cuts)
}

// remove ends c; it reports false if c was not in force.
func (g *gate) remove(c *Cut) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.cuts.Load()
	if old == nil {
		return false
	}
	i := slices.Index(*old, c)
	if i < 0 {
		return false
	}
	cuts := slices.Delete(slices.Clone(*old), i, i+1)
	g.cuts.Store(&cuts)
	return true
}

// peerGate is one peer's connection gater.
type peerGate struct {
	g    *gate
	self int
}

var _ connmgr.ConnectionGater = peerGate{}

func (pg peerGate) blocked(p peer.ID) bool {
	i, ok := pg.g.byID[p]
	return ok && pg.g.blocked(pg.self, i)
}

func (pg peerGate) InterceptPeerDial(p peer.ID) bool { return !pg.blocked(p) }

func (pg peerGate) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !pg.blocked(p) }

func (pg peerGate) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (pg peerGate) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !pg.blocked(p)
}

func (pg peerGate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// meter counts the bytes each peer sends over libp2p streams, and throws away gossip
// messages with probability dropP.
//
// Every stream between two swarm peers is inbound at exactly one of them, so counting
// both directions of every inbound stream counts every stream byte once. Counted are
// the payloads of the protocols (gossipsub, identify, the tchat protocols), not the
// multistream, yamux, Noise and TCP framing around them.
type meter struct {
	sent    []atomic.Int64
	byProto sync.Map // protocol.ID -> *atomic.Int64: bytes both ways, all peers
	dropP   float64
	paused  atomic.Bool // no drops for now (tests)
	dropped atomic.Int64

	mu  sync.Mutex
	rng *rand.Rand // guarded by mu
}

func newMeter(n int) *meter { return &meter{sent: make([]atomic.Int64, n)} }

func (m *meter) drop() bool {
	if m.dropP <= 0 || m.paused.Load() {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rng.Float64() < m.dropP
}

// protoCounter returns the byte counter of protocol pid.
func (m *meter) protoCounter(pid protocol.ID) *atomic.Int64 {
	c, _ := m.byProto.LoadOrStore(pid, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// byProtocol returns the bytes counted per protocol.
func (m *meter) byProtocol() map[string]int64 {
	out := map[string]int64{}
	m.byProto.Range(func(k, v any) bool {
		out[string(k.(protocol.ID))] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (m *meter) total() int64 {
	var t int64
	for i := range m.sent {
		t += m.sent[i].Load()
	}
	return t
}

// instrument wraps every stream handler of h: inbound streams are counted by the meter,
// and inbound gossipsub streams lose published messages with the meter's probability.
// Handlers registered after this are not wrapped; the chat core registers all of its own
// when its node starts.
func instrument(h host.Host, self int, m *meter, byID map[peer.ID]int) error {
	mux := h.Mux()
	for _, pid := range mux.Protocols() {
		orig, err := handlerOf(mux, pid)
		if err != nil {
			return err
		}
		gossip := strings.HasPrefix(string(pid), "/meshsub/") || strings.HasPrefix(string(pid), "/floodsub/")
		count := m.protoCounter(pid)
		mux.AddHandler(pid, func(p protocol.ID, rwc io.ReadWriteCloser) error {
			s, ok := rwc.(network.Stream)
			if !ok {
				return orig(p, rwc)
			}
			remote, known := byID[s.Conn().RemotePeer()]
			if !known {
				remote = -1
			}
			ms := &meteredStream{Stream: s, m: m, proto: count, local: self, remote: remote}
			if gossip && m.dropP > 0 {
				return orig(p, &dropStream{meteredStream: ms, r: bufio.NewReader(ms)})
			}
			return orig(p, ms)
		})
	}
	return nil
}

// handlerOf returns the handler registered for pid, found the way a stream finds it: by
// a multistream negotiation, here over an in-memory exchange.
func handlerOf(mux protocol.Switch, pid protocol.ID) (protocol.HandlerFunc, error) {
	var in bytes.Buffer
	for _, tok := range []string{"/multistream/1.0.0", string(pid)} {
		in.Write(binary.AppendUvarint(nil, uint64(len(tok)+1)))
		in.WriteString(tok + "\n")
	}
	_, h, err := mux.Negotiate(&memRWC{r: &in})
	if err != nil {
		return nil, fmt.Errorf("swarm: find the handler of %s: %w", pid, err)
	}
	return h, nil
}

type memRWC struct {
	r *bytes.Buffer
	w bytes.Buffer
}

func (m *memRWC) Read(b []byte) (int, error)  { return m.r.Read(b) }
func (m *memRWC) Write(b []byte) (int, error) { return m.w.Write(b) }
func (m *memRWC) Close() error                { return nil }

// meteredStream counts what crosses an inbound stream: reads were sent by the remote
// peer, writes by us.
type meteredStream struct {
	network.Stream
	m             *meter
	proto         *atomic.Int64
	local, remote int
}

func (s *meteredStream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	if s.remote >= 0 {
		s.m.sent[s.remote].Add(int64(n))
		s.proto.Add(int64(n))
	}
	return n, err
}

func (s *meteredStream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	s.m.sent[s.local].Add(int64(n))
	s.proto.Add(int64(n))
	return n, err
}

// maxRPC bounds one gossipsub RPC read by dropStream (gossip's 4 MiB messages plus
// framing).
const maxRPC = 8 << 20

// dropStream is an inbound gossipsub stream that loses published messages: it reads the
// varint-delimited RPCs, removes each published message with the meter's probability,
// and hands gossipsub the rest (control messages and subscriptions always pass).
type dropStream struct {
	*meteredStream
	r       *bufio.Reader
	pending []byte
}

func (d *dropStream) Read(b []byte) (int, error) {
	for len(d.pending) == 0 {
		n, err := binary.ReadUvarint(d.r)
		if err != nil {
			return 0, err
		}
		if n > maxRPC {
			return 0, fmt.Errorf("swarm: gossip RPC of %d bytes", n)
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(d.r, frame); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		out := d.filter(frame)
		if out == nil {
			continue
		}
		d.pending = append(binary.AppendUvarint(nil, uint64(len(out))), out...)
	}
	n := copy(b, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// filter returns the RPC without the messages dropped, or nil if nothing is left.
func (d *dropStream) filter(frame []byte) []byte {
	var rpc pb.RPC
	if err := proto.Unmarshal(frame, &rpc); err != nil || len(rpc.Publish) == 0 {
		return frame // gossipsub judges what it cannot parse
	}
	kept := rpc.Publish[:0]
	for _, msg := range rpc.Publish {
		if d.m.drop() {
			d.m.dropped.Add(1)
			continue
		}
		kept = append(kept, msg)
	}
	if len(kept) == len(rpc.Publish) {
		return frame
	}
	rpc.Publish = kept
	if len(kept) == 0 && len(rpc.Subscriptions) == 0 && rpc.Control == nil && rpc.Partial == nil {
		return nil
	}
	out, err := proto.Marshal(&rpc)
	if err != nil {
		return frame
	}
	return out
}
