package botrpc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/mlsgroup"
	"github.com/tchat-p2p/tchat/net/proto"
)

// ProtocolVersion is the version of the protocol in docs/bot-protocol.md; it grows when
// a method or notification changes incompatibly.
const ProtocolVersion = 1

// History page sizes.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 1000
)

type method func(s *Server, ctx context.Context, params json.RawMessage) (any, error)

// methods is the protocol: one entry per method of docs/bot-protocol.md.
var methods map[string]method

func init() {
	methods = map[string]method{
		"version":      (*Server).version,
		"identity":     (*Server).identity,
		"setNick":      (*Server).setNick,
		"createGroup":  (*Server).createGroup,
		"invite":       (*Server).invite,
		"join":         (*Server).join,
		"add":          (*Server).add,
		"remove":       (*Server).remove,
		"leave":        (*Server).leave,
		"rename":       (*Server).rename,
		"send":         (*Server).send,
		"listGroups":   (*Server).listGroups,
		"listMembers":  (*Server).listMembers,
		"history":      (*Server).history,
		"safetyNumber": (*Server).safetyNumber,
		"verify":       (*Server).verify,
		"unverify":     (*Server).unverify,
	}
}

// Methods lists the protocol's method names, sorted.
func Methods() []string {
	out := make([]string, 0, len(methods))
	for m := range methods {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// toRPCError maps the chat core's errors to error objects.
func toRPCError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code := CodeFailed
	var re *proto.RemoteError
	switch {
	case errors.Is(err, chat.ErrClosed), errors.Is(err, context.Canceled):
		code = CodeShuttingDown
	case errors.Is(err, chat.ErrUnknownGroup):
		code = CodeUnknownGroup
	case errors.Is(err, chat.ErrNotMember):
		code = CodeNotMember
	case errors.Is(err, chat.ErrUnreachable):
		code = CodeUnreachable
	case errors.Is(err, chat.ErrInvalidInvite):
		code = CodeInvalidInvite
	case errors.Is(err, chat.ErrInviteExpired):
		code = CodeInviteExpired
	case errors.Is(err, chat.ErrAlreadyIn):
		code = CodeAlreadyMember
	case errors.As(err, &re):
		code = CodeRefused
	case errors.Is(err, context.DeadlineExceeded):
		code = CodeUnreachable
	}
	return &Error{Code: code, Message: err.Error()}
}

// Parameter helpers.

func groupParam(id string) (chat.GroupID, error) {
	if id == "" {
		return "", requireParam("groupId")
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", newError(CodeInvalidParams, "invalid params: groupId must be a group id (hex)")
	}
	return chat.GroupID(strings.ToLower(id)), nil
}

func peerParam(name, s string) (peer.ID, error) {
	if s == "" {
		return "", requireParam(name)
	}
	p, err := peer.Decode(s)
	if err != nil {
		return "", newError(CodeInvalidParams, "invalid params: %s is not a peer id: %v", name, err)
	}
	return p, nil
}

// Result types.

// Group is a group as the protocol shows it.
type Group struct {
	GroupID       string   `json:"groupId"`
	Name          string   `json:"name"`
	Policy        string   `json:"policy"`
	Suite         uint16   `json:"suite"`
	SuiteName     string   `json:"suiteName"`
	Epoch         uint64   `json:"epoch"`
	Authenticator string   `json:"authenticator"`
	Active        bool     `json:"active"`
	Syncing       bool     `json:"syncing"`
	Members       []Member `json:"members"`
}

// Member is a group member as the protocol shows it.
type Member struct {
	PeerID      string `json:"peerId"`
	LeafIndex   uint32 `json:"leafIndex"`
	Nick        string `json:"nick"`
	Fingerprint string `json:"fingerprint"`
	Verified    bool   `json:"verified"`
	Online      bool   `json:"online"`
	Self        bool   `json:"self"`
}

// Message is a stored message as the history method returns it.
type Message struct {
	Seq        int64  `json:"seq"`
	ID         string `json:"id"`
	Sender     string `json:"sender"`
	Nick       string `json:"nick"`
	Message    string `json:"message"`
	Timestamp  int64  `json:"timestamp"`
	ReceivedAt int64  `json:"receivedAt"`
	Epoch      uint64 `json:"epoch"`
	Own        bool   `json:"own"`
	Late       bool   `json:"late"`
	Resent     bool   `json:"resent"`
}

func groupOf(st chat.GroupState) Group {
	g := Group{
		GroupID: string(st.ID), Name: st.Name, Policy: st.Policy,
		Suite: uint16(st.Suite), SuiteName: st.SuiteName, Epoch: st.Epoch,
		Authenticator: hex.EncodeToString(st.Authenticator),
		Active:        st.Active, Syncing: st.Syncing, Members: membersOf(st.Members),
	}
	return g
}

func membersOf(ms []chat.Member) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, Member{
			PeerID: m.Peer.String(), LeafIndex: m.LeafIndex, Nick: m.Nick,
			Fingerprint: m.Fingerprint, Verified: m.Verified, Online: m.Online, Self: m.Self,
		})
	}
	return out
}

