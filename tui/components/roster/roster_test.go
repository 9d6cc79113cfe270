package roster

import (
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tchat-p2p/tchat/tui/common"
)

func group(n int) *Group {
	g := &Group{Name: "g", Epoch: 7, Authenticator: "deadbeef", Suite: "0xf001", SuiteName: "MLS_128_X", Policy: "signal,mls,aes"}
	g.Members = append(g.Members, Member{Key: "k0", Name: "zed", Fingerprint: "abcd efgh ijkl", Self: true, Online: true})
	for i := 1; i < n; i++ {
		g.Members = append(g.Members, Member{Key: fmt.Sprint("k", i), Name: fmt.Sprintf("m%03d", i), Fingerprint: "wxyz 1234", Online: i%2 == 0, Verified: i == 2})
	}
	return g
}

func TestView(t *testing.T) {
	m := New(common.New())
	m.SetSize(32, 14)
	m.SetGroup(group(4))
	got := ansi.Strip(m.View())
	for _, want := range []string{"4 members", "epoch 7 · deadbeef", "suite 0xf001", "MLS_128_X", "layers signal,mls,aes", "● zed (you)", "abcd efgh", "● m002", "✓", "○ m001"} {
		if !strings.Contains(got, want) {
			t.Errorf("roster lacks %q:\n%s", want, got)
		}
	}
	// Self first, then online, then by name.
	if strings.Index(got, "zed") > strings.Index(got, "m002") || strings.Index(got, "m002") > strings.Index(got, "m001") {
		t.Errorf("order:\n%s", got)
	}
	if n := len(strings.Split(got, "\n")); n != 14 {
		t.Errorf("%d lines", n)
	}
}

func TestNoGroupAndNarrow(t *testing.T) {
	m := New(common.New())
	m.SetSize(20, 4)
	if got := ansi.Strip(m.View()); !strings.Contains(got, "no group") {
		t.Errorf("got %q", got)
	}
	m.SetGroup(group(2))
	if got := ansi.Strip(m.View()); strings.Contains(got, "wxyz") {
		t.Errorf("a narrow roster shows fingerprints:\n%s", got)
	}
}

func TestManyMembersScroll(t *testing.T) {
	m := New(common.New())
	m.SetSize(32, 20)
	m.SetGroup(group(1000))
	got := ansi.Strip(m.View())
	if !strings.Contains(got, "more (wheel scrolls)") {
		t.Errorf("no count of the rest:\n%s", got)
	}
	first := m.offset
	m, _ = m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	if m.offset != first+3 {
		t.Errorf("wheel: offset %d", m.offset)
	}
	for range 1000 {
		m, _ = m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	}
	if got := ansi.Strip(m.View()); strings.Contains(got, "more") || !strings.Contains(got, "m999") && !strings.Contains(got, "m998") {
		t.Errorf("at the end:\n%s", got)
	}
	m, _ = m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelUp})
	if m.offset < 0 {
		t.Error("negative offset")
	}
}
