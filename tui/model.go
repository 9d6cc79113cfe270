package tui

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/tui/common"
	"github.com/tchat-p2p/tchat/tui/components/convlist"
	"github.com/tchat-p2p/tchat/tui/components/input"
	"github.com/tchat-p2p/tchat/tui/components/messages"
	"github.com/tchat-p2p/tchat/tui/components/roster"
	"github.com/tchat-p2p/tchat/tui/components/statusbar"
	"github.com/tchat-p2p/tchat/tui/styles"
)

type phase int

const (
	phaseUnlock   phase = iota // asking for the passphrase
	phaseStarting              // Open is running
	phaseChat                  // the chat
)

// conversation is one entry of the conversation list: a group, or the home buffer
// (id "") where tchat's own messages go.
type conversation struct {
	id       chat.GroupID
	name     string
	state    chat.GroupState
	hasState bool
	buf      *messages.Buffer
	unread   int
	mention  bool
	inactive bool
	// gone: a line said that we left or were removed.
	gone bool
	// syncing is the last progress of a catch-up under way (nil: none), reported at
	// syncAt.
	syncing *chat.SyncProgress
	syncAt  time.Time
	// announce: we joined this group and say so once its state has come; announced:
	// it was said.
	announce, announced bool
	// oldName is the name before the last rename, for its line.
	oldName string
	// forkEpoch and forkPeer are of the last fork detected, whose line the
	// resolution completes.
	forkEpoch uint64
	forkPeer  peer.ID
	// names remembers the members' display names, for the lines about members who
	// have left.
	names map[peer.ID]string
	// unnamed are the lines that said a member joined, by its peer id only: its
	// nickname goes there once known.
	unnamed map[peer.ID]string
	// refreshing: a state refresh is in flight; again: another was asked meanwhile.
	refreshing, again bool
}

// Model is the root model of the interface.
type Model struct {
	c    *common.Common
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	phase   phase
	unlock  unlockModel
	backend Backend
	self    peer.ID
	nick    string
	net     chat.NetStatus
	offline bool // the chat core's events stopped
	loaded  bool // the groups saved in the profile are shown

	convs []*conversation // convs[0] is the home buffer
	cur   int

	convList convlist.Model
	msgs     messages.Model
	roster   roster.Model
	input    input.Model
	status   statusbar.Model

	width, height int
	// Side panes: what the user wants where there is room, and which pane covers the
	// messages in a window too narrow to show it beside them.
	showConvs, showMembers bool
	overlay                pane
	mouse                  bool
	themeFixed             bool // ui.theme is dark or light: ignore the terminal's colour

	reveal *reveal // text shown over the panes, full width, for copying

	busy    map[int]string
	busySeq int
	lineSeq int // numbers the lines that may change (lineID)
	quit    bool
}

// reveal is text shown alone across the window so that it can be selected and copied
// (an invite token).
type reveal struct{ title, note, text, foot string }

type pane int

const (
	paneNone pane = iota
	paneConvs
	paneMembers
)

// New returns the interface's model. Run it with tea.NewProgram(m).Run().
func New(opts Options) *Model {
	c := common.New()
	if opts.Now != nil {
		c.Now = opts.Now
	}
	c.TimeFormat = opts.UI.Timestamps
	dark := opts.UI.Theme != "light"
	c.Styles = styles.New(dark)
	if opts.NetInterval <= 0 {
		opts.NetInterval = 2 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Model{
		c: c, opts: opts, log: log, ctx: ctx, cancel: cancel,
		showConvs: opts.UI.ShowConversations, showMembers: opts.UI.ShowMembers,
		mouse: opts.UI.Mouse, themeFixed: opts.UI.Theme == "dark" || opts.UI.Theme == "light",
		busy: map[int]string{},
	}
	m.convList = convlist.New(c)
	m.msgs = messages.New(c)
	m.roster = roster.New(c)
	m.input = input.New(c, m.completer)
	m.status = statusbar.New(c)
	home := &conversation{name: "tchat", buf: messages.NewBuffer()}
	m.convs = []*conversation{home}
	m.msgs.SetBuffer(home.buf)
	m.unlock = newUnlock(c, opts)
	switch {
	case opts.Backend != nil:
		m.phase = phaseChat
	case opts.Prompt == PromptNone:
		m.phase = phaseStarting
	default:
		m.phase = phaseUnlock
	}
	m.refreshList()
	return m
}

// Init starts what the current phase needs.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{tea.RequestBackgroundColor}
	switch m.phase {
	case phaseChat:
		cmds = append(cmds, m.started(m.opts.Backend))
	case phaseStarting:
		cmds = append(cmds, m.open(""))
	case phaseUnlock:
		cmds = append(cmds, m.unlock.Init())
	}
	return tea.Batch(cmds...)
}

