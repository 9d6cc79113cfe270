package tui

import (
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/tchat-p2p/tchat/tui/common"
)

// Pane widths, and the narrowest message pane beside them.
const (
	convWidth    = 22
	rosterWidth  = 32
	minMsgWidth  = 40
	minWidth     = 20 // below this (or minHeight), only a "too small" notice
	minHeight    = 6
	leftSep      = 2 // "│ "
	rightSep     = 3 // " │ "
	maxInputRows = 6
)

type layoutInfo struct {
	convW, rosterW, msgW int // 0: hidden
	bodyH, inputH        int
	overlay              pane // the pane shown instead of the messages
}

// fits reports whether pane p has room beside the messages (with the other pane if the
// user shows it and it fits first).
func (m *Model) fits(p pane) bool {
	switch p {
	case paneConvs:
		return m.width-convWidth-leftSep >= minMsgWidth
	case paneMembers:
		w := m.width
		if m.showConvs && m.fits(paneConvs) {
			w -= convWidth + leftSep
		}
		return w-rosterWidth-rightSep >= minMsgWidth
	}
	return false
}

func (m *Model) computeLayout() layoutInfo {
	var l layoutInfo
	l.inputH = min(m.input.Height(), maxInputRows)
	l.bodyH = max(m.height-l.inputH-2, 1) // a rule above the input, the status line below
	if m.showConvs && m.fits(paneConvs) {
		l.convW = convWidth
	}
	if m.showMembers && m.fits(paneMembers) {
		l.rosterW = rosterWidth
	}
	l.msgW = m.width - l.convW - l.rosterW
	if l.convW > 0 {
		l.msgW -= leftSep
	}
	if l.rosterW > 0 {
		l.msgW -= rightSep
	}
	l.overlay = m.overlay
	if (l.overlay == paneConvs && l.convW > 0) || (l.overlay == paneMembers && l.rosterW > 0) {
		l.overlay = paneNone // it fits now: no need to cover the messages
	}
	return l
}

// layout gives every component its size.
func (m *Model) layout() {
	if m.width == 0 {
		return
	}
	l := m.computeLayout()
	m.convList.SetSize(max(l.convW, 1), l.bodyH)
	m.msgs.SetSize(max(l.msgW, 1), l.bodyH)
	m.roster.SetSize(max(l.rosterW, 1), l.bodyH)
	switch l.overlay {
	case paneConvs:
		m.convList.SetSize(l.msgW, l.bodyH)
	case paneMembers:
		m.roster.SetSize(l.msgW, l.bodyH)
	}
	m.input.SetSize(m.width, l.inputH)
	m.status.SetSize(m.width, 1)
	m.unlock.setSize(m.width, m.height)
}

// View draws the whole screen.
func (m *Model) View() tea.View {
	var v tea.View
	v.AltScreen = true
	v.WindowTitle = "tchat"
	if m.mouse {
		v.MouseMode = tea.MouseModeCellMotion
	}
	if m.quit {
		return v
	}
	if m.width < minWidth || m.height < minHeight {
		v.SetContent(common.Block(common.Wrap("window too small for tchat", max(m.width, 1)), max(m.width, 0), max(m.height, 1)))
		return v
	}
	if m.phase != phaseChat {
		v.SetContent(m.unlock.view(m.status.View()))
		v.Cursor = m.unlock.cursor()
		return v
	}
	content, cur := m.render()
	v.SetContent(content)
	v.Cursor = cur
	return v
}

// render composes the panes line by line.
func (m *Model) render() (string, *tea.Cursor) {
	l := m.computeLayout()
	st := m.c.Styles
	lsep := st.Separator.Render("│") + " "
	rsep := " " + st.Separator.Render("│") + " "
	split := func(s string) []string { return strings.Split(s, "\n") }
	var left, mid, right []string
	if l.convW > 0 {
		left = split(m.convList.View())
	}
	switch l.overlay {
	case paneConvs:
		mid = split(m.convList.View())
	case paneMembers:
		mid = split(m.roster.View())
	default:
		mid = split(m.msgs.View())
	}
	if l.rosterW > 0 {
		right = split(m.roster.View())
	}
	var b strings.Builder
	b.Grow(m.width * m.height * 2)
	if m.reveal != nil {
		left, right = nil, nil
		mid = m.revealLines(l.bodyH)
		l.msgW = m.width
	}
	for i := 0; i < l.bodyH; i++ {
		if left != nil {
			b.WriteString(line(left, i, l.convW))
			b.WriteString(lsep)
		}
		b.WriteString(line(mid, i, l.msgW))
		if right != nil {
			b.WriteString(rsep)
			b.WriteString(line(right, i, l.rosterW))
		}
		b.WriteByte('\n')
	}
	b.WriteString(st.Separator.Render(strings.Repeat("─", m.width)))
	b.WriteByte('\n')
	in := split(m.input.View())
	for i := 0; i < l.inputH; i++ {
		b.WriteString(line(in, i, m.width))
		b.WriteByte('\n')
	}
	b.WriteString(common.Fit(m.status.View(), m.width))
	cur := m.input.Cursor()
	if cur != nil {
		cur.Y += l.bodyH + 1
	}
	return b.String(), cur
}

// line returns lines[i] fitted to w cells (blank when missing).
func line(lines []string, i, w int) string {
	if i < len(lines) {
		if common.Width(lines[i]) == w {
			return lines[i]
		}
		return common.Fit(lines[i], w)
	}
	return strings.Repeat(" ", w)
}

// revealLines lays out m.reveal: title and note, then the text alone, broken at the
// window's width with nothing beside it, so that a mouse selection copies it whole.
func (m *Model) revealLines(h int) []string {
	st := m.c.Styles
	r := m.reveal
	lines := []string{st.Title.Render(r.title)}
	for _, l := range common.Wrap(r.note, m.width) {
		lines = append(lines, st.Text.Render(l))
	}
	lines = append(lines, "")
	for t := r.text; t != ""; {
		n := min(len(t), m.width)
		lines = append(lines, t[:n])
		t = t[n:]
	}
	lines = append(lines, "")
	for _, l := range common.Wrap(r.foot, m.width) {
		lines = append(lines, st.Help.Render(l))
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	return lines
}
