package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tchat-p2p/tchat/chat"
)

func TestLoadsGroupsAndHistory(t *testing.T) {
	h := newHarness(t, sampleFake(), 120, 30)
	h.wantScreen("1 tchat", "2 friends", "3 work", "alice hi all", "carol works here", "(late)", "(re-sent)",
		"4 members", "epoch 4 · deadbeef", "layers signal,mls,aes", "carol (you)", "3 peers", "behind NAT")
	// The message that names us is marked, on screen and in the buffer.
	var mention bool
	for _, e := range h.m.current().buf.Entries() {
		mention = mention || e.Mention
	}
	if !mention {
		t.Error("a message naming carol is not marked as a mention")
	}
}

func TestSendMessage(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 160, 24)
	h.typeText("hello there")
	h.enter()
	h.wantScreen("carol hello there")
	h.noScreen("hello there …", "(not sent)")
	if len(f.sent) != 1 || f.sent[0] != "hello there" {
		t.Errorf("sent %q", f.sent)
	}
	f.fail["Send"] = errors.New("chat: the network is down")
	h.typeText("again")
	h.enter()
	h.wantScreen("again (not sent)", "not sent: chat: the network is down")
	// "//" sends a line that starts with a slash.
	delete(f.fail, "Send")
	h.typeText("//shrug")
	h.enter()
	if f.sent[len(f.sent)-1] != "/shrug" {
		t.Errorf("sent %q", f.sent)
	}
}

func TestHomeRefusesMessages(t *testing.T) {
	f := newFake("carol")
	h := newHarness(t, f, 100, 24)
	h.wantScreen("Welcome to tchat", "/create NAME")
	h.typeText("hello")
	h.enter()
	h.wantScreen("this is tchat's home")
	if len(f.sent) != 0 {
		t.Error("sent from the home buffer")
	}
}

func TestEvents(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 40)
	friends, work := f.order[0], f.order[1]
	dave, erin, zoe := testPeer("dave"), testPeer("erin"), testPeer("zoe")
	f.groups[friends].Name = "pals" // as the core will tell after the rename
	for _, ev := range []chat.Event{
		chat.MessageReceived{Group: friends, Sender: dave, Text: "hey carol, look", Time: t0},
		chat.MemberJoined{Group: friends, Member: zoe, Epoch: 5},
		chat.EpochChanged{Group: friends, Epoch: 5, Authenticator: []byte{1, 2, 3, 4, 5}},
		chat.MemberLeft{Group: friends, Member: dave, Epoch: 6},
		chat.MemberRemoved{Group: friends, Member: zoe, By: testPeer("alice"), Epoch: 7},
		chat.GroupRenamed{Group: friends, Name: "pals", By: testPeer("alice"), Epoch: 8},
		chat.ForkDetected{Group: friends, Peer: dave, Epoch: 8},
		chat.ForkResolved{Group: friends, Epoch: 9, How: "switched"},
		chat.SyncProgress{Group: friends, Peer: dave, Commits: 2, Messages: 3, Done: true},
		chat.Error{Group: friends, Err: errors.New("chat: a message did not open")},
		chat.MessageReceived{Group: work, Sender: erin, Text: "ping carol", Time: t0},
		chat.MessageReceived{Group: work, Sender: erin, Text: "and more", Time: t0},
	} {
		h.deliver(eventMsg{ev})
	}
	h.settle()
	h.wantScreen("dave hey carol, look", "--> ~", "joined · epoch 5", "epoch 5 · authenticator 01020304",
		"<-- dave left · epoch 6", "was removed by alice · epoch 7", "alice renamed the group to pals",
		"another branch", "fork resolved at epoch 9: moved to the winning branch", "caught up from dave: 2 commits, 3 messages",
		"!! chat: a message did not open", "2 pals", "@2")
	// Switching to work clears its count.
	h.key('3', tea.ModAlt)
	h.wantScreen("erin ping carol", "3 work  ")
	h.noScreen("@2")
	// Removal of ourselves makes the group inactive.
	h.deliver(eventMsg{chat.MemberLeft{Group: work, Member: f.self, Epoch: 3}})
	h.settle()
	h.wantScreen("you are no longer a member of work", "not a member of work any more")
	h.typeText("still here?")
	h.enter()
	h.wantScreen("you are no longer a member of work")
}