// Close cancels what the interface still has running. The caller closes the backend.
func (m *Model) Close() { m.cancel() }

// Messages of the root model.
type (
	openedMsg struct {
		b   Backend
		err error
	}
	eventMsg        struct{ ev chat.Event }
	eventsClosedMsg struct{}
	netStatusMsg    chat.NetStatus
	netTickMsg      struct{}
	groupStateMsg   struct {
		id    chat.GroupID
		state chat.GroupState
		err   error
	}
	loadedGroup struct {
		state chat.GroupState
		msgs  []chat.Message
		err   error
	}
	groupsLoadedMsg struct{ groups []loadedGroup }
	// doneMsg ends a busy operation: lines to show, and what to do next.
	doneMsg struct {
		op    int
		group chat.GroupID // where to show the lines ("": the current conversation)
		lines []messages.Entry
		err   error
		then  func(m *Model) tea.Cmd
	}
)

func (m *Model) open(pass string) tea.Cmd {
	open := m.opts.Open
	ctx := m.ctx
	return func() tea.Msg {
		if open == nil {
			return openedMsg{err: fmt.Errorf("tui: nothing to open")}
		}
		b, err := open(ctx, pass)
		return openedMsg{b, err}
	}
}

// started switches to the chat on backend b and starts its feeds.
func (m *Model) started(b Backend) tea.Cmd {
	m.backend = b
	m.phase = phaseChat
	m.self = b.PeerID()
	m.nick = b.Nick()
	cmds := []tea.Cmd{m.waitEvent(), m.loadGroups(), m.pollNet()}
	if n := m.opts.Chat.Nick; n != "" && n != m.nick {
		cmds = append(cmds, m.setNick(n, m.nick))
		m.nick = n // the welcome names it; setNick puts the old one back if it fails
	}
	m.welcome()
	m.layout()
	return tea.Batch(cmds...)
}

func (m *Model) welcome() {
	home := m.convs[0]
	now := m.c.Now()
	info := func(s string) messages.Entry { return messages.Entry{Kind: messages.Info, Time: now, Text: s} }
	home.buf.Append(
		info("Welcome to tchat: end-to-end encrypted group chat."),
		info(m.whoami()),
		info("Type /create NAME to start a group, /join TOKEN to join one with an invite, /help for all commands."),
		info("Enter sends, Alt+Enter adds a line, Tab completes, F1 help, F2/F3 side panes, F4 mouse, Ctrl+C quits."),
	)
	if m.opts.LogFile != "" {
		home.buf.Append(info("The log is in " + m.opts.LogFile + "."))
	}
}

func (m *Model) waitEvent() tea.Cmd {
	ch := m.backend.Events()
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsClosedMsg{}
		}
		return eventMsg{ev}
	}
}

func (m *Model) pollNet() tea.Cmd {
	b := m.backend
	return func() tea.Msg { return netStatusMsg(b.NetStatus()) }
}

func (m *Model) netTick() tea.Cmd {
	return tea.Tick(m.opts.NetInterval, func(time.Time) tea.Msg { return netTickMsg{} })
}

func (m *Model) loadGroups() tea.Cmd {
	b, ctx, limit := m.backend, m.ctx, m.opts.UI.History
	return func() tea.Msg {
		var out []loadedGroup
		for _, id := range b.Groups() {
			st, err := b.Group(ctx, id)
			if err != nil {
				out = append(out, loadedGroup{state: chat.GroupState{ID: id}, err: err})
				continue
			}
			lg := loadedGroup{state: st}
			if limit > 0 {
				lg.msgs, _, lg.err = b.History(ctx, id, 0, limit)
			}
			out = append(out, lg)
		}
		return groupsLoadedMsg{out}
	}
}

