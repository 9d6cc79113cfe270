// Package messages is the message pane: a conversation's messages and system lines, with
// times, coloured names and marks for late and re-sent messages, scrolled by page, by
// mouse wheel, or to either end.
//
// A conversation can hold tens of thousands of lines, so the pane renders only what it
// shows: each entry's wrapped lines are cached for the pane's width, and the view is
// built from the bottom up until the pane is full.
package messages

import (
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/tchat-p2p/tchat/tui/common"
)

// Kind is the kind of an entry.
type Kind uint8

const (
	Text   Kind = iota // a member's message
	Join               // a member joined
	Leave              // a member left or was removed
	System             // epoch changes, renames, forks, sync
	Info               // answers to the user's commands
	Error              // something failed
)

// MaxEntries bounds the entries kept in a buffer; the oldest go first (they stay in the
// profile's history).
const MaxEntries = 50000

// Entry is one line of a conversation (it may wrap on screen).
type Entry struct {
	Kind Kind
	Time time.Time
	From string // the sender's display name (Text)
	Key  string // what picks the name's colour: the sender's peer id
	Text string
	// Marks.
	Own, Late, Resent, Mention bool
	Pending, Failed            bool // own message on its way, or refused
	// ID identifies an own message while it is pending.
	ID string
}

// Buffer is a conversation's entries and its scroll position. It is shared by pointer:
// the pane shows one buffer at a time.
type Buffer struct {
	entries []Entry
	lines   [][]string // rendered lines per entry (nil: not rendered at width/gen)
	width   int
	gen     uint64
	c       *common.Common // of the last render
	offset  int            // lines scrolled up from the bottom
	below   int            // entries added while scrolled up
}

// NewBuffer returns an empty buffer.
func NewBuffer() *Buffer { return &Buffer{} }

// Len returns the number of entries.
func (b *Buffer) Len() int { return len(b.entries) }

// Entries returns the entries (do not modify).
func (b *Buffer) Entries() []Entry { return b.entries }

// Offset returns how many lines the buffer is scrolled up from the bottom.
func (b *Buffer) Offset() int { return b.offset }

// Append adds entries at the bottom. A buffer scrolled up stays where it is.
func (b *Buffer) Append(es ...Entry) {
	for _, e := range es {
		b.entries = append(b.entries, e)
		b.lines = append(b.lines, nil)
		if b.offset > 0 {
			b.below++
			if b.width > 0 && b.c != nil {
				b.offset += len(b.render(len(b.entries)-1, b.width, b.c))
			}
		}
	}
	if over := len(b.entries) - MaxEntries; over > 0 {
		b.entries = append([]Entry(nil), b.entries[over:]...)
		b.lines = append([][]string(nil), b.lines[over:]...)
	}
}

// Prepend adds older entries at the top (history).
func (b *Buffer) Prepend(es ...Entry) {
	b.entries = append(append([]Entry(nil), es...), b.entries...)
	b.lines = append(make([][]string, len(es)), b.lines...)
}

// Update changes the entry whose ID is id; it reports whether there was one.
func (b *Buffer) Update(id string, f func(*Entry)) bool {
	for i := len(b.entries) - 1; i >= 0; i-- {
		if b.entries[i].ID == id && id != "" {
			f(&b.entries[i])
			b.lines[i] = nil
			return true
		}
	}
	return false
}

// UpdateLast changes the last entry if its ID is id; it reports whether it did. A
// buffer scrolled up stays on the same lines.
func (b *Buffer) UpdateLast(id string, f func(*Entry)) bool {
	i := len(b.entries) - 1
	if i < 0 || id == "" || b.entries[i].ID != id {
		return false
	}
	before := -1
	if b.offset > 0 && b.width > 0 && b.c != nil {
		before = len(b.render(i, b.width, b.c))
	}
	f(&b.entries[i])
	b.lines[i] = nil
	if before >= 0 {
		b.offset += len(b.render(i, b.width, b.c)) - before
	}
	return true
}

// Search returns the entries whose text contains q, ignoring case.
func (b *Buffer) Search(q string) []Entry {
	q = strings.ToLower(q)
	var out []Entry
	for _, e := range b.entries {
		if strings.Contains(strings.ToLower(e.Text), q) {
			out = append(out, e)
		}
	}
	return out
}

