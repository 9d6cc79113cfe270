// Package botrpc serves tchat's chat core to bots as JSON-RPC 2.0
// (https://www.jsonrpc.org/specification), one object per line, the way signal-cli's
// jsonRpc mode does: requests in, responses and notifications out, over standard input
// and output or over the connections of a Unix socket. Every chat event becomes a
// notification sent to every connection. docs/bot-protocol.md is the reference for
// bot authors.
//
// Requests on one connection are handled one at a time, in order (so two sends reach
// the group in the order they were asked); notifications keep flowing meanwhile.
package botrpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
)

// ErrClientGone is ServeConn's error when the client stopped taking what is written to it.
var ErrClientGone = errors.New("botrpc: writing to the client failed")

// Defaults of Options.
const (
	DefaultRequestTimeout = 2 * time.Minute
	DefaultQueueLimit     = 100_000
	// flushTimeout bounds the wait for a connection to take its last lines.
	flushTimeout = 5 * time.Second
)

// Options configure a Server.
type Options struct {
	// AutoAccept joins the group of every valid invite token that arrives in a
	// message, and accepts direct adds (see AcceptAdd); without it the server notifies
	// inviteReceived for a token and declines adds, notifying addDeclined.
	AutoAccept bool
	// Version is the program version the version method reports.
	Version string
	// Logger receives the server's logs (default: none).
	Logger *slog.Logger
	// RequestTimeout bounds each request (0: DefaultRequestTimeout).
	RequestTimeout time.Duration
	// MaxLine bounds one request line (0: MaxLine).
	MaxLine int
	// QueueLimit is how many notifications wait for a slow connection before newer ones
	// are dropped, and the connection told so; also how many are kept for the next
	// client while none is connected (0: DefaultQueueLimit).
	QueueLimit int
}

// Server is the JSON-RPC server over one chat core.
type Server struct {
	chat Chat
	opts Options
	log  *slog.Logger

	ctx    context.Context // canceled by Close: stops requests and auto-accepted joins
	cancel context.CancelFunc
	wg     sync.WaitGroup // auto-accepted joins

	mu      sync.Mutex
	conns   map[*conn]struct{} // guarded by mu
	joining map[string]bool    // guarded by mu: group ids being auto-joined
	// known holds the groups the bot was in when the server started, created, or saw
	// itself enter; the first epochChanged of another group means the bot entered it
	// (see entered). Guarded by mu.
	known map[chat.GroupID]bool
	// adders holds who added the bot to a group, from AcceptAdd until the bot is in.
	// Guarded by mu.
	adders map[chat.GroupID]peer.ID
	// backlog holds the notifications sent while no client was connected, for the next
	// one (at most QueueLimit; dropped counts the rest). Guarded by mu.
	backlog [][]byte
	dropped int
}

// New makes a server over c. Call Run to turn c's events into notifications.
func New(c Chat, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = MaxLine
	}
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = DefaultQueueLimit
	}
	s := &Server{
		chat: c, opts: opts, log: opts.Logger,
		conns: map[*conn]struct{}{}, joining: map[string]bool{},
		known: map[chat.GroupID]bool{}, adders: map[chat.GroupID]peer.ID{},
	}
	for _, id := range c.Groups() {
		s.known[id] = true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Run sends every event of the chat core to every connection, until the events channel
// is closed (the chat client was closed) or ctx is done.
func (s *Server) Run(ctx context.Context) {
	events := s.chat.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			s.event(ev)
		}
	}
}

