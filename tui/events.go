package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/tui/components/messages"
)

// syncStale is how long a catch-up that reported progress but never its end keeps the
// spinner (the core gives up on a sync request after 30 s and reports an Error).
const syncStale = 45 * time.Second

// forkHow words ForkResolved.How.
var forkHow = map[string]string{
	"kept":     "our branch won",
	"switched": "moved to the winning branch",
	"rejoined": "rejoined the group",
}

// handleEvent shows an event of the chat core. Events come in the order the core emits
// them: a commit gives EpochChanged, then the MemberJoined, MemberLeft, MemberRemoved
// and GroupRenamed it caused, so a membership line can take the place of the epoch line
// just before it.
func (m *Model) handleEvent(ev chat.Event) tea.Cmd {
	switch ev := ev.(type) {
	case chat.MessageReceived:
		return m.messageReceived(ev)
	case chat.EpochChanged:
		cv, isNew := m.eventConv(ev.Group)
		// The epoch we show already (the state after /join came first) needs no line.
		known := cv.hasState && cv.state.Epoch == ev.Epoch && bytes.Equal(cv.state.Authenticator, ev.Authenticator)
		cv.state.Epoch = ev.Epoch
		cv.state.Authenticator = ev.Authenticator
		switch {
		case isNew:
			// We entered a group we did not know: a Welcome after /join, or a member
			// added us with /add. The line waits for the group's state, with its name.
			cv.announce = true
		case known || (cv.announce && !cv.announced):
		default:
			text := fmt.Sprintf("epoch %d", ev.Epoch)
			if len(ev.Authenticator) > 0 {
				text += fmt.Sprintf(" · authenticator %x", ev.Authenticator[:min(4, len(ev.Authenticator))])
			}
			cv.buf.Append(messages.Entry{Kind: messages.System, Time: m.c.Now(), Text: text, ID: epochID(ev.Epoch)})
		}
		m.stateChanged(cv)
		return m.refreshGroup(cv)
	case chat.MemberJoined:
		cv, _ := m.eventConv(ev.Group)
		if ev.Member == m.self {
			cv.announce = !cv.announced
		} else {
			name := m.nameOf(cv, ev.Member, "")
			id := m.membership(cv, ev.Epoch, messages.Join, name+" joined")
			if name == shortID(ev.Member) {
				// Named once the state (with the nickname the profile knows) or a
				// heartbeat tells.
				cv.unnamed[ev.Member] = id
			}
		}
		return m.refreshGroup(cv)
	case chat.MemberLeft:
		cv, _ := m.eventConv(ev.Group)
		if ev.Member == m.self {
			if !cv.gone { // else it was said without the event (see left)
				m.membership(cv, ev.Epoch, messages.Leave, "you left "+cv.name)
			}
			m.setInactive(cv)
		} else {
			m.membership(cv, ev.Epoch, messages.Leave, m.nameOf(cv, ev.Member, "")+" left")
		}
		return m.refreshGroup(cv)
	case chat.MemberRemoved:
		cv, _ := m.eventConv(ev.Group)
		by := m.nameOf(cv, ev.By, "")
		var text string
		switch {
		case ev.Member == m.self && ev.By == "":
			text = "you were removed from " + cv.name
		case ev.Member == m.self:
			text = fmt.Sprintf("you were removed from %s by %s", cv.name, by)
		case ev.By == m.self:
			text = "you removed " + m.nameOf(cv, ev.Member, "")
		case ev.By == "":
			text = m.nameOf(cv, ev.Member, "") + " was removed"
		default:
			text = fmt.Sprintf("%s was removed by %s", m.nameOf(cv, ev.Member, ""), by)
		}
		m.membership(cv, ev.Epoch, messages.Leave, text)
		if ev.Member == m.self {
			m.setInactive(cv)
		}
		return m.refreshGroup(cv)
	case chat.GroupRenamed:
		cv, _ := m.eventConv(ev.Group)
		who := m.nameOf(cv, ev.By, "")
		if ev.By == m.self {
			who = "you"
		}
		from := cv.name
		if from == ev.Name && cv.oldName != "" {
			from = cv.oldName // a refresh of the state brought the new name first
		}
		text := fmt.Sprintf("%s renamed %s to %s", who, from, ev.Name)
		if from == ev.Name {
			text = fmt.Sprintf("%s renamed the group to %s", who, ev.Name)
		}
		m.membership(cv, ev.Epoch, messages.System, text)
		cv.name, cv.state.Name, cv.oldName = ev.Name, ev.Name, ""
		m.stateChanged(cv)
		return m.refreshGroup(cv)
	case chat.PeerOnline:
		return m.setOnline(ev.Group, ev.Peer, true)
	case chat.PeerOffline:
		return m.setOnline(ev.Group, ev.Peer, false)
	case chat.SyncProgress:
		cv, _ := m.eventConv(ev.Group)
		cv.syncing, cv.syncAt = nil, time.Time{}
		if !ev.Done {
			p := ev
			cv.syncing, cv.syncAt = &p, time.Now()
		} else if ev.Commits+ev.Messages > 0 {
			m.note(cv, messages.System, fmt.Sprintf("caught up from %s: %s, %s", m.nameOf(cv, ev.Peer, ""),
				plural(ev.Commits, "commit"), plural(ev.Messages, "message")))
		}
		m.stateChanged(cv)
		return tea.Batch(m.updateStatus(), m.refreshGroup(cv))
	case chat.ForkDetected:
		cv, _ := m.eventConv(ev.Group)
		cv.buf.Append(messages.Entry{Kind: messages.System, Time: m.c.Now(), ID: forkID(ev.Epoch),
			Text: fmt.Sprintf("fork at epoch %d: %s is on another branch; resolving", ev.Epoch, m.nameOf(cv, ev.Peer, ""))})
		cv.forkEpoch, cv.forkPeer = ev.Epoch, ev.Peer
		return nil
	case chat.ForkResolved:
		cv, _ := m.eventConv(ev.Group)
		how := forkHow[ev.How]
		if how == "" {
			how = ev.How
		}
		// Detected and resolved at once (our branch won): one line.
		if !cv.buf.UpdateLast(forkID(cv.forkEpoch), func(e *messages.Entry) {
			e.Text = fmt.Sprintf("fork at epoch %d with %s: %s", cv.forkEpoch, m.nameOf(cv, cv.forkPeer, ""), how)
		}) {
			m.note(cv, messages.System, fmt.Sprintf("fork resolved: %s · epoch %d", how, ev.Epoch))
		}
		return m.refreshGroup(cv)
	case chat.Error:
		cv := m.conv(ev.Group)
		if cv == nil {
			cv = m.convs[0]
		}
		m.log.Warn("chat error", "group", ev.Group, "err", ev.Err)
		m.note(cv, messages.Error, explain(ev.Err))
		return nil
	default:
		m.log.Debug("unhandled event", "event", fmt.Sprintf("%T", ev))
	}
	return nil
}

