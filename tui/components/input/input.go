// Package input is the input line: a multi-line editor where Enter sends, Alt+Enter (or
// Shift+Enter, or Ctrl+J) starts a new line, pasted text is inserted and never sent by
// itself, Tab completes and Up/Down recall earlier inputs.
package input

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textarea"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/tchat-p2p/tchat/tui/common"
)

// MaxLines is the most lines the input grows to before it scrolls.
const MaxLines = 6

// maxHistory bounds the recalled inputs.
const maxHistory = 200

// SubmitMsg carries what the user sent with Enter.
type SubmitMsg struct{ Text string }

// Completer returns the completions of word, the last word of the input; before is the
// input in front of it.
type Completer func(before, word string) []string

// completion is a Tab cycle in progress.
type completion struct {
	before string
	cands  []string
	i      int
	value  string // the input after the last completion: any other change ends the cycle
}

// Model is the input line.
type Model struct {
	c        *common.Common
	ta       textarea.Model
	complete Completer
	comp     *completion
	history  []string
	hist     int    // index in history while recalling; len(history) when not
	draft    string // what was typed before recalling
	w        int
}

// New returns a focused, empty input.
func New(c *common.Common, complete Completer) Model {
	ta := textarea.New()
	ta.ShowLineNumbers = false
	ta.DynamicHeight = true
	ta.MinHeight = 1
	ta.MaxHeight = MaxLines
	ta.SetHeight(1) // grows with the text (DynamicHeight)
	ta.CharLimit = 0
	ta.SetVirtualCursor(false)
	km := textarea.DefaultKeyMap()
	km.InsertNewline = c.Keys.Newline
	km.PageUp = key.NewBinding(key.WithDisabled())
	km.PageDown = key.NewBinding(key.WithDisabled())
	km.LineNext = key.NewBinding(key.WithKeys("down"))
	km.LinePrevious = key.NewBinding(key.WithKeys("up"))
	ta.KeyMap = km
	ta.SetPromptFunc(2, func(info textarea.PromptInfo) string {
		if info.LineNumber == 0 {
			return "> "
		}
		return "  "
	})
	ta.Focus()
	m := Model{c: c, ta: ta, complete: complete}
	m.ApplyStyles()
	return m
}

// ApplyStyles takes the current theme.
func (m *Model) ApplyStyles() {
	s := textarea.DefaultStyles(m.c.Styles.Dark)
	s.Focused.CursorLine = lipgloss.NewStyle()
	s.Focused.Prompt = m.c.Styles.Prompt
	s.Focused.Placeholder = m.c.Styles.Placeholder
	s.Focused.Text = m.c.Styles.Text
	s.Blurred = s.Focused
	s.Cursor.Blink = false
	m.ta.SetStyles(s)
}

// SetPlaceholder sets the text shown while the input is empty.
func (m *Model) SetPlaceholder(s string) { m.ta.Placeholder = s }

// SetSize sets the width (the height follows the text, from 1 to MaxLines).
func (m *Model) SetSize(w, _ int) {
	m.w = w
	m.ta.SetWidth(w)
}

// Height returns the lines the input takes.
func (m Model) Height() int { return max(m.ta.Height(), 1) }

// Value returns the text typed so far.
func (m Model) Value() string { return m.ta.Value() }

// SetValue replaces the text, the cursor at its end.
func (m *Model) SetValue(s string) {
	m.ta.SetValue(s)
	m.ta.MoveToEnd()
}

// Cursor returns the terminal cursor's position relative to the input (nil: hidden).
func (m Model) Cursor() *tea.Cursor { return m.ta.Cursor() }

// Init implements the component interface.
func (m Model) Init() tea.Cmd { return nil }

func submit(s string) tea.Cmd { return func() tea.Msg { return SubmitMsg{s} } }

// Update edits the text. Enter returns a SubmitMsg command (nothing for blank input), Esc
// clears the text, Tab completes, Up on the first line and Down on the last recall.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		if !key.Matches(k, m.c.Keys.Complete) {
			m.comp = nil
		}
		switch {
		case key.Matches(k, m.c.Keys.Send):
			text := m.ta.Value()
			if strings.TrimSpace(text) == "" {
				return m, nil
			}
			m.remember(text)
			m.ta.Reset()
			return m, submit(text)
		case key.Matches(k, m.c.Keys.Clear):
			m.ta.Reset()
			m.hist = len(m.history)
			return m, nil
		case key.Matches(k, m.c.Keys.Complete):
			m.tab()
			return m, nil
		case key.Matches(k, m.c.Keys.HistoryPrev) && m.ta.Line() == 0 && m.hist > 0:
			if m.hist == len(m.history) {
				m.draft = m.ta.Value()
			}
			m.hist--
			m.SetValue(m.history[m.hist])
			return m, nil
		case key.Matches(k, m.c.Keys.HistoryNext) && m.ta.Line() == m.ta.LineCount()-1 && m.hist < len(m.history):
			m.hist++
			if m.hist == len(m.history) {
				m.SetValue(m.draft)
			} else {
				m.SetValue(m.history[m.hist])
			}
			return m, nil
		}
	}
	if p, ok := msg.(tea.PasteMsg); ok {
		// Terminals send pasted line ends as CR; keep them as new lines of the input.
		p.Content = strings.ReplaceAll(strings.ReplaceAll(p.Content, "\r\n", "\n"), "\r", "\n")
		msg = p
	}
	var cmd tea.Cmd
	m.ta, cmd = m.ta.Update(msg)
	return m, cmd
}

func (m *Model) remember(text string) {
	if n := len(m.history); n == 0 || m.history[n-1] != text {
		m.history = append(m.history, text)
		if len(m.history) > maxHistory {
			m.history = m.history[1:]
		}
	}
	m.hist = len(m.history)
	m.draft = ""
}

// tab completes the last word of the input, or goes on to the next candidate when the
// previous key was Tab too.
func (m *Model) tab() {
	v := m.ta.Value()
	if m.comp != nil && v == m.comp.value {
		m.comp.i = (m.comp.i + 1) % len(m.comp.cands)
	} else {
		m.comp = nil
		if m.complete == nil {
			return
		}
		start := strings.LastIndexAny(v, " \n") + 1
		before, word := v[:start], v[start:]
		cands := m.complete(before, word)
		if len(cands) == 0 {
			return
		}
		m.comp = &completion{before: before, cands: cands}
	}
	cand := m.comp.cands[m.comp.i]
	suffix := " "
	if m.comp.before == "" && !strings.HasPrefix(cand, "/") {
		suffix = ": " // a name at the start of a message addresses its member
	}
	m.SetValue(m.comp.before + cand + suffix)
	m.comp.value = m.ta.Value()
	if len(m.comp.cands) == 1 {
		m.comp = nil // done: the next Tab completes the next word
	}
}

// ShortHelp implements help.KeyMap.
func (m Model) ShortHelp() []key.Binding {
	return []key.Binding{m.c.Keys.Send, m.c.Keys.Newline, m.c.Keys.Complete, m.c.Keys.Clear}
}

// FullHelp implements help.KeyMap.
func (m Model) FullHelp() [][]key.Binding {
	return [][]key.Binding{m.ShortHelp(), {m.c.Keys.HistoryPrev, m.c.Keys.HistoryNext}}
}

// View renders the input.
func (m Model) View() string { return m.ta.View() }
