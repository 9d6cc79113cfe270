package messages

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tchat-p2p/tchat/tui/common"
)

var t0 = time.Date(2026, 3, 14, 15, 9, 0, 0, time.Local)

func pane(w, h int, n int) Model {
	m := New(common.New())
	m.SetSize(w, h)
	m.SetTitle("title")
	for i := range n {
		m.Buffer().Append(Entry{Kind: Text, Time: t0, From: "alice", Key: "a", Text: fmt.Sprintf("message %d", i)})
	}
	return m
}

func plain(m Model) []string { return strings.Split(ansi.Strip(m.View()), "\n") }

func TestViewSizeAndOrder(t *testing.T) {
	m := pane(40, 6, 10)
	lines := plain(m)
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6", len(lines))
	}
	for _, l := range lines {
		if ansi.StringWidth(l) != 40 {
			t.Errorf("line %q is %d wide, want 40", l, ansi.StringWidth(l))
		}
	}
	if !strings.HasPrefix(lines[0], "title") || !strings.Contains(lines[5], "message 9") || !strings.Contains(lines[1], "message 5") {
		t.Errorf("want the newest at the bottom:\n%s", strings.Join(lines, "\n"))
	}
}

func TestFewEntriesSitAtTheBottom(t *testing.T) {
	m := pane(30, 5, 1)
	lines := plain(m)
	if strings.TrimSpace(lines[1]) != "" || !strings.Contains(lines[4], "message 0") {
		t.Errorf("got\n%s", strings.Join(lines, "\n"))
	}
}

func TestWrapAndMarks(t *testing.T) {
	m := pane(30, 12, 0)
	m.Buffer().Append(
		Entry{Kind: Text, Time: t0, From: "bob", Key: "b", Text: "a rather long message that has to wrap", Late: true},
		Entry{Kind: Text, Time: t0, From: "verylongnickname", Text: "x", Resent: true},
		Entry{Kind: Join, Time: t0, Text: "carol joined"},
		Entry{Kind: Error, Time: t0, Text: "boom"},
		Entry{Kind: Text, Time: t0, From: "me", Own: true, Text: "line1\nline2", Pending: true, ID: "p1"},
	)
	got := strings.Join(plain(m), "\n")
	for _, want := range []string{"bob a rather long", "(late)", "verylon…", "(re-sent)", "--> carol joined", "!! boom", "line2 …"} {
		if !strings.Contains(got, want) {
			t.Errorf("view lacks %q:\n%s", want, got)
		}
	}
	if !m.Buffer().Update("p1", func(e *Entry) { e.Pending, e.Failed = false, true }) {
		t.Fatal("Update found no entry")
	}
	if got := strings.Join(plain(m), "\n"); !strings.Contains(got, "(not sent)") {
		t.Errorf("after Update:\n%s", got)
	}
}

func TestScroll(t *testing.T) {
	m := pane(30, 5, 20) // 4 body lines
	m, _ = m.Update(tea.KeyPressMsg{Code: tea.KeyPgUp})
	if m.Buffer().Offset() != 3 {
		t.Fatalf("offset %d after PgUp, want 3", m.Buffer().Offset())
	}
	if got := plain(m); !strings.Contains(got[4], "message 16") || !strings.Contains(got[0], "scrolled") {
		t.Errorf("after PgUp:\n%s", strings.Join(got, "\n"))
	}
	// New messages keep the view still and are counted.
	m.Buffer().Append(Entry{Kind: Text, Time: t0, From: "a", Text: "new"})
	if got := plain(m); !strings.Contains(got[4], "message 16") || !strings.Contains(got[0], "1 new") {
		t.Errorf("after a new message:\n%s", strings.Join(got, "\n"))
	}
	m, _ = m.Update(tea.KeyPressMsg{Code: tea.KeyHome, Mod: tea.ModCtrl})
	if got := plain(m); !strings.Contains(got[1], "message 0") {
		t.Errorf("Ctrl+Home:\n%s", strings.Join(got, "\n"))
	}
	m, _ = m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	if got := plain(m); !strings.Contains(got[1], "message 3") {
		t.Errorf("wheel down:\n%s", strings.Join(got, "\n"))
	}
	m, _ = m.Update(tea.KeyPressMsg{Code: tea.KeyEnd, Mod: tea.ModCtrl})
	if m.Buffer().Offset() != 0 || !strings.Contains(plain(m)[4], "new") {
		t.Errorf("Ctrl+End: offset %d", m.Buffer().Offset())
	}
	m, _ = m.Update(tea.KeyPressMsg{Code: tea.KeyPgDown})
	if m.Buffer().Offset() != 0 {
		t.Errorf("PgDn at the bottom moved to %d", m.Buffer().Offset())
	}
}

func TestSearchAndPrepend(t *testing.T) {
	b := NewBuffer()
	b.Append(Entry{Text: "Hello World"}, Entry{Text: "bye"})
	b.Prepend(Entry{Text: "old hello"})
	if b.Len() != 3 || b.Entries()[0].Text != "old hello" {
		t.Fatalf("prepend: %+v", b.Entries())
	}
	if got := b.Search("HELLO"); len(got) != 2 {
		t.Errorf("search found %d, want 2", len(got))
	}
}

func TestMaxEntries(t *testing.T) {
	b := NewBuffer()
	for i := 0; i < MaxEntries+5; i++ {
		b.Append(Entry{Text: "x"})
	}
	if b.Len() != MaxEntries {
		t.Errorf("len %d, want %d", b.Len(), MaxEntries)
	}
}

func TestThemeChangeRerenders(t *testing.T) {
	c := common.New()
	m := New(c)
	m.SetSize(30, 3)
	m.Buffer().Append(Entry{Kind: Text, From: "a", Key: "a", Text: "x"})
	dark := m.View()
	c.Styles = common.New().Styles // a new generation
	c.Styles.Dark = false
	if m.View() == "" || dark == "" {
		t.Fatal("empty view")
	}
	if m.Buffer().gen != c.Styles.Gen {
		t.Error("the cache was not renewed on a theme change")
	}
}

func TestUpdateLast(t *testing.T) {
	m := pane(30, 5, 20)
	b := m.Buffer()
	b.Append(Entry{Kind: System, Time: t0, Text: "epoch 5", ID: "epoch-5"})
	if b.UpdateLast("epoch-4", func(e *Entry) { e.Text = "wrong" }) {
		t.Fatal("UpdateLast changed an entry of another id")
	}
	m, _ = m.Update(tea.KeyPressMsg{Code: tea.KeyPgUp})
	before := plain(m)
	// A longer text wraps on more lines: the view scrolled up stays where it was.
	if !b.UpdateLast("epoch-5", func(e *Entry) { e.Text = "bob joined · epoch 5 and a text that wraps on the next line" }) {
		t.Fatal("UpdateLast missed the last entry")
	}
	if after := plain(m); strings.Join(after[1:], "\n") != strings.Join(before[1:], "\n") {
		t.Errorf("the scrolled view moved:\n%s\nthen\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	if b.Entries()[b.Len()-1].Text[:10] != "bob joined" {
		t.Errorf("last entry %q", b.Entries()[b.Len()-1].Text)
	}
	b.Append(Entry{Text: "later"})
	if b.UpdateLast("epoch-5", func(e *Entry) {}) {
		t.Error("UpdateLast changed an entry that is not the last")
	}
}
