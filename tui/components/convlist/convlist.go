// Package convlist is the conversation list: every conversation with its number for
// Alt+1…9, its unread count and a mark when a message names the user.
package convlist

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/tchat-p2p/tchat/tui/common"
)

// Item is one conversation in the list.
type Item struct {
	ID       string
	Name     string
	Unread   int
	Mention  bool
	Inactive bool // left or removed
	Busy     bool // joining or catching up
}

// SelectedMsg says that the user chose the conversation at Index.
type SelectedMsg struct{ Index int }

// Model is the conversation list.
type Model struct {
	c     *common.Common
	items []Item
	sel   int
	w, h  int
}

// New returns an empty list.
func New(c *common.Common) Model { return Model{c: c} }

// SetItems replaces the items, keeping the selection in range.
func (m *Model) SetItems(items []Item) {
	m.items = items
	m.sel = min(max(m.sel, 0), max(len(items)-1, 0))
}

// Items returns the items.
func (m Model) Items() []Item { return m.items }

// Select selects item i (out of range: unchanged).
func (m *Model) Select(i int) {
	if i >= 0 && i < len(m.items) {
		m.sel = i
	}
}

// Selected returns the index of the selected item.
func (m Model) Selected() int { return m.sel }

// SetSize sets the pane's size.
func (m *Model) SetSize(w, h int) { m.w, m.h = w, h }

// Init implements the component interface.
func (m Model) Init() tea.Cmd { return nil }

func selected(i int) tea.Cmd { return func() tea.Msg { return SelectedMsg{i} } }

// Update moves the selection: Ctrl+N, Ctrl+P (wrapping) and Alt+1…9, and a click on an
// item (mouse coordinates relative to the pane). It returns a SelectedMsg command when
// the selection changed.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	if len(m.items) == 0 {
		return m, nil
	}
	old := m.sel
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, m.c.Keys.NextConv):
			m.sel = (m.sel + 1) % len(m.items)
		case key.Matches(msg, m.c.Keys.PrevConv):
			m.sel = (m.sel + len(m.items) - 1) % len(m.items)
		default:
			for i, b := range m.c.Keys.Conv {
				if key.Matches(msg, b) && i < len(m.items) {
					m.sel = i
				}
			}
		}
	case tea.MouseClickMsg:
		if row := msg.Mouse().Y - 1; row >= 0 && row < len(m.items) {
			m.sel = row
		}
	}
	if m.sel != old {
		return m, selected(m.sel)
	}
	return m, nil
}

// ShortHelp implements help.KeyMap.
func (m Model) ShortHelp() []key.Binding {
	return []key.Binding{m.c.Keys.NextConv, m.c.Keys.PrevConv, m.c.Keys.GotoConv}
}

// FullHelp implements help.KeyMap.
func (m Model) FullHelp() [][]key.Binding { return [][]key.Binding{m.ShortHelp()} }

// View renders the list: a title, then one line per conversation.
func (m Model) View() string {
	st := m.c.Styles
	lines := []string{st.Title.Render("Conversations")}
	// Keep the selection visible in a short pane.
	first := 0
	if rows := m.h - 1; rows > 0 && m.sel >= rows {
		first = m.sel - rows + 1
	}
	for i := first; i < len(m.items); i++ {
		it := m.items[i]
		num := " "
		if i < 9 {
			num = fmt.Sprint(i + 1)
		}
		var badge, badgeStyled string
		switch {
		case it.Busy:
			badge, badgeStyled = "…", st.Mark.Render("…")
		case it.Mention && it.Unread > 0:
			badge = fmt.Sprintf("@%d", it.Unread)
			badgeStyled = st.MentionMark.Render(badge)
		case it.Mention:
			badge, badgeStyled = "@", st.MentionMark.Render("@")
		case it.Unread > 0:
			badge = fmt.Sprint(it.Unread)
			badgeStyled = st.Unread.Render(badge)
		}
		nameW := m.w - 2 - common.Width(badge) - 1
		name := common.Fit(it.Name, max(nameW, 1))
		if i == m.sel {
			lines = append(lines, st.Selected.Render(common.Fit(num+" "+name+" "+badge, m.w)))
			continue
		}
		nameStyle := st.Item
		if it.Inactive {
			nameStyle = st.Inactive
		} else if it.Unread > 0 || it.Mention {
			nameStyle = st.Unread
		}
		lines = append(lines, st.TitleDim.Render(num)+" "+nameStyle.Render(name)+" "+badgeStyled)
	}
	return common.Block(lines, m.w, m.h)
}
