//go:build linux

package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"

	"github.com/tchat-p2p/tchat/net/proto"
)

// The NAT test builds this network in Linux network namespaces (as root) and
// runs one tchat node per host, each a copy of this test binary re-executed
// inside its namespace (TestNATRole), driven over stdin and stdout:
//
//	            pub (5.0.0.0/24, a bridge): relay 5.0.0.1, observers 5.0.0.11-14
//	             /                                   \
//	nat1: wan 5.0.0.2, masquerade,           nat2: wan 5.0.0.3, masquerade,
//	      unsolicited inbound dropped              unsolicited inbound dropped
//	      lan 10.1.0.1                             lan 10.2.0.1
//	             |                                   |
//	a: 10.1.0.2 (behind nat1)                b: 10.2.0.2 (behind nat2)
//
// The "public" addresses are ordinary unicast ones so that libp2p treats them
// as public; nothing leaves the namespaces. a and b have no route to each
// other's LAN; each reserves a slot on the relay, and learns its public
// (NATed) address from the relay and four observers (libp2p trusts an observed
// address once four hosts report it). a then dials b through the relay; DCUtR
// tries to hole-punch a direct connection. The test passes if the peers
// connect and a message crosses: on the group topic when the hole punch
// succeeded, and by /tchat/sync/1 over the relay in any case.
//
// Needs: root, iproute2 (ip netns, veth, bridge) and nftables (nft).

const natPort = 4001

type netnsSetup struct {
	t      *testing.T
	suffix string
	made   []string
}

func (s *netnsSetup) ns(name string) string { return "tc" + s.suffix + "-" + name }

func (s *netnsSetup) run(args ...string) {
	s.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *netnsSetup) in(ns string, args ...string) {
	s.t.Helper()
	s.run(append([]string{"ip", "netns", "exec", s.ns(ns)}, args...)...)
}

func (s *netnsSetup) ip(ns string, args ...string) {
	s.t.Helper()
	s.run(append([]string{"ip", "-n", s.ns(ns)}, args...)...)
}

func (s *netnsSetup) add(name string) {
	s.t.Helper()
	s.run("ip", "netns", "add", s.ns(name))
	s.made = append(s.made, s.ns(name))
	s.ip(name, "link", "set", "lo", "up")
}

