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

// View renders the line across the width.
func (m Model) View() string {
	s := m.c.Styles
	sep := s.Status.Render(" · ")
	var left []string
	left = append(left, s.StatusKey.Render(" tchat"))
	if m.st.PeerID != "" {
		left = append(left, s.Status.Render(ShortPeer(m.st.PeerID)))
	}
	if m.st.Offline {
		left = append(left, s.StatusWarn.Render("offline"))
	} else if m.st.PeerID != "" {
		peers := "peers"
		if m.st.Connected == 1 {
			peers = "peer"
		}
		left = append(left, s.Status.Render(fmt.Sprintf("%d %s", m.st.Connected, peers)))
		r, warn := reach(m.st.Reachability)
		if warn {
			left = append(left, s.StatusWarn.Render(r))
		} else {
			left = append(left, s.Status.Render(r))
		}
	}
	if len(m.st.Busy) > 0 {
		left = append(left, s.StatusKey.Render(m.spin.View()+" "+strings.Join(m.st.Busy, ", ")))
	}
	mouse := "F4 mouse off"
	if m.st.Mouse {
		mouse = "F4 mouse on"
	}
	right := s.Status.Render(mouse+" · ") + s.StatusKey.Render("F1 help ")
	line := strings.Join(left, sep)
	lw, rw := common.Width(line), common.Width(right)
	if lw+rw+1 > m.w {
		return s.Status.Render(common.Fit(line, m.w))
	}
	return line + s.Status.Render(strings.Repeat(" ", m.w-lw-rw)) + right
}
