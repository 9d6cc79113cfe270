package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/net/node"
)

func TestDefaults(t *testing.T) {
	c := Default()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if c.Profile.Name != "default" || c.UI.Theme != "auto" || c.UI.Mouse || !c.UI.ShowMembers ||
		time.Duration(c.Chat.InviteTTL) != 168*time.Hour || c.Chat.InviteUses != 1 {
		t.Errorf("unexpected defaults %+v", c)
	}
	n, err := c.Node()
	if err != nil {
		t.Fatal(err)
	}
	if n.DHT != node.DHTClient || n.NoMDNS || n.Bootstrap != nil || n.NoPublicBootstrap {
		t.Errorf("node defaults %+v", n)
	}
}

// TestExampleIsDefaults checks that config.example.toml documents every key with its
// default value: parsed over a zero Config it must give the embedded defaults.
func TestExampleIsDefaults(t *testing.T) {
	b, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := Parse(b, &c); err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(c, want) {
		t.Errorf("config.example.toml gives\n%+v\nthe defaults are\n%+v", c, want)
	}
	// Every key of the defaults appears in the example.
	for _, line := range strings.Split(string(defaults), "\n") {
		k, _, ok := strings.Cut(line, " = ")
		if ok && !strings.HasPrefix(k, "#") && !strings.Contains(string(b), "\n"+k+" = ") {
			t.Errorf("config.example.toml does not document %q", k)
		}
	}
}

func TestOverride(t *testing.T) {
	c := Default()
	err := Parse([]byte(`
[ui]
theme = "light"
mouse = true
[network]
listen = ["/ip4/127.0.0.1/tcp/0"]
dht = "off"
mdns = false
reachability = "private"
relays = ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"]
[chat]
invite_ttl = "30m"
invite_uses = 0
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.UI.Theme != "light" || !c.UI.Mouse || c.UI.Timestamps != "15:04" {
		t.Errorf("ui %+v", c.UI)
	}
	if time.Duration(c.Chat.InviteTTL) != 30*time.Minute || c.Chat.InviteUses != 0 {
		t.Errorf("chat %+v", c.Chat)
	}
	n, err := c.Node()
	if err != nil {
		t.Fatal(err)
	}
	if n.DHT != node.DHTOff || !n.NoMDNS || n.Reachability != node.ForcePrivate || len(n.StaticRelays) != 1 || len(n.ListenAddrs) != 1 {
		t.Errorf("node %+v", n)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"[ui]\nthemes = \"dark\"", "unknown key ui.themes"},
		{"[ui]\ntheme = \"blue\"", "ui.theme"},
		{"[ui]\nhistory = -1", "ui.history"},
		{"[chat]\ninvite_ttl = \"soon\"", "invalid duration"},
		{"[chat]\ninvite_ttl = \"-1h\"", "chat.invite_ttl"},
		{"[network]\nport = 70000", "network.port"},
		{"[network]\ndht = \"maybe\"", "network.dht"},
		{"[network]\nreachability = \"sometimes\"", "network.reachability"},
		{"[network]\nlisten = [\"nonsense\"]", "network.listen"},
		{"[network]\nbootstrap = [\"/ip4/1.2.3.4/tcp/1\"]", "network.bootstrap"},
		{"[log]\nlevel = \"loud\"", "log.level"},
		{"[ui\n", "toml"},
	} {
		c := Default()
		err := Parse([]byte(tc.doc), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one mentioning %q", tc.doc, err, tc.want)
		}
	}
}

func TestLoad(t *testing.T) {
	if c, err := Load(""); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(\"\") = %+v, %v", c, err)
	}
	if _, err := Load(t.TempDir() + "/missing.toml"); err == nil {
		t.Error("a missing file loaded")
	}
	f := t.TempDir() + "/c.toml"
	os.WriteFile(f, []byte("[profile]\nname = \"work\"\n"), 0o600)
	if c, err := Load(f); err != nil || c.Profile.Name != "work" || c.UI.Theme != "auto" {
		t.Errorf("Load = %+v, %v", c.Profile, err)
	}
}

// FuzzParse: no document makes Parse panic, and an accepted one passes Check.
func FuzzParse(f *testing.F) {
	f.Add(defaults)
	if b, err := os.ReadFile("../../config.example.toml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("[network]\nrelays = [\"/ip4/1.2.3.4/tcp/1/p2p/x\"]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Default()
		if err := Parse(b, &c); err == nil {
			if err := c.Check(); err != nil {
				t.Errorf("accepted a config that fails Check: %v", err)
			}
		}
	})
}
