package proto

import (
	"context"
	"encoding"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// JoinHandler answers /tchat/join/2. It may block until a member's commit has
// added the joiner (up to Limits.JoinTimeout, after which ctx is done).
type JoinHandler interface {
	HandleJoin(ctx context.Context, from peer.ID, req *JoinRequest) (*JoinResponse, error)
}

// SyncHandler answers /tchat/sync/1.
type SyncHandler interface {
	HandleSync(ctx context.Context, from peer.ID, req *SyncRequest) (*SyncResponse, error)
}

// KeyPackageHandler answers /tchat/kp/1.
type KeyPackageHandler interface {
	HandleKeyPackage(ctx context.Context, from peer.ID, req *KeyPackageRequest) (*KeyPackageResponse, error)
}

// WelcomeHandler answers /tchat/welcome/2: a member added us to a group
// directly and pushes the Welcome. The handler checks it (the Welcome must
// match a KeyPackage of ours; whether to accept groups from this member is the
// chat core's choice) and returns an empty WelcomeResponse once it has taken
// it, or refuses.
type WelcomeHandler interface {
	HandleWelcome(ctx context.Context, from peer.ID, req *WelcomeRequest) (*WelcomeResponse, error)
}

// SenderKeyHandler answers /tchat/senderkey/1: a member of a group hands us
// its sender key. The handler installs it, or refuses.
type SenderKeyHandler interface {
	HandleSenderKey(ctx context.Context, from peer.ID, req *SenderKeyRequest) (*SenderKeyResponse, error)
}

// Handlers are the chat core's answers to the direct protocols. A nil handler
// leaves its protocol unregistered, so peers see it as unsupported.
//
// Requests alias a buffer that the Service drops after the handler returns;
// a handler keeps what it needs by copying. Errors are told to the requester
// by code only, unless the handler returns a *RemoteError (see Refuse), whose
// reason is sent as it is.
type Handlers struct {
	Join       JoinHandler
	Sync       SyncHandler
	KeyPackage KeyPackageHandler
	Welcome    WelcomeHandler
	SenderKey  SenderKeyHandler
}

// Service serves the direct protocols on a host. Safe for concurrent use.
type Service struct {
	h   host.Host
	lim Limits
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per stream being served

	mu      sync.Mutex
	closed  bool            // guarded by mu
	hs      Handlers        // guarded by mu
	active  int             // guarded by mu
	welcome int             // guarded by mu: welcome requests among active
	perPeer map[peer.ID]int // guarded by mu
	stats   Stats           // guarded by mu
}

// Stats counts what a Service refused, for tests and diagnostics.
type Stats struct {
	Served     int // requests answered (with a response or an error code)
	Busy       int // streams reset for exceeding a stream limit or the resource manager's memory
	BadRequest int // requests that did not parse or were too large
	TimedOut   int // requests that did not arrive in time (ReadTimeout; WriteTimeout for a welcome)
}

// NewService registers the non-nil handlers on h. Close unregisters them.
func NewService(h host.Host, hs Handlers, lim Limits, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{h: h, lim: lim.withDefaults(), log: log, perPeer: make(map[peer.ID]int)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.SetHandlers(hs)
	return s
}

// SetHandlers replaces the handlers; streams already being served finish with
// the old ones.
func (s *Service) SetHandlers(hs Handlers) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.hs = hs
	set := func(id protocol.ID, on bool, serve func(network.Stream)) {
		if on {
			s.h.SetStreamHandler(id, serve)
		} else {
			s.h.RemoveStreamHandler(id)
		}
	}
	set(JoinID, hs.Join != nil, s.serveJoin)
	set(SyncID, hs.Sync != nil, s.serveSync)
	set(KeyPackageID, hs.KeyPackage != nil, s.serveKeyPackage)
	set(WelcomeID, hs.Welcome != nil, s.serveWelcome)
	set(SenderKeyID, hs.SenderKey != nil, s.serveSenderKey)
}

// Stats returns the counters so far.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close unregisters the protocols, cancels the handlers' contexts and waits for
// the streams being served to finish.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, id := range []protocol.ID{JoinID, SyncID, KeyPackageID, WelcomeID, SenderKeyID} {
		s.h.RemoveStreamHandler(id)
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// acquire admits one stream from p within the concurrency limits; a welcome
// stream also within MaxWelcomeStreams.
func (s *Service) acquire(p peer.ID, welcome bool) (Handlers, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.active >= s.lim.MaxStreams || s.perPeer[p] >= s.lim.MaxStreamsPerPeer ||
		(welcome && s.welcome >= s.lim.MaxWelcomeStreams) {
		s.stats.Busy++
		return Handlers{}, false
	}
	s.active++
	if welcome {
		s.welcome++
	}
	s.perPeer[p]++
	s.wg.Add(1)
	return s.hs, true
}

func (s *Service) release(p peer.ID, welcome bool) {
	s.mu.Lock()
	s.active--
	if welcome {
		s.welcome--
	}
	if s.perPeer[p]--; s.perPeer[p] == 0 {
		delete(s.perPeer, p)
	}
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Service) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// exchange is how one protocol's requests are served.
type exchange struct {
	maxRequest  int           // request frame limit, reserved with the resource manager
	readTimeout time.Duration // for the whole request to arrive
	timeout     time.Duration // for the handler
	welcome     bool          // counts against MaxWelcomeStreams
}

// small is the exchange of the protocols whose requests are small.
func (s *Service) small(timeout time.Duration) exchange {
	return exchange{maxRequest: s.lim.MaxRequest, readTimeout: s.lim.ReadTimeout, timeout: timeout}
}

func (s *Service) serveJoin(st network.Stream) {
	s.serve(st, s.small(s.lim.JoinTimeout), func(ctx context.Context, hs Handlers, from peer.ID, body []byte) (encoding.BinaryMarshaler, error) {
		var req JoinRequest
		if err := req.UnmarshalBinary(body); err != nil {
			return nil, err
		}
		if hs.Join == nil {
			return nil, ErrUnavailable
		}
		return nonNil(hs.Join.HandleJoin(ctx, from, &req))
	})
}

func (s *Service) serveSync(st network.Stream) {
	s.serve(st, s.small(s.lim.HandleTimeout), func(ctx context.Context, hs Handlers, from peer.ID, body []byte) (encoding.BinaryMarshaler, error) {
		var req SyncRequest
		if err := req.UnmarshalBinary(body); err != nil {
			return nil, err
		}
		if hs.Sync == nil {
			return nil, ErrUnavailable
		}
		return nonNil(hs.Sync.HandleSync(ctx, from, &req))
	})
}

func (s *Service) serveKeyPackage(st network.Stream) {
	s.serve(st, s.small(s.lim.HandleTimeout), func(ctx context.Context, hs Handlers, from peer.ID, body []byte) (encoding.BinaryMarshaler, error) {
		var req KeyPackageRequest
		if err := req.UnmarshalBinary(body); err != nil {
			return nil, err
		}
		if hs.KeyPackage == nil {
			return nil, ErrUnavailable
		}
		return nonNil(hs.KeyPackage.HandleKeyPackage(ctx, from, &req))
	})
}

func (s *Service) serveSenderKey(st network.Stream) {
	s.serve(st, s.small(s.lim.HandleTimeout), func(ctx context.Context, hs Handlers, from peer.ID, body []byte) (encoding.BinaryMarshaler, error) {
		var req SenderKeyRequest
		if err := req.UnmarshalBinary(body); err != nil {
			return nil, err
		}
		if hs.SenderKey == nil {
			return nil, ErrUnavailable
		}
		return nonNil(hs.SenderKey.HandleSenderKey(ctx, from, &req))
	})
}

// serveWelcome serves /tchat/welcome/2, whose request carries a Welcome as
// large as a response: it is read under MaxWelcome and WriteTimeout, and
// MaxWelcomeStreams bounds how many such requests are held at once.
func (s *Service) serveWelcome(st network.Stream) {
	ex := exchange{maxRequest: s.lim.MaxWelcome, readTimeout: s.lim.WriteTimeout,
		timeout: s.lim.HandleTimeout, welcome: true}
	s.serve(st, ex, func(ctx context.Context, hs Handlers, from peer.ID, body []byte) (encoding.BinaryMarshaler, error) {
		var req WelcomeRequest
		if err := req.UnmarshalBinary(body); err != nil {
			return nil, err
		}
		if hs.Welcome == nil {
			return nil, ErrUnavailable
		}
		return nonNil(hs.Welcome.HandleWelcome(ctx, from, &req))
	})
}

// nonNil turns a handler's (nil, nil) into an internal error, so a typed nil
// pointer never reaches MarshalBinary.
func nonNil[T any](resp *T, err error) (encoding.BinaryMarshaler, error) {
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, ErrInternal
	}
	m, ok := any(resp).(encoding.BinaryMarshaler)
	if !ok {
		panic("proto: internal error: response type without MarshalBinary")
	}
	return m, nil
}

