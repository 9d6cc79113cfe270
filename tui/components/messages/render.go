package messages

import (
	"strings"

	"github.com/tchat-p2p/tchat/tui/common"
)

// render returns entry i's lines at width w, from the cache when it is fresh.
func (b *Buffer) render(i, w int, c *common.Common) []string {
	if w != b.width || c.Styles.Gen != b.gen || c != b.c {
		clear(b.lines)
		b.width, b.gen, b.c = w, c.Styles.Gen, c
	}
	if b.lines[i] == nil {
		b.lines[i] = renderEntry(&b.entries[i], w, c)
	}
	return b.lines[i]
}

// renderEntry lays out one entry:
//
//	15:04    alice hello there, this line is long and
//	               wraps under the text
//	15:05      --> bob joined · epoch 3
func renderEntry(e *Entry, w int, c *common.Common) []string {
	st := c.Styles
	var prefix strings.Builder
	pw := 0
	if c.TimeFormat != "" && !e.Time.IsZero() {
		t := e.Time.Local().Format(c.TimeFormat)
		prefix.WriteString(st.Time.Render(t))
		prefix.WriteByte(' ')
		pw += len([]rune(t)) + 1
	}
	nw := nameWidth(w)
	var name string
	switch e.Kind {
	case Text:
		name = e.From
	case Join:
		name = "-->"
	case Leave:
		name = "<--"
	case System:
		name = "--"
	case Info:
		name = "·"
	case Error:
		name = "!!"
	}
	nameRunes := []rune(name)
	if len(nameRunes) > nw {
		name = string(nameRunes[:nw-1]) + "…"
	}
	pad := strings.Repeat(" ", max(nw-len([]rune(name)), 0))
	prefix.WriteString(pad)
	switch e.Kind {
	case Text:
		if e.Own {
			prefix.WriteString(st.OwnName.Render(name))
		} else {
			prefix.WriteString(st.Name(e.Key).Render(name))
		}
	case Error:
		prefix.WriteString(st.Error.Render(name))
	default:
		prefix.WriteString(st.System.Render(name))
	}
	prefix.WriteByte(' ')
	pw += nw + 1
	tw := w - pw
	if tw < 10 { // too narrow to indent: no name column
		tw = max(w, 1)
	}
	text := e.Text
	var marks []string
	if e.Late {
		marks = append(marks, "(late)")
	}
	if e.Resent {
		marks = append(marks, "(re-sent)")
	}
	if e.Pending {
		marks = append(marks, "…")
	}
	if e.Failed {
		marks = append(marks, "(not sent)")
	}
	textStyle := st.Text
	switch {
	case e.Kind == Error:
		textStyle = st.Error
	case e.Kind == Info:
		textStyle = st.Info
	case e.Kind != Text:
		textStyle = st.System
	case e.Mention:
		textStyle = st.Mention
	}
	wrapped := common.Wrap(text, tw)
	markText := strings.Join(marks, " ")
	if len(marks) > 0 && common.Width(wrapped[len(wrapped)-1])+1+common.Width(markText) > tw {
		wrapped = append(wrapped, "") // the marks go on a line of their own
	}
	lines := make([]string, 0, len(wrapped))
	indent := strings.Repeat(" ", w-tw)
	for j, l := range wrapped {
		s := textStyle.Render(l)
		if j == len(wrapped)-1 && len(marks) > 0 {
			if l != "" {
				s += " "
			}
			s += st.Mark.Render(markText)
		}
		if j == 0 && tw != w {
			lines = append(lines, prefix.String()+s)
		} else if j == 0 {
			lines = append(lines, prefix.String(), s)
		} else {
			lines = append(lines, indent+s)
		}
	}
	return lines
}
