package botrpc

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
)

// Notification params, one type per notification of docs/bot-protocol.md.

type messageNote struct {
	GroupID   string `json:"groupId"`
	Sender    string `json:"sender"`
	Nick      string `json:"nick"`
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp int64  `json:"timestamp"`
	Epoch     uint64 `json:"epoch"`
	Late      bool   `json:"late"`
	Resent    bool   `json:"resent"`
}

type memberNote struct {
	GroupID string `json:"groupId"`
	PeerID  string `json:"peerId"`
	By      string `json:"by,omitempty"`
	Epoch   uint64 `json:"epoch"`
	Self    bool   `json:"self"`
}

type renamedNote struct {
	GroupID string `json:"groupId"`
	Name    string `json:"name"`
	By      string `json:"by"`
	Epoch   uint64 `json:"epoch"`
}

type epochNote struct {
	GroupID       string `json:"groupId"`
	Epoch         uint64 `json:"epoch"`
	Authenticator string `json:"authenticator"`
}

type peerNote struct {
	GroupID string `json:"groupId"`
	PeerID  string `json:"peerId"`
}

type syncNote struct {
	GroupID  string `json:"groupId"`
	PeerID   string `json:"peerId"`
	Commits  int    `json:"commits"`
	Messages int    `json:"messages"`
	Done     bool   `json:"done"`
}

type forkNote struct {
	GroupID string `json:"groupId"`
	PeerID  string `json:"peerId,omitempty"`
	Epoch   uint64 `json:"epoch"`
	How     string `json:"how,omitempty"`
}

type errorNote struct {
	GroupID string `json:"groupId,omitempty"`
	Message string `json:"message"`
}

type inviteNote struct {
	GroupID       string `json:"groupId"` // the group the token arrived in
	Sender        string `json:"sender"`
	Token         string `json:"token"`
	InviteGroupID string `json:"inviteGroupId"`
	Name          string `json:"name"`
	Expires       int64  `json:"expires"`
}

type acceptedNote struct {
	GroupID string `json:"groupId"` // the group joined
	Name    string `json:"name"`
	From    string `json:"from"` // who sent the token
	Via     string `json:"via"`  // the group the token arrived in
}

type addNote struct {
	GroupID string `json:"groupId"` // the group the bot was to be added to
	Name    string `json:"name"`
	From    string `json:"from"` // the member that added it
}

func peerString(p peer.ID) string {
	if p == "" {
		return ""
	}
	return p.String()
}

// notificationOf maps a chat event to its notification; ok is false for an event type
// this version does not know.
func (s *Server) notificationOf(ev chat.Event) (method string, params any, ok bool) {
	self := s.chat.PeerID()
	switch e := ev.(type) {
	case chat.MessageReceived:
		return "message", messageNote{
			GroupID: string(e.Group), Sender: peerString(e.Sender), Nick: e.Nick, ID: e.ID,
			Message: e.Text, Timestamp: e.Time.UnixMilli(), Epoch: e.Epoch, Late: e.Late, Resent: e.Resent,
		}, true
	case chat.MemberJoined:
		return "memberJoined", memberNote{GroupID: string(e.Group), PeerID: peerString(e.Member), Epoch: e.Epoch, Self: e.Member == self}, true
	case chat.MemberLeft:
		return "memberLeft", memberNote{GroupID: string(e.Group), PeerID: peerString(e.Member), Epoch: e.Epoch, Self: e.Member == self}, true
	case chat.MemberRemoved:
		return "memberRemoved", memberNote{GroupID: string(e.Group), PeerID: peerString(e.Member), By: peerString(e.By), Epoch: e.Epoch, Self: e.Member == self}, true
	case chat.GroupRenamed:
		return "groupRenamed", renamedNote{GroupID: string(e.Group), Name: e.Name, By: peerString(e.By), Epoch: e.Epoch}, true
	case chat.EpochChanged:
		return "epochChanged", epochNote{GroupID: string(e.Group), Epoch: e.Epoch, Authenticator: hex.EncodeToString(e.Authenticator)}, true
	case chat.PeerOnline:
		return "peerOnline", peerNote{GroupID: string(e.Group), PeerID: peerString(e.Peer)}, true
	case chat.PeerOffline:
		return "peerOffline", peerNote{GroupID: string(e.Group), PeerID: peerString(e.Peer)}, true
	case chat.SyncProgress:
		return "syncProgress", syncNote{GroupID: string(e.Group), PeerID: peerString(e.Peer), Commits: e.Commits, Messages: e.Messages, Done: e.Done}, true
	case chat.ForkDetected:
		return "forkDetected", forkNote{GroupID: string(e.Group), PeerID: peerString(e.Peer), Epoch: e.Epoch}, true
	case chat.ForkResolved:
		return "forkResolved", forkNote{GroupID: string(e.Group), Epoch: e.Epoch, How: e.How}, true
	case chat.Error:
		msg := "unknown error"
		if e.Err != nil {
			msg = e.Err.Error()
		}
		return "error", errorNote{GroupID: string(e.Group), Message: msg}, true
	}
	return "", nil, false
}

