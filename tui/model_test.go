package tui

import (
	"context"
	"errors"
	"fmt"
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
	h.wantScreen("again (not sent)", "not sent: the network is down")
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

// events delivers evs in order, then lets what they lead to land.
func (h *harness) events(evs ...chat.Event) {
	for _, ev := range evs {
		h.deliver(eventMsg{ev})
	}
	h.settle()
}

// lastLines returns the text of the current conversation's last n entries.
func (h *harness) lastLines(n int) []string {
	es := h.m.current().buf.Entries()
	var out []string
	for _, e := range es[max(len(es)-n, 0):] {
		out = append(out, e.Text)
	}
	return out
}

func TestEvents(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 40)
	friends, work := f.order[0], f.order[1]
	dave, erin := testPeer("dave"), testPeer("erin")
	h.events(
		chat.MessageReceived{Group: friends, Sender: dave, Nick: "dave", Text: "hey carol, look", Time: t0},
		chat.Error{Group: friends, Err: errors.New("chat: a message did not open")},
		chat.MessageReceived{Group: work, Sender: erin, Text: "ping carol", Time: t0},
		chat.MessageReceived{Group: work, Sender: erin, Text: "and more", Time: t0},
	)
	h.wantScreen("dave hey carol, look", "!! a message did not open", "3 work", "@2")
	h.noScreen("chat: a message")
	// Switching to work clears its count.
	h.key('3', tea.ModAlt)
	h.wantScreen("erin ping carol", "3 work  ")
	h.noScreen("@2")
}

// TestMembershipEvents sends what the core emits for commits: EpochChanged, then what
// the commit did. The line of the change replaces the epoch line.
func TestMembershipEvents(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 40)
	friends := f.order[0]
	alice, dave, zoe, yan := testPeer("alice"), testPeer("dave"), testPeer("zoe"), testPeer("yan")
	epoch := func(e uint64) chat.Event {
		return chat.EpochChanged{Group: friends, Epoch: e, Authenticator: []byte{byte(e), 2, 3, 4, 5}}
	}
	h.events(epoch(5), chat.MemberJoined{Group: friends, Member: zoe, Epoch: 5}, chat.MemberJoined{Group: friends, Member: yan, Epoch: 5})
	if got := h.lastLines(2); got[0] != shortID(zoe)+" joined · epoch 5" || got[1] != shortID(yan)+" joined · epoch 5" {
		t.Errorf("joins: %q", got)
	}
	h.events(epoch(6), chat.MemberLeft{Group: friends, Member: dave, Epoch: 6})
	h.events(epoch(7), chat.MemberRemoved{Group: friends, Member: zoe, By: alice, Epoch: 7})
	h.events(epoch(8), chat.MemberRemoved{Group: friends, Member: yan, By: f.self, Epoch: 8})
	f.groups[friends].Name = "pals" // as the core says after the rename
	h.events(epoch(9), chat.GroupRenamed{Group: friends, Name: "pals", By: alice, Epoch: 9})
	h.events(epoch(10)) // an update: only the epoch
	want := []string{
		"dave left · epoch 6",
		shortID(zoe) + " was removed by alice · epoch 7",
		"you removed " + shortID(yan) + " · epoch 8",
		"alice renamed friends to pals · epoch 9",
		"epoch 10 · authenticator 0a020304",
	}
	if got := h.lastLines(5); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The title, the list and the input follow the new name.
	h.wantScreen("2 pals", "pals · 4 members", "Message pals")
	// Our own departure makes the group inactive.
	h.events(epoch(11), chat.MemberRemoved{Group: friends, Member: f.self, By: alice, Epoch: 11})
	h.wantScreen("you were removed from pals by alice · epoch 11", "not a member of pals any more", "not a member any more")
	h.typeText("still here?")
	h.enter()
	h.wantScreen("!! you are no longer a member of pals")
	if len(f.sent) != 0 {
		t.Errorf("sent %q after the removal", f.sent)
	}
}

