package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The bot's end-to-end tests run real `tchat bot` processes (and the example bots) on
// loopback, with profiles made here with a cheap scrypt work factor.

// botNet are the network flags of every bot in the tests: loopback only, no discovery.
var botNet = []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off"}

// buildTchat builds this command into dir and returns the binary's path.
func buildTchat(t *testing.T, dir string) string {
	t.Helper()
	return goBuild(t, dir, "tchat", ".")
}

func goBuild(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	t.Logf("built %s in %v", pkg, time.Since(start).Round(time.Millisecond))
	return bin
}

// makeProfile creates a passphrase-protected profile in home.
func makeProfile(t *testing.T, home, name, passFile string) {
	t.Helper()
	pf := newProfileFlags("test", io.Discard, "")
	if _, ok := pf.parse([]string{"--home", home, "--profile", name, "--passphrase-file", passFile}); !ok {
		t.Fatal("flags")
	}
	p, _, err := openOrCreateProfile(pf, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
}

// botProc is a running `tchat bot` driven over its standard input and output.
type botProc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	msgs   chan map[string]any
	exited chan error

	nextID int
	notes  []map[string]any // notifications read and not consumed yet
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startBot(t *testing.T, bin, name string, env []string, args ...string) *botProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"bot"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	b := &botProc{t: t, name: name, cmd: cmd, stderr: &syncBuffer{}, msgs: make(chan map[string]any, 4096), exited: make(chan error, 1)}
	cmd.Stderr = b.stderr
	var err error
	if b.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"unparsable": sc.Text()}
			}
			b.msgs <- m
		}
		close(b.msgs)
		b.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		b.stdin.Close()
		select {
		case <-b.exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, b.stderr.String())
		}
	})
	return b
}

// next returns the next line of output.
func (b *botProc) next(timeout time.Duration) map[string]any {
	b.t.Helper()
	select {
	case m, ok := <-b.msgs:
		if !ok {
			b.t.Fatalf("%s: exited", b.name)
		}
		if u, bad := m["unparsable"]; bad {
			b.t.Fatalf("%s: output is not JSON: %q", b.name, u)
		}
		return m
	case <-time.After(timeout):
		b.t.Fatalf("%s: no output for %v", b.name, timeout)
	}
	return nil
}

func (b *botProc) writeLine(line string) {
	b.t.Helper()
	if _, err := io.WriteString(b.stdin, line+"\n"); err != nil {
		b.t.Fatalf("%s: write: %v", b.name, err)
	}
}

// rpc sends a request and returns its whole response, keeping the notifications that
// arrive meanwhile.
func (b *botProc) rpc(method string, params any) map[string]any {
	b.t.Helper()
	b.nextID++
	req := map[string]any{"jsonrpc": "2.0", "id": b.nextID, "method": method}
	if params != nil {
		req["params"] = params
	}
	line, _ := json.Marshal(req)
	b.writeLine(string(line))
	return b.response(float64(b.nextID))
}

func (b *botProc) response(id any) map[string]any {
	b.t.Helper()
	for {
		m := b.next(90 * time.Second)
		if _, ok := m["method"]; ok {
			b.notes = append(b.notes, m)
			continue
		}
		if m["id"] != id {
			b.t.Fatalf("%s: response %v, want id %v", b.name, m, id)
		}
		return m
	}
}

// call is rpc for a request that must succeed.
func (b *botProc) call(method string, params any) any {
	b.t.Helper()
	m := b.rpc(method, params)
	if e, ok := m["error"]; ok {
		b.t.Fatalf("%s: %s: error %v", b.name, method, e)
	}
	return m["result"]
}

// callErr is rpc for a request that must fail; it returns the error code.
func (b *botProc) callErr(method string, params any) int {
	b.t.Helper()
	m := b.rpc(method, params)
	e, ok := m["error"].(map[string]any)
	if !ok {
		b.t.Fatalf("%s: %s: want an error, got %v", b.name, method, m)
	}
	return int(e["code"].(float64))
}

