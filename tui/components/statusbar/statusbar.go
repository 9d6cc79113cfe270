// Package statusbar is the status line: our peer id, connected peers, reachability,
// what tchat is busy with (behind a spinner) and the hint for help.
package statusbar

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/tchat-p2p/tchat/tui/common"
)

// State is what the status line shows.
type State struct {
	PeerID       string
	Connected    int
	Reachability string // "public", "private", "relayed", "unknown" or ""
	Busy         []string
	Mouse        bool
	Offline      bool // the chat core stopped
}

// Model is the status line.
type Model struct {
	c    *common.Common
	st   State
	spin spinner.Model
	w    int
}

// New returns a status line.
func New(c *common.Common) Model {
	return Model{c: c, spin: spinner.New(spinner.WithSpinner(spinner.MiniDot))}
}

// Set replaces the state shown. It returns the spinner's command when the line became
// busy.
func (m *Model) Set(s State) tea.Cmd {
	wasBusy := len(m.st.Busy) > 0
	m.st = s
	if !wasBusy && len(s.Busy) > 0 {
		return m.spin.Tick
	}
	return nil
}

// State returns the state shown.
func (m Model) State() State { return m.st }

// SetSize sets the width.
func (m *Model) SetSize(w, _ int) { m.w = w }

// Init implements the component interface.
func (m Model) Init() tea.Cmd { return nil }

// Update advances the spinner while something is going on.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	if t, ok := msg.(spinner.TickMsg); ok {
		if len(m.st.Busy) == 0 {
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(t)
		return m, cmd
	}
	return m, nil
}

// ShortHelp implements help.KeyMap.
func (m Model) ShortHelp() []key.Binding { return []key.Binding{m.c.Keys.Help, m.c.Keys.ToggleMouse} }

// FullHelp implements help.KeyMap.
func (m Model) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

// Reachability words a user understands.
func reach(r string) (string, bool) {
	switch r {
	case "public":
		return "public", false
	case "private":
		return "behind NAT", true
	case "relayed":
		return "relayed", true
	case "", "unknown":
		return "reachability unknown", false
	}
	return r, false
}

// ShortPeer abbreviates a peer id to its head and tail.
func ShortPeer(p string) string {
	if len(p) <= 16 {
		return p
	}
	return p[:8] + "…" + p[len(p)-6:]
}

// View renders the line across the width. Where it is too narrow for everything, the
// least useful parts go first: the key hints, the reachability, the peer id.
func (m Model) View() string {
	s := m.c.Styles
	var peerID, peers, reachability, busy string
	if m.st.PeerID != "" {
		peerID = s.Status.Render(ShortPeer(m.st.PeerID))
	}
	if m.st.Offline {
		peers = s.StatusWarn.Render("offline")
	} else if m.st.PeerID != "" {
		n := "peers"
		if m.st.Connected == 1 {
			n = "peer"
		}
		peers = s.Status.Render(fmt.Sprintf("%d %s", m.st.Connected, n))
		r, warn := reach(m.st.Reachability)
		if warn {
			reachability = s.StatusWarn.Render(r)
		} else {
			reachability = s.Status.Render(r)
		}
	}
	if len(m.st.Busy) > 0 {
		busy = s.StatusKey.Render(m.spin.View() + " " + strings.Join(m.st.Busy, ", "))
	}
	mouse := "F4 mouse off"
	if m.st.Mouse {
		mouse = "F4 mouse on"
	}
	hints := []string{
		s.Status.Render(mouse+" · ") + s.StatusKey.Render("F1 help "),
		s.StatusKey.Render("F1 help "),
		"",
	}
	sep := s.Status.Render(" · ")
	join := func(parts ...string) string {
		var kept []string
		for _, p := range parts {
			if p != "" {
				kept = append(kept, p)
			}
		}
		return strings.Join(kept, sep)
	}
	name := s.StatusKey.Render(" tchat")
	full := join(name, peerID, peers, reachability, busy)
	for _, opt := range [][2]string{
		{full, hints[0]},
		{full, hints[1]},
		{full, ""},
		{join(name, peerID, peers, busy), ""},
		{join(name, peers, busy), ""},
		{" " + join(peers, busy), ""},
	} {
		left, right := opt[0], opt[1]
		lw, rw := common.Width(left), common.Width(right)
		gap := 0
		if right != "" {
			gap = 2
		}
		if lw+gap+rw <= m.w {
			return left + s.Status.Render(strings.Repeat(" ", m.w-lw-rw)) + right
		}
	}
	return s.Status.Render(common.Fit(" "+join(peers, busy), m.w))
}
