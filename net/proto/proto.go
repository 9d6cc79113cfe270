// Package proto implements tchat's direct stream protocols, the request and
// response exchanges that do not fit a group's gossip topic:
//
//	/tchat/join/2     JoinRequest (KeyPackage and invite proof) in, JoinResponse (Welcome, ratchet tree) out
//	/tchat/sync/1     SyncRequest in, SyncResponse (commits, recent ciphertexts, GroupInfo) out
//	/tchat/kp/1       KeyPackageRequest in, KeyPackageResponse out
//	/tchat/welcome/2  WelcomeRequest (Welcome, room secret, group name, ratchet tree) in, WelcomeResponse (empty) out
//	/tchat/senderkey/1 SenderKeyRequest (a sender key sealed for the receiver) in, SenderKeyResponse (empty) out
//
// The welcome protocol runs the other way round from join: a member that added
// a known peer directly (it fetched the peer's KeyPackage over /tchat/kp/1 and
// committed the Add) pushes the Welcome, the group's room secret and its name
// to that peer.
//
// Each exchange is one libp2p stream carrying one request frame and one
// response frame. A frame is a 4-byte big-endian length and that many bytes
// (see ReadFrame); the messages inside are in the TLS presentation language, as
// MLS is (see messages.go). The payloads (KeyPackages, Welcomes, commits,
// GroupInfo; RFC 9420) are opaque here: the chat core makes and checks them
// through Handlers.
//
// Limits bound everything a peer can make a responder hold: the request size
// (checked before allocation, and accounted with the libp2p resource manager),
// the time the whole request may take to arrive (so a slowloris peer is cut off),
// the handler's time, the response's write time, and the number of streams in
// service at once, in all, per peer and, for the larger welcome requests, of
// those.
//
// Gossipsub does not use relayed (limited) connections; these protocols do.
// Client opens its streams with network.WithAllowLimitedConn, so a peer that can
// only be reached through a circuit relay v2 can still join and sync. Mind the
// relay's own limits (the default libp2p relay allows 128 KiB and 2 minutes per
// relayed connection; a tchat relay is configured more generously, see
// node.Config).
package proto

import (
	"context"
	"encoding"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// The protocol ids.
const (
	JoinID       protocol.ID = "/tchat/join/2"
	SyncID       protocol.ID = "/tchat/sync/1"
	KeyPackageID protocol.ID = "/tchat/kp/1"
	WelcomeID    protocol.ID = "/tchat/welcome/2"
	SenderKeyID  protocol.ID = "/tchat/senderkey/1"
)

// ServiceName is the libp2p resource-manager service the streams are accounted to.
const ServiceName = "tchat.proto"

// Default limits.
const (
	// DefaultMaxRequest bounds a request frame. Requests are a KeyPackage
	// (a few KiB, about 3 KiB with X-Wing keys) and an invite proof.
	DefaultMaxRequest = 256 << 10
	// DefaultMaxResponse bounds a response frame: a Welcome or a GroupInfo
	// carries the ratchet tree, about 3.5 MiB for 1,000 members with
	// post-quantum keys; sync answers page with More.
	DefaultMaxResponse = 16 << 20
	// DefaultMaxWelcome bounds a WelcomeRequest frame: unlike the other
	// requests it carries a Welcome with its ratchet tree (about 3.5 MiB for
	// 1,000 members with post-quantum keys, see DefaultMaxResponse). It is half
	// the libp2p resource manager's default memory limit for one stream, since
	// the responder reserves the whole limit while the request arrives.
	DefaultMaxWelcome = 8 << 20

	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultJoinTimeout       = 2 * time.Minute
	DefaultHandleTimeout     = 30 * time.Second
	DefaultMaxStreams        = 64
	DefaultMaxStreamsPerPeer = 4
	// DefaultMaxWelcomeStreams bounds the welcome requests in service at once,
	// so that their larger frames cannot take the memory the other protocols need.
	DefaultMaxWelcomeStreams = 4
)

// Limits bound the protocols' resources; zero fields take the defaults above.
// Requester and responder should agree on MaxRequest, MaxResponse and MaxWelcome.
type Limits struct {
	MaxRequest  int // bytes in a request frame other than a WelcomeRequest's
	MaxResponse int // bytes in a response frame
	MaxWelcome  int // bytes in a WelcomeRequest frame

	// ReadTimeout bounds the time for a whole request to arrive; a
	// WelcomeRequest, as large as a response, is given WriteTimeout instead.
	ReadTimeout   time.Duration
	WriteTimeout  time.Duration // for a whole response to be written
	JoinTimeout   time.Duration // for a JoinHandler (it may wait for a commit)
	HandleTimeout time.Duration // for the other handlers

	MaxStreams        int // requests in service at once
	MaxStreamsPerPeer int // requests in service at once for one peer
	MaxWelcomeStreams int // welcome requests in service at once (within MaxStreams)
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxRequest, DefaultMaxRequest)
	def(&l.MaxResponse, DefaultMaxResponse)
	def(&l.MaxWelcome, DefaultMaxWelcome)
	def(&l.MaxStreams, DefaultMaxStreams)
	def(&l.MaxStreamsPerPeer, DefaultMaxStreamsPerPeer)
	def(&l.MaxWelcomeStreams, DefaultMaxWelcomeStreams)
	defd(&l.ReadTimeout, DefaultReadTimeout)
	defd(&l.WriteTimeout, DefaultWriteTimeout)
	defd(&l.JoinTimeout, DefaultJoinTimeout)
	defd(&l.HandleTimeout, DefaultHandleTimeout)
	return l
}