func (s *netnsSetup) teardown() {
	for _, ns := range s.made {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// natRequired reports whether a missing tool must fail the test rather than
// skip it (CI and TCHAT_REQUIRE_NETNS=1).
func natRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("TCHAT_REQUIRE_NETNS") == "1"
}

var natRun int

// buildNATNetwork builds the network; with noDirect the NATs also drop all
// traffic between them, so the peers can only meet through the relay.
func buildNATNetwork(t *testing.T, noDirect bool) *netnsSetup {
	if os.Geteuid() != 0 {
		t.Skip("NAT test: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("NAT test: ip (iproute2) not installed")
	}
	natRun++
	s := &netnsSetup{t: t, suffix: fmt.Sprintf("%d%c", os.Getpid()%100000, 'a'+natRun)}
	probe := s.ns("probe")
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("NAT test: cannot create network namespaces here: %v: %s", err, out)
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	if _, err := exec.LookPath("nft"); err != nil {
		if natRequired() {
			t.Fatal("NAT test: nft not installed (Debian package nftables)")
		}
		t.Skip("NAT test: nft not installed (Debian package nftables)")
	}
	t.Cleanup(s.teardown)

	for _, ns := range []string{"pub", "nat1", "nat2", "a", "b"} {
		s.add(ns)
	}
	s.ip("pub", "link", "add", "br0", "type", "bridge")
	s.ip("pub", "addr", "add", "5.0.0.1/24", "dev", "br0")
	for i := 11; i <= 14; i++ {
		s.ip("pub", "addr", "add", fmt.Sprintf("5.0.0.%d/24", i), "dev", "br0")
	}
	s.ip("pub", "link", "set", "br0", "up")
	for i, side := range []string{"a", "b"} {
		nat := fmt.Sprintf("nat%d", i+1)
		wanPeer := fmt.Sprintf("up%d", i+1)
		// WAN: nat's wan0 <-> pub's bridge port.
		s.ip(nat, "link", "add", "wan0", "type", "veth", "peer", "name", wanPeer, "netns", s.ns("pub"))
		s.ip("pub", "link", "set", wanPeer, "master", "br0", "up")
		s.ip(nat, "addr", "add", fmt.Sprintf("5.0.0.%d/24", i+2), "dev", "wan0")
		s.ip(nat, "link", "set", "wan0", "up")
		// LAN: nat's lan0 <-> the host's eth0.
		s.ip(nat, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", s.ns(side))
		s.ip(nat, "addr", "add", fmt.Sprintf("10.%d.0.1/24", i+1), "dev", "lan0")
		s.ip(nat, "link", "set", "lan0", "up")
		s.ip(side, "addr", "add", fmt.Sprintf("10.%d.0.2/24", i+1), "dev", "eth0")
		s.ip(side, "link", "set", "eth0", "up")
		s.ip(side, "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", i+1))
		s.in(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		s.in(nat, "nft", "add table ip nat")
		s.in(nat, "nft", "add chain ip nat post { type nat hook postrouting priority 100 ; }")
		s.in(nat, "nft", "add rule ip nat post oifname wan0 masquerade")
		// A firewall, as home routers have: unsolicited packets from the
		// WAN are dropped before conntrack records them. (Without it, a
		// hole-punch packet that arrives before our own one left leaves a
		// conntrack entry that makes masquerade pick another port for
		// ours, and the punch fails.)
		s.in(nat, "nft", "add table ip filter")
		s.in(nat, "nft", "add chain ip filter pre { type filter hook prerouting priority -150 ; }")
		s.in(nat, "nft", "add rule ip filter pre iifname wan0 ct state new drop")
		if noDirect {
			other := fmt.Sprintf("5.0.0.%d", 3-i)
			s.in(nat, "nft", "add chain ip filter between { type filter hook forward priority 0 ; }")
			s.in(nat, "nft", "add rule ip filter between ip daddr "+other+" drop")
			s.in(nat, "nft", "add rule ip filter between ip saddr "+other+" drop")
		}
	}
	return s
}

// role is a node process in a namespace.
type role struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func (s *netnsSetup) start(ns, name string, env ...string) *role {
	t := s.t
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", s.ns(ns), exe, "-test.run=^TestNATRole$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), append(env, "TCHAT_NAT_ROLE="+name)...)
	cmd.Stderr = os.Stderr
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
	r := &role{t: t, name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 100)}
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "NAT: "); ok {
				r.lines <- line
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close() // the role exits when its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return r
}

// expect waits for a line starting with prefix and returns the rest.
func (r *role) expect(prefix string, timeout time.Duration) string {
	r.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-r.lines:
			if !ok {
				r.t.Fatalf("%s exited waiting for %q", r.name, prefix)
			}
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return strings.TrimSpace(rest)
			}
			if strings.HasPrefix(line, "FAIL") {
				r.t.Fatalf("%s: %s", r.name, line)
			}
			r.t.Logf("%s: %s", r.name, line)
		case <-timer.C:
			r.t.Fatalf("%s: timed out after %v waiting for %q", r.name, timeout, prefix)
		}
	}
}

// drain logs what the role said that nobody waited for.
func (r *role) drain() {
	for {
		select {
		case line, ok := <-r.lines:
			if !ok {
				return
			}
			r.t.Logf("%s: %s", r.name, line)
		default:
			return
		}
	}
}

func (r *role) send(line string) {
	if _, err := fmt.Fprintln(r.stdin, line); err != nil {
		r.t.Fatalf("%s: %v", r.name, err)
	}
}

