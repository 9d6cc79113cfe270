package tui

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/tui/components/messages"
)

// Timeouts of the operations that wait on the network.
const (
	joinTimeout = 2 * time.Minute
	opTimeout   = time.Minute
)

// command is one slash command.
type command struct {
	name, args, summary string
	// group: the command works on the current conversation, which must be a group.
	group bool
	// members: the first argument names a member (for Tab).
	members bool
	run     func(m *Model, cv *conversation, args []string, rest string) tea.Cmd
}

var commandTable []command

func init() {
	commandTable = []command{
		{name: "help", args: "[COMMAND]", summary: "list the commands and keys, or explain one command", run: (*Model).cmdHelp},
		{name: "create", args: "NAME [--policy LAYERS]", summary: "start a group; LAYERS e.g. signal,mls,aes (default) or mls,aes for large groups", run: (*Model).cmdCreate},
		{name: "invite", args: "[--uses N] [--ttl 24h]", summary: "make an invite token for the current group (copied to the clipboard where the terminal allows)", group: true, run: (*Model).cmdInvite},
		{name: "join", args: "TOKEN", summary: "join a group with an invite token", run: (*Model).cmdJoin},
		{name: "add", args: "PEER", summary: "add a known peer (peer id or /ip4/…/p2p/ID address) to the current group", group: true, run: (*Model).cmdAdd},
		{name: "remove", args: "NAME", summary: "remove a member from the current group", group: true, members: true, run: (*Model).cmdRemove},
		{name: "leave", summary: "leave the current group (its history stays)", group: true, run: (*Model).cmdLeave},
		{name: "rename", args: "NAME", summary: "rename the current group for every member", group: true, run: (*Model).cmdRename},
		{name: "nick", args: "NAME", summary: "set the nickname sent with your messages", run: (*Model).cmdNick},
		{name: "id", summary: "show your peer id and addresses, which others give to /add", run: (*Model).cmdID},
		{name: "verify", args: "NAME [yes]", summary: "show the safety number with a member; with yes, mark the member verified", group: true, members: true, run: (*Model).cmdVerify},
		{name: "unverify", args: "NAME", summary: "clear a member's verified mark", group: true, members: true, run: (*Model).cmdUnverify},
		{name: "layers", summary: "show the current group's cipher layers, suite and epoch", group: true, run: (*Model).cmdLayers},
		{name: "history", args: "TEXT", summary: "search the current conversation's stored history", group: true, run: (*Model).cmdHistory},
		{name: "mouse", summary: "capture the mouse or give it back to the terminal (F4)", run: (*Model).cmdMouse},
		{name: "quit", summary: "quit tchat (Ctrl+C)", run: func(m *Model, _ *conversation, _ []string, _ string) tea.Cmd {
			m.quit = true
			m.cancel()
			return tea.Quit
		}},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commandTable {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// submit handles a line the user sent: a command, or a message to the current group.
func (m *Model) submit(text string) tea.Cmd {
	cv := m.current()
	if strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//") {
		line := strings.TrimSpace(text[1:])
		name, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		c, ok := lookup(strings.ToLower(name))
		if !ok {
			m.note(cv, messages.Error, fmt.Sprintf("unknown command /%s; /help lists them", name))
			return nil
		}
		if c.group && cv.id == "" {
			m.note(cv, messages.Error, fmt.Sprintf("/%s works in a group: switch to one (Alt+2, Ctrl+N) or /create one", c.name))
			return nil
		}
		return c.run(m, cv, strings.Fields(rest), rest)
	}
	if strings.HasPrefix(text, "//") {
		text = text[1:] // "//x" sends "/x"
	}
	return m.send(cv, text)
}

func (m *Model) send(cv *conversation, text string) tea.Cmd {
	switch {
	case cv.id == "":
		m.note(cv, messages.Error, "this is tchat's home, not a group: /create NAME or /join TOKEN first, or switch with Ctrl+N")
		return nil
	case cv.inactive:
		m.note(cv, messages.Error, "you are no longer a member of "+cv.name)
		return nil
	}
	id := m.lineID("local")
	cv.buf.Append(messages.Entry{Kind: messages.Text, Time: m.c.Now(), From: m.selfName(), Key: m.self.String(),
		Text: text, Own: true, Pending: true, ID: id})
	m.msgs.ScrollDown(1 << 30)
	b, ctx, gid := m.backend, m.ctx, cv.id
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		sent, err := b.Send(ctx, gid, text)
		// A message with an id is in the history and the outbox: the members get it
		// even when publishing it failed.
		saved := sent.ID != ""
		return doneMsg{group: gid, then: func(m *Model) tea.Cmd {
			c := m.conv(gid)
			if c == nil {
				return nil
			}
			c.buf.Update(id, func(e *messages.Entry) {
				e.Pending = false
				e.Failed = !saved
			})
			switch {
			case err != nil && saved:
				m.log.Warn("send", "group", gid, "err", err)
				m.note(c, messages.Info, "the message is saved but did not go out yet; the members will fetch it")
			case err != nil:
				m.note(c, messages.Error, "not sent: "+explain(err))
			}
			return nil
		}}
	}
}

// async runs f outside the event loop behind the spinner (what: "joining x"), and
// reports its lines and error in conversation gid.
func (m *Model) async(what string, gid chat.GroupID, timeout time.Duration, f func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error)) tea.Cmd {
	op, spin := m.startBusy(what)
	ctx := m.ctx
	run := func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		lines, then, err := f(ctx)
		return doneMsg{op: op, group: gid, lines: lines, err: err, then: then}
	}
	return tea.Batch(spin, run)
}