func (m *Model) messageReceived(ev chat.MessageReceived) tea.Cmd {
	cv, _ := m.eventConv(ev.Group)
	if ev.Nick != "" {
		m.heardNick(cv, ev.Sender, ev.Nick)
	}
	e := messages.Entry{
		Kind: messages.Text, Time: ev.Time, From: m.nameOf(cv, ev.Sender, ev.Nick), Key: ev.Sender.String(),
		Text: ev.Text, Late: ev.Late, Resent: ev.Resent, Own: ev.Sender == m.self,
	}
	e.Mention = !e.Own && mentions(ev.Text, m.nick)
	cv.buf.Append(e)
	if cv != m.current() {
		cv.unread++
		cv.mention = cv.mention || e.Mention
		m.refreshList()
	}
	if e.Mention && m.opts.UI.Bell {
		return tea.Raw("\a")
	}
	return nil
}

// eventConv returns the conversation of an event's group, adding it if it is new (and
// saying so), once the groups saved in the profile are loaded.
func (m *Model) eventConv(id chat.GroupID) (cv *conversation, isNew bool) {
	if cv := m.conv(id); cv != nil {
		return cv, false
	}
	return m.ensureConv(id, ""), m.loaded
}

// announceJoin says once that we joined cv, when its state has come.
func (m *Model) announceJoin(cv *conversation) {
	if !cv.announce || cv.announced || !cv.hasState {
		return
	}
	cv.announce, cv.announced = false, true
	cv.buf.Append(messages.Entry{Kind: messages.Join, Time: m.c.Now(), Text: fmt.Sprintf("you joined %s · epoch %d", cv.name, cv.state.Epoch)})
	if cv != m.current() {
		cv.unread++
		m.refreshList()
		where := "Ctrl+N goes there"
		if i := slices.Index(m.convs, cv); i < 9 {
			where = fmt.Sprintf("Alt+%d or Ctrl+N goes there", i+1)
		}
		m.note(nil, messages.Join, fmt.Sprintf("you joined %s: %s", cv.name, where))
	}
}

