package botrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/net/node"
	"github.com/tchat-p2p/tchat/net/proto"
)

// TestProtocolErrors sends everything a confused client might, and checks each error
// object and that the server keeps serving.
func TestProtocolErrors(t *testing.T) {
	f := newFake(t)
	_, c := startServer(t, f, Options{})
	cases := []struct {
		line string
		id   any
		code int
		msg  string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"identity"`, nil, CodeParseError, "parse error"},
		{`not json at all`, nil, CodeParseError, "parse error"},
		{`{"jsonrpc":"2.0","id":1,"method":"identity"} trailing`, nil, CodeParseError, "parse error"},
		{`42`, nil, CodeInvalidRequest, "not a JSON object"},
		{`"identity"`, nil, CodeInvalidRequest, "not a JSON object"},
		{`null`, nil, CodeInvalidRequest, "not a JSON object"},
		{`{"id":2,"method":"identity"}`, 2.0, CodeInvalidRequest, "jsonrpc"},
		{`{"jsonrpc":"1.0","id":3,"method":"identity"}`, 3.0, CodeInvalidRequest, "jsonrpc"},
		{`{"jsonrpc":2.0,"id":4,"method":"identity"}`, 4.0, CodeInvalidRequest, "jsonrpc"},
		{`{"jsonrpc":"2.0","id":5}`, 5.0, CodeInvalidRequest, "method"},
		{`{"jsonrpc":"2.0","id":6,"method":7}`, 6.0, CodeInvalidRequest, "method"},
		{`{"jsonrpc":"2.0","id":7,"method":null}`, 7.0, CodeInvalidRequest, "method"},
		{`{"jsonrpc":"2.0","id":{"a":1},"method":"identity"}`, nil, CodeInvalidRequest, "id"},
		{`{"jsonrpc":"2.0","id":[1],"method":"identity"}`, nil, CodeInvalidRequest, "id"},
		{`{"jsonrpc":"2.0","id":true,"method":"identity"}`, nil, CodeInvalidRequest, "id"},
		{`{"jsonrpc":"2.0","id":8,"method":"identity","params":"x"}`, 8.0, CodeInvalidRequest, "params"},
		{`{"jsonrpc":"2.0","id":9,"method":"identity","params":3}`, 9.0, CodeInvalidRequest, "params"},
		{`{"jsonrpc":"2.0","method":1,"params":"bar"}`, nil, CodeInvalidRequest, "method"},
		{`{"jsonrpc":"2.0","id":"a","method":"frobnicate"}`, "a", CodeMethodNotFound, "frobnicate"},
		{`{"jsonrpc":"2.0","id":"b","method":"Send"}`, "b", CodeMethodNotFound, "Send"},
		{`{"jsonrpc":"2.0","id":10,"method":"send","params":{"groupId":5,"message":"x"}}`, 10.0, CodeInvalidParams, "groupId must be a string"},
		{`{"jsonrpc":"2.0","id":11,"method":"send","params":{"groupId":"01","message":["x"]}}`, 11.0, CodeInvalidParams, "message must be a string"},
		{`{"jsonrpc":"2.0","id":12,"method":"send","params":{"groupId":"01"}}`, 12.0, CodeInvalidParams, "message is required"},
		{`{"jsonrpc":"2.0","id":13,"method":"send","params":{"message":"x"}}`, 13.0, CodeInvalidParams, "groupId is required"},
		{`{"jsonrpc":"2.0","id":14,"method":"send","params":{"groupId":"zz","message":"x"}}`, 14.0, CodeInvalidParams, "hex"},
		{`{"jsonrpc":"2.0","id":15,"method":"send","params":{"groupId":"01","message":"x","urgent":true}}`, 15.0, CodeInvalidParams, `unknown parameter "urgent"`},
		{`{"jsonrpc":"2.0","id":16,"method":"send","params":["01","x"]}`, 16.0, CodeInvalidParams, "by name"},
		{`{"jsonrpc":"2.0","id":17,"method":"remove","params":{"groupId":"01","peerId":"nope"}}`, 17.0, CodeInvalidParams, "peerId is not a peer id"},
		{`{"jsonrpc":"2.0","id":18,"method":"history","params":{"groupId":"01","limit":1.5}}`, 18.0, CodeInvalidParams, "limit must be an integer"},
		{`{"jsonrpc":"2.0","id":19,"method":"history","params":{"groupId":"01","limit":0}}`, 19.0, CodeInvalidParams, "limit must be from 1"},
		{`{"jsonrpc":"2.0","id":20,"method":"invite","params":{"groupId":"01","ttl":-5}}`, 20.0, CodeInvalidParams, "ttl"},
		{`{"jsonrpc":"2.0","id":21,"method":"createGroup","params":{"name":"x","suite":"0xF001"}}`, 21.0, CodeInvalidParams, "suite must be an integer"},
		{`{"jsonrpc":"2.0","id":22,"method":"createGroup","params":{"name":"x","suite":70000}}`, 22.0, CodeInvalidParams, "suite must be an integer"},
		{`{"jsonrpc":"2.0","id":23,"method":"add","params":{"groupId":"01","peerId":"` + newPeer(t).String() + `","addrs":["nonsense"]}}`, 23.0, CodeInvalidParams, "multiaddr"},
		{`{"jsonrpc":"2.0","id":24,"method":"identity","params":{"x":1}}`, 24.0, CodeInvalidParams, "unknown parameter"},
		{`{"jsonrpc":"2.0","id":25,"method":"send","params":{"groupId":"0a","message":"x"}}`, 25.0, CodeUnknownGroup, "unknown group"},
		{`[]`, nil, CodeInvalidRequest, "empty batch"},
	}
	for _, tc := range cases {
		c.writeLine(tc.line)
		select {
		case resp := <-c.lines:
			if resp["jsonrpc"] != "2.0" {
				t.Errorf("%s: no jsonrpc member in %v", tc.line, resp)
			}
			id, hasID := resp["id"]
			if !hasID || id != tc.id {
				t.Errorf("%s: id %v (present %v), want %v", tc.line, id, hasID, tc.id)
			}
			code, msg := errCode(t, resp)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s: error %d %q, want %d containing %q", tc.line, code, msg, tc.code, tc.msg)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no response", tc.line)
		}
	}
	// Still serving.
	if r := result(t, c.call("identity", nil)).(map[string]any); r["peerId"] != f.self.String() {
		t.Errorf("identity after errors: %v", r)
	}
}

func TestNotificationsGetNoResponse(t *testing.T) {
	f := newFake(t)
	_, c := startServer(t, f, Options{})
	gid := result(t, c.call("createGroup", map[string]any{"name": "g"})).(map[string]any)["groupId"].(string)
	// A notification (no id) runs but is not answered, even when it fails.
	c.writeLine(`{"jsonrpc":"2.0","method":"send","params":{"groupId":"` + gid + `","message":"quiet"}}`)
	c.writeLine(`{"jsonrpc":"2.0","method":"frobnicate"}`)
	c.writeLine(`{"jsonrpc":"2.0","method":"send","params":{"groupId":5}}`)
	// A null id is a request (discouraged but valid): it is answered with id null.
	c.writeLine(`{"jsonrpc":"2.0","id":null,"method":"version"}`)
	resp := <-c.lines
	if id, ok := resp["id"]; !ok || id != nil {
		t.Fatalf("null id request: %v", resp)
	}
	result(t, resp)
	if got := f.lastCall(); got != "send "+gid+" quiet" {
		t.Errorf("last call %q", got)
	}
	// String ids come back as strings, large numbers exactly.
	c.drainRaw()
	c.writeLine(`{"jsonrpc":"2.0","id":"x-1","method":"version"}`)
	if raw := <-c.raw; !strings.Contains(raw, `"id":"x-1"`) {
		t.Errorf("string id: %s", raw)
	}
	<-c.lines
	c.drainRaw()
	c.writeLine(`{"jsonrpc":"2.0","id":12345678901234567890,"method":"version"}`)
	if raw := <-c.raw; !strings.Contains(raw, `"id":12345678901234567890`) {
		t.Errorf("big id: %s", raw)
	}
}

func TestBatch(t *testing.T) {
	f := newFake(t)
	_, c := startServer(t, f, Options{})
	c.writeLine(`[{"jsonrpc":"2.0","id":1,"method":"version"},{"jsonrpc":"2.0","method":"setNick","params":{"nick":"n"}},1,{"jsonrpc":"2.0","id":2,"method":"nope"}]`)
	var got []map[string]any
	select {
	case raw := <-c.raw:
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatalf("batch response %s: %v", raw, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no batch response")
	}
	if len(got) != 3 {
		t.Fatalf("batch: %d responses, want 3 (the notification gets none): %v", len(got), got)
	}
	if got[0]["id"] != 1.0 || got[0]["result"] == nil {
		t.Errorf("first: %v", got[0])
	}
	if code, _ := errCode(t, got[1]); code != CodeInvalidRequest {
		t.Errorf("second: %v", got[1])
	}
	if code, _ := errCode(t, got[2]); code != CodeMethodNotFound || got[2]["id"] != 2.0 {
		t.Errorf("third: %v", got[2])
	}
	if f.Nick() != "n" {
		t.Errorf("nick %q", f.Nick())
	}
	// A batch of notifications only gets nothing back; the next request is answered.
	c.writeLine(`[{"jsonrpc":"2.0","method":"setNick","params":{"nick":"m"}}]`)
	result(t, c.call("version", nil))
}

func TestLongLine(t *testing.T) {
	f := newFake(t)
	_, c := startServer(t, f, Options{MaxLine: 1000})
	c.writeLine(`{"jsonrpc":"2.0","id":1,"method":"setNick","params":{"nick":"` + strings.Repeat("x", 5000) + `"}}`)
	resp := <-c.lines
	if code, msg := errCode(t, resp); code != CodeInvalidRequest || !strings.Contains(msg, "longer") {
		t.Errorf("long line: %v", resp)
	}
	result(t, c.call("version", nil))
}

func TestMethods(t *testing.T) {
	f := newFake(t)
	_, c := startServer(t, f, Options{Version: "9.9"})
	other := newPeer(t)

	v := result(t, c.call("version", nil)).(map[string]any)
	if v["version"] != "9.9" || v["protocol"] != float64(ProtocolVersion) {
		t.Errorf("version: %v", v)
	}
	result(t, c.call("setNick", map[string]any{"nick": "botty"}))
	id := result(t, c.call("identity", map[string]any{})).(map[string]any)
	if id["peerId"] != f.self.String() || id["nick"] != "botty" || id["fingerprint"] == "" || id["connected"] != 2.0 {
		t.Errorf("identity: %v", id)
	}
	g := result(t, c.call("createGroup", map[string]any{"name": "room", "policy": "mls,aes", "suite": 1})).(map[string]any)
	gid := g["groupId"].(string)
	if g["name"] != "room" || g["authenticator"] != "0102" || len(g["members"].([]any)) != 1 {
		t.Errorf("createGroup: %v", g)
	}
	if got := f.calls[len(f.calls)-1]; got != "create room mls,aes 1" {
		t.Errorf("create call %q", got)
	}
	inv := result(t, c.call("invite", map[string]any{"groupId": gid})).(map[string]any)
	if inv["token"] != "tchat1fake" || f.lastCall() != "invite "+gid {
		t.Errorf("invite: %v %s", inv, f.lastCall())
	}
	result(t, c.call("invite", map[string]any{"groupId": gid, "ttl": 60, "maxUses": 0}))
	if f.lastCall() != "inviteWith "+gid+" 1m0s 0" {
		t.Errorf("inviteWith call %q", f.lastCall())
	}
	result(t, c.call("invite", map[string]any{"groupId": gid, "maxUses": 3}))
	if f.lastCall() != "inviteWith "+gid+" 168h0m0s 3" {
		t.Errorf("inviteWith call %q", f.lastCall())
	}
	j := result(t, c.call("join", map[string]any{"token": "tchat1abc"})).(map[string]any)
	if j["name"] != "joined" {
		t.Errorf("join: %v", j)
	}
	for _, tc := range []struct {
		method string
		params map[string]any
		call   string
	}{
		{"add", map[string]any{"groupId": gid, "peerId": other.String(), "addrs": []string{"/ip4/127.0.0.1/tcp/4001"}}, "add " + gid + " " + other.String() + " [/ip4/127.0.0.1/tcp/4001]"},
		{"remove", map[string]any{"groupId": gid, "peerId": other.String()}, "remove " + gid + " " + other.String()},
		{"leave", map[string]any{"groupId": gid}, "leave " + gid},
		{"rename", map[string]any{"groupId": gid, "name": "new"}, "rename " + gid + " new"},
		{"send", map[string]any{"groupId": strings.ToUpper(gid), "message": "hi <&> \n there"}, "send " + gid + " hi <&> \n there"},
		{"verify", map[string]any{"peerId": other.String()}, "verify " + other.String()},
		{"unverify", map[string]any{"peerId": other.String()}, "unverify " + other.String()},
	} {
		r := result(t, c.call(tc.method, tc.params))
		if m, ok := r.(map[string]any); tc.method == "send" {
			if !ok || m["message"] != "hi <&> \n there" || m["own"] != true {
				t.Errorf("send: result %v, want the message sent", r)
			}
		} else if !ok || len(m) != 0 {
			t.Errorf("%s: result %v, want {}", tc.method, r)
		}
		if f.lastCall() != tc.call {
			t.Errorf("%s: call %q, want %q", tc.method, f.lastCall(), tc.call)
		}
	}
	sn := result(t, c.call("safetyNumber", map[string]any{"peerId": other.String()})).(map[string]any)
	if sn["safetyNumber"] != "12345 67890" || sn["peerId"] != other.String() {
		t.Errorf("safetyNumber: %v", sn)
	}
	groups := result(t, c.call("listGroups", nil)).([]any)
	if len(groups) != 2 || groups[0].(map[string]any)["name"] != "joined" || groups[1].(map[string]any)["name"] != "room" {
		t.Errorf("listGroups: %v", groups)
	}
	one := result(t, c.call("listGroups", map[string]any{"groupId": gid})).([]any)
	if len(one) != 1 {
		t.Errorf("listGroups one: %v", one)
	}
	members := result(t, c.call("listMembers", map[string]any{"groupId": gid})).([]any)
	if len(members) != 1 || members[0].(map[string]any)["self"] != true {
		t.Errorf("listMembers: %v", members)
	}
	h := result(t, c.call("history", map[string]any{"groupId": gid, "limit": 10})).(map[string]any)
	msgs := h["messages"].([]any)
	if len(msgs) != 1 {
		t.Fatalf("history: %v", h)
	}
	m := msgs[0].(map[string]any)
	if m["message"] != "hi <&> \n there" || m["own"] != true || m["timestamp"] != 1000.0 || m["sender"] != f.self.String() {
		t.Errorf("history message: %v", m)
	}
	if f.lastCall() != "history "+gid+" 0 10" {
		t.Errorf("history call %q", f.lastCall())
	}
	// Unknown groups are application errors.
	if code, _ := errCode(t, c.call("history", map[string]any{"groupId": "ffff"})); code != CodeUnknownGroup {
		t.Errorf("history of an unknown group: code %d", code)
	}
	if code, _ := errCode(t, c.call("listMembers", map[string]any{"groupId": "ffff"})); code != CodeUnknownGroup {
		t.Errorf("listMembers of an unknown group: code %d", code)
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errBoom, CodeFailed},
		{fmt.Errorf("%w abc", chat.ErrUnknownGroup), CodeUnknownGroup},
		{fmt.Errorf("%w: bad signature", chat.ErrInvalidInvite), CodeInvalidInvite},
		{fmt.Errorf("%w: at noon", chat.ErrInviteExpired), CodeInviteExpired},
		{chat.ErrAlreadyIn, CodeAlreadyMember},
		{chat.ErrClosed, CodeShuttingDown},
		{fmt.Errorf("chat: dial: %w", context.Canceled), CodeShuttingDown},
		{chat.ErrNotMember, CodeNotMember},
		{fmt.Errorf("%w: the inviter x: %w", chat.ErrUnreachable, context.DeadlineExceeded), CodeUnreachable},
		{fmt.Errorf("%w: x: no route", chat.ErrUnreachable), CodeUnreachable},
		{fmt.Errorf("chat: join refused by x: %w", proto.Refuse(proto.CodeRefused, "used up")), CodeRefused},
		{fmt.Errorf("chat: cannot reach: %w", context.DeadlineExceeded), CodeUnreachable},
		{newError(CodeInvalidParams, "x"), CodeInvalidParams},
	} {
		if got := toRPCError(tc.err); got.Code != tc.code || got.Message == "" {
			t.Errorf("%v: %+v, want code %d", tc.err, got, tc.code)
		}
	}
	f := newFake(t)
	f.err = fmt.Errorf("%w: mistyped", chat.ErrInvalidInvite)
	_, c := startServer(t, f, Options{})
	code, msg := errCode(t, c.call("join", map[string]any{"token": "tchat1zzz"}))
	if code != CodeInvalidInvite || !strings.Contains(msg, "mistyped") {
		t.Errorf("join: %d %q", code, msg)
	}
}

func TestEveryEventIsNotified(t *testing.T) {
	f := newFake(t)
	_, c := startServer(t, f, Options{})
	p := newPeer(t)
	at := time.UnixMilli(1234567)
	events := []struct {
		ev     chat.Event
		method string
		want   map[string]any
	}{
		{chat.MessageReceived{Group: "01", Sender: p, Nick: "n", ID: "ab", Text: "hello\n\"x\"", Time: at, Epoch: 3, Late: true},
			"message", map[string]any{"groupId": "01", "sender": p.String(), "nick": "n", "id": "ab", "message": "hello\n\"x\"", "timestamp": 1234567.0, "epoch": 3.0, "late": true, "resent": false}},
		{chat.MemberJoined{Group: "01", Member: p, Epoch: 4}, "memberJoined", map[string]any{"groupId": "01", "peerId": p.String(), "epoch": 4.0, "self": false}},
		{chat.MemberLeft{Group: "01", Member: f.self, Epoch: 5}, "memberLeft", map[string]any{"groupId": "01", "peerId": f.self.String(), "epoch": 5.0, "self": true}},
		{chat.MemberRemoved{Group: "01", Member: p, By: f.self, Epoch: 6}, "memberRemoved", map[string]any{"groupId": "01", "peerId": p.String(), "by": f.self.String(), "epoch": 6.0, "self": false}},
		{chat.GroupRenamed{Group: "01", Name: "new", By: p, Epoch: 7}, "groupRenamed", map[string]any{"groupId": "01", "name": "new", "by": p.String(), "epoch": 7.0}},
		{chat.EpochChanged{Group: "01", Epoch: 8, Authenticator: []byte{0xde, 0xad}}, "epochChanged", map[string]any{"groupId": "01", "epoch": 8.0, "authenticator": "dead"}},
		{chat.PeerOnline{Group: "01", Peer: p}, "peerOnline", map[string]any{"groupId": "01", "peerId": p.String()}},
		{chat.PeerOffline{Group: "01", Peer: p}, "peerOffline", map[string]any{"groupId": "01", "peerId": p.String()}},
		{chat.SyncProgress{Group: "01", Peer: p, Commits: 2, Messages: 9, Done: true}, "syncProgress", map[string]any{"groupId": "01", "peerId": p.String(), "commits": 2.0, "messages": 9.0, "done": true}},
		{chat.ForkDetected{Group: "01", Peer: p, Epoch: 9}, "forkDetected", map[string]any{"groupId": "01", "peerId": p.String(), "epoch": 9.0}},
		{chat.ForkResolved{Group: "01", Epoch: 10, How: "switched"}, "forkResolved", map[string]any{"groupId": "01", "epoch": 10.0, "how": "switched"}},
		{chat.Error{Group: "01", Err: errBoom}, "error", map[string]any{"groupId": "01", "message": "chat: boom"}},
	}
	for _, e := range events {
		f.events <- e.ev
		got := c.notification(e.method)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(e.want)
		if !bytes.Equal(gb, wb) {
			t.Errorf("%s:\n got %s\nwant %s", e.method, gb, wb)
		}
	}
}

// TestAcceptAdd: without AutoAccept a direct add is declined and addDeclined notified;
// with it, the add is accepted and the bot's entry into the group is a memberJoined with
// self and by, once.
func TestAcceptAdd(t *testing.T) {
	adder := newPeer(t)
	f := newFake(t)
	s, c := startServer(t, f, Options{})
	if s.AcceptAdd(adder, "0a", "lab") {
		t.Error("an add was accepted without AutoAccept")
	}
	n := c.notification("addDeclined")
	if n["groupId"] != "0a" || n["name"] != "lab" || n["from"] != adder.String() {
		t.Errorf("addDeclined: %v", n)
	}

	f = newFake(t)
	f.groups["0b"] = chat.GroupState{ID: "0b", Active: true} // in it before the server started
	s, c = startServer(t, f, Options{AutoAccept: true})
	if !s.AcceptAdd(adder, "0a", "lab") {
		t.Fatal("an add was declined with AutoAccept")
	}
	created := result(t, c.call("createGroup", map[string]any{"name": "mine"})).(map[string]any)["groupId"].(string)
	// The first epoch of a group the bot was not in: it entered it.
	f.events <- chat.EpochChanged{Group: "0a", Epoch: 3}
	f.events <- chat.EpochChanged{Group: "0a", Epoch: 4}
	f.events <- chat.EpochChanged{Group: "0b", Epoch: 5}
	f.events <- chat.EpochChanged{Group: chat.GroupID(created), Epoch: 1}
	f.events <- chat.EpochChanged{Group: "0c", Epoch: 1} // joined by invite: no by
	f.events <- chat.PeerOnline{Group: "end"}
	var joined []string
	for {
		m := <-c.lines
		if m["method"] == "peerOnline" {
			break
		}
		if m["method"] == "memberJoined" {
			b, _ := json.Marshal(m["params"])
			joined = append(joined, string(b))
		}
	}
	want := []string{
		`{"by":"` + adder.String() + `","epoch":3,"groupId":"0a","peerId":"` + f.self.String() + `","self":true}`,
		`{"epoch":1,"groupId":"0c","peerId":"` + f.self.String() + `","self":true}`,
	}
	if strings.Join(joined, "\n") != strings.Join(want, "\n") {
		t.Errorf("memberJoined:\n got %v\nwant %v", joined, want)
	}
}

// realToken makes a valid invite token with a real chat client on loopback.
func realToken(t *testing.T) (string, chat.GroupID) {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	st, err := store.Open(t.TempDir(), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := chat.New(ctx, chat.Config{Identity: id, Store: st, Node: node.Config{
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DHT: node.DHTOff, NoMDNS: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	gid, err := cl.CreateGroup("party")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cl.Invite(gid)
	if err != nil {
		t.Fatal(err)
	}
	return tok, gid
}

func TestInvitesInMessages(t *testing.T) {
	tok, gid := realToken(t)
	sender := newPeer(t)
	forged := "tchat1" + strings.Repeat("a", 60)

	// Without AutoAccept: inviteReceived, no join.
	f := newFake(t)
	_, c := startServer(t, f, Options{})
	f.events <- chat.MessageReceived{Group: "01", Sender: sender, Text: "come to " + tok + " and " + forged}
	c.notification("message")
	n := c.notification("inviteReceived")
	if n["token"] != tok || n["inviteGroupId"] != string(gid) || n["name"] != "party" || n["groupId"] != "01" || n["sender"] != sender.String() {
		t.Errorf("inviteReceived: %v", n)
	}
	result(t, c.call("version", nil))
	for _, call := range f.snapshotCalls() {
		if strings.HasPrefix(call, "join") {
			t.Errorf("joined without AutoAccept: %v", call)
		}
	}

	// With AutoAccept: the bot joins (once), and says so.
	f = newFake(t)
	_, c = startServer(t, f, Options{AutoAccept: true})
	f.events <- chat.MessageReceived{Group: "01", Sender: sender, Text: forged + " " + tok}
	c.notification("message")
	n = c.notification("inviteAccepted")
	if n["name"] != "party" || n["from"] != sender.String() || n["via"] != "01" || n["groupId"] == "" {
		t.Errorf("inviteAccepted: %v", n)
	}
	joins := 0
	for _, call := range f.snapshotCalls() {
		if strings.HasPrefix(call, "join") {
			joins++
			if call != "join "+tok {
				t.Errorf("join call %q", call)
			}
		}
	}
	if joins != 1 {
		t.Errorf("%d joins, want 1", joins)
	}

	// A failed auto-accept is an error notification.
	f = newFake(t)
	f.err = errBoom
	_, c = startServer(t, f, Options{AutoAccept: true})
	f.events <- chat.MessageReceived{Group: "01", Sender: sender, Text: tok}
	if n := c.notification("error"); !strings.Contains(n["message"].(string), "boom") || n["groupId"] != "01" {
		t.Errorf("error: %v", n)
	}
}

func TestSeveralConnections(t *testing.T) {
	f := newFake(t)
	s, c1 := startServer(t, f, Options{})
	dir := t.TempDir()
	sock := filepath.Join(dir, "bot.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeListener(ctx, l) }()
	var socks []*sockClient
	for range 2 {
		socks = append(socks, dialSock(t, sock))
	}
	// Each answers its own requests.
	for i, sc := range socks {
		sc.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"setNick","params":{"nick":"s%d"}}`, 100+i, i))
		if m := sc.next(t); m["id"] != float64(100+i) {
			t.Fatalf("socket %d: %v", i, m)
		}
	}
	// Everyone gets every notification.
	f.events <- chat.PeerOnline{Group: "01", Peer: f.self}
	c1.notification("peerOnline")
	for i, sc := range socks {
		if m := sc.next(t); m["method"] != "peerOnline" {
			t.Errorf("socket %d: %v", i, m)
		}
	}
	// One leaves; the other still gets notifications.
	socks[0].nc.Close()
	time.Sleep(50 * time.Millisecond)
	f.events <- chat.PeerOffline{Group: "01", Peer: f.self}
	if m := socks[1].next(t); m["method"] != "peerOffline" {
		t.Errorf("socket 1: %v", m)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeListener did not stop")
	}
}