// TestJoinLineNamed: a member joins before its nickname is known here; the line that
// said so takes the nickname once the state or a message brings it.
func TestJoinLineNamed(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 40)
	friends, zoe, yan := f.order[0], testPeer("zoe"), testPeer("yan")
	f.mu.Lock()
	f.groups[friends].Members = append(f.groups[friends].Members,
		chat.Member{Peer: zoe, LeafIndex: 4, Nick: "zoe"}, chat.Member{Peer: yan, LeafIndex: 5})
	f.mu.Unlock()
	h.events(chat.EpochChanged{Group: friends, Epoch: 5}, chat.MemberJoined{Group: friends, Member: zoe, Epoch: 5},
		chat.MemberJoined{Group: friends, Member: yan, Epoch: 5})
	if got := h.lastLines(2); got[0] != "zoe joined · epoch 5" || got[1] != shortID(yan)+" joined · epoch 5" {
		t.Errorf("lines %q", got)
	}
	h.events(chat.MessageReceived{Group: friends, Sender: yan, Nick: "yan", Text: "hello", Time: t0})
	if got := h.lastLines(3); got[1] != "yan joined · epoch 5" {
		t.Errorf("lines %q", got)
	}
	h.noScreen("is now known as")
}

func TestLeaveAndRename(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 40)
	h.typeText("/rename pals")
	h.enter()
	h.wantScreen("you renamed friends to pals · epoch 5", "2 pals", "pals · 4 members · epoch 5")
	h.typeText("/rename pals")
	h.enter()
	h.wantScreen("the group is already called pals")
	h.typeText("/leave")
	h.enter()
	h.wantScreen("you left pals · epoch 6", "pals · not a member any more", "not a member of pals any more")
	if n := strings.Count(h.screen(), "you left pals"); n != 1 {
		t.Errorf("%d lines say we left", n)
	}
	h.typeText("/leave")
	h.enter()
	h.wantScreen("you are no longer a member of pals")
	if f.calls[len(f.calls)-1] != "Leave" || strings.Count(strings.Join(f.calls, " "), "Leave") != 1 {
		t.Errorf("calls %v", f.calls)
	}
	// A failure says why, in words.
	h.key('3', tea.ModAlt)
	f.fail["Leave"] = fmt.Errorf("%w %s", chat.ErrUnknownGroup, f.order[1])
	h.typeText("/leave")
	h.enter()
	h.wantScreen("cannot leave work: this profile does not know that group")
}

func TestOnlineEvents(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 30)
	friends := f.order[0]
	// Nothing asks the core: the events alone move the dots.
	f.mu.Lock()
	f.groups[friends].Members[2].Online = true // what a refresh would say
	f.mu.Unlock()
	h.events(chat.PeerOffline{Group: friends, Peer: testPeer("alice")})
	h.wantScreen("○ alice", "○ bob")
	h.events(chat.PeerOnline{Group: friends, Peer: testPeer("bob")}, chat.PeerOnline{Group: friends, Peer: testPeer("alice")})
	h.wantScreen("● alice", "● bob", "● dave")
	h.events(chat.PeerOffline{Group: friends, Peer: testPeer("dave")})
	h.wantScreen("○ dave")
	// Events of another group leave this roster alone.
	h.events(chat.PeerOffline{Group: f.order[1], Peer: testPeer("alice")})
	h.wantScreen("● alice")
}

func TestNicknames(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 30)
	friends := f.order[0]
	// A message carries its sender's nickname: a change shows at once.
	h.events(chat.MessageReceived{Group: friends, Sender: testPeer("bob"), Nick: "robert", Text: "new name", Time: t0})
	h.wantScreen("bob is now known as robert", "robert new name", "robert ")
	h.noScreen("○ bob")
	// A nickname heard in a heartbeat comes with the next refresh of the state.
	f.mu.Lock()
	f.groups[friends].Members[1].Nick = "ally"
	f.mu.Unlock()
	h.send(netTickMsg{})
	h.wantScreen("alice is now known as ally", "● ally")
	// Our own.
	h.typeText("/nick caz")
	h.enter()
	h.wantScreen("you are now caz", "caz (you)")
	if f.Nick() != "caz" {
		t.Errorf("nick %q", f.Nick())
	}
	f.fail["SetNick"] = errors.New("chat: nickname longer than 64 bytes")
	h.typeText("/nick " + strings.Repeat("x", 70))
	h.enter()
	h.wantScreen("cannot set the nickname: nickname longer than 64 bytes", "caz (you)")
}