// membership shows a change of the group's members or name. The epoch line just before
// it, of the same epoch, is replaced: the line names the epoch. It returns the line's ID.
func (m *Model) membership(cv *conversation, epoch uint64, kind messages.Kind, text string) string {
	id := m.lineID("member")
	text = fmt.Sprintf("%s · epoch %d", text, epoch)
	if cv.buf.UpdateLast(epochID(epoch), func(e *messages.Entry) { e.Kind, e.Text, e.ID = kind, text, id }) {
		return id
	}
	cv.buf.Append(messages.Entry{Kind: kind, Time: m.c.Now(), Text: text, ID: id})
	return id
}

// lineID returns a new ID for a line that may change after it is shown.
func (m *Model) lineID(kind string) string {
	m.lineSeq++
	return fmt.Sprintf("%s-%d", kind, m.lineSeq)
}

// named puts the nickname of member p in the line that said it joined, if that line
// had only its peer id.
func (m *Model) named(cv *conversation, p peer.ID, nick string) {
	id, ok := cv.unnamed[p]
	if !ok || nick == "" {
		return
	}
	delete(cv.unnamed, p)
	cv.buf.Update(id, func(e *messages.Entry) {
		e.Text = strings.Replace(e.Text, shortID(p), nick, 1)
	})
}

// setOnline updates a member's online mark from PeerOnline and PeerOffline; the roster
// follows without asking the core.
func (m *Model) setOnline(id chat.GroupID, p peer.ID, online bool) tea.Cmd {
	cv := m.conv(id)
	if cv == nil {
		return nil
	}
	for i := range cv.state.Members {
		if cv.state.Members[i].Peer == p {
			cv.state.Members[i].Online = online
			m.stateChanged(cv)
			return nil
		}
	}
	return m.refreshGroup(cv) // a member we have not seen yet
}

// heardNick records the nickname a member gave, and says so when a member we knew by
// another nickname changed it.
func (m *Model) heardNick(cv *conversation, p peer.ID, nick string) {
	if p == m.self {
		return
	}
	for i := range cv.state.Members {
		mem := &cv.state.Members[i]
		if mem.Peer != p || mem.Nick == nick {
			continue
		}
		if mem.Nick != "" {
			m.note(cv, messages.System, fmt.Sprintf("%s is now known as %s", mem.Nick, nick))
		}
		m.named(cv, p, nick)
		mem.Nick = nick
		m.stateChanged(cv)
	}
	cv.names[p] = nick
}

// stateChanged shows what changed in cv's state, where it is shown.
func (m *Model) stateChanged(cv *conversation) {
	m.refreshList()
	if cv == m.current() {
		m.refreshRoster()
		m.refreshTitle()
		m.placeholder()
	}
}

// expireSync drops catch-ups that stopped reporting.
func (m *Model) expireSync() tea.Cmd {
	changed := false
	for _, cv := range m.convs {
		if cv.syncing != nil && time.Since(cv.syncAt) > syncStale {
			cv.syncing = nil
			changed = true
			m.stateChanged(cv)
		}
	}
	if changed {
		return m.updateStatus()
	}
	return nil
}

func (m *Model) setInactive(cv *conversation) {
	cv.inactive, cv.gone = true, true
	cv.state.Active = false
	m.stateChanged(cv)
}

func epochID(epoch uint64) string { return fmt.Sprintf("epoch-%d", epoch) }
func forkID(epoch uint64) string  { return fmt.Sprintf("fork-%d", epoch) }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// explain words an error of the chat core for the user; the log keeps the details.
func explain(err error) string {
	switch {
	case errors.Is(err, chat.ErrNotMember):
		return "you are no longer a member of this group"
	case errors.Is(err, chat.ErrAlreadyIn):
		return "already a member of this group"
	case errors.Is(err, chat.ErrUnknownGroup):
		return "this profile does not know that group"
	case errors.Is(err, chat.ErrUnreachable):
		return "the peer could not be reached: it may be offline, or on a network this one cannot reach"
	case errors.Is(err, chat.ErrClosed):
		return "the chat core stopped; restart tchat"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time; the network may be down, try again"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return strings.TrimPrefix(err.Error(), "chat: ")
}
