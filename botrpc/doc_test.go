package botrpc

import (
	"os"
	"regexp"
	"testing"

	"github.com/tchat-p2p/tchat/chat"
)

// TestProtocolDocumented checks that docs/bot-protocol.md has a section for every method
// and every notification.
func TestProtocolDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/bot-protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, h := range regexp.MustCompile("(?m)^### (.*)$").FindAllStringSubmatch(string(b), -1) {
		for _, name := range regexp.MustCompile("`([A-Za-z]+)`").FindAllStringSubmatch(h[1], -1) {
			documented[name[1]] = true
		}
	}
	for _, m := range Methods() {
		if !documented[m] {
			t.Errorf("method %s is not documented", m)
		}
	}
	s := New(newFake(t), Options{})
	notes := []string{"inviteReceived", "inviteAccepted", "addDeclined"}
	for _, ev := range []chat.Event{chat.MessageReceived{}, chat.MemberJoined{}, chat.MemberLeft{}, chat.MemberRemoved{},
		chat.GroupRenamed{}, chat.EpochChanged{}, chat.PeerOnline{}, chat.PeerOffline{}, chat.SyncProgress{},
		chat.ForkDetected{}, chat.ForkResolved{}, chat.Error{}} {
		method, _, ok := s.notificationOf(ev)
		if !ok {
			t.Errorf("%T has no notification", ev)
		}
		notes = append(notes, method)
	}
	for _, n := range notes {
		if !documented[n] {
			t.Errorf("notification %s is not documented", n)
		}
	}
}
