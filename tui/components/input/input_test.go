package input

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tchat-p2p/tchat/tui/common"
)

func newInput() Model {
	m := New(common.New(), func(before, word string) []string {
		var out []string
		for _, c := range []string{"/help", "/history", "/invite", "alice", "albert"} {
			if strings.HasPrefix(c, word) && (before == "" || !strings.HasPrefix(c, "/")) {
				out = append(out, c)
			}
		}
		return out
	})
	m.SetSize(40, 1)
	return m
}

func typeText(m Model, s string) Model {
	for _, r := range s {
		m, _ = m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	return m
}

func press(m Model, code rune, mod tea.KeyMod) (Model, tea.Cmd) {
	return m.Update(tea.KeyPressMsg{Code: code, Mod: mod})
}

func TestEnterSends(t *testing.T) {
	m := typeText(newInput(), "hello")
	m, cmd := press(m, tea.KeyEnter, 0)
	if cmd == nil {
		t.Fatal("Enter sent nothing")
	}
	if got := cmd().(SubmitMsg).Text; got != "hello" {
		t.Errorf("sent %q", got)
	}
	if m.Value() != "" {
		t.Errorf("input not cleared: %q", m.Value())
	}
	if _, cmd := press(m, tea.KeyEnter, 0); cmd != nil {
		t.Error("Enter on an empty input sent something")
	}
}

func TestNewlineKeysAndPaste(t *testing.T) {
	m := typeText(newInput(), "a")
	m, _ = press(m, tea.KeyEnter, tea.ModAlt)
	m = typeText(m, "b")
	m, _ = press(m, tea.KeyEnter, tea.ModShift)
	m = typeText(m, "c")
	m, _ = press(m, 'j', tea.ModCtrl)
	m, _ = m.Update(tea.PasteMsg{Content: "pasted\r\nlines\rhere"})
	if got, want := m.Value(), "a\nb\nc\npasted\nlines\nhere"; got != want {
		t.Errorf("value %q, want %q", got, want)
	}
	if m.Height() != MaxLines {
		t.Errorf("height %d, want %d", m.Height(), MaxLines)
	}
	view := ansi.Strip(m.View())
	if !strings.HasPrefix(view, "> ") && !strings.Contains(view, "  here") {
		t.Errorf("view:\n%s", view)
	}
}

func TestEscClears(t *testing.T) {
	m := typeText(newInput(), "draft")
	m, _ = press(m, tea.KeyEscape, 0)
	if m.Value() != "" {
		t.Errorf("Esc left %q", m.Value())
	}
}

func TestTab(t *testing.T) {
	m := typeText(newInput(), "/hi")
	m, _ = press(m, tea.KeyTab, 0)
	if m.Value() != "/history " {
		t.Errorf("unique command: %q", m.Value())
	}
	m.SetValue("/h")
	m, _ = press(m, tea.KeyTab, 0)
	m, _ = press(m, tea.KeyTab, 0)
	if m.Value() != "/history " {
		t.Errorf("second candidate: %q", m.Value())
	}
	m, _ = press(m, tea.KeyTab, 0)
	if m.Value() != "/help " {
		t.Errorf("cycle back: %q", m.Value())
	}
	m.SetValue("al")
	m, _ = press(m, tea.KeyTab, 0)
	if m.Value() != "alice: " {
		t.Errorf("name at the start: %q", m.Value())
	}
	m.SetValue("hi al")
	m, _ = press(m, tea.KeyTab, 0)
	if m.Value() != "hi alice " {
		t.Errorf("name inside: %q", m.Value())
	}
	m.SetValue("zz")
	m, _ = press(m, tea.KeyTab, 0)
	if m.Value() != "zz" {
		t.Errorf("no candidate changed the input: %q", m.Value())
	}
}

func TestHistory(t *testing.T) {
	m := newInput()
	for _, s := range []string{"one", "two"} {
		m = typeText(m, s)
		m, _ = press(m, tea.KeyEnter, 0)
	}
	m = typeText(m, "dra")
	m, _ = press(m, tea.KeyUp, 0)
	if m.Value() != "two" {
		t.Fatalf("up: %q", m.Value())
	}
	m, _ = press(m, tea.KeyUp, 0)
	m, _ = press(m, tea.KeyUp, 0)
	if m.Value() != "one" {
		t.Fatalf("up up: %q", m.Value())
	}
	m, _ = press(m, tea.KeyDown, 0)
	m, _ = press(m, tea.KeyDown, 0)
	if m.Value() != "dra" {
		t.Errorf("back to the draft: %q", m.Value())
	}
}
