package tui

import (
	"fmt"

	tea "charm.land/bubbletea/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/tui/components/messages"
)

// historyEntry turns a stored message into a line; names are filled in by the caller.
func historyEntry(h chat.Message, self peer.ID) messages.Entry {
	return messages.Entry{
		Kind: messages.Text, Time: h.Time, Key: string(h.Sender), Text: h.Text,
		Own: h.Own || h.Sender == self, Late: h.Late, Resent: h.Resent,
	}
}

// handleEvent shows an event of the chat core.
func (m *Model) handleEvent(ev chat.Event) tea.Cmd {
	now := m.c.Now()
	sys := func(cv *conversation, kind messages.Kind, text string) {
		cv.buf.Append(messages.Entry{Kind: kind, Time: now, Text: text})
	}
	switch ev := ev.(type) {
	case chat.MessageReceived:
		cv := m.ensureConv(ev.Group, "")
		e := messages.Entry{
			Kind: messages.Text, Time: ev.Time, From: m.nameOf(cv, ev.Sender, ev.Nick), Key: ev.Sender.String(),
			Text: ev.Text, Late: ev.Late, Resent: ev.Resent, Own: ev.Sender == m.self,
		}
		e.Mention = !e.Own && mentions(ev.Text, m.nick)
		cv.buf.Append(e)
		var cmd tea.Cmd
		if cv != m.current() {
			cv.unread++
			cv.mention = cv.mention || e.Mention
			m.refreshList()
		}
		if e.Mention && m.opts.UI.Bell {
			cmd = tea.Raw("\a")
		}
		return cmd
	case chat.MemberJoined:
		cv := m.ensureConv(ev.Group, "")
		verb := "joined"
		if ev.Member == m.self {
			verb = "joined the group"
		}
		sys(cv, messages.Join, fmt.Sprintf("%s %s · epoch %d", m.nameOf(cv, ev.Member, ""), verb, ev.Epoch))
		return m.refreshGroup(cv)
	case chat.MemberLeft:
		cv := m.ensureConv(ev.Group, "")
		if ev.Member == m.self {
			// The core reports our own removal as MemberLeft naming us.
			m.setInactive(cv)
			sys(cv, messages.Leave, fmt.Sprintf("you are no longer a member of %s · epoch %d", cv.name, ev.Epoch))
			return m.refreshGroup(cv)
		}
		name := m.nameOf(cv, ev.Member, "")
		if cv.removing[ev.Member] {
			delete(cv.removing, ev.Member)
			sys(cv, messages.Leave, fmt.Sprintf("%s was removed by %s · epoch %d", name, m.selfName(), ev.Epoch))
		} else {
			sys(cv, messages.Leave, fmt.Sprintf("%s left · epoch %d", name, ev.Epoch))
		}
		return m.refreshGroup(cv)
	case chat.MemberRemoved:
		cv := m.ensureConv(ev.Group, "")
		delete(cv.removing, ev.Member)
		by := m.nameOf(cv, ev.By, "")
		if ev.Member == m.self {
			m.setInactive(cv)
			sys(cv, messages.Leave, fmt.Sprintf("you were removed from %s by %s · epoch %d", cv.name, by, ev.Epoch))
		} else {
			sys(cv, messages.Leave, fmt.Sprintf("%s was removed by %s · epoch %d", m.nameOf(cv, ev.Member, ""), by, ev.Epoch))
		}
		return m.refreshGroup(cv)
	case chat.GroupRenamed:
		cv := m.ensureConv(ev.Group, "")
		sys(cv, messages.System, fmt.Sprintf("%s renamed the group to %s · epoch %d", m.nameOf(cv, ev.By, ""), ev.Name, ev.Epoch))
		cv.name = ev.Name
		m.refreshList()
		m.refreshTitle()
		return m.refreshGroup(cv)
	case chat.EpochChanged:
		cv := m.ensureConv(ev.Group, "")
		text := fmt.Sprintf("epoch %d", ev.Epoch)
		if len(ev.Authenticator) > 0 {
			text += fmt.Sprintf(" · authenticator %x", ev.Authenticator[:min(4, len(ev.Authenticator))])
		}
		sys(cv, messages.System, text)
		return m.refreshGroup(cv)
	case chat.PeerOnline:
		return m.refreshGroup(m.conv(ev.Group))
	case chat.PeerOffline:
		return m.refreshGroup(m.conv(ev.Group))
	case chat.SyncProgress:
		cv := m.ensureConv(ev.Group, "")
		p := ev
		cv.syncing = &p
		if ev.Done {
			sys(cv, messages.System, fmt.Sprintf("caught up from %s: %d commits, %d messages", m.nameOf(cv, ev.Peer, ""), ev.Commits, ev.Messages))
			cv.syncing = nil
		}
		m.refreshList()
		return tea.Batch(m.updateStatus(), m.refreshGroup(cv))
	case chat.ForkDetected:
		cv := m.ensureConv(ev.Group, "")
		sys(cv, messages.Error, fmt.Sprintf("%s is on another branch of the group's history at epoch %d; resolving", m.nameOf(cv, ev.Peer, ""), ev.Epoch))
		return nil
	case chat.ForkResolved:
		cv := m.ensureConv(ev.Group, "")
		how := map[string]string{"kept": "our branch won", "switched": "moved to the winning branch", "rejoined": "rejoined by external commit"}[ev.How]
		if how == "" {
			how = ev.How
		}
		sys(cv, messages.System, fmt.Sprintf("fork resolved at epoch %d: %s", ev.Epoch, how))
		return m.refreshGroup(cv)
	case chat.Error:
		cv := m.conv(ev.Group)
		if cv == nil {
			cv = m.convs[0]
		}
		m.log.Warn("chat error", "group", ev.Group, "err", ev.Err)
		sys(cv, messages.Error, ev.Err.Error())
		return nil
	default:
		m.log.Debug("unhandled event", "event", fmt.Sprintf("%T", ev))
	}
	return nil
}

func (m *Model) setInactive(cv *conversation) {
	cv.inactive = true
	m.refreshList()
	if cv == m.current() {
		m.switchTo(m.cur) // placeholder and title
	}
}