func (m *Model) refreshGroup(cv *conversation) tea.Cmd {
	if cv == nil || cv.id == "" || m.backend == nil {
		return nil
	}
	if cv.refreshing {
		cv.again = true
		return nil
	}
	cv.refreshing = true
	b, ctx, id := m.backend, m.ctx, cv.id
	return func() tea.Msg {
		st, err := b.Group(ctx, id)
		return groupStateMsg{id, st, err}
	}
}

// startBusy registers an operation for the spinner and returns its number.
func (m *Model) startBusy(what string) (int, tea.Cmd) {
	m.busySeq++
	m.busy[m.busySeq] = what
	return m.busySeq, m.updateStatus()
}

func (m *Model) endBusy(op int) tea.Cmd {
	if op == 0 {
		return nil
	}
	delete(m.busy, op)
	return m.updateStatus()
}

func (m *Model) updateStatus() tea.Cmd {
	var busy []string
	for i := 1; i <= m.busySeq; i++ {
		if s, ok := m.busy[i]; ok {
			busy = append(busy, s)
		}
	}
	for _, cv := range m.convs {
		if cv.syncing != nil && !cv.syncing.Done {
			busy = append(busy, fmt.Sprintf("catching up %s (%d commits, %d messages)", cv.name, cv.syncing.Commits, cv.syncing.Messages))
		}
	}
	if m.phase == phaseStarting {
		busy = append(busy, "starting")
	}
	return m.status.Set(statusbar.State{
		PeerID:       m.self.String(),
		Connected:    m.net.Connected,
		Reachability: m.net.Reachability,
		Busy:         busy,
		Mouse:        m.mouse,
		Offline:      m.offline,
	})
}

// current returns the conversation shown.
func (m *Model) current() *conversation { return m.convs[m.cur] }

func (m *Model) conv(id chat.GroupID) *conversation {
	if id == "" {
		return m.convs[0]
	}
	for _, cv := range m.convs {
		if cv.id == id {
			return cv
		}
	}
	return nil
}

// ensureConv returns the conversation of group id, adding it to the list if need be.
func (m *Model) ensureConv(id chat.GroupID, name string) *conversation {
	if cv := m.conv(id); cv != nil {
		return cv
	}
	if name == "" {
		name = string(id)[:min(8, len(id))]
	}
	cv := &conversation{id: id, name: name, buf: messages.NewBuffer(), names: map[peer.ID]string{}, unnamed: map[peer.ID]string{}}
	m.convs = append(m.convs, cv)
	m.refreshList()
	return cv
}

// switchTo shows conversation i.
func (m *Model) switchTo(i int) {
	if i < 0 || i >= len(m.convs) {
		return
	}
	m.cur = i
	cv := m.convs[i]
	cv.unread, cv.mention = 0, false
	m.msgs.SetBuffer(cv.buf)
	m.convList.Select(i)
	m.refreshList()
	m.refreshRoster()
	m.refreshTitle()
	m.placeholder()
	if m.overlay == paneConvs {
		m.overlay = paneNone
	}
}

// placeholder sets the input's hint for the conversation shown.
func (m *Model) placeholder() {
	cv := m.current()
	switch {
	case cv.id == "":
		m.input.SetPlaceholder("/create NAME · /join TOKEN · /help")
	case cv.inactive:
		m.input.SetPlaceholder("not a member of " + cv.name + " any more")
	default:
		m.input.SetPlaceholder("Message " + cv.name + " · /help")
	}
}

func (m *Model) refreshList() {
	items := make([]convlist.Item, len(m.convs))
	for i, cv := range m.convs {
		items[i] = convlist.Item{ID: string(cv.id), Name: cv.name, Unread: cv.unread, Mention: cv.mention,
			Inactive: cv.inactive, Busy: cv.syncing != nil && !cv.syncing.Done}
	}
	m.convList.SetItems(items)
	m.convList.Select(m.cur)
}

func (m *Model) refreshTitle() {
	cv := m.current()
	st := m.c.Styles
	if cv.id == "" {
		m.msgs.SetTitle(st.Title.Render("tchat") + st.TitleDim.Render(" · home"))
		return
	}
	t := st.Title.Render(cv.name)
	if cv.inactive {
		// The state left behind is of the last epoch we saw: no count to show.
		m.msgs.SetTitle(t + st.Warn.Render(" · not a member any more"))
		return
	}
	if cv.hasState {
		n := fmt.Sprintf("%d members", len(cv.state.Members))
		if len(cv.state.Members) == 1 {
			n = "1 member"
		}
		t += st.TitleDim.Render(fmt.Sprintf(" · %s · epoch %d · %s", n, cv.state.Epoch, cv.state.Policy))
	}
	m.msgs.SetTitle(t)
}

