package statusbar

import (
	"strings"
	"testing"

	"charm.land/bubbles/v2/spinner"
	"github.com/charmbracelet/x/ansi"

	"github.com/tchat-p2p/tchat/tui/common"
)

func TestView(t *testing.T) {
	m := New(common.New())
	m.SetSize(100, 1)
	if cmd := m.Set(State{PeerID: "12D3KooWABCDEFGHIJKLMNOPQRSTUVWXYZ", Connected: 1, Reachability: "private"}); cmd != nil {
		t.Error("a spinner without anything going on")
	}
	got := ansi.Strip(m.View())
	for _, want := range []string{"tchat", "12D3KooW…UVWXYZ", "1 peer ", "behind NAT", "F4 mouse off", "F1 help"} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q: %q", want, got)
		}
	}
	if ansi.StringWidth(got) != 100 {
		t.Errorf("width %d", ansi.StringWidth(got))
	}
	cmd := m.Set(State{PeerID: "x", Connected: 5, Reachability: "relayed", Busy: []string{"joining friends"}, Mouse: true})
	if cmd == nil {
		t.Fatal("no spinner tick when busy")
	}
	got = ansi.Strip(m.View())
	for _, want := range []string{"5 peers", "relayed", "joining friends", "F4 mouse on"} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q: %q", want, got)
		}
	}
	before := m.spin.View()
	m, next := m.Update(m.spin.Tick())
	if next == nil || m.spin.View() == before {
		t.Error("the spinner did not turn")
	}
	m.Set(State{Offline: true, PeerID: "x"})
	if got := ansi.Strip(m.View()); !strings.Contains(got, "offline") {
		t.Errorf("offline: %q", got)
	}
	if _, next := m.Update(spinner.TickMsg{}); next != nil {
		t.Error("the spinner turns while idle")
	}
	m.SetSize(10, 1)
	if w := ansi.StringWidth(m.View()); w != 10 {
		t.Errorf("narrow width %d", w)
	}
}