func (m *Model) info(text string) messages.Entry {
	return messages.Entry{Kind: messages.Info, Time: m.c.Now(), Text: text}
}

func (m *Model) cmdHelp(cv *conversation, args []string, _ string) tea.Cmd {
	m.showHelp(strings.Join(args, " "))
	return nil
}

// showHelp lists the commands and keys in the current conversation, or explains one
// command.
func (m *Model) showHelp(which string) {
	cv := m.current()
	if which != "" {
		c, ok := lookup(strings.TrimPrefix(strings.ToLower(which), "/"))
		if !ok {
			m.note(cv, messages.Error, "no command /"+which)
			return
		}
		cv.buf.Append(m.info(fmt.Sprintf("/%s %s — %s", c.name, c.args, c.summary)))
		return
	}
	lines := []messages.Entry{m.info("Commands (Tab completes):")}
	for _, c := range commandTable {
		lines = append(lines, m.info(fmt.Sprintf("  /%-9s %-22s %s", c.name, c.args, c.summary)))
	}
	lines = append(lines, m.info("Keys:"))
	for _, group := range m.c.Keys.FullHelp() {
		var parts []string
		for _, b := range group {
			h := b.Help()
			parts = append(parts, h.Key+" "+h.Desc)
		}
		lines = append(lines, m.info("  "+strings.Join(parts, " · ")))
	}
	lines = append(lines, m.info("  shift+enter, ctrl+j also add a line · alt+1…9 go to a conversation · //text sends /text"))
	cv.buf.Append(lines...)
	m.msgs.ScrollDown(1 << 30)
}

func (m *Model) cmdCreate(cv *conversation, args []string, _ string) tea.Cmd {
	var name []string
	policy := m.opts.Chat.Policy
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--policy" && i+1 < len(args):
			policy = args[i+1]
			i++
		case strings.HasPrefix(args[i], "--policy="):
			policy = strings.TrimPrefix(args[i], "--policy=")
		default:
			name = append(name, args[i])
		}
	}
	if len(name) == 0 {
		m.note(cv, messages.Error, "usage: /create NAME [--policy LAYERS]")
		return nil
	}
	gname := strings.Join(name, " ")
	b := m.backend
	return m.async("creating "+gname, "", opTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
		id, err := b.CreateGroupWith(chat.GroupOptions{Name: gname, Policy: policy})
		if err != nil {
			return nil, nil, fmt.Errorf("cannot create %s: %s", gname, explain(err))
		}
		return nil, func(m *Model) tea.Cmd {
			c := m.ensureConv(id, gname)
			m.switchTo(slices.Index(m.convs, c))
			c.buf.Append(m.info("created " + gname + "; /invite makes a token for others to join"))
			return m.refreshGroup(c)
		}, nil
	})
}

