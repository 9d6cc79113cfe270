package common

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// Fit returns s cut or padded with spaces to exactly w cells. s is one line and may hold
// styles.
func Fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	n := ansi.StringWidth(s)
	if n > w {
		return ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", w-n)
}

// Lines returns exactly h lines of exactly w cells: lines cut or padded, and blank lines
// added below.
func Lines(lines []string, w, h int) []string {
	out := make([]string, h)
	blank := strings.Repeat(" ", max(w, 0))
	for i := range out {
		if i < len(lines) {
			out[i] = Fit(lines[i], w)
		} else {
			out[i] = blank
		}
	}
	return out
}

// Block joins Lines(lines, w, h) with newlines.
func Block(lines []string, w, h int) string {
	return strings.Join(Lines(lines, w, h), "\n")
}

// Wrap wraps plain text to w cells, breaking at spaces and inside words longer than w.
// Newlines in s are kept.
func Wrap(s string, w int) []string { return WrapAt(s, w, "") }

// WrapAt is Wrap that may also break after any of the bytes in breakpoints.
func WrapAt(s string, w int, breakpoints string) []string {
	if w < 1 {
		w = 1
	}
	var out []string
	for _, para := range strings.Split(s, "\n") {
		if para == "" {
			out = append(out, "")
			continue
		}
		out = append(out, strings.Split(ansi.Wrap(para, w, breakpoints), "\n")...)
	}
	return out
}

// Width returns the cells s takes on screen.
func Width(s string) int { return ansi.StringWidth(s) }