// serve runs one request: admission, the request frame under ex.readTimeout
// (so a slowloris peer is cut off however it paces its bytes), the handler
// under ex.timeout, and the response under WriteTimeout.
func (s *Service) serve(st network.Stream, ex exchange,
	handle func(ctx context.Context, hs Handlers, from peer.ID, body []byte) (encoding.BinaryMarshaler, error)) {
	from := st.Conn().RemotePeer()
	hs, ok := s.acquire(from, ex.welcome)
	if !ok {
		_ = st.Reset()
		return
	}
	defer s.release(from, ex.welcome)

	if err := st.Scope().SetService(ServiceName); err != nil {
		s.log.Debug("proto: service scope", "peer", from, "err", err)
		_ = st.Reset()
		return
	}
	// Account the request buffer with the resource manager, so that many
	// streams cannot together exceed its memory limits.
	if err := st.Scope().ReserveMemory(ex.maxRequest, network.ReservationPriorityAlways); err != nil {
		s.count(func(st *Stats) { st.Busy++ })
		_ = st.Reset()
		return
	}
	defer st.Scope().ReleaseMemory(ex.maxRequest)

	_ = st.SetReadDeadline(time.Now().Add(ex.readTimeout))
	body, err := ReadFrame(st, ex.maxRequest)
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) {
			s.count(func(st *Stats) { st.BadRequest++ })
			s.respond(st, encodeError(CodeBadRequest, "request too large"))
			return
		}
		if errors.Is(err, network.ErrReset) {
			return
		}
		s.count(func(st *Stats) { st.TimedOut++ })
		s.log.Debug("proto: read request", "peer", from, "protocol", st.Protocol(), "err", err)
		_ = st.Reset()
		return
	}
	_ = st.SetReadDeadline(time.Time{})

	ctx, cancel := context.WithTimeout(s.ctx, ex.timeout)
	resp, err := handle(ctx, hs, from, body)
	cancel()
	if errors.Is(err, ErrMalformed) {
		s.count(func(st *Stats) { st.BadRequest++ })
		s.respond(st, encodeError(CodeBadRequest, "malformed request"))
		return
	}
	if err != nil {
		code, reason := errorResponse(err)
		s.log.Debug("proto: handler refused", "peer", from, "protocol", st.Protocol(), "err", err)
		s.count(func(st *Stats) { st.Served++ })
		s.respond(st, encodeError(code, reason))
		return
	}
	out, err := resp.MarshalBinary()
	if err != nil || len(out)+1 > s.lim.MaxResponse {
		s.log.Warn("proto: response not sendable", "peer", from, "protocol", st.Protocol(), "size", len(out), "err", err)
		s.respond(st, encodeError(CodeInternal, ""))
		return
	}
	s.count(func(st *Stats) { st.Served++ })
	s.respond(st, append([]byte{byte(codeOK)}, out...))
}

func (s *Service) respond(st network.Stream, frame []byte) {
	_ = st.SetWriteDeadline(time.Now().Add(s.lim.WriteTimeout))
	if err := WriteFrame(st, frame, s.lim.MaxResponse); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.Close()
}