func (m *Model) cmdInvite(cv *conversation, args []string, _ string) tea.Cmd {
	ttl := time.Duration(m.opts.Chat.InviteTTL)
	uses := m.opts.Chat.InviteUses
	for i := 0; i < len(args); i++ {
		if i+1 >= len(args) {
			m.note(cv, messages.Error, "usage: /invite [--uses N] [--ttl DURATION]")
			return nil
		}
		var err error
		switch args[i] {
		case "--uses":
			uses, err = strconv.Atoi(args[i+1])
			if err == nil && uses < 0 {
				err = errors.New("negative")
			}
		case "--ttl":
			ttl, err = time.ParseDuration(args[i+1])
			if err == nil && ttl <= 0 {
				err = errors.New("not positive")
			}
		default:
			err = errors.New("unknown option")
		}
		if err != nil {
			m.note(cv, messages.Error, fmt.Sprintf("/invite %s %s: %v", args[i], args[i+1], err))
			return nil
		}
		i++
	}
	if ttl <= 0 {
		ttl = chat.DefaultInviteTTL
	}
	b, gid, name, now := m.backend, cv.id, cv.name, m.c.Now()
	return m.async("making an invite", gid, opTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
		token, err := b.InviteWith(gid, ttl, uses)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot make an invite: %s", explain(err))
		}
		usesText := "any number of people"
		if uses == 1 {
			usesText = "one person"
		} else if uses > 1 {
			usesText = fmt.Sprintf("%d people", uses)
		}
		head := fmt.Sprintf("Invite to %s for %s, valid until %s. Send it over a channel you trust; they type /join and the token:", name, usesText, now.Add(ttl).Format("Jan 2 15:04"))
		return []messages.Entry{{Kind: messages.Info, Time: now, Text: head}, {Kind: messages.Info, Time: now, Text: token}},
			func(m *Model) tea.Cmd {
				m.reveal = &reveal{title: "Invite token for " + name, note: head, text: token,
					foot: "Copied to the clipboard where the terminal allows it (OSC 52). Select it with the mouse, or Esc to close."}
				return tea.SetClipboard(token)
			}, nil
	})
}

func (m *Model) cmdJoin(cv *conversation, _ []string, rest string) tea.Cmd {
	if rest == "" {
		m.note(cv, messages.Error, "usage: /join TOKEN (the tchat1… token an inviter gave you)")
		return nil
	}
	inv, err := chat.ParseInvite(rest)
	if err == nil {
		err = inv.Check(m.c.Now())
	}
	if err != nil {
		m.note(cv, messages.Error, explain(err))
		return nil
	}
	b, token, name := m.backend, rest, inv.Name
	gid := chat.GroupID(hex.EncodeToString(inv.GroupID))
	if c := m.conv(gid); c != nil && !c.inactive {
		m.switchTo(slices.Index(m.convs, c))
		m.note(c, messages.Info, "you are already a member of "+c.name)
		return nil
	}
	return m.async("joining "+name, "", joinTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
		id, err := b.Join(ctx, token)
		switch {
		case errors.Is(err, chat.ErrAlreadyIn):
			return nil, func(m *Model) tea.Cmd {
				c := m.ensureConv(gid, name)
				m.switchTo(slices.Index(m.convs, c))
				if c.inactive {
					m.note(c, messages.Error, "cannot join "+c.name+" again while tchat still holds the group you left; restart tchat first")
				} else {
					m.note(c, messages.Info, "you are already a member of "+c.name)
				}
				return m.refreshGroup(c)
			}, nil
		case errors.Is(err, chat.ErrUnreachable):
			m.log.Warn("join", "err", err)
			return nil, nil, fmt.Errorf("cannot join %s: the inviter could not be reached; it must be online, and reachable from this network, to let you in", name)
		case err != nil:
			return nil, nil, fmt.Errorf("cannot join %s: %s", name, explain(err))
		}
		return nil, func(m *Model) tea.Cmd {
			c := m.ensureConv(id, name)
			if c.state.Name == "" {
				c.name = name
			}
			m.switchTo(slices.Index(m.convs, c))
			c.announce = !c.announced
			return m.refreshGroup(c)
		}, nil
	})
}

