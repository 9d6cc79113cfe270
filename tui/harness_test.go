package tui

import (
	"os"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/internal/config"
	"github.com/tchat-p2p/tchat/internal/store"
)

func TestMain(m *testing.M) {
	time.Local = time.UTC // golden files show times
	os.Exit(m.Run())
}

// t0 is the fixed clock of the tests.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// harness drives a Model as a Program would: it runs the commands in goroutines and
// feeds their messages back, until nothing more arrives for a moment.
type harness struct {
	t    testing.TB
	m    *Model
	f    *fakeBackend
	msgs chan tea.Msg
}

func testOptions(f *fakeBackend) Options {
	def := config.Default()
	return Options{Backend: f, UI: def.UI, Chat: def.Chat, Now: func() time.Time { return t0 }, NetInterval: time.Hour}
}

func newHarness(t testing.TB, f *fakeBackend, w, h int) *harness {
	return newHarnessWith(t, testOptions(f), f, w, h)
}

func newHarnessWith(t testing.TB, opts Options, f *fakeBackend, w, h int) *harness {
	hs := &harness{t: t, m: New(opts), f: f, msgs: make(chan tea.Msg, 256)}
	t.Cleanup(hs.m.Close)
	hs.run(hs.m.Init())
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	return hs
}

func (h *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		if msg := cmd(); msg != nil {
			h.msgs <- msg
		}
	}()
}

func (h *harness) deliver(msg tea.Msg) {
	switch msg := msg.(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			h.run(c)
		}
	case tea.QuitMsg:
	default:
		_, cmd := h.m.Update(msg)
		h.run(cmd)
	}
}

// send delivers msg and then everything it leads to.
func (h *harness) send(msg tea.Msg) {
	h.deliver(msg)
	h.settle()
}

func (h *harness) settle() {
	for {
		select {
		case msg := <-h.msgs:
			h.deliver(msg)
		case <-time.After(60 * time.Millisecond):
			return
		}
	}
}

// typeText types s key by key.
func (h *harness) typeText(s string) {
	for _, r := range s {
		h.deliver(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	h.settle()
}

func (h *harness) key(code rune, mod tea.KeyMod) {
	h.send(tea.KeyPressMsg{Code: code, Mod: mod})
}

func (h *harness) enter() { h.key(tea.KeyEnter, 0) }

// screen returns the view without styles.
func (h *harness) screen() string {
	return ansi.Strip(h.m.View().Content)
}

func (h *harness) wantScreen(subs ...string) {
	h.t.Helper()
	s := h.screen()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			h.t.Fatalf("screen lacks %q:\n%s", sub, s)
		}
	}
}

func (h *harness) noScreen(subs ...string) {
	h.t.Helper()
	s := h.screen()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			h.t.Fatalf("screen shows %q:\n%s", sub, s)
		}
	}
}

// sampleFake returns a backend with two groups, some history, and us as "carol".
func sampleFake() *fakeBackend {
	f := newFake("carol")
	g := f.addGroup("friends", 4, "carol", "alice", "bob", "dave")
	f.addGroup("work", 2, "carol", "erin")
	alice, bob := testPeer("alice"), testPeer("bob")
	msg := func(i int, from []byte, text string, flags store.MessageFlags) chat.Message {
		return chat.Message{Group: g, Sender: peer.ID(from), Time: t0.Add(time.Duration(i-10) * time.Minute), Text: text, Epoch: 4,
			Own: flags&store.FlagOwn != 0, Late: flags&store.FlagLate != 0, Resent: flags&store.FlagResent != 0}
	}
	f.history[g] = []chat.Message{
		msg(1, []byte(alice), "hi all, the new build is up", 0),
		msg(2, []byte(bob), "great, trying it now", 0),
		msg(3, []byte(f.self), "works here on the laptop", store.FlagOwn),
		msg(4, []byte(alice), "carol: can you check the relay setup when you have a minute? It is the long line that wraps across the pane.", 0),
		msg(5, []byte(bob), "sorry, this one came in late", store.FlagLate),
		msg(6, []byte(alice), "and this one was sent again", store.FlagResent),
	}
	return f
}