func (m *Model) refreshRoster() {
	cv := m.current()
	if cv.id == "" || !cv.hasState {
		m.roster.SetGroup(nil)
		return
	}
	s := cv.state
	g := &roster.Group{
		Name: cv.name, Epoch: s.Epoch, Suite: fmt.Sprintf("0x%04x", uint16(s.Suite)), SuiteName: s.SuiteName,
		Policy: s.Policy, Inactive: cv.inactive, Syncing: s.Syncing || (cv.syncing != nil && !cv.syncing.Done),
	}
	if len(s.Authenticator) > 0 {
		g.Authenticator = fmt.Sprintf("%x", s.Authenticator[:min(4, len(s.Authenticator))])
	}
	g.Members = make([]roster.Member, len(s.Members))
	for i, mem := range s.Members {
		g.Members[i] = roster.Member{Key: mem.Peer.String(), Name: m.memberName(mem), Fingerprint: mem.Fingerprint,
			Verified: mem.Verified, Online: mem.Online, Self: mem.Self}
	}
	m.roster.SetGroup(g)
}

// Update routes a message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case tea.BackgroundColorMsg:
		if !m.themeFixed && msg.IsDark() != m.c.Styles.Dark {
			m.c.Styles = styles.New(msg.IsDark())
			m.input.ApplyStyles()
			m.refreshTitle()
		}
		return m, nil
	case openedMsg:
		if msg.err != nil {
			m.log.Error("open", "err", msg.err)
			if m.opts.Prompt == PromptNone {
				// Nothing to ask again: say what failed and let the user quit.
				m.phase = phaseUnlock
				m.unlock.fatal = msg.err
				return m, nil
			}
			m.phase = phaseUnlock
			return m, m.unlock.failed(msg.err)
		}
		cmd := m.started(msg.b)
		return m, tea.Batch(cmd, m.updateStatus())
	}
	if m.phase != phaseChat {
		return m.updateUnlock(msg)
	}
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case tea.PasteMsg, tea.PasteStartMsg, tea.PasteEndMsg:
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		m.layout()
		return m, cmd
	case tea.MouseMsg:
		return m, m.handleMouse(msg)
	case input.SubmitMsg:
		cmds = append(cmds, m.submit(msg.Text))
		m.layout()
	case convlist.SelectedMsg:
		m.reveal = nil
		m.switchTo(msg.Index)
		cmds = append(cmds, m.refreshGroup(m.current()))
	case eventMsg:
		cmds = append(cmds, m.handleEvent(msg.ev), m.waitEvent())
	case eventsClosedMsg:
		m.offline = true
		m.note(nil, messages.Error, "the chat core stopped; restart tchat")
		cmds = append(cmds, m.updateStatus())
	case netTickMsg:
		cmds = append(cmds, m.pollNet(), m.expireSync())
	case netStatusMsg:
		m.net = chat.NetStatus(msg)
		// Online marks and membership come as events, but a nickname heard in a
		// heartbeat does not: the group shown is refreshed with the network state.
		cmds = append(cmds, m.updateStatus(), m.netTick(), m.refreshGroup(m.current()))
	case groupsLoadedMsg:
		cmds = append(cmds, m.groupsLoaded(msg))
	case groupStateMsg:
		cmds = append(cmds, m.groupState(msg))
	case doneMsg:
		cmds = append(cmds, m.done(msg))
	case leftMsg:
		cmds = append(cmds, m.left(msg))
	case common.ErrorMsg:
		m.note(nil, messages.Error, msg.Error())
	default:
		var cmd tea.Cmd
		m.status, cmd = m.status.Update(msg)
		cmds = append(cmds, cmd)
		m.input, cmd = m.input.Update(msg)
		cmds = append(cmds, cmd)
	}
	return m, tea.Batch(cmds...)
}