func (m *Model) cmdAdd(cv *conversation, args []string, _ string) tea.Cmd {
	if len(args) != 1 {
		m.note(cv, messages.Error, "usage: /add PEER (a peer id, or an address ending in /p2p/PEER)")
		return nil
	}
	var ai peer.AddrInfo
	if strings.HasPrefix(args[0], "/") {
		p, err := peer.AddrInfoFromString(args[0])
		if err != nil {
			m.note(cv, messages.Error, "/add: "+err.Error())
			return nil
		}
		ai = *p
	} else {
		id, err := peer.Decode(args[0])
		if err != nil {
			m.note(cv, messages.Error, "/add: not a peer id: "+err.Error())
			return nil
		}
		ai.ID = id
	}
	b, gid := m.backend, cv.id
	short := shortID(ai.ID)
	return m.async("adding "+short, gid, joinTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
		// The MemberJoined event shows the new member.
		switch err := b.Add(ctx, gid, ai); {
		case errors.Is(err, chat.ErrUnreachable):
			m.log.Warn("add", "err", err)
			return nil, nil, fmt.Errorf("cannot add %s: it could not be reached; give its address (/add /ip4/…/p2p/PEER) or ask it for an invite instead", short)
		case errors.Is(err, chat.ErrAlreadyIn):
			return nil, nil, fmt.Errorf("%s is already a member", short)
		case err != nil:
			return nil, nil, fmt.Errorf("cannot add %s: %s", short, explain(err))
		}
		return nil, nil, nil
	})
}

func (m *Model) cmdRemove(cv *conversation, args []string, rest string) tea.Cmd {
	if rest == "" {
		m.note(cv, messages.Error, "usage: /remove NAME")
		return nil
	}
	mem, err := m.resolveMember(cv, rest)
	if err != nil {
		m.note(cv, messages.Error, err.Error())
		return nil
	}
	if mem.Self {
		m.note(cv, messages.Error, "to remove yourself, /leave")
		return nil
	}
	b, gid, name := m.backend, cv.id, m.memberName(mem)
	return m.async("removing "+name, gid, opTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
		// The MemberRemoved event says it.
		if err := b.Remove(ctx, gid, mem.Peer); err != nil {
			return nil, nil, fmt.Errorf("cannot remove %s: %s", name, explain(err))
		}
		return nil, nil, nil
	})
}

func (m *Model) cmdLeave(cv *conversation, _ []string, _ string) tea.Cmd {
	if cv.inactive {
		m.note(cv, messages.Error, "you are no longer a member of "+cv.name)
		return nil
	}
	b, gid, name := m.backend, cv.id, cv.name
	return m.async("leaving "+name, gid, opTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
		if err := b.Leave(ctx, gid); err != nil {
			return nil, nil, fmt.Errorf("cannot leave %s: %s", name, explain(err))
		}
		// Left: the MemberLeft event naming us, sent before Leave returns, says so with
		// the epoch. Should it not come, say it anyway.
		return nil, func(m *Model) tea.Cmd {
			return tea.Tick(leftGrace, func(time.Time) tea.Msg { return leftMsg{gid} })
		}, nil
	})
}

// leftGrace is how long the MemberLeft event naming us has, after Leave returned, to
// come before the interface says we left without it.
const leftGrace = 2 * time.Second

