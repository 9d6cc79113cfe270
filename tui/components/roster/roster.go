// Package roster is the member pane: the group's epoch, cipher suite and layer policy,
// then each member with its name, online state, verified mark and short fingerprint.
package roster

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/tchat-p2p/tchat/tui/common"
)

// Member is one row of the roster.
type Member struct {
	Key         string // the peer id, which picks the name's colour
	Name        string
	Fingerprint string
	Verified    bool
	Online      bool
	Self        bool
}

// Group is what the roster shows.
type Group struct {
	Name          string
	Epoch         uint64
	Authenticator string // hex prefix of the epoch authenticator
	Suite         string // e.g. "0xf001"
	SuiteName     string
	Policy        string
	Inactive      bool
	Syncing       bool
	Members       []Member
}

// Model is the member pane.
type Model struct {
	c      *common.Common
	g      *Group
	sorted []Member
	offset int // first member shown
	w, h   int
}

// New returns an empty roster.
func New(c *common.Common) Model { return Model{c: c} }

// SetGroup shows g (nil: no group). Members are shown self first, then online ones,
// then by name.
func (m *Model) SetGroup(g *Group) {
	if g != m.g {
		m.offset = 0
	}
	m.g = g
	m.sorted = nil
	if g == nil {
		return
	}
	m.sorted = slices.Clone(g.Members)
	slices.SortStableFunc(m.sorted, func(a, b Member) int {
		if a.Self != b.Self {
			return boolOrder(a.Self)
		}
		if a.Online != b.Online {
			return boolOrder(a.Online)
		}
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.Key, b.Key))
	})
	m.clamp()
}

func boolOrder(first bool) int {
	if first {
		return -1
	}
	return 1
}

// SetSize sets the pane's size.
func (m *Model) SetSize(w, h int) { m.w, m.h = w, h; m.clamp() }

// Init implements the component interface.
func (m Model) Init() tea.Cmd { return nil }

func (m *Model) clamp() {
	m.offset = max(min(m.offset, len(m.sorted)-m.rows()), 0)
}

// header returns the lines above the members.
func (m Model) header() []string {
	st := m.c.Styles
	g := m.g
	title := fmt.Sprintf("%d members", len(g.Members))
	if len(g.Members) == 1 {
		title = "1 member"
	}
	lines := []string{st.Title.Render(title)}
	ep := fmt.Sprintf("epoch %d", g.Epoch)
	if g.Authenticator != "" {
		ep += " · " + g.Authenticator
	}
	lines = append(lines, st.Item.Render(ep))
	lines = append(lines, st.TitleDim.Render("suite ")+st.Item.Render(g.Suite))
	if g.SuiteName != "" {
		for _, l := range common.WrapAt(g.SuiteName, max(m.w-2, 8), "_") {
			lines = append(lines, "  "+st.Fingerprint.Render(l))
		}
	}
	lines = append(lines, st.TitleDim.Render("layers ")+st.Item.Render(g.Policy))
	switch {
	case g.Inactive:
		lines = append(lines, st.Warn.Render("not a member any more"))
	case g.Syncing:
		lines = append(lines, st.Warn.Render("catching up…"))
	}
	return append(lines, st.Separator.Render(strings.Repeat("─", max(m.w, 0))))
}

func (m Model) rows() int {
	if m.g == nil {
		return 0
	}
	return max(m.h-len(m.header()), 1)
}

// Update scrolls the member list with the mouse wheel.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	if msg, ok := msg.(tea.MouseWheelMsg); ok {
		switch msg.Mouse().Button {
		case tea.MouseWheelUp:
			m.offset -= 3
		case tea.MouseWheelDown:
			m.offset += 3
		}
		m.clamp()
	}
	return m, nil
}

// ShortHelp implements help.KeyMap.
func (m Model) ShortHelp() []key.Binding { return []key.Binding{m.c.Keys.ToggleMembers} }

// FullHelp implements help.KeyMap.
func (m Model) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

// View renders the header and the members that fit; a last line counts the rest.
func (m Model) View() string {
	st := m.c.Styles
	if m.g == nil {
		return common.Block([]string{st.Title.Render("Members"), st.TitleDim.Render("no group")}, m.w, m.h)
	}
	lines := m.header()
	rows := m.rows()
	end := min(m.offset+rows, len(m.sorted))
	more := len(m.sorted) - end
	if more > 0 {
		end-- // room for the count
		more++
	}
	fpW := 9 // "abcd efgh"
	if m.w >= 56 {
		fpW = 19 // "abcd efgh ijkl mnop", where the pane covers the messages
	}
	showFP := m.w >= 26
	for _, mem := range m.sorted[m.offset:max(end, m.offset)] {
		dot := st.Offline.Render("○")
		if mem.Online {
			dot = st.Online.Render("●")
		}
		mark := "  "
		if mem.Verified {
			mark = " " + st.Verified.Render("✓")
		}
		nameW := m.w - 2 - 2
		if showFP {
			nameW -= fpW + 1
		}
		name := mem.Name
		if mem.Self {
			name += " (you)"
		}
		row := dot + " " + st.Name(mem.Key).Render(common.Fit(name, max(nameW, 1))) + mark
		if showFP {
			row += " " + st.Fingerprint.Render(shortFP(mem.Fingerprint, fpW))
		}
		lines = append(lines, row)
	}
	if more > 0 {
		lines = append(lines, st.TitleDim.Render(fmt.Sprintf("… %d more (wheel scrolls)", more)))
	}
	return common.Block(lines, m.w, m.h)
}

// shortFP returns the first n characters of a grouped fingerprint.
func shortFP(fp string, n int) string {
	r := []rune(fp)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}