// Close stops the requests in progress and the auto-accepted joins, and waits for the
// joins to end. It does not close the chat core.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// notify sends a notification to every connection.
func (s *Server) notify(method string, params any) {
	line, err := encodeLine(notification{JSONRPC: Version, Method: method, Params: params})
	if err != nil {
		s.log.Error("botrpc: encode notification", "method", method, "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) == 0 {
		if len(s.backlog) < s.opts.QueueLimit {
			s.backlog = append(s.backlog, line)
		} else {
			s.dropped++
		}
		return
	}
	for c := range s.conns {
		c.enqueue(line, true)
	}
}

// encodeLine encodes v as one line of JSON: no HTML escaping, newline-terminated (the
// encoder escapes every control character inside strings, so v takes exactly one line).
func encodeLine(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ServeConn serves one client: requests read from r, responses and notifications
// written to w. It returns nil when r ends (EOF), after the last responses were written;
// ctx.Err() when ctx is done first; ErrClientGone when writing to w fails. When it
// returns early, a read from r or a write to w in progress is left to finish: close
// them to release it.
func (s *Server) ServeConn(ctx context.Context, r io.Reader, w io.Writer) error {
	c := &conn{s: s, w: w, wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	// The first client gets what happened while nobody was connected.
	for _, line := range s.backlog {
		c.enqueue(line, true)
	}
	c.dropped += s.dropped
	s.backlog, s.dropped = nil, 0
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	go c.writeLoop()

	lines := make(chan readResult)
	stop := make(chan struct{})
	defer close(stop)
	go readLines(r, s.opts.MaxLine, lines, stop)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopServer := context.AfterFunc(s.ctx, cancel)
	defer stopServer()
	for {
		select {
		case <-ctx.Done():
			c.finish(0)
			return ctx.Err()
		case <-c.done:
			return ErrClientGone
		case lr, ok := <-lines:
			if !ok {
				c.finish(flushTimeout)
				return nil
			}
			if lr.err != nil {
				c.finish(flushTimeout)
				if errors.Is(lr.err, io.EOF) {
					return nil
				}
				return lr.err
			}
			if lr.tooLong {
				c.respondError(nullID, newError(CodeInvalidRequest, "invalid request: line longer than %d bytes", s.opts.MaxLine))
				continue
			}
			c.handleLine(ctx, lr.line)
		}
	}
}

// ServeListener accepts connections on l and serves each like ServeConn, until ctx is
// done; then it closes l and every connection, and waits for them.
func (s *Server) ServeListener(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]struct{}{} // guarded by mu
	stop := context.AfterFunc(ctx, func() {
		l.Close()
		mu.Lock()
		for nc := range open {
			nc.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			nc.Close()
			return nil
		}
		open[nc] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.log.Info("botrpc: client connected", "remote", nc.RemoteAddr())
			err := s.ServeConn(ctx, nc, nc)
			nc.Close()
			mu.Lock()
			delete(open, nc)
			mu.Unlock()
			s.log.Info("botrpc: client disconnected", "err", err)
		}()
	}
}

type readResult struct {
	line    []byte
	tooLong bool
	err     error
}

// readLines sends r's lines to out (without their newline), then its error (nil at
// EOF), and closes out. A line longer than MaxLine is skipped and reported as tooLong.
func readLines(r io.Reader, maxLine int, out chan<- readResult, stop <-chan struct{}) {
	defer close(out)
	br := bufio.NewReaderSize(r, 64<<10)
	send := func(rr readResult) bool {
		select {
		case out <- rr:
			return true
		case <-stop:
			return false
		}
	}
	for {
		var line []byte
		tooLong := false
		for {
			frag, err := br.ReadSlice('\n')
			if !tooLong {
				if len(line)+len(frag) > maxLine+1 {
					tooLong, line = true, nil
				} else {
					line = append(line, frag...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if len(bytes.TrimSpace(line)) > 0 || tooLong {
					if !send(readResult{line: line, tooLong: tooLong}) {
						return
					}
				}
				if err != io.EOF {
					send(readResult{err: err})
				}
				return
			}
			break
		}
		if !send(readResult{line: bytes.TrimSuffix(line, []byte("\n")), tooLong: tooLong}) {
			return
		}
	}
}

// conn is one client connection: an outgoing queue and the goroutine that writes it.
type conn struct {
	s    *Server
	w    io.Writer
	wake chan struct{} // signals writeLoop that the queue has lines
	done chan struct{} // closed when writeLoop returns

	mu       sync.Mutex
	queue    [][]byte // guarded by mu: lines not written yet
	notes    int      // guarded by mu: notifications in queue
	dropped  int      // guarded by mu: notifications dropped since the queue was last full
	finished bool     // guarded by mu: no more lines will be queued
	broken   bool     // guarded by mu: a write failed
}

// enqueue queues one encoded line. Notifications beyond the queue limit are dropped and
// counted; responses always go in.
func (c *conn) enqueue(line []byte, isNote bool) {
	c.mu.Lock()
	if c.finished || c.broken {
		c.mu.Unlock()
		return
	}
	if isNote {
		if c.notes >= c.s.opts.QueueLimit {
			c.dropped++
			c.mu.Unlock()
			return
		}
		c.notes++
	}
	c.queue = append(c.queue, line)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) writeLoop() {
	defer close(c.done)
	for range c.wake {
		for {
			c.mu.Lock()
			q := c.queue
			c.queue = nil
			c.notes = 0
			dropped := c.dropped
			c.dropped = 0
			finished := c.finished
			c.mu.Unlock()
			if dropped > 0 {
				note, _ := encodeLine(notification{JSONRPC: Version, Method: "error", Params: errorNote{
					Message: fmt.Sprintf("%d notifications were dropped because this client read too slowly; history has the messages", dropped),
				}})
				q = append(q, note)
			}
			if len(q) == 0 {
				if finished {
					return
				}
				break
			}
			if _, err := c.w.Write(bytes.Join(q, nil)); err != nil {
				c.mu.Lock()
				c.broken = true
				c.queue = nil
				c.mu.Unlock()
				c.s.log.Warn("botrpc: write to client failed", "err", err)
				return
			}
		}
	}
}

// finish stops the queue and waits up to timeout for what is queued to be written.
func (c *conn) finish(timeout time.Duration) {
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	if timeout <= 0 {
		return
	}
	select {
	case <-c.done:
	case <-time.After(timeout):
	}
}

func (c *conn) respond(v any) {
	line, err := encodeLine(v)
	if err != nil {
		c.s.log.Error("botrpc: encode response", "err", err)
		line, _ = encodeLine(errorResponse{JSONRPC: Version, ID: nullID, Error: newError(CodeInternalError, "internal error: response not encodable")})
	}
	c.enqueue(line, false)
}

func (c *conn) respondError(id json.RawMessage, e *Error) {
	c.respond(errorResponse{JSONRPC: Version, ID: id, Error: e})
}

// handleLine handles one line: a request, or a batch of them.
func (c *conn) handleLine(ctx context.Context, line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	batch, isBatch, perr := splitBatch(line)
	if perr != nil {
		c.respondError(nullID, perr)
		return
	}
	if !isBatch {
		if r := c.s.handle(ctx, line); r != nil {
			c.respond(r)
		}
		return
	}
	var out []any
	for _, b := range batch {
		if r := c.s.handle(ctx, b); r != nil {
			out = append(out, r)
		}
	}
	if len(out) > 0 {
		c.respond(out)
	}
}

type resultResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result"`
}

type errorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   *Error          `json:"error"`
}

// handle runs one request and returns its response, or nil for a notification.
func (s *Server) handle(ctx context.Context, b []byte) any {
	req, perr := parseRequest(b)
	if perr != nil {
		// An invalid request is answered even without an id (with id null).
		return errorResponse{JSONRPC: Version, ID: req.ID, Error: perr}
	}
	result, err := s.call(ctx, req)
	if req.ID == nil {
		if err != nil {
			s.log.Warn("botrpc: notification failed", "method", req.Method, "err", err)
		}
		return nil
	}
	if err != nil {
		s.log.Debug("botrpc: request failed", "method", req.Method, "id", string(req.ID), "err", err)
		return errorResponse{JSONRPC: Version, ID: req.ID, Error: toRPCError(err)}
	}
	if result == nil {
		result = struct{}{}
	}
	return resultResponse{JSONRPC: Version, ID: req.ID, Result: result}
}

// call runs a method, turning a panic into an internal error.
func (s *Server) call(ctx context.Context, req *request) (result any, err error) {
	m, ok := methods[req.Method]
	if !ok {
		return nil, newError(CodeMethodNotFound, "method not found: %q", req.Method)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("botrpc: internal error", "method", req.Method, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, newError(CodeInternalError, "internal error")
		}
	}()
	s.log.Debug("botrpc: request", "method", req.Method, "id", string(req.ID))
	return m(s, ctx, req.Params)
}