func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	keys := m.c.Keys
	switch {
	case key.Matches(k, keys.Quit):
		m.quit = true
		m.cancel()
		return tea.Quit
	case key.Matches(k, keys.Help):
		m.showHelp("")
		return nil
	case key.Matches(k, keys.ToggleConvs):
		m.toggle(paneConvs)
		return nil
	case key.Matches(k, keys.ToggleMembers):
		m.toggle(paneMembers)
		return nil
	case key.Matches(k, keys.ToggleMouse):
		m.mouse = !m.mouse
		return m.updateStatus()
	case key.Matches(k, keys.PageUp, keys.PageDown, keys.Top, keys.Bottom):
		var cmd tea.Cmd
		m.msgs, cmd = m.msgs.Update(k)
		return cmd
	case key.Matches(k, keys.NextConv, keys.PrevConv) || m.isConvKey(k):
		var cmd tea.Cmd
		m.convList, cmd = m.convList.Update(k)
		return cmd
	case m.reveal != nil && (key.Matches(k, keys.Clear) || (key.Matches(k, keys.Send) && m.input.Value() == "")):
		m.reveal = nil
		return nil
	case key.Matches(k, keys.Clear) && m.input.Value() == "":
		// Esc on an empty input: close an overlay, else back to the newest messages.
		if m.overlay != paneNone {
			m.overlay = paneNone
			m.layout()
			return nil
		}
		m.msgs.ScrollDown(1 << 30)
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	m.layout()
	return cmd
}

func (m *Model) isConvKey(k tea.KeyPressMsg) bool {
	for _, b := range m.c.Keys.Conv {
		if key.Matches(k, b) {
			return true
		}
	}
	return false
}

func (m *Model) handleMouse(msg tea.MouseMsg) tea.Cmd {
	if !m.mouse {
		return nil
	}
	l := m.computeLayout()
	mo := msg.Mouse()
	if mo.Y >= l.bodyH {
		return nil
	}
	x := mo.X
	switch {
	case l.convW > 0 && x < l.convW:
		if c, ok := msg.(tea.MouseClickMsg); ok {
			var cmd tea.Cmd
			m.convList, cmd = m.convList.Update(c)
			return cmd
		}
	case l.rosterW > 0 && x >= m.width-l.rosterW:
		var cmd tea.Cmd
		m.roster, cmd = m.roster.Update(msg)
		return cmd
	case l.overlay == paneConvs:
		if c, ok := msg.(tea.MouseClickMsg); ok {
			var cmd tea.Cmd
			m.convList, cmd = m.convList.Update(c)
			return cmd
		}
	case l.overlay == paneMembers:
		var cmd tea.Cmd
		m.roster, cmd = m.roster.Update(msg)
		return cmd
	default:
		var cmd tea.Cmd
		m.msgs, cmd = m.msgs.Update(msg)
		return cmd
	}
	return nil
}

// note adds a line to a conversation (nil: the current one).
func (m *Model) note(cv *conversation, kind messages.Kind, text string) {
	if cv == nil {
		cv = m.current()
	}
	cv.buf.Append(messages.Entry{Kind: kind, Time: m.c.Now(), Text: text})
}

func (m *Model) groupsLoaded(msg groupsLoadedMsg) tea.Cmd {
	for _, lg := range msg.groups {
		cv := m.ensureConv(lg.state.ID, lg.state.Name)
		if lg.err != nil {
			m.note(cv, messages.Error, "could not load: "+explain(lg.err))
		}
		if lg.state.Name != "" {
			m.setState(cv, lg.state)
		}
		entries := make([]messages.Entry, len(lg.msgs))
		for i, h := range lg.msgs {
			entries[i] = m.historyEntry(cv, h)
		}
		cv.buf.Prepend(entries...)
	}
	m.loaded = true
	if m.cur == 0 && len(m.convs) > 1 {
		m.switchTo(1)
	} else {
		m.switchTo(m.cur)
	}
	return nil
}

// historyEntry turns a stored message of cv into a line.
func (m *Model) historyEntry(cv *conversation, h chat.Message) messages.Entry {
	e := messages.Entry{Kind: messages.Text, Time: h.Time, Key: h.Sender.String(), Text: h.Text,
		Own: h.Own || h.Sender == m.self, Late: h.Late, Resent: h.Resent}
	if e.Own {
		e.From = m.selfName()
	} else {
		e.From = m.nameOf(cv, h.Sender, h.Nick)
		e.Mention = mentions(h.Text, m.nick)
	}
	return e
}