// leftMsg: Leave returned leftGrace ago.
type leftMsg struct{ id chat.GroupID }

func (m *Model) left(msg leftMsg) tea.Cmd {
	c := m.conv(msg.id)
	if c == nil || c.gone {
		return nil
	}
	m.note(c, messages.Leave, "you left "+c.name)
	m.setInactive(c)
	return m.refreshGroup(c)
}

func (m *Model) cmdRename(cv *conversation, _ []string, rest string) tea.Cmd {
	if rest == "" {
		m.note(cv, messages.Error, "usage: /rename NAME")
		return nil
	}
	if rest == cv.name {
		m.note(cv, messages.Error, "the group is already called "+rest)
		return nil
	}
	b, gid, name := m.backend, cv.id, cv.name
	return m.async("renaming "+cv.name, gid, opTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
		// The GroupRenamed event says it.
		if err := b.Rename(ctx, gid, rest); err != nil {
			return nil, nil, fmt.Errorf("cannot rename %s: %s", name, explain(err))
		}
		return nil, nil, nil
	})
}

// setNick sets the nickname of the configuration (or --nick) at start; old is the
// profile's, kept if the new one is refused.
func (m *Model) setNick(nick, old string) tea.Cmd {
	b, ctx := m.backend, m.ctx
	return func() tea.Msg {
		if err := b.SetNick(ctx, nick); err != nil {
			return doneMsg{err: fmt.Errorf("cannot use the nickname %q of the configuration: %s", nick, explain(err)),
				then: func(m *Model) tea.Cmd {
					m.nick = old
					m.refreshRoster()
					return nil
				}}
		}
		return doneMsg{then: func(m *Model) tea.Cmd {
			m.refreshRoster()
			return nil
		}}
	}
}

func (m *Model) cmdNick(cv *conversation, _ []string, rest string) tea.Cmd {
	if rest == "" {
		m.note(cv, messages.Info, "your nickname is "+m.selfName()+"; /nick NAME changes it")
		return nil
	}
	b, ctx := m.backend, m.ctx
	return func() tea.Msg {
		if err := b.SetNick(ctx, rest); err != nil {
			return doneMsg{err: fmt.Errorf("cannot set the nickname: %s", explain(err))}
		}
		return doneMsg{then: func(m *Model) tea.Cmd {
			m.nick = rest
			m.note(nil, messages.Info, "you are now "+rest)
			m.refreshRoster()
			return nil
		}}
	}
}

func (m *Model) cmdID(cv *conversation, _ []string, _ string) tea.Cmd {
	lines := []messages.Entry{m.info(m.whoami())}
	if len(m.net.Addrs) == 0 {
		lines = append(lines, m.info("No listen addresses yet."))
	} else {
		lines = append(lines, m.info("Others can add you to a group with /add and one of:"))
		for _, a := range m.net.Addrs {
			lines = append(lines, m.info(a+"/p2p/"+m.self.String()))
		}
	}
	cv.buf.Append(lines...)
	m.msgs.ScrollDown(1 << 30)
	return nil
}

func (m *Model) cmdVerify(cv *conversation, args []string, rest string) tea.Cmd {
	if len(args) == 0 {
		m.note(cv, messages.Error, "usage: /verify NAME [yes]")
		return nil
	}
	confirm := false
	if len(args) > 1 && strings.EqualFold(args[len(args)-1], "yes") {
		confirm = true
		rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(rest, args[len(args)-1]), " "))
	}
	mem, err := m.resolveMember(cv, rest)
	if err != nil {
		m.note(cv, messages.Error, err.Error())
		return nil
	}
	if mem.Self {
		m.note(cv, messages.Error, "that is you; verify the others")
		return nil
	}
	name := m.memberName(mem)
	b, gid := m.backend, cv.id
	if confirm {
		return m.async("verifying "+name, gid, opTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
			if err := b.Verify(ctx, mem.Peer); err != nil {
				return nil, nil, fmt.Errorf("cannot verify %s: %s", name, explain(err))
			}
			return []messages.Entry{{Kind: messages.Info, Time: time.Now(), Text: name + " is verified ✓ (bound to this identity key)"}},
				func(m *Model) tea.Cmd { return m.refreshGroup(m.conv(gid)) }, nil
		})
	}
	sn, err := b.SafetyNumber(mem.Peer)
	if err != nil {
		m.note(cv, messages.Error, explain(err))
		return nil
	}
	cv.buf.Append(
		m.info("Safety number with "+name+" (fingerprint "+mem.Fingerprint+"):"),
		m.info(sn),
		m.info("Compare it with what "+name+" sees, in person or over another channel you trust. If every digit matches: /verify "+name+" yes"),
	)
	return nil
}