// waitNote waits for a notification among methods whose params satisfy ok, and returns
// its method and params. Earlier notifications that do not match are kept.
func (b *botProc) waitNote(methods string, ok func(p map[string]any) bool) (string, map[string]any) {
	b.t.Helper()
	match := func(m map[string]any) bool {
		method, _ := m["method"].(string)
		p, _ := m["params"].(map[string]any)
		return strings.Contains(" "+methods+" ", " "+method+" ") && (ok == nil || ok(p))
	}
	for i, m := range b.notes {
		if match(m) {
			b.notes = append(b.notes[:i:i], b.notes[i+1:]...)
			return m["method"].(string), m["params"].(map[string]any)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		m := b.next(time.Until(deadline))
		if _, isResp := m["id"]; isResp {
			b.t.Fatalf("%s: unexpected response %v", b.name, m)
		}
		if match(m) {
			return m["method"].(string), m["params"].(map[string]any)
		}
		b.notes = append(b.notes, m)
	}
	b.t.Fatalf("%s: no %s notification", b.name, methods)
	return "", nil
}

// waitOnline waits for the peerOnline notification of peer in gid: the bot heard it
// (its heartbeat or a message) over the group's topic.
func (b *botProc) waitOnline(gid, peer string) {
	b.t.Helper()
	b.waitNote("peerOnline", func(p map[string]any) bool { return p["groupId"] == gid && p["peerId"] == peer })
}

// code returns the error code of a response, 0 for a result.
func code(r map[string]any) int {
	e, ok := r["error"].(map[string]any)
	if !ok {
		return 0
	}
	c, _ := e["code"].(float64)
	return int(c)
}

// stop closes the bot's standard input and waits for a clean exit.
func (b *botProc) stop() {
	b.t.Helper()
	b.stdin.Close()
	for range b.msgs {
	}
	select {
	case err := <-b.exited:
		if err != nil {
			b.t.Fatalf("%s: exit: %v\n%s", b.name, err, b.stderr.String())
		}
		b.exited <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		b.t.Fatalf("%s: did not exit after its input closed", b.name)
	}
	if !strings.Contains(b.stderr.String(), "state saved") {
		b.t.Errorf("%s: no clean shutdown in its log:\n%s", b.name, b.stderr.String())
	}
}

// TestBot runs two `tchat bot` processes against each other over their standard input
// and output, then the example bots.
func TestBot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs tchat processes")
	}
	dir := t.TempDir()
	bin := buildTchat(t, dir)
	home, passFile := profileEnv(t)

	t.Run("two bots", func(t *testing.T) { testTwoBots(t, bin, home, passFile) })
	t.Run("python example", func(t *testing.T) { testPythonExample(t, bin, home, passFile) })
	t.Run("socket", func(t *testing.T) { testSocket(t, bin, home, passFile) })
	t.Run("go example", func(t *testing.T) { testGoExample(t, bin, dir, home, passFile) })
}