func TestSyncShowsSpinner(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 120, 24)
	h.send(eventMsg{chat.SyncProgress{Group: f.order[0], Peer: testPeer("bob"), Commits: 1, Messages: 7}})
	h.wantScreen("catching up friends (1 commits, 7 messages)", "catching up…")
	h.send(eventMsg{chat.SyncProgress{Group: f.order[0], Peer: testPeer("bob"), Commits: 2, Messages: 9, Done: true}})
	h.noScreen("catching up friends")
}

func TestCommands(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 160, 50)
	run := func(line string, want ...string) {
		t.Helper()
		h.typeText(line)
		h.enter()
		h.wantScreen(want...)
	}
	run("/help", "Commands (Tab completes):", "/create", "/history", "ctrl+n next conversation")
	run("/help join", "/join TOKEN — join a group")
	run("/frob", "unknown command /frob")
	run("/layers", "messages pass through signal,mls,aes", "Signal: PQXDH", "cipher suite 0xf001")
	run("/verify alice", "Safety number with alice", "12345 67890", "/verify alice yes")
	run("/verify bob yes", "bob is verified ✓")
	run("/verify nobody", `no member "nobody" in friends`)
	run("/nick caz", "you are now caz", "caz (you)")
	run("/leave", "cannot leave friends: chat: not implemented yet")
	run("/add notapeer", "/add: not a peer id")
	f.fail["Add"] = errors.New("chat: not implemented yet")
	run("/add "+testPeer("zed").String(), "cannot add ~", "not implemented yet")
	run("/history wrap", "1 messages match \"wrap\"", "alice: carol: can you check")
	run("/invite --uses 3", "Invite token for friends", "for 3 people", "tchat1fake")
	h.key(tea.KeyEscape, 0)
	h.noScreen("Invite token for friends")
	run("/invite --uses x", "/invite --uses x")
	run("/remove dave", "dave was removed by caz · epoch 5", "3 members")
	run("/remove caz", "to remove yourself, /leave")
	run("/rename pals", "pals")
	run("/create lab --policy mls,aes", "created lab", "layers mls,aes")
	run("/join tchat1garbage", "invalid invite token")
	run("/create", "usage: /create NAME")
	if f.calls[len(f.calls)-1] != "Create" {
		t.Errorf("calls %v", f.calls)
	}
	// Commands that need a group refuse the home buffer.
	h.key('1', tea.ModAlt)
	run("/invite", "/invite works in a group")
}

func TestTabCompletesMembers(t *testing.T) {
	h := newHarness(t, sampleFake(), 120, 24)
	h.typeText("/ver")
	h.key(tea.KeyTab, 0)
	h.key(tea.KeyTab, 0)
	if v := h.m.input.Value(); v != "/verify alice " {
		t.Errorf("input %q", v)
	}
	h.key(tea.KeyEscape, 0)
	h.typeText("da")
	h.key(tea.KeyTab, 0)
	if v := h.m.input.Value(); v != "dave: " {
		t.Errorf("input %q", v)
	}
}

func TestPasteNeverSends(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 100, 24)
	h.send(tea.PasteMsg{Content: "line one\nline two\n"})
	if len(f.sent) != 0 {
		t.Fatal("a paste sent a message")
	}
	h.wantScreen("> line one", "  line two")
	h.enter()
	if len(f.sent) != 1 || f.sent[0] != "line one\nline two\n" {
		t.Errorf("sent %q", f.sent)
	}
}

func TestNarrowToggles(t *testing.T) {
	h := newHarness(t, sampleFake(), 60, 20)
	h.noScreen("Conversations", "epoch 4 · deadbeef")
	h.key(tea.KeyF2, 0) // the list covers the messages
	h.wantScreen("Conversations", "2 friends")
	h.noScreen("alice hi all")
	h.key(tea.KeyEscape, 0)
	h.wantScreen("alice")
	h.key(tea.KeyF3, 0)
	h.wantScreen("4 members", "epoch 4 · deadbeef")
	h.key(tea.KeyF3, 0)
	h.noScreen("epoch 4 · deadbeef")
	// Wide: the toggles hide and show the panes beside the messages.
	h.send(tea.WindowSizeMsg{Width: 140, Height: 30})
	h.wantScreen("Conversations", "epoch 4 · deadbeef")
	h.key(tea.KeyF3, 0)
	h.noScreen("epoch 4 · deadbeef")
	h.key(tea.KeyF2, 0)
	h.noScreen("Conversations")
	h.send(tea.WindowSizeMsg{Width: 10, Height: 3})
	h.wantScreen("window", "small")
}