func (m *Model) setState(cv *conversation, s chat.GroupState) {
	if cv.hasState {
		// Nicknames heard in heartbeats: say who changed theirs.
		for _, mem := range s.Members {
			if mem.Nick != "" && !mem.Self {
				m.heardNick(cv, mem.Peer, mem.Nick)
			}
		}
	}
	if s.Name != "" && s.Name != cv.name {
		if cv.hasState {
			cv.oldName = cv.name
		}
		cv.name = s.Name
	}
	cv.state, cv.hasState = s, true
	for _, mem := range s.Members {
		if !mem.Self {
			cv.names[mem.Peer] = m.memberName(mem)
			m.named(cv, mem.Peer, mem.Nick)
		}
	}
	if !s.Active && s.Name != "" {
		cv.inactive = true
	}
	m.stateChanged(cv)
}

func (m *Model) groupState(msg groupStateMsg) tea.Cmd {
	cv := m.conv(msg.id)
	if cv == nil {
		return nil
	}
	cv.refreshing = false
	if msg.err != nil {
		m.log.Warn("group state", "group", msg.id, "err", msg.err)
	} else {
		m.setState(cv, msg.state)
		m.announceJoin(cv)
	}
	if cv.again {
		cv.again = false
		return m.refreshGroup(cv)
	}
	return nil
}

func (m *Model) done(msg doneMsg) tea.Cmd {
	cmd := m.endBusy(msg.op)
	cv := m.current()
	if msg.group != "" {
		if c := m.conv(msg.group); c != nil {
			cv = c
		}
	}
	cv.buf.Append(msg.lines...)
	if msg.err != nil {
		m.note(cv, messages.Error, msg.err.Error())
	}
	if msg.then != nil {
		return tea.Batch(cmd, msg.then(m))
	}
	return cmd
}

// toggle shows or hides a side pane. Where the window has room for it beside the
// messages, the pane is shown or hidden there; where it has not, it covers the messages
// until toggled again (or Esc).
func (m *Model) toggle(p pane) {
	fits := m.fits(p)
	switch {
	case fits && p == paneConvs:
		m.showConvs = !m.showConvs
	case fits && p == paneMembers:
		m.showMembers = !m.showMembers
	case m.overlay == p:
		m.overlay = paneNone
	default:
		m.overlay = p
	}
	m.layout()
}

func (m *Model) whoami() string {
	if m.nick == "" {
		return fmt.Sprintf("Your peer id is %s. You have no nickname yet: /nick NAME sets one.", m.self)
	}
	return fmt.Sprintf("You are %s (peer id %s).", m.nick, m.self)
}

// selfName is how we appear.
func (m *Model) selfName() string {
	if m.nick != "" {
		return m.nick
	}
	return "me"
}

// memberName is a member's display name: its nickname, else a short form of its peer
// id.
func (m *Model) memberName(mem chat.Member) string {
	if mem.Self {
		return m.selfName()
	}
	if mem.Nick != "" {
		return mem.Nick
	}
	return shortID(mem.Peer)
}

// nameOf names peer p in conversation cv; hint is a nickname the event carried.
func (m *Model) nameOf(cv *conversation, p peer.ID, hint string) string {
	if p == m.self {
		return m.selfName()
	}
	if cv != nil {
		for _, mem := range cv.state.Members {
			if mem.Peer == p {
				if mem.Nick != "" {
					return mem.Nick
				}
				break
			}
		}
	}
	if hint != "" {
		return hint
	}
	if cv != nil && cv.names[p] != "" {
		return cv.names[p]
	}
	return shortID(p)
}

// shortID is the name of a member without a nickname: "~" and the end of its peer id.
func shortID(p peer.ID) string {
	s := p.String()
	if len(s) > 6 {
		s = s[len(s)-6:]
	}
	return "~" + s
}

// mentions reports whether text names nick (as a word, any case, with or without @).
func mentions(text, nick string) bool {
	if nick == "" {
		return false
	}
	t, n := strings.ToLower(text), strings.ToLower(nick)
	for i := 0; ; {
		j := strings.Index(t[i:], n)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(n)
		before := j == 0 || !isWordByte(t[j-1])
		after := end == len(t) || !isWordByte(t[end])
		if before && after {
			return true
		}
		i = j + 1
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b >= 0x80
}