// event turns one chat event into notifications, and acts on invite tokens in messages.
func (s *Server) event(ev chat.Event) {
	method, params, ok := s.notificationOf(ev)
	if !ok {
		s.log.Debug("botrpc: event of unknown type", "type", ev)
		return
	}
	s.notify(method, params)
	switch e := ev.(type) {
	case chat.MessageReceived:
		s.invites(e)
	case chat.MemberJoined:
		if e.Member == s.chat.PeerID() {
			s.know(e.Group)
		}
	case chat.EpochChanged:
		s.entered(e)
	}
}

// maxAdders bounds the adds accepted and not (yet) seen through.
const maxAdders = 1024

// AcceptAdd is the chat core's Config.AcceptAdd for this server: member from adds the
// bot to group directly (the add method on its side). The core asks when from wants a
// key package, before anything is committed (name is not known yet: ""), and again
// when the Welcome comes. With AutoAccept the add is accepted, and once the bot is in
// it notifies memberJoined with "self": true and "by": from; without, it is declined
// (the adder's add fails, nothing is committed) and addDeclined is notified. It may be
// called before Run.
func (s *Server) AcceptAdd(from peer.ID, group chat.GroupID, name string) bool {
	if !s.opts.AutoAccept {
		s.log.Info("botrpc: declined a direct add (no auto-accept)", "group", group, "from", from)
		s.notify("addDeclined", addNote{GroupID: string(group), Name: name, From: peerString(from)})
		return false
	}
	s.log.Info("botrpc: accepting a direct add", "group", group, "from", from)
	s.mu.Lock()
	if len(s.adders) >= maxAdders {
		clear(s.adders)
	}
	s.adders[group] = from
	s.mu.Unlock()
	return true
}

// know records that the bot is in group id, so that its next epochs are not taken for
// the bot entering it.
func (s *Server) know(id chat.GroupID) {
	s.mu.Lock()
	s.known[id] = true
	s.mu.Unlock()
}

// entered notifies memberJoined for the bot itself when e is the first epoch of a group
// it was not in: it joined (join, an auto-accepted invite) or was added. The chat core
// reports that entry by EpochChanged alone.
func (s *Server) entered(e chat.EpochChanged) {
	s.mu.Lock()
	if s.known[e.Group] {
		s.mu.Unlock()
		return
	}
	s.known[e.Group] = true
	by := s.adders[e.Group]
	delete(s.adders, e.Group)
	s.mu.Unlock()
	self := s.chat.PeerID()
	s.notify("memberJoined", memberNote{GroupID: string(e.Group), PeerID: peerString(self), By: peerString(by), Epoch: e.Epoch, Self: true})
}

// invites finds the invite tokens in a received message: with AutoAccept it joins their
// groups, else it notifies inviteReceived for each.
func (s *Server) invites(m chat.MessageReceived) {
	for _, word := range strings.Fields(m.Text) {
		if len(word) < len(chat.TokenPrefix) || !strings.EqualFold(word[:len(chat.TokenPrefix)], chat.TokenPrefix) {
			continue
		}
		inv, err := chat.ParseInvite(word)
		if err != nil {
			continue
		}
		gid := chat.GroupID(hex.EncodeToString(inv.GroupID))
		if !s.opts.AutoAccept {
			s.notify("inviteReceived", inviteNote{
				GroupID: string(m.Group), Sender: peerString(m.Sender), Token: word,
				InviteGroupID: string(gid), Name: inv.Name, Expires: inv.Expires.UnixMilli(),
			})
			continue
		}
		s.autoJoin(m, word, gid, inv.Name)
	}
}

// autoJoin joins the group of token in the background, once at a time per group.
func (s *Server) autoJoin(m chat.MessageReceived, token string, gid chat.GroupID, name string) {
	s.mu.Lock()
	if s.joining[string(gid)] || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.joining[string(gid)] = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.joining, string(gid))
			s.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.RequestTimeout)
		defer cancel()
		s.log.Info("botrpc: accepting an invite", "group", gid, "from", m.Sender)
		id, err := s.chat.Join(ctx, token)
		if errors.Is(err, chat.ErrAlreadyIn) {
			return
		}
		if err != nil {
			s.log.Warn("botrpc: auto-accept failed", "group", gid, "err", err)
			s.notify("error", errorNote{GroupID: string(m.Group), Message: "auto-accept of an invite to " + string(gid) + ": " + err.Error()})
			return
		}
		s.notify("inviteAccepted", acceptedNote{GroupID: string(id), Name: name, From: peerString(m.Sender), Via: string(m.Group)})
	}()
}