func (m *Model) cmdUnverify(cv *conversation, _ []string, rest string) tea.Cmd {
	mem, err := m.resolveMember(cv, rest)
	if err != nil {
		m.note(cv, messages.Error, err.Error())
		return nil
	}
	b, gid, name := m.backend, cv.id, m.memberName(mem)
	return m.async("unverifying "+name, gid, opTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
		if err := b.Unverify(ctx, mem.Peer); err != nil {
			return nil, nil, fmt.Errorf("cannot unverify %s: %s", name, explain(err))
		}
		return []messages.Entry{{Kind: messages.Info, Time: time.Now(), Text: name + " is no longer marked verified"}},
			func(m *Model) tea.Cmd { return m.refreshGroup(m.conv(gid)) }, nil
	})
}

// layerNotes explain each layer in one line.
var layerNotes = map[string]string{
	"mlkem":  "ML-KEM-768 (FIPS 203) to each recipient's key: post-quantum",
	"signal": "Signal: PQXDH handshake, Double Ratchet, Sender Keys in groups",
	"mls":    "MLS (RFC 9420) PrivateMessage of the current epoch",
	"aes":    "AES-256-GCM with the room secret from the invite",
}

func (m *Model) cmdLayers(cv *conversation, _ []string, _ string) tea.Cmd {
	if !cv.hasState {
		m.note(cv, messages.Error, "the group's state is not loaded yet")
		return nil
	}
	s := cv.state
	lines := []messages.Entry{m.info(fmt.Sprintf("%s: messages pass through %s (inner to outer); handshakes through mls,aes", cv.name, s.Policy))}
	for _, l := range strings.Split(s.Policy, ",") {
		lines = append(lines, m.info(fmt.Sprintf("  %-6s %s", l, layerNotes[l])))
	}
	lines = append(lines, m.info(fmt.Sprintf("MLS cipher suite 0x%04x %s · epoch %d · authenticator %x", uint16(s.Suite), s.SuiteName, s.Epoch, s.Authenticator)))
	cv.buf.Append(lines...)
	return nil
}

// maxSearch bounds the results of /history.
const maxSearch = 50

func (m *Model) cmdHistory(cv *conversation, _ []string, rest string) tea.Cmd {
	if rest == "" {
		m.note(cv, messages.Error, "usage: /history TEXT")
		return nil
	}
	b, gid := m.backend, cv.id
	q := strings.ToLower(rest)
	return m.async("searching "+cv.name, gid, opTimeout, func(ctx context.Context) ([]messages.Entry, func(*Model) tea.Cmd, error) {
		var found []chat.Message
		total := 0
		for before := int64(0); ; {
			page, next, err := b.History(ctx, gid, before, 500)
			if err != nil {
				return nil, nil, fmt.Errorf("cannot search the history: %s", explain(err))
			}
			for i := len(page) - 1; i >= 0; i-- {
				if strings.Contains(strings.ToLower(page[i].Text), q) {
					total++
					if len(found) < maxSearch {
						found = append(found, page[i])
					}
				}
			}
			if next == 0 || len(page) == 0 {
				break
			}
			before = next
		}
		return nil, func(m *Model) tea.Cmd {
			c := m.conv(gid)
			if c == nil {
				return nil
			}
			head := fmt.Sprintf("%d messages match %q", total, rest)
			if total > maxSearch {
				head += fmt.Sprintf(" (the newest %d shown)", maxSearch)
			}
			c.buf.Append(m.info(head))
			for i := len(found) - 1; i >= 0; i-- {
				e := m.historyEntry(c, found[i])
				c.buf.Append(m.info(fmt.Sprintf("  %s %s: %s", e.Time.Local().Format("Jan 2 15:04"), e.From, e.Text)))
			}
			return nil
		}, nil
	})
}