func (s *Server) groupResult(ctx context.Context, id chat.GroupID) (any, error) {
	st, err := s.chat.Group(ctx, id)
	if err != nil {
		return nil, err
	}
	return groupOf(st), nil
}

// The methods, in the order of docs/bot-protocol.md.

func (s *Server) version(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct{}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	return map[string]any{"version": s.opts.Version, "protocol": ProtocolVersion}, nil
}

func (s *Server) identity(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct{}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	ns := s.chat.NetStatus()
	fp := ""
	if pub, err := identity.PublicKeyFromPeerID(s.chat.PeerID()); err == nil {
		fp = pub.Fingerprint()
	}
	addrs := ns.Addrs
	if addrs == nil {
		addrs = []string{}
	}
	return map[string]any{
		"peerId":       s.chat.PeerID().String(),
		"fingerprint":  fp,
		"nick":         s.chat.Nick(),
		"addrs":        addrs,
		"connected":    ns.Connected,
		"reachability": ns.Reachability,
	}, nil
}

func (s *Server) setNick(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		Nick *string `json:"nick"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	if p.Nick == nil {
		return nil, requireParam("nick")
	}
	return nil, s.chat.SetNick(ctx, *p.Nick)
}

func (s *Server) createGroup(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		Name   string  `json:"name"`
		Policy string  `json:"policy"`
		Suite  *uint16 `json:"suite"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	o := chat.GroupOptions{Name: p.Name, Policy: p.Policy}
	if p.Suite != nil {
		o.Suite = mlsgroup.CipherSuite(*p.Suite)
	}
	id, err := s.chat.CreateGroupWith(o)
	if err != nil {
		return nil, err
	}
	s.know(id)
	return s.groupResult(ctx, id)
}

func (s *Server) invite(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		GroupID string `json:"groupId"`
		TTL     *int64 `json:"ttl"`
		MaxUses *int   `json:"maxUses"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	id, err := groupParam(p.GroupID)
	if err != nil {
		return nil, err
	}
	if p.TTL != nil && (*p.TTL <= 0 || *p.TTL > int64(10*365*24*3600)) {
		return nil, newError(CodeInvalidParams, "invalid params: ttl must be a positive number of seconds (at most ten years)")
	}
	if p.MaxUses != nil && *p.MaxUses < 0 {
		return nil, newError(CodeInvalidParams, "invalid params: maxUses must be 0 (no limit) or more")
	}
	var token string
	if p.TTL == nil && p.MaxUses == nil {
		token, err = s.chat.Invite(id)
	} else {
		ttl, uses := chat.DefaultInviteTTL, 1
		if p.TTL != nil {
			ttl = time.Duration(*p.TTL) * time.Second
		}
		if p.MaxUses != nil {
			uses = *p.MaxUses
		}
		token, err = s.chat.InviteWith(id, ttl, uses)
	}
	if err != nil {
		return nil, err
	}
	res := map[string]any{"token": token}
	if inv, err := chat.ParseInvite(token); err == nil {
		res["expires"] = inv.Expires.UnixMilli()
		res["maxUses"] = inv.MaxUses
	}
	return res, nil
}

func (s *Server) join(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		Token string `json:"token"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	if p.Token == "" {
		return nil, requireParam("token")
	}
	id, err := s.chat.Join(ctx, p.Token)
	if err != nil {
		return nil, err
	}
	return s.groupResult(ctx, id)
}

func (s *Server) add(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		GroupID string   `json:"groupId"`
		PeerID  string   `json:"peerId"`
		Addrs   []string `json:"addrs"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	id, err := groupParam(p.GroupID)
	if err != nil {
		return nil, err
	}
	pid, err := peerParam("peerId", p.PeerID)
	if err != nil {
		return nil, err
	}
	ai := peer.AddrInfo{ID: pid}
	for _, a := range p.Addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, newError(CodeInvalidParams, "invalid params: addrs: %q is not a multiaddr: %v", a, err)
		}
		ai.Addrs = append(ai.Addrs, m)
	}
	return nil, s.chat.Add(ctx, id, ai)
}

func (s *Server) remove(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		GroupID string `json:"groupId"`
		PeerID  string `json:"peerId"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	id, err := groupParam(p.GroupID)
	if err != nil {
		return nil, err
	}
	pid, err := peerParam("peerId", p.PeerID)
	if err != nil {
		return nil, err
	}
	return nil, s.chat.Remove(ctx, id, pid)
}

