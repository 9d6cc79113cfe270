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

// TestTUIEndToEnd drives two real tchat processes in tmux on this machine: alice creates
// a profile through the passphrase page and a group, invites bob, bob joins with the
// token, they write to each other, both see the roster and the epochs change, and
// alice removes bob.
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

	// First run: alice chooses a passphrase in the interface.
	alice.wait(`first start of profile "alice"`, "passphrase:")
	alice.keys("correct horse", "Enter")
	alice.wait("repeat it:")
	alice.keys("correct horse", "Enter")
	alice.wait("Welcome to tchat", "/create NAME")
	bob.wait("Welcome to tchat")

	alice.keys("/create friends", "Enter")
	alice.wait("created friends", "1 member", "epoch 0")
	alice.keys("/invite", "Enter")
	scr := alice.wait("Invite token for friends")
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
		t.Fatalf("no token on the screen:\n%s", scr)
	}
	alice.keys("", "Escape")

	bob.keys("/join "+token.String(), "Enter")
	bob.wait("you joined friends", "2 members", "epoch 1")
	alice.wait("joined · epoch 1", "2 members", "epoch 1 ·")

	alice.keys("hello bob, from alice", "Enter")
	bob.wait("hello bob, from alice")
	bob.keys("hi alice", "M-Enter")
	bob.keys("two lines from bob", "Enter")
	alice.wait("hi alice", "two lines from bob")

	alice.keys("/remove ", "Tab", "Enter")
	alice.wait("was removed by alice · epoch 2", "1 member", "epoch 2 ·")
	bob.wait("you were removed from friends by alice · epoch 2")

	alice.keys("", "C-c")
	bob.keys("", "C-c")
	for _, name := range []string{"alice", "bob"} {
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