func (m *Model) cmdMouse(_ *conversation, _ []string, _ string) tea.Cmd {
	m.mouse = !m.mouse
	return m.updateStatus()
}

// resolveMember finds the member of cv that arg names: its display name (with or
// without "~"), its peer id or a unique prefix or suffix of it (4 characters or more), or
// a unique prefix of its fingerprint.
func (m *Model) resolveMember(cv *conversation, arg string) (chat.Member, error) {
	arg = strings.TrimSpace(strings.TrimPrefix(arg, "@"))
	if arg == "" {
		return chat.Member{}, errors.New("name a member")
	}
	ms := cv.state.Members
	for _, mem := range ms {
		name := m.memberName(mem)
		if strings.EqualFold(name, arg) || strings.EqualFold(strings.TrimPrefix(name, "~"), arg) || string(mem.Peer) == arg || mem.Peer.String() == arg {
			return mem, nil
		}
	}
	var hits []chat.Member
	if len(arg) >= 4 {
		fp := strings.ReplaceAll(strings.ToLower(arg), " ", "")
		for _, mem := range ms {
			s := mem.Peer.String()
			if strings.HasPrefix(s, arg) || strings.HasSuffix(s, arg) ||
				strings.HasPrefix(strings.ReplaceAll(mem.Fingerprint, " ", ""), fp) {
				hits = append(hits, mem)
			}
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return chat.Member{}, fmt.Errorf("no member %q in %s (Tab completes names)", arg, cv.name)
	}
	var names []string
	for _, h := range hits {
		names = append(names, m.memberName(h))
	}
	return chat.Member{}, fmt.Errorf("%q could be %s", arg, strings.Join(names, ", "))
}

// completer completes command names, then member names.
func (m *Model) completer(before, word string) []string {
	var out []string
	if before == "" && strings.HasPrefix(word, "/") {
		for _, c := range commandTable {
			if strings.HasPrefix("/"+c.name, strings.ToLower(word)) {
				out = append(out, "/"+c.name)
			}
		}
		return out
	}
	fields := strings.Fields(before)
	if len(fields) == 1 && strings.HasPrefix(fields[0], "/") {
		name := strings.ToLower(fields[0][1:])
		if name == "help" {
			for _, c := range commandTable {
				if strings.HasPrefix(c.name, strings.TrimPrefix(word, "/")) {
					out = append(out, c.name)
				}
			}
			return out
		}
		if c, ok := lookup(name); ok && c.members {
			return m.memberCompletions(word, name == "remove" || name == "verify" || name == "unverify")
		}
		return nil
	}
	if strings.HasPrefix(before, "/") || word == "" {
		return nil
	}
	at := strings.HasPrefix(word, "@")
	out = m.memberCompletions(strings.TrimPrefix(word, "@"), true)
	if at {
		for i := range out {
			out[i] = "@" + out[i]
		}
	}
	return out
}

func (m *Model) memberCompletions(prefix string, others bool) []string {
	cv := m.current()
	var out []string
	p := strings.ToLower(prefix)
	for _, mem := range cv.state.Members {
		if others && mem.Self {
			continue
		}
		name := m.memberName(mem)
		if strings.HasPrefix(strings.ToLower(name), p) || strings.HasPrefix(strings.ToLower(strings.TrimPrefix(name, "~")), p) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
