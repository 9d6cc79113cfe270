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

// TestNarrowKeepsWhatMatters: a narrow line drops the hints, then the reachability, then
// the peer id, before it cuts what tchat is busy with.
func TestNarrowKeepsWhatMatters(t *testing.T) {
	m := New(common.New())
	m.Set(State{PeerID: "12D3KooWABCDEFGHIJKLMNOPQRSTUVWXYZ", Connected: 2, Reachability: "private", Busy: []string{"joining friends"}})
	for _, tc := range []struct {
		w         int
		want, not []string
	}{
		{100, []string{"12D3KooW…UVWXYZ", "behind NAT", "joining friends", "F4 mouse off", "F1 help"}, nil},
		{80, []string{"12D3KooW…UVWXYZ", "behind NAT", "joining friends", "F1 help"}, []string{"F4"}},
		{70, []string{"12D3KooW…UVWXYZ", "behind NAT", "joining friends"}, []string{"F1"}},
		{60, []string{"12D3KooW…UVWXYZ", "2 peers", "joining friends"}, []string{"NAT"}},
		{40, []string{"tchat", "2 peers", "joining friends"}, []string{"12D3"}},
		{30, []string{"2 peers", "joining friends"}, []string{"tchat"}},
	} {
		m.SetSize(tc.w, 1)
		got := ansi.Strip(m.View())
		if ansi.StringWidth(got) != tc.w {
			t.Errorf("%d: width %d: %q", tc.w, ansi.StringWidth(got), got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%d: lacks %q: %q", tc.w, w, got)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(got, n) {
				t.Errorf("%d: shows %q: %q", tc.w, n, got)
			}
		}
	}
}