// Model is the message pane.
type Model struct {
	c     *common.Common
	buf   *Buffer
	w, h  int
	title string
}

// New returns a pane showing an empty buffer.
func New(c *common.Common) Model { return Model{c: c, buf: NewBuffer()} }

// SetBuffer shows another buffer.
func (m *Model) SetBuffer(b *Buffer) { m.buf = b }

// Buffer returns the buffer shown.
func (m Model) Buffer() *Buffer { return m.buf }

// SetSize sets the pane's size, its title line included.
func (m *Model) SetSize(w, h int) { m.w, m.h = w, h }

// SetTitle sets the title line (styled by the caller).
func (m *Model) SetTitle(s string) { m.title = s }

// Init implements tea.Model's Init for the pane: nothing to start.
func (m Model) Init() tea.Cmd { return nil }

// page is the scroll step of PgUp and PgDn.
func (m Model) page() int { return max(m.h-2, 1) }

// Update scrolls: PgUp, PgDn, Ctrl+Home, Ctrl+End and the mouse wheel.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, m.c.Keys.PageUp):
			m.ScrollUp(m.page())
		case key.Matches(msg, m.c.Keys.PageDown):
			m.ScrollDown(m.page())
		case key.Matches(msg, m.c.Keys.Top):
			m.ScrollUp(1 << 30)
		case key.Matches(msg, m.c.Keys.Bottom):
			m.ScrollDown(1 << 30)
		}
	case tea.MouseWheelMsg:
		switch msg.Mouse().Button {
		case tea.MouseWheelUp:
			m.ScrollUp(3)
		case tea.MouseWheelDown:
			m.ScrollDown(3)
		}
	}
	return m, nil
}

// ScrollUp scrolls n lines towards older entries, stopping at the first one.
func (m *Model) ScrollUp(n int) {
	b := m.buf
	b.offset += n
	// Clamp at the top: count lines from the bottom until offset+height is covered.
	need := b.offset + m.bodyHeight()
	total := 0
	for i := len(b.entries) - 1; i >= 0 && total < need; i-- {
		total += len(b.render(i, m.w, m.c))
	}
	if total < need {
		b.offset = max(total-m.bodyHeight(), 0)
	}
}

// ScrollDown scrolls n lines towards newer entries, stopping at the bottom.
func (m *Model) ScrollDown(n int) {
	b := m.buf
	b.offset = max(b.offset-n, 0)
	if b.offset == 0 {
		b.below = 0
	}
}

func (m Model) bodyHeight() int { return max(m.h-1, 0) }

// ShortHelp implements help.KeyMap.
func (m Model) ShortHelp() []key.Binding { return []key.Binding{m.c.Keys.PageUp, m.c.Keys.PageDown} }

// FullHelp implements help.KeyMap.
func (m Model) FullHelp() [][]key.Binding {
	return [][]key.Binding{{m.c.Keys.PageUp, m.c.Keys.PageDown, m.c.Keys.Top, m.c.Keys.Bottom}}
}

// View renders the title line and the entries that fit, newest at the bottom.
func (m Model) View() string {
	if m.w <= 0 || m.h <= 0 {
		return ""
	}
	b := m.buf
	bh := m.bodyHeight()
	title := m.title
	if b.offset > 0 {
		more := " ↓ scrolled"
		if b.below > 0 {
			more = " ↓ " + itoa(b.below) + " new"
		}
		title += m.c.Styles.Mark.Render(more)
	}
	out := make([]string, 0, m.h)
	out = append(out, title)
	// Collect bh lines ending offset lines above the bottom, walking up.
	rows := make([]string, bh)
	skip := b.offset
	r := bh - 1
	for i := len(b.entries) - 1; i >= 0 && r >= 0; i-- {
		ls := b.render(i, m.w, m.c)
		for j := len(ls) - 1; j >= 0 && r >= 0; j-- {
			if skip > 0 {
				skip--
				continue
			}
			rows[r] = ls[j]
			r--
		}
	}
	if r >= 0 {
		// Fewer lines than the pane: keep them at the bottom, as chats do.
		rows = rows[r+1:]
		pad := make([]string, r+1)
		rows = append(pad, rows...)
	}
	out = append(out, rows...)
	return common.Block(out, m.w, m.h)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// nameWidth is the column of names: right-aligned, WeeChat style.
func nameWidth(w int) int { return min(max(w/6, 8), 14) }