func TestSwitchAndScrollKeys(t *testing.T) {
	h := newHarness(t, sampleFake(), 120, 8)
	if h.m.cur != 1 {
		t.Fatalf("starts on %d, want the first group", h.m.cur)
	}
	h.key('n', tea.ModCtrl)
	h.wantScreen("work · 2 members")
	h.key('p', tea.ModCtrl)
	h.key('p', tea.ModCtrl)
	h.wantScreen("tchat · home")
	h.key('2', tea.ModAlt)
	h.key(tea.KeyPgUp, 0)
	h.wantScreen("scrolled", "bob great")
	h.key(tea.KeyEscape, 0) // back to the newest
	h.noScreen("scrolled")
}

func TestMouseToggle(t *testing.T) {
	h := newHarness(t, sampleFake(), 120, 8)
	if h.m.View().MouseMode != tea.MouseModeNone {
		t.Fatal("the mouse is captured by default")
	}
	h.send(tea.MouseWheelMsg{X: 50, Y: 3, Button: tea.MouseWheelUp})
	h.noScreen("scrolled") // not captured: ignored
	h.key(tea.KeyF4, 0)
	if h.m.View().MouseMode != tea.MouseModeCellMotion {
		t.Fatal("F4 did not capture the mouse")
	}
	h.wantScreen("F4 mouse on")
	h.send(tea.MouseWheelMsg{X: 50, Y: 3, Button: tea.MouseWheelUp})
	h.wantScreen("scrolled")
	h.send(tea.MouseClickMsg{X: 3, Y: 3, Button: tea.MouseLeft})
	h.wantScreen("work · 2 members")
}

func TestQuit(t *testing.T) {
	h := newHarness(t, sampleFake(), 80, 20)
	_, cmd := h.m.Update(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	if cmd == nil {
		t.Fatal("Ctrl+C returned no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("Ctrl+C does not quit")
	}
	if h.m.ctx.Err() == nil {
		t.Error("quitting did not cancel the running operations")
	}
}

func TestEventsClosed(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 100, 20)
	close(f.events)
	h.settle()
	h.wantScreen("the chat core stopped", "offline")
}

func TestUnlockPage(t *testing.T) {
	f := sampleFake()
	var got []string
	opts := testOptions(nil)
	opts.Backend = nil
	opts.Prompt = PromptCreate
	opts.Profile = "work"
	opts.Open = func(ctx context.Context, pass string) (Backend, error) {
		got = append(got, pass)
		if len(got) == 1 {
			return nil, errors.New("identity: wrong passphrase")
		}
		return f, nil
	}
	h := newHarnessWith(t, opts, f, 100, 24)
	h.wantScreen(`first start of profile "work"`, "passphrase:")
	h.enter()
	h.wantScreen("the passphrase is empty")
	h.typeText("one")
	h.enter()
	h.wantScreen("repeat it:")
	h.typeText("two")
	h.enter()
	h.wantScreen("the two passphrases differ")
	h.typeText("good")
	h.enter()
	h.typeText("good")
	h.enter()
	h.wantScreen("identity: wrong passphrase", "passphrase:")
	h.typeText("good")
	h.enter()
	h.typeText("good")
	h.enter()
	h.wantScreen("2 friends", "alice hi all")
	if len(got) != 2 || got[0] != "good" {
		t.Errorf("Open got %q", got)
	}
	if strings.Contains(h.screen(), "good") {
		t.Error("the passphrase is on the screen")
	}
}

func TestOpenFailureWithoutPrompt(t *testing.T) {
	opts := testOptions(nil)
	opts.Backend = nil
	opts.Open = func(context.Context, string) (Backend, error) { return nil, errors.New("node: listen: address in use") }
	h := newHarnessWith(t, opts, nil, 80, 20)
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(h.screen(), "could not start") && time.Now().Before(deadline) {
		h.settle()
	}
	h.wantScreen("tchat could not start", "address in use", "Ctrl+C quits")
}

func TestMentions(t *testing.T) {
	for _, tc := range []struct {
		text, nick string
		want       bool
	}{
		{"hi carol", "carol", true},
		{"@Carol: look", "carol", true},
		{"caroline", "carol", false},
		{"carol's", "carol", true},
		{"x", "", false},
	} {
		if got := mentions(tc.text, tc.nick); got != tc.want {
			t.Errorf("mentions(%q, %q) = %v", tc.text, tc.nick, got)
		}
	}
}