// Client makes requests on the direct protocols. Safe for concurrent use.
type Client struct {
	h   host.Host
	lim Limits
}

// NewClient returns a client that sends from h.
func NewClient(h host.Host, lim Limits) *Client {
	return &Client{h: h, lim: lim.withDefaults()}
}

// Join sends a JoinRequest to p and waits for the Welcome. Without a deadline
// on ctx it waits for the responder's JoinTimeout plus the transfer times.
func (c *Client) Join(ctx context.Context, p peer.ID, req *JoinRequest) (*JoinResponse, error) {
	var resp JoinResponse
	err := c.roundTrip(ctx, p, JoinID, req, &resp, c.lim.MaxRequest, c.lim.JoinTimeout)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// Sync asks p for what req names.
func (c *Client) Sync(ctx context.Context, p peer.ID, req *SyncRequest) (*SyncResponse, error) {
	var resp SyncResponse
	err := c.roundTrip(ctx, p, SyncID, req, &resp, c.lim.MaxRequest, c.lim.HandleTimeout)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// KeyPackage fetches one of p's KeyPackages.
func (c *Client) KeyPackage(ctx context.Context, p peer.ID, req *KeyPackageRequest) (*KeyPackageResponse, error) {
	var resp KeyPackageResponse
	err := c.roundTrip(ctx, p, KeyPackageID, req, &resp, c.lim.MaxRequest, c.lim.HandleTimeout)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// SenderKey hands p our sender key for a group and waits until p took it.
func (c *Client) SenderKey(ctx context.Context, p peer.ID, req *SenderKeyRequest) (*SenderKeyResponse, error) {
	var resp SenderKeyResponse
	err := c.roundTrip(ctx, p, SenderKeyID, req, &resp, c.lim.MaxRequest, c.lim.HandleTimeout)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// Welcome pushes a Welcome, with the group's room secret and name, to the
// peer p that our commit added, and waits for its acknowledgement.
func (c *Client) Welcome(ctx context.Context, p peer.ID, req *WelcomeRequest) (*WelcomeResponse, error) {
	var resp WelcomeResponse
	err := c.roundTrip(ctx, p, WelcomeID, req, &resp, c.lim.MaxWelcome, c.lim.HandleTimeout)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// roundTrip opens a stream (over a relayed connection too), sends req (a frame
// of at most maxReq bytes), reads one response frame and decodes it into resp.
// Cancelling ctx resets the stream, which unblocks any read or write in
// progress.
func (c *Client) roundTrip(ctx context.Context, p peer.ID, id protocol.ID,
	req encoding.BinaryMarshaler, resp encoding.BinaryUnmarshaler, maxReq int, handle time.Duration) error {
	body, err := req.MarshalBinary()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.lim.WriteTimeout+handle+c.lim.WriteTimeout)
		defer cancel()
	}
	ctx = network.WithAllowLimitedConn(ctx, "tchat direct protocol")
	st, err := c.h.NewStream(ctx, p, id)
	if err != nil {
		return c.fail(ctx, id, p, "open", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := WriteFrame(st, body, maxReq); err != nil {
		_ = st.Reset()
		return c.fail(ctx, id, p, "send request", err)
	}
	_ = st.CloseWrite()
	frame, err := ReadFrame(st, c.lim.MaxResponse)
	if err != nil {
		_ = st.Reset()
		return c.fail(ctx, id, p, "read response", err)
	}
	_ = st.Close()
	out, err := decodeResponse(frame)
	if err != nil {
		return err
	}
	return resp.UnmarshalBinary(out)
}

func (c *Client) fail(ctx context.Context, id protocol.ID, p peer.ID, what string, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return fmt.Errorf("proto: %s %s to %s: %w", what, id, p, err)
}