type sockClient struct {
	nc  net.Conn
	dec *json.Decoder
}

func dialSock(t *testing.T, path string) *sockClient {
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &sockClient{nc: nc, dec: json.NewDecoder(nc)}
}

func (sc *sockClient) send(line string) { sc.nc.Write([]byte(line + "\n")) }

func (sc *sockClient) next(t *testing.T) map[string]any {
	t.Helper()
	sc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m map[string]any
	if err := sc.dec.Decode(&m); err != nil {
		t.Fatalf("socket read: %v", err)
	}
	return m
}

// TestSlowClient: notifications beyond the queue limit are dropped and the client is
// told, while responses still get through.
func TestSlowClient(t *testing.T) {
	f := newFake(t)
	s := New(f, Options{QueueLimit: 3})
	blocked := &gateWriter{gate: make(chan struct{}), entered: make(chan struct{})}
	inR, inW := netPipe()
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(context.Background(), inR, blocked) }()
	// The writer is stuck on its first write; queue notifications behind it.
	waitConns(t, s, 1)
	s.notify("peerOnline", peerNote{GroupID: "first"})
	<-blocked.entered
	for i := range 10 {
		s.notify("peerOnline", peerNote{GroupID: fmt.Sprint(i)})
	}
	inW.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"version"}` + "\n"))
	inW.Close()
	time.Sleep(100 * time.Millisecond)
	close(blocked.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := blocked.buf.String()
	if n := strings.Count(out, `"method":"peerOnline"`); n != 4 {
		t.Errorf("%d notifications delivered, want the one in flight and the queue limit (3):\n%s", n, out)
	}
	if !strings.Contains(out, "notifications were dropped") || !strings.Contains(out, `"id":1`) {
		t.Errorf("no drop notice or no response:\n%s", out)
	}
}

func waitConns(t testing.TB, s *Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		got := len(s.conns)
		s.mu.Unlock()
		if got >= n {
			return
		}
	}
	t.Fatalf("no %d connections", n)
}

type gateWriter struct {
	gate    chan struct{}
	entered chan struct{} // closed by the first Write
	once    sync.Once
	buf     bytes.Buffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.gate
	return g.buf.Write(p)
}

func netPipe() (net.Conn, net.Conn) { return net.Pipe() }

// TestEOFShutsDownAfterAnswering: the last request before EOF is answered before
// ServeConn returns.
func TestEOFShutsDownAfterAnswering(t *testing.T) {
	f := newFake(t)
	s := New(f, Options{})
	var out bytes.Buffer
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"createGroup","params":{"name":"a"}}` + "\n" +
		`{"jsonrpc":"2.0","id":2,"method":"version"}`) // no final newline
	if err := s.ServeConn(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"id":2`) {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestCancelStopsAJoin: closing the server cancels a request in progress.
func TestCancelStopsAJoin(t *testing.T) {
	f := newFake(t)
	f.joinFn = func(ctx context.Context, token string) (chat.GroupID, error) {
		<-ctx.Done()
		return "", fmt.Errorf("chat: cannot reach the inviter: %w", ctx.Err())
	}
	s, c := startServer(t, f, Options{})
	c.writeLine(`{"jsonrpc":"2.0","id":1,"method":"join","params":{"token":"tchat1x"}}`)
	for !slices.ContainsFunc(f.snapshotCalls(), func(s string) bool { return strings.HasPrefix(s, "join") }) {
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
	select {
	case err := <-c.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ServeConn: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not stop")
	}
}

func (f *fakeChat) snapshotCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func TestMethodsList(t *testing.T) {
	want := []string{"add", "createGroup", "history", "identity", "invite", "join", "leave", "listGroups",
		"listMembers", "remove", "rename", "safetyNumber", "send", "setNick", "unverify", "verify", "version"}
	if got := Methods(); !slices.Equal(got, want) {
		t.Errorf("Methods() = %v", got)
	}
}

// TestBacklog: what happens before any client connects is told to the first one.
func TestBacklog(t *testing.T) {
	f := newFake(t)
	s := New(f, Options{QueueLimit: 2})
	for i := range 3 {
		s.notify("peerOnline", peerNote{GroupID: fmt.Sprint(i)})
	}
	var out bytes.Buffer
	if err := s.ServeConn(context.Background(), strings.NewReader(""), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, `"groupId":"0"`) || !strings.Contains(got, `"groupId":"1"`) || strings.Contains(got, `"groupId":"2"`) ||
		!strings.Contains(got, "1 notifications were dropped") {
		t.Errorf("first client got:\n%s", got)
	}
	out.Reset()
	if err := s.ServeConn(context.Background(), strings.NewReader(""), &out); err != nil || out.Len() != 0 {
		t.Errorf("second client got %q, %v", out.String(), err)
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("broken pipe") }

// TestWriteFailureEndsConn: a client that cannot be written to is let go.
func TestWriteFailureEndsConn(t *testing.T) {
	s := New(newFake(t), Options{})
	r, w := net.Pipe()
	defer w.Close()
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(context.Background(), r, failWriter{}) }()
	w.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"version"}` + "\n"))
	select {
	case err := <-done:
		if !errors.Is(err, ErrClientGone) {
			t.Errorf("ServeConn: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn kept going")
	}
}
