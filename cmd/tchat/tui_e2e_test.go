package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tmuxSession is one tchat process in its own tmux session.
type tmuxSession struct {
	t      *testing.T
	socket string
	name   string
}

func tmux(t *testing.T, socket string, args ...string) string {
	t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) screen() string { return tmux(s.t, s.socket, "capture-pane", "-p", "-t", s.name) }

// keys types text literally, then the named keys (Enter, Tab, C-c, …).
func (s *tmuxSession) keys(text string, named ...string) {
	if text != "" {
		tmux(s.t, s.socket, "send-keys", "-t", s.name, "-l", text)
	}
	for _, k := range named {
		tmux(s.t, s.socket, "send-keys", "-t", s.name, k)
	}
}

// wait returns the screen once it shows every one of want.
func (s *tmuxSession) wait(want ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		scr := s.screen()
		missing := ""
		for _, w := range want {
			if !strings.Contains(scr, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: the screen never showed %q:\n%s", s.name, missing, scr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// token returns the invite token that /invite shows over the panes, and closes it.
func (s *tmuxSession) token(group string) string {
	s.t.Helper()
	s.keys("/invite", "Enter")
	scr := s.wait("Invite token for " + group)
	var token strings.Builder
	lines := strings.Split(scr, "\n")
	tokenLine := regexp.MustCompile(`^[a-z2-7]+\s*$`)
	for i, l := range lines {
		if strings.HasPrefix(l, "tchat1") {
			token.WriteString(strings.TrimSpace(l))
			for _, more := range lines[i+1:] {
				if !tokenLine.MatchString(more) {
					break
				}
				token.WriteString(strings.TrimSpace(more))
			}
			break
		}
	}
	if token.Len() < 100 {
		s.t.Fatalf("no token on the screen:\n%s", scr)
	}
	s.keys("", "Escape")
	return token.String()
}

// TestTUIEndToEnd drives three real tchat processes in tmux on this machine: alice
// creates a profile through the passphrase page and a group, invites bob, bob joins with
// the token, they write to each other, both see the roster and the epochs change; both
// change their nicknames and alice renames the group, and each sees the other's change;
// carol joins and leaves again, under the eyes of the other two; alice removes bob.
func TestTUIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is missing (.ci/run installs it)")
		}
		t.Skip("tmux is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tchat")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "tchat.toml")
	if err := os.WriteFile(cfg, []byte(`
[network]
listen = ["/ip4/127.0.0.1/tcp/0"]
dht = "off"
mdns = false
`), 0o600); err != nil {
		t.Fatal(err)
	}
	socket := "tchat-e2e-" + filepath.Base(dir)
	t.Cleanup(func() { exec.Command("tmux", "-L", socket, "kill-server").Run() })
	start := func(name string, args ...string) *tmuxSession {
		cmd := append([]string{bin, "--home", filepath.Join(dir, "home"), "--config", cfg, "--profile", name}, args...)
		shell := strings.Join(cmd, " ") + "; echo $? > " + filepath.Join(dir, name+".exit") + "; sleep 600"
		tmux(t, socket, "new-session", "-d", "-s", name, "-x", "240", "-y", "50", "-e", "TCHAT_PASSPHRASE=", shell)
		return &tmuxSession{t: t, socket: socket, name: name}
	}
	alice := start("alice", "--nick", "alice")
	bob := start("bob", "--no-passphrase", "--nick", "bob")
	carol := start("carol", "--no-passphrase", "--nick", "carol")

	// First run: alice chooses a passphrase in the interface.
	alice.wait(`first start of profile "alice"`, "passphrase:")
	alice.keys("correct horse", "Enter")
	alice.wait("repeat it:")
	alice.keys("correct horse", "Enter")
	alice.wait("Welcome to tchat", "/create NAME")
	bob.wait("Welcome to tchat")

	alice.keys("/create friends", "Enter")
	alice.wait("created friends", "1 member", "epoch 0")
	token := alice.token("friends")

	bob.keys("/join "+token, "Enter")
	bob.wait("you joined friends · epoch 1", "2 members", "epoch 1")
	alice.wait("joined · epoch 1", "2 members", "epoch 1 ·")

	alice.keys("hello bob, from alice", "Enter")
	bob.wait("alice hello bob, from alice")
	bob.keys("hi alice", "M-Enter")
	bob.keys("two lines from bob", "Enter")
	alice.wait("bob hi alice", "two lines from bob")

	// Nicknames: each side sees the other's new one, in the messages and the roster.
	bob.keys("/nick bobby", "Enter")
	bob.wait("you are now bobby", "bobby (you)")
	bob.keys("bob is bobby now", "Enter")
	alice.wait("bob is now known as bobby", "bobby bob is bobby now", "● bobby")
	alice.keys("/nick alicia", "Enter")
	alice.wait("you are now alicia", "alicia (you)")
	alice.keys("and alice is alicia", "Enter")
	bob.wait("alice is now known as alicia", "alicia and alice is alicia", "● alicia")

	// Renaming the group: both screens show the new name.
	alice.keys("/rename pals", "Enter")
	alice.wait("you renamed friends to pals · epoch 2", "pals · 2 members")
	bob.wait("alicia renamed friends to pals · epoch 2", "pals · 2 members", "Message pals")

	// A third member joins, writes, and leaves.
	token = alice.token("pals")
	carol.keys("/join "+token, "Enter")
	carol.wait("you joined pals · epoch 3", "3 members")
	alice.wait("joined · epoch 3", "3 members")
	bob.wait("joined · epoch 3", "3 members")
	carol.keys("hi from carol", "Enter")
	alice.wait("carol hi from carol")
	bob.wait("carol hi from carol")
	carol.keys("/leave", "Enter")
	carol.wait("you left pals · epoch 4", "not a member of pals any more")
	alice.wait("carol left · epoch 4", "2 members")
	bob.wait("carol left · epoch 4", "2 members")

	alice.keys("/remove ", "Tab", "Enter")
	alice.wait("you removed bobby · epoch 5", "1 member", "epoch 5 ·")
	bob.wait("you were removed from pals by alicia · epoch 5")

	for _, s := range []*tmuxSession{alice, bob, carol} {
		s.keys("", "C-c")
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(dir, name+".exit"))
			if err == nil {
				if code := strings.TrimSpace(string(b)); code != "0" {
					t.Errorf("%s exited with %s", name, code)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not quit on Ctrl+C", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "home", "alice", logFileName)); err != nil {
		t.Errorf("no log file in the profile: %v", err)
	}
}