// TestAddedToGroup: a member added us with /add; the group appears with a line.
func TestAddedToGroup(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 30)
	id := f.addGroup("lab", 3, "carol", "alice")
	h.events(chat.EpochChanged{Group: id, Epoch: 3, Authenticator: []byte{1, 2, 3, 4}})
	h.wantScreen("4 lab", "friends · 4 members", "you joined lab: Alt+4 or Ctrl+N goes there")
	h.key('4', tea.ModAlt)
	h.wantScreen("you joined lab · epoch 3", "lab · 2 members · epoch 3")
	h.noScreen("authenticator 01020304")
}

func TestJoinCommand(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 30)
	token := newTestInvite(t, "lab")
	h.typeText("/join " + token)
	h.enter()
	h.wantScreen("you joined lab · epoch 1", "lab · 2 members", "4 lab")
	h.noScreen("authenticator deadbeef")
	// Again: it is there already.
	h.key('1', tea.ModAlt)
	h.typeText("/join " + token)
	h.enter()
	h.wantScreen("you are already a member of lab", "lab · 2 members")
	if n := strings.Count(h.screen(), "you joined"); n != 1 {
		t.Errorf("%d lines say we joined:\n%s", n, h.screen())
	}
	f.fail["Join"] = fmt.Errorf("%w: the inviter: dial backoff", chat.ErrUnreachable)
	h.typeText("/join " + newTestInvite(t, "lab"))
	h.enter()
	h.wantScreen("cannot join lab: the inviter could not be reached")
	h.noScreen("dial backoff")
}

func TestForkEvents(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 30)
	friends, dave := f.order[0], testPeer("dave")
	// Detected and resolved at once: one line.
	h.events(chat.ForkDetected{Group: friends, Peer: dave, Epoch: 4}, chat.ForkResolved{Group: friends, Epoch: 4, How: "kept"})
	if got := h.lastLines(1); got[0] != "fork at epoch 4 with dave: our branch won" {
		t.Errorf("fork line %q", got)
	}
	// Resolved later: a second line.
	h.events(chat.ForkDetected{Group: friends, Peer: dave, Epoch: 5}, chat.EpochChanged{Group: friends, Epoch: 6},
		chat.ForkResolved{Group: friends, Epoch: 6, How: "switched"})
	want := []string{"fork at epoch 5: dave is on another branch; resolving", "epoch 6", "fork resolved: moved to the winning branch · epoch 6"}
	if got := h.lastLines(3); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q", got)
	}
}

func TestSendSavedNotPublished(t *testing.T) {
	f := sampleFake()
	h := newHarness(t, f, 140, 30)
	f.fail["Publish"] = errors.New("chat: publish: no peers")
	h.typeText("later")
	h.enter()
	h.wantScreen("carol later", "saved but did not go out yet")
	h.noScreen("(not sent)")
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
	run("/id", "You are carol (peer id "+f.self.String()+")", "/ip4/127.0.0.1/tcp/4001/p2p/"+f.self.String())
	run("/verify alice", "Safety number with alice", "12345 67890", "/verify alice yes")
	run("/verify bob yes", "bob is verified ✓")
	run("/verify nobody", `no member "nobody" in friends`)
	run("/nick caz", "you are now caz", "caz (you)")
	run("/add notapeer", "/add: not a peer id")
	run("/add "+testPeer("zed").String(), shortID(testPeer("zed"))+" joined · epoch 5", "5 members")
	run("/add "+testPeer("zed").String(), shortID(testPeer("zed"))+" is already a member")
	f.fail["Add"] = fmt.Errorf("%w: %s: no addresses", chat.ErrUnreachable, testPeer("yan"))
	run("/add "+testPeer("yan").String(), "cannot add "+shortID(testPeer("yan"))+": it could not be reached")
	run("/history wrap", "1 messages match \"wrap\"", "alice: carol: can you check")
	run("/invite --uses 3", "Invite token for friends", "for 3 people", "tchat1fake")
	h.key(tea.KeyEscape, 0)
	h.noScreen("Invite token for friends")
	run("/invite --uses x", "/invite --uses x")
	run("/remove dave", "you removed dave · epoch 6", "4 members")
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