// TestNAT runs the NAT scenario twice: with NATs that allow hole punching
// (a direct connection must result, and the message crosses on the group
// topic), and with NATs that drop all traffic between each other (the peers
// stay relayed, and the message crosses by /tchat/sync/1 through the relay).
func TestNAT(t *testing.T) {
	if testing.Short() {
		t.Skip("NAT test skipped in -short mode")
	}
	t.Run("holepunch", func(t *testing.T) { natScenario(t, false) })
	t.Run("relay-only", func(t *testing.T) { natScenario(t, true) })
}

func natScenario(t *testing.T, noDirect bool) {
	s := buildNATNetwork(t, noDirect)
	pub := s.start("pub", "pub")
	infra := pub.expect("ADDRS", 30*time.Second)
	b := s.start("b", "peer", "TCHAT_NAT_INFRA="+infra, "TCHAT_NAT_NAME=b")
	a := s.start("a", "peer", "TCHAT_NAT_INFRA="+infra, "TCHAT_NAT_NAME=a")
	bInfo := b.expect("READY", 90*time.Second)
	a.expect("READY", 90*time.Second)

	// How long a waits for DCUtR to turn the relayed connection into a
	// direct one. It takes well under a second here; where no direct path
	// exists, a few seconds let DCUtR try and fail.
	wait := "30s"
	if noDirect {
		wait = "3s"
	}
	a.send("DIAL " + wait + " " + bInfo)
	path := a.expect("CONNECTED", 60*time.Second)
	t.Logf("a and b are connected: %s", path)
	if got := a.expect("SYNC", 60*time.Second); got != "commit 7 from b" {
		t.Fatalf("sync over the connection: %q", got)
	}
	want := "direct"
	if noDirect {
		want = "relayed"
	}
	if path != want {
		t.Fatalf("connection is %s, want %s", path, want)
	}
	if path == "direct" {
		a.send("PUBLISH msg across the NATs")
		if got := b.expect("GOT", 60*time.Second); got != "msg across the NATs" {
			t.Fatalf("b got %q", got)
		}
	}
	b.drain()
}

// natInfra is what the pub role tells the peers.
type natInfra struct {
	Relay     peer.AddrInfo
	Observers []peer.AddrInfo
}