// groupOnly decodes params holding only groupId.
func groupOnly(raw json.RawMessage) (chat.GroupID, error) {
	var p struct {
		GroupID string `json:"groupId"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return "", err
	}
	return groupParam(p.GroupID)
}

func (s *Server) leave(ctx context.Context, raw json.RawMessage) (any, error) {
	id, err := groupOnly(raw)
	if err != nil {
		return nil, err
	}
	return nil, s.chat.Leave(ctx, id)
}

func (s *Server) rename(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		GroupID string  `json:"groupId"`
		Name    *string `json:"name"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	id, err := groupParam(p.GroupID)
	if err != nil {
		return nil, err
	}
	if p.Name == nil {
		return nil, requireParam("name")
	}
	return nil, s.chat.Rename(ctx, id, *p.Name)
}

func (s *Server) send(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		GroupID string  `json:"groupId"`
		Message *string `json:"message"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	id, err := groupParam(p.GroupID)
	if err != nil {
		return nil, err
	}
	if p.Message == nil {
		return nil, requireParam("message")
	}
	m, err := s.chat.Send(ctx, id, *p.Message)
	if err != nil {
		return nil, err
	}
	return messageOf(m), nil
}

func (s *Server) listGroups(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		GroupID string `json:"groupId"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	ids := s.chat.Groups()
	if p.GroupID != "" {
		id, err := groupParam(p.GroupID)
		if err != nil {
			return nil, err
		}
		ids = []chat.GroupID{id}
	}
	out := make([]Group, 0, len(ids))
	for _, id := range ids {
		st, err := s.chat.Group(ctx, id)
		if errors.Is(err, chat.ErrUnknownGroup) && p.GroupID == "" {
			continue // left while we listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, groupOf(st))
	}
	slices.SortFunc(out, func(a, b Group) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.GroupID, b.GroupID)
	})
	return out, nil
}

func (s *Server) listMembers(ctx context.Context, raw json.RawMessage) (any, error) {
	id, err := groupOnly(raw)
	if err != nil {
		return nil, err
	}
	ms, err := s.chat.Members(ctx, id)
	if err != nil {
		return nil, err
	}
	return membersOf(ms), nil
}

func (s *Server) history(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		GroupID string `json:"groupId"`
		Before  int64  `json:"before"`
		Limit   *int   `json:"limit"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	id, err := groupParam(p.GroupID)
	if err != nil {
		return nil, err
	}
	limit := DefaultHistoryLimit
	if p.Limit != nil {
		limit = *p.Limit
	}
	if limit < 1 || limit > MaxHistoryLimit {
		return nil, newError(CodeInvalidParams, "invalid params: limit must be from 1 to %d", MaxHistoryLimit)
	}
	if p.Before < 0 {
		return nil, newError(CodeInvalidParams, "invalid params: before must be a cursor from a previous page, or 0")
	}
	// History reads the store, which knows groups we were removed from too; a group
	// this client never had is an unknown group either way.
	if _, err := s.chat.Group(ctx, id); err != nil && !hasHistory(ctx, s, id) {
		return nil, err
	}
	msgs, before, err := s.chat.History(ctx, id, p.Before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, messageOf(m))
	}
	return map[string]any{"messages": out, "before": before}, nil
}

func hasHistory(ctx context.Context, s *Server, id chat.GroupID) bool {
	msgs, _, err := s.chat.History(ctx, id, 0, 1)
	return err == nil && len(msgs) > 0
}

func messageOf(m chat.Message) Message {
	return Message{
		Seq: m.Cursor, ID: m.ID, Sender: m.Sender.String(), Nick: m.Nick, Message: m.Text,
		Timestamp: m.Time.UnixMilli(), ReceivedAt: m.Received.UnixMilli(), Epoch: m.Epoch,
		Own: m.Own, Late: m.Late, Resent: m.Resent,
	}
}

// peerOnly decodes params holding only peerId.
func peerOnly(raw json.RawMessage) (peer.ID, error) {
	var p struct {
		PeerID string `json:"peerId"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return "", err
	}
	return peerParam("peerId", p.PeerID)
}

func (s *Server) safetyNumber(ctx context.Context, raw json.RawMessage) (any, error) {
	pid, err := peerOnly(raw)
	if err != nil {
		return nil, err
	}
	sn, err := s.chat.SafetyNumber(pid)
	if err != nil {
		return nil, err
	}
	return map[string]any{"peerId": pid.String(), "safetyNumber": sn}, nil
}

func (s *Server) verify(ctx context.Context, raw json.RawMessage) (any, error) {
	pid, err := peerOnly(raw)
	if err != nil {
		return nil, err
	}
	return nil, s.chat.Verify(ctx, pid)
}

func (s *Server) unverify(ctx context.Context, raw json.RawMessage) (any, error) {
	pid, err := peerOnly(raw)
	if err != nil {
		return nil, err
	}
	return nil, s.chat.Unverify(ctx, pid)
}