// testSocket serves two clients on --socket; both get the notifications, and SIGTERM
// stops the bot cleanly.
func testSocket(t *testing.T, bin, home, passFile string) {
	makeProfile(t, home, "daemon", passFile)
	makeProfile(t, home, "visitor", passFile)
	sock := filepath.Join(t.TempDir(), "bot.sock")
	cmd := exec.Command(bin, append([]string{"bot", "--home", home, "--profile", "daemon", "--passphrase-file", passFile, "--socket", sock}, botNet...)...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("daemon stderr:\n%s", stderr.String())
		}
	})
	var clients []*sockConn
	for i := range 2 {
		deadline := time.Now().Add(30 * time.Second)
		for {
			nc, err := net.Dial("unix", sock)
			if err == nil {
				clients = append(clients, &sockConn{t: t, nc: nc, dec: json.NewDecoder(nc)})
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("client %d: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
	gid := clients[0].call(1, "createGroup", `{"name":"sock"}`)["groupId"].(string)
	token := clients[1].call(2, "invite", `{"groupId":"`+gid+`"}`)["token"].(string)
	visitor := startBot(t, bin, "visitor", nil, append([]string{"--home", home, "--profile", "visitor", "--passphrase-file", passFile}, botNet...)...)
	visitor.call("join", map[string]any{"token": token})
	for i, c := range clients {
		c.waitNote("memberJoined")
		t.Logf("client %d told", i)
	}
	// A second bot on the same socket is refused.
	second := exec.Command(bin, "bot", "--home", home, "--profile", "visitor2", "--no-passphrase", "--socket", sock, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off")
	if out, err := second.CombinedOutput(); err == nil || !strings.Contains(string(out), "another bot is serving") {
		t.Errorf("second bot on the socket: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, stderr)
	if !strings.Contains(stderr.String(), "state saved") {
		t.Errorf("no clean stop:\n%s", stderr.String())
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("the socket was left behind")
	}
	visitor.stop()
}

type sockConn struct {
	t   *testing.T
	nc  net.Conn
	dec *json.Decoder
}

func (c *sockConn) read() map[string]any {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	var m map[string]any
	if err := c.dec.Decode(&m); err != nil {
		c.t.Fatalf("socket: %v", err)
	}
	return m
}

func (c *sockConn) call(id int, method, params string) map[string]any {
	c.t.Helper()
	fmt.Fprintf(c.nc, `{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`+"\n", id, method, params)
	for {
		m := c.read()
		if m["id"] == float64(id) {
			r, ok := m["result"].(map[string]any)
			if !ok {
				c.t.Fatalf("%s: %v", method, m)
			}
			return r
		}
	}
}

func (c *sockConn) waitNote(method string) map[string]any {
	c.t.Helper()
	for {
		if m := c.read(); m["method"] == method {
			return m["params"].(map[string]any)
		}
	}
}

// TestBotUsage covers what fails before the bot serves.
func TestBotUsage(t *testing.T) {
	home, passFile := profileEnv(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bot", "extra"}, 2, "usage: tchat bot"},
		{[]string{"bot", "--dht", "sometimes"}, 2, "--dht"},
		{[]string{"bot", "--home", home, "--profile", "nopass"}, 1, "--passphrase-file FILE or TCHAT_PASSPHRASE"},
	} {
		_, errOut, code := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errOut)
		}
	}
	makeProfile(t, home, "locked", passFile)
	t.Setenv("TCHAT_PASSPHRASE", "the wrong one")
	if _, errOut, code := runCLI("bot", "--home", home, "--profile", "locked"); code != 1 || !strings.Contains(errOut, "passphrase") {
		t.Errorf("wrong passphrase: exit %d, stderr %q", code, errOut)
	}
}

// testTwoBots drives `tchat bot` processes through a group's life: create, invite, join,
// messages both ways, rename, a direct add (accepted with --auto-accept, declined
// without), leave and remove, checking the notifications on every side, then a restart.
func testTwoBots(t *testing.T, bin, home, passFile string) {
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		makeProfile(t, home, name, passFile)
	}
	bot := func(name string, env []string, extra ...string) *botProc {
		args := []string{"--home", home, "--profile", name, "--nick", name}
		if env == nil {
			args = append(args, "--passphrase-file", passFile)
		}
		return startBot(t, bin, name, env, append(append(args, extra...), botNet...)...)
	}
	// Alice's passphrase comes from a file, Bob's from the environment. Carol accepts
	// direct adds, Dave does not.
	alice := bot("alice", nil)
	bob := bot("bob", []string{"TCHAT_PASSPHRASE=a good passphrase"})
	carol := bot("carol", nil, "--auto-accept")
	dave := bot("dave", nil)

	aliceID := alice.call("identity", nil).(map[string]any)["peerId"].(string)
	bobID := bob.call("identity", nil).(map[string]any)["peerId"].(string)
	carolInfo := carol.call("identity", nil).(map[string]any)
	carolID := carolInfo["peerId"].(string)
	daveInfo := dave.call("identity", nil).(map[string]any)

	// Protocol errors get error objects and the bot keeps serving.
	alice.writeLine(`{"jsonrpc":"2.0","id":"x","method":"send"`)
	if m := alice.response(nil); m["error"].(map[string]any)["code"] != -32700.0 {
		t.Errorf("parse error: %v", m)
	}
	for _, tc := range []struct {
		method string
		params any
		code   int
	}{
		{"frobnicate", nil, -32601},
		{"send", map[string]any{"groupId": 7, "message": "x"}, -32602},
		{"send", map[string]any{"groupId": "ab", "message": "x"}, -2},
		{"join", map[string]any{"token": "tchat1nonsense"}, -4},
	} {
		if code := alice.callErr(tc.method, tc.params); code != tc.code {
			t.Errorf("%s %v: code %d, want %d", tc.method, tc.params, code, tc.code)
		}
	}

	// Create, invite, join: Alice sees Bob join, Bob sees himself join.
	group := alice.call("createGroup", map[string]any{"name": "lab"}).(map[string]any)
	gid := group["groupId"].(string)
	token := alice.call("invite", map[string]any{"groupId": gid}).(map[string]any)["token"].(string)
	joined := bob.call("join", map[string]any{"token": token}).(map[string]any)
	if joined["groupId"] != gid || joined["name"] != "lab" || len(joined["members"].([]any)) != 2 {
		t.Fatalf("join: %v", joined)
	}
	alice.waitNote("memberJoined", func(p map[string]any) bool { return p["groupId"] == gid && p["peerId"] == bobID && p["self"] == false })
	alice.waitNote("epochChanged", func(p map[string]any) bool { return p["groupId"] == gid && p["epoch"] == 1.0 })
	bob.waitNote("epochChanged", func(p map[string]any) bool { return p["groupId"] == gid && p["epoch"] == 1.0 })
	bob.waitNote("memberJoined", func(p map[string]any) bool {
		return p["groupId"] == gid && p["peerId"] == bobID && p["self"] == true && p["epoch"] == 1.0
	})
	alice.waitOnline(gid, bobID)
	bob.waitOnline(gid, aliceID)

	// Messages both ways, with nicknames; send returns the message.
	sent := alice.call("send", map[string]any{"groupId": gid, "message": "hello bob <3\nsecond line"}).(map[string]any)
	if sent["own"] != true || sent["nick"] != "alice" || sent["sender"] != aliceID || sent["id"] == "" || sent["epoch"] != 1.0 {
		t.Errorf("send result: %v", sent)
	}
	_, m := bob.waitNote("message", func(p map[string]any) bool { return p["groupId"] == gid })
	if m["sender"] != aliceID || m["nick"] != "alice" || m["message"] != "hello bob <3\nsecond line" || m["epoch"] != 1.0 || m["id"] != sent["id"] {
		t.Errorf("bob got %v", m)
	}
	bob.call("send", map[string]any{"groupId": gid, "message": "hi alice"})
	_, m = alice.waitNote("message", func(p map[string]any) bool { return p["groupId"] == gid })
	if m["sender"] != bobID || m["nick"] != "bob" || m["message"] != "hi alice" {
		t.Errorf("alice got %v", m)
	}
	h := bob.call("history", map[string]any{"groupId": gid}).(map[string]any)["messages"].([]any)
	if len(h) != 2 {
		t.Fatalf("bob's history: %v", h)
	}
	if h0, h1 := h[0].(map[string]any), h[1].(map[string]any); h0["message"] != "hello bob <3\nsecond line" || h0["nick"] != "alice" ||
		h1["own"] != true || h1["nick"] != "bob" {
		t.Errorf("bob's history: %v", h)
	}
	sn1 := alice.call("safetyNumber", map[string]any{"peerId": bobID}).(map[string]any)["safetyNumber"]
	sn2 := bob.call("safetyNumber", map[string]any{"peerId": aliceID}).(map[string]any)["safetyNumber"]
	if sn1 == "" || sn1 != sn2 {
		t.Errorf("safety numbers %v and %v", sn1, sn2)
	}
	alice.call("verify", map[string]any{"peerId": bobID})
	for _, mem := range alice.call("listMembers", map[string]any{"groupId": gid}).([]any) {
		mem := mem.(map[string]any)
		if mem["peerId"] == bobID && (mem["verified"] != true || mem["nick"] != "bob") {
			t.Errorf("bob as alice sees him: %v", mem)
		}
	}

	// Rename, by a member who did not create the group: both are told who did it.
	bob.call("rename", map[string]any{"groupId": gid, "name": "lab 2"})
	for _, b := range []*botProc{alice, bob} {
		b.waitNote("groupRenamed", func(p map[string]any) bool {
			return p["groupId"] == gid && p["name"] == "lab 2" && p["by"] == bobID && p["epoch"] == 2.0
		})
	}
	if g := alice.call("listGroups", map[string]any{"groupId": gid}).([]any)[0].(map[string]any); g["name"] != "lab 2" {
		t.Errorf("after rename: %v", g)
	}

	// A direct add (/tchat/kp/1, then /tchat/welcome/2): Carol, with --auto-accept, is
	// in; she is told who added her, the others see her join, and she can send.
	if r := alice.call("add", map[string]any{"groupId": gid, "peerId": carolID, "addrs": carolInfo["addrs"]}).(map[string]any); len(r) != 0 {
		t.Errorf("add: %v", r)
	}
	carol.waitNote("epochChanged", func(p map[string]any) bool { return p["groupId"] == gid && p["epoch"] == 3.0 })
	carol.waitNote("memberJoined", func(p map[string]any) bool {
		return p["groupId"] == gid && p["peerId"] == carolID && p["self"] == true && p["by"] == aliceID
	})
	for _, b := range []*botProc{alice, bob} {
		b.waitNote("memberJoined", func(p map[string]any) bool {
			return p["groupId"] == gid && p["peerId"] == carolID && p["self"] == false
		})
		b.waitOnline(gid, carolID)
	}
	carol.waitOnline(gid, aliceID)
	carol.waitOnline(gid, bobID)
	if g := carol.call("listGroups", nil).([]any); len(g) != 1 || g[0].(map[string]any)["name"] != "lab 2" || len(g[0].(map[string]any)["members"].([]any)) != 3 {
		t.Errorf("carol's groups: %v", g)
	}
	carol.call("send", map[string]any{"groupId": gid, "message": "thanks for the add"})
	for _, b := range []*botProc{alice, bob} {
		_, m := b.waitNote("message", func(p map[string]any) bool { return p["groupId"] == gid && p["sender"] == carolID })
		if m["message"] != "thanks for the add" || m["nick"] != "carol" {
			t.Errorf("%s got %v", b.name, m)
		}
	}

	// Dave runs without --auto-accept: he declines when asked for a key package, and
	// says so; the adder's add fails, and nothing was committed.
	side := alice.call("createGroup", map[string]any{"name": "side"}).(map[string]any)["groupId"].(string)
	if c := code(alice.rpc("add", map[string]any{"groupId": side, "peerId": daveInfo["peerId"], "addrs": daveInfo["addrs"]})); c != -7 {
		t.Errorf("add of a bot that declines: code %d, want -7", c)
	}
	dave.waitNote("addDeclined", func(p map[string]any) bool { return p["groupId"] == side && p["from"] == aliceID })
	if g := dave.call("listGroups", nil).([]any); len(g) != 0 {
		t.Errorf("dave is in %v", g)
	}
	if g := alice.call("listGroups", map[string]any{"groupId": side}).([]any)[0].(map[string]any); g["epoch"] != 0.0 || len(g["members"].([]any)) != 1 {
		t.Errorf("the group dave declined: %v", g)
	}
	dave.stop()

	// Leave: everyone is told, Carol first of all; she can no longer send.
	carol.call("leave", map[string]any{"groupId": gid})
	for _, b := range []*botProc{alice, bob, carol} {
		b.waitNote("memberLeft", func(p map[string]any) bool {
			return p["groupId"] == gid && p["peerId"] == carolID && p["self"] == (b == carol) && p["epoch"] == 4.0
		})
	}
	if c := code(carol.rpc("send", map[string]any{"groupId": gid, "message": "still here?"})); c != -9 {
		t.Errorf("send after leaving: code %d, want -9", c)
	}
	if g := carol.call("listGroups", map[string]any{"groupId": gid}).([]any)[0].(map[string]any); g["active"] != false {
		t.Errorf("carol after leaving: %v", g)
	}
	carol.stop()

	// Remove: both sides are told, with who did it; Bob can no longer send.
	alice.call("remove", map[string]any{"groupId": gid, "peerId": bobID})
	for _, b := range []*botProc{alice, bob} {
		b.waitNote("memberRemoved", func(p map[string]any) bool {
			return p["groupId"] == gid && p["peerId"] == bobID && p["by"] == aliceID && p["self"] == (b == bob) && p["epoch"] == 5.0
		})
	}
	if c := code(bob.rpc("send", map[string]any{"groupId": gid, "message": "still here?"})); c != -9 {
		t.Errorf("send after removal: code %d, want -9", c)
	}
	if c := code(alice.rpc("remove", map[string]any{"groupId": gid, "peerId": bobID})); c != -1 {
		t.Errorf("removing a non-member: code %d, want -1", c)
	}
	before := alice.call("listGroups", map[string]any{"groupId": gid}).([]any)[0].(map[string]any)
	epoch, members := before["epoch"], len(before["members"].([]any))
	if epoch != 5.0 || members != 1 {
		t.Errorf("alice's group at the end: %v", before)
	}

	// Closing standard input shuts down cleanly, with the state (and the nickname) saved.
	alice.stop()
	bob.stop()
	again := startBot(t, bin, "alice again", nil, append([]string{"--home", home, "--profile", "alice", "--passphrase-file", passFile}, botNet...)...)
	g := again.call("listGroups", map[string]any{"groupId": gid}).([]any)[0].(map[string]any)
	if g["epoch"] != epoch || len(g["members"].([]any)) != members || g["name"] != "lab 2" {
		t.Errorf("after restart: %v (before: epoch %v, %d members)", g, epoch, members)
	}
	if n := again.call("identity", nil).(map[string]any)["nick"]; n != "alice" {
		t.Errorf("nick after restart %q, want alice", n)
	}
	again.stop()
}

// lineReader reads a child's standard output line by line.
type lineReader chan string

func readLinesOf(r io.Reader) lineReader {
	ch := make(lineReader, 64)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	return ch
}

// wantPrefix returns the rest of the next line, which must start with prefix.
func (lr lineReader) wantPrefix(t *testing.T, prefix string) string {
	t.Helper()
	select {
	case line, ok := <-lr:
		if !ok {
			t.Fatalf("output ended; want %q", prefix)
		}
		rest, found := strings.CutPrefix(line, prefix)
		if !found {
			t.Fatalf("line %q, want %q", line, prefix)
		}
		return rest
	case <-time.After(90 * time.Second):
		t.Fatalf("no %q line", prefix)
	}
	return ""
}

// waitExit waits for cmd to exit with status 0.
func waitExit(t *testing.T, cmd *exec.Cmd, stderr *syncBuffer) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd.Path, err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not stop\n%s", cmd.Path, stderr.String())
	}
}

// messageFrom waits for a message in gid from sender and returns its text.
func (b *botProc) messageFrom(gid, sender string) string {
	b.t.Helper()
	_, p := b.waitNote("message", func(p map[string]any) bool { return p["groupId"] == gid && p["sender"] == sender })
	return p["message"].(string)
}

// testPythonExample runs examples/python/pingbot.py (which runs its own tchat bot) in
// a group with a bot driven here.
func testPythonExample(t *testing.T, bin, home, passFile string) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is needed to run the Python example bot")
		}
		t.Skip("no python3")
	}
	makeProfile(t, home, "host", passFile)
	makeProfile(t, home, "pingbot", passFile)
	makeProfile(t, home, "carol", passFile)
	host := startBot(t, bin, "host", nil, append([]string{"--home", home, "--profile", "host", "--passphrase-file", passFile}, botNet...)...)
	gid := host.call("createGroup", map[string]any{"name": "py"}).(map[string]any)["groupId"].(string)
	token := host.call("invite", map[string]any{"groupId": gid, "maxUses": 2}).(map[string]any)["token"].(string)

	script, err := filepath.Abs(filepath.Join("..", "..", "examples", "python", "pingbot.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, append([]string{script, "--tchat", bin, "--join", token, "--",
		"--home", home, "--profile", "pingbot", "--passphrase-file", passFile}, botNet...)...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("pingbot stderr:\n%s", stderr.String())
		}
	})
	out := readLinesOf(stdout)
	if got := out.wantPrefix(t, "group "); got != gid {
		t.Fatalf("pingbot joined %s, want %s", got, gid)
	}
	_, joined := host.waitNote("memberJoined", func(p map[string]any) bool { return p["groupId"] == gid })
	py := joined["peerId"].(string)
	host.waitOnline(gid, py)

	for _, tc := range []struct{ send, want string }{
		{"!ping", "pong"},
		{"!echo hello, world", "hello, world"},
		{"!members", "2 members"},
	} {
		host.call("send", map[string]any{"groupId": gid, "message": tc.send})
		if got := host.messageFrom(gid, py); got != tc.want {
			t.Errorf("%q: pingbot said %q, want %q", tc.send, got, tc.want)
		}
	}
	// A third member is welcomed.
	carol := startBot(t, bin, "carol", nil, append([]string{"--home", home, "--profile", "carol", "--passphrase-file", passFile}, botNet...)...)
	carol.call("join", map[string]any{"token": token})
	if got := host.messageFrom(gid, py); !strings.HasPrefix(got, "welcome, ") {
		t.Errorf("no welcome: %q", got)
	}
	// The end of its input stops the bot, and its tchat, cleanly.
	stdin.Close()
	waitExit(t, cmd, stderr)
	if !strings.Contains(stderr.String(), "state saved") || !strings.Contains(stderr.String(), "tchat exited with 0") {
		t.Errorf("pingbot did not stop cleanly:\n%s", stderr.String())
	}
	carol.stop()
	host.stop()
}