// TestNATRole is a host of TestNAT, run inside a namespace; it does nothing
// when run directly.
func TestNATRole(t *testing.T) {
	role := os.Getenv("TCHAT_NAT_ROLE")
	if role == "" {
		t.Skip("run by TestNAT inside a network namespace")
	}
	say := func(format string, args ...any) { fmt.Printf("NAT: "+format+"\n", args...) }
	fail := func(format string, args ...any) {
		say("FAIL "+format, args...)
		t.Fatalf(format, args...)
	}
	stdin := bufio.NewScanner(os.Stdin)
	stdin.Buffer(make([]byte, 64<<10), 1<<20)
	base := func() Config {
		c := testConfig(t)
		c.NoMDNS = true
		return c
	}
	switch role {
	case "pub":
		rc := base()
		rc.ListenAddrs = []string{fmt.Sprintf("/ip4/5.0.0.1/tcp/%d", natPort), fmt.Sprintf("/ip4/5.0.0.1/udp/%d/quic-v1", natPort)}
		rc.RelayService = true
		rc.Reachability = ForcePublic
		relay := startNode(t, rc)
		info := natInfra{Relay: relay.AddrInfo()}
		for i := 11; i <= 14; i++ {
			oc := base()
			oc.ListenAddrs = []string{fmt.Sprintf("/ip4/5.0.0.%d/tcp/%d", i, natPort), fmt.Sprintf("/ip4/5.0.0.%d/udp/%d/quic-v1", i, natPort)}
			oc.Reachability = ForcePublic
			info.Observers = append(info.Observers, startNode(t, oc).AddrInfo())
		}
		js, _ := json.Marshal(info)
		say("ADDRS %s", js)
		for stdin.Scan() { // until the test closes our stdin
		}
	case "peer":
		name := os.Getenv("TCHAT_NAT_NAME")
		var info natInfra
		if err := json.Unmarshal([]byte(os.Getenv("TCHAT_NAT_INFRA")), &info); err != nil {
			fail("infra: %v", err)
		}
		c := base()
		c.ListenAddrs = []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", natPort), fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", natPort)}
		c.StaticRelays = []peer.AddrInfo{info.Relay}
		c.Reachability = ForcePrivate
		c.Handlers = handlers(name)
		n := startNode(t, c)
		topic, err := n.JoinTopic(groupID, roomSecret, validator)
		if err != nil {
			fail("join topic: %v", err)
		}
		go func() {
			for ev := range n.Events() {
				if ev.Kind == PeerConnected || ev.Kind == ReachabilityChanged {
					say("event %s %s relayed=%v %s", ev.Kind, ev.Peer, ev.Relayed, ev.Reachability)
					for _, c := range n.Host().Network().ConnsToPeer(ev.Peer) {
						say("conn %s %s", c.Stat().Direction, c.RemoteMultiaddr())
					}
				}
			}
		}()
		go func() {
			for m := range topic.Messages() {
				say("GOT %s", m.Data)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for _, o := range info.Observers {
			if err := n.Connect(ctx, o); err != nil {
				fail("connect to observer: %v", err)
			}
		}
		// Ready once we hold a relay reservation (a circuit address) and
		// the hole-punching service runs: libp2p starts it once the host
		// knows a public address of its own (here, observed through the NAT),
		// and it only acts on relayed connections that arrive after that.
		waitFor(t, 60*time.Second, "relay address and hole punching", func() bool {
			return slices.ContainsFunc(n.Addrs(), isRelayed) &&
				slices.Contains(n.Host().Mux().Protocols(), holepunch.Protocol)
		})
		js, _ := json.Marshal(n.AddrInfo())
		say("ADDRS of %s: %v", name, n.Addrs())
		say("READY %s", js)
		for stdin.Scan() {
			cmd, arg, _ := strings.Cut(stdin.Text(), " ")
			switch cmd {
			case "DIAL":
				waitArg, js, _ := strings.Cut(arg, " ")
				punchWait, err := time.ParseDuration(waitArg)
				if err != nil {
					fail("dial: %v", err)
				}
				var other peer.AddrInfo
				if err := json.Unmarshal([]byte(js), &other); err != nil {
					fail("dial: %v", err)
				}
				if err := n.Connect(ctx, other); err != nil {
					fail("connect to %s: %v", other.ID, err)
				}
				// DCUtR runs on its own after a relayed connection: give it
				// its chance (it makes up to three attempts) before reporting.
				path := "relayed"
				deadline := time.Now().Add(punchWait)
				for time.Now().Before(deadline) {
					if _, relayed := n.Connected(other.ID); !relayed {
						path = "direct"
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				for _, c := range n.Host().Network().ConnsToPeer(other.ID) {
					say("conn %s %s", c.Stat().Direction, c.RemoteMultiaddr())
				}
				say("CONNECTED %s", path)
				resp, err := n.Sync(ctx, other.ID, &proto.SyncRequest{GroupID: groupID, SinceEpoch: 7, Want: proto.WantCommits | proto.WantGroupInfo})
				if err != nil {
					fail("sync: %v", err)
				}
				say("SYNC %s from %s", resp.Commits[0], strings.TrimPrefix(string(resp.GroupInfo), "group info of "))
				if path == "direct" {
					waitFor(t, 30*time.Second, "mesh with the other peer", func() bool {
						for _, p := range topic.MeshPeers() {
							if p == other.ID {
								return true
							}
						}
						return false
					})
				}
			case "PUBLISH":
				if err := topic.Publish(context.Background(), []byte(arg)); err != nil {
					fail("publish: %v", err)
				}
			}
		}
	}
}
