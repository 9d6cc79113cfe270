package convlist

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tchat-p2p/tchat/tui/common"
)

func list() Model {
	m := New(common.New())
	m.SetSize(20, 6)
	m.SetItems([]Item{{Name: "tchat"}, {Name: "friends", Unread: 3}, {Name: "work", Mention: true, Unread: 1}, {Name: "old", Inactive: true}, {Name: "new", Busy: true}})
	return m
}

func TestView(t *testing.T) {
	got := ansi.Strip(list().View())
	lines := strings.Split(got, "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, want := range []string{"Conversations", "1 tchat", "2 friends", "3 work", "4 old", "5 new"} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d %q, want prefix %q", i, lines[i], want)
		}
	}
	if !strings.HasSuffix(lines[2], " 3") || !strings.HasSuffix(lines[3], "@1") || !strings.HasSuffix(lines[5], "…") {
		t.Errorf("badges:\n%s", got)
	}
}

func TestUpdate(t *testing.T) {
	m := list()
	step := func(msg tea.Msg, want int) {
		t.Helper()
		var cmd tea.Cmd
		m, cmd = m.Update(msg)
		if m.Selected() != want {
			t.Fatalf("selected %d, want %d", m.Selected(), want)
		}
		if cmd == nil {
			t.Fatal("no SelectedMsg")
		}
		if sel, ok := cmd().(SelectedMsg); !ok || sel.Index != want {
			t.Fatalf("cmd gave %v", cmd())
		}
	}
	step(tea.KeyPressMsg{Code: 'n', Mod: tea.ModCtrl}, 1)
	step(tea.KeyPressMsg{Code: 'p', Mod: tea.ModCtrl}, 0)
	step(tea.KeyPressMsg{Code: 'p', Mod: tea.ModCtrl}, 4) // wraps
	step(tea.KeyPressMsg{Code: '3', Mod: tea.ModAlt}, 2)
	step(tea.MouseClickMsg{X: 3, Y: 2, Button: tea.MouseLeft}, 1)
	if _, cmd := m.Update(tea.KeyPressMsg{Code: '9', Mod: tea.ModAlt}); cmd != nil || m.Selected() != 1 {
		t.Error("Alt+9 beyond the list moved the selection")
	}
}

func TestSelectionStaysVisible(t *testing.T) {
	m := New(common.New())
	m.SetSize(20, 3)
	var items []Item
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		items = append(items, Item{Name: n})
	}
	m.SetItems(items)
	m.Select(4)
	if got := ansi.Strip(m.View()); !strings.Contains(got, "5 e") || strings.Contains(got, "1 a") {
		t.Errorf("got\n%s", got)
	}
}