// testGoExample runs examples/echobot, which uses package chat directly (through
// chat.OpenProfile), with a bot driven here: it answers in the group it made, and in a
// group it is added to.
func testGoExample(t *testing.T, bin, dir, home, passFile string) {
	echobot := goBuild(t, dir, "echobot", "../../examples/echobot")
	makeProfile(t, home, "echo", passFile)
	makeProfile(t, home, "guest", passFile)
	cmd := exec.Command(echobot, "--home", home, "--profile", "echo", "--passphrase-file", passFile,
		"--create", "echo room", "--accept-adds", "--listen", "/ip4/127.0.0.1/tcp/0", "--lan-only", "--no-mdns")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("echobot stderr:\n%s", stderr.String())
		}
	})
	out := readLinesOf(stdout)
	token := out.wantPrefix(t, "invite ")
	gid := out.wantPrefix(t, "group ")

	guest := startBot(t, bin, "guest", nil, append([]string{"--home", home, "--profile", "guest", "--passphrase-file", passFile}, botNet...)...)
	g := guest.call("join", map[string]any{"token": token}).(map[string]any)
	if g["groupId"] != gid || g["name"] != "echo room" {
		t.Fatalf("join: %v", g)
	}
	var echo string
	for _, m := range g["members"].([]any) {
		if m := m.(map[string]any); m["self"] != true {
			echo = m["peerId"].(string)
		}
	}
	guest.waitOnline(gid, echo)
	guest.call("send", map[string]any{"groupId": gid, "message": "hello"})
	if got := guest.messageFrom(gid, echo); got != "echo: hello" {
		t.Errorf("echobot said %q", got)
	}
	// Added directly to another group (no addrs: the two are connected), it answers
	// there too.
	other := guest.call("createGroup", map[string]any{"name": "elsewhere"}).(map[string]any)["groupId"].(string)
	guest.call("add", map[string]any{"groupId": other, "peerId": echo})
	if got := out.wantPrefix(t, "group "); got != other {
		t.Fatalf("echobot printed group %s, want %s", got, other)
	}
	guest.waitNote("memberJoined", func(p map[string]any) bool { return p["groupId"] == other && p["peerId"] == echo })
	guest.waitOnline(other, echo)
	guest.call("send", map[string]any{"groupId": other, "message": "hello again"})
	if got := guest.messageFrom(other, echo); got != "echo: hello again" {
		t.Errorf("echobot said %q in the group it was added to", got)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, stderr)
	guest.stop()
}
