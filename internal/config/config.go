// Package config is tchat's configuration: embedded defaults, a TOML file that overrides
// them, and the checks that turn it into settings for the chat core and the interface.
// config.example.toml at the top of the repository documents every key.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tchat-p2p/tchat/net/node"
)

//go:embed default.toml
var defaults []byte

// Config is the whole configuration. Field names follow the TOML keys.
type Config struct {
	Profile Profile `toml:"profile"`
	Chat    Chat    `toml:"chat"`
	UI      UI      `toml:"ui"`
	Network Network `toml:"network"`
	Log     Log     `toml:"log"`
}

// Profile chooses the profile.
type Profile struct {
	Home string `toml:"home"` // directory of the profiles ("" : $TCHAT_HOME, else XDG)
	Name string `toml:"name"`
}

// Chat holds the chat core's settings.
type Chat struct {
	Nick       string   `toml:"nick"`        // set as the nickname at start when not empty
	Policy     string   `toml:"policy"`      // the layer policy of new groups ("" : the core's default)
	InviteTTL  Duration `toml:"invite_ttl"`  // validity of new invites
	InviteUses int      `toml:"invite_uses"` // joiners per invite (0: unlimited)
}

// UI holds the interface's settings.
type UI struct {
	Theme             string `toml:"theme"`      // "auto", "dark" or "light"
	Mouse             bool   `toml:"mouse"`      // capture the mouse at start
	Timestamps        string `toml:"timestamps"` // Go time layout of message times ("" : none)
	ShowConversations bool   `toml:"show_conversations"`
	ShowMembers       bool   `toml:"show_members"`
	History           int    `toml:"history"` // messages loaded per conversation at start
	Bell              bool   `toml:"bell"`    // ring the terminal bell on a mention
}

// Network holds the libp2p node's settings.
type Network struct {
	Listen          []string `toml:"listen"`
	Port            int      `toml:"port"`
	MDNS            bool     `toml:"mdns"`
	DHT             string   `toml:"dht"` // "client", "server", "auto" or "off"
	Bootstrap       []string `toml:"bootstrap"`
	PublicBootstrap bool     `toml:"public_bootstrap"`
	Relays          []string `toml:"relays"`
	RelayService    bool     `toml:"relay_service"`
	NATPortMap      bool     `toml:"nat_port_map"`
	Reachability    string   `toml:"reachability"` // "auto", "public" or "private"
}

// Log holds the log's settings.
type Log struct {
	File  string `toml:"file"`  // "" : tchat.log in the profile directory
	Level string `toml:"level"` // "debug", "info", "warn" or "error"
}

// Duration is a time.Duration written as a Go duration string ("90s", "168h").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Default returns the embedded defaults.
func Default() Config {
	var c Config
	if _, err := toml.Decode(string(defaults), &c); err != nil {
		panic("config: internal error: embedded defaults: " + err.Error())
	}
	return c
}

// Load returns the defaults overridden by the TOML file at path ("" : none).
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if err := Parse(b, &c); err != nil {
		return c, fmt.Errorf("config: %s: %w", path, err)
	}
	return c, nil
}

// Parse overrides c with the TOML document b. Unknown keys are an error, so that a
// mistyped key does not go unnoticed.
func Parse(b []byte, c *Config) error {
	md, err := toml.Decode(string(b), c)
	if err != nil {
		return err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	return c.Check()
}

// Check reports the first value that is out of range.
func (c *Config) Check() error {
	switch c.UI.Theme {
	case "auto", "dark", "light":
	default:
		return fmt.Errorf("ui.theme %q: want auto, dark or light", c.UI.Theme)
	}
	if c.UI.History < 0 {
		return errors.New("ui.history must not be negative")
	}
	if c.Chat.InviteUses < 0 {
		return errors.New("chat.invite_uses must not be negative")
	}
	if c.Chat.InviteTTL <= 0 {
		return errors.New("chat.invite_ttl must be positive")
	}
	if c.Network.Port < 0 || c.Network.Port > 65535 {
		return fmt.Errorf("network.port %d out of range", c.Network.Port)
	}
	if _, err := c.LogLevel(); err != nil {
		return err
	}
	_, err := c.Node()
	return err
}

// LogLevel returns the log level.
func (c *Config) LogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return 0, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	return l, nil
}

// Node returns the node configuration the network settings describe (without the key,
// handlers and logger, which the caller sets).
func (c *Config) Node() (node.Config, error) {
	n := c.Network
	cfg := node.Config{
		ListenAddrs:       n.Listen,
		Port:              n.Port,
		NoMDNS:            !n.MDNS,
		NoPublicBootstrap: !n.PublicBootstrap,
		RelayService:      n.RelayService,
		NATPortMap:        n.NATPortMap,
	}
	for _, a := range n.Listen {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return cfg, fmt.Errorf("network.listen %q: %w", a, err)
		}
	}
	dht, derr := node.ParseDHTMode(n.DHT)
	if derr != nil {
		return cfg, fmt.Errorf("network.dht %w", derr)
	}
	cfg.DHT = dht
	switch n.Reachability {
	case "auto":
	case "public":
		cfg.Reachability = node.ForcePublic
	case "private":
		cfg.Reachability = node.ForcePrivate
	default:
		return cfg, fmt.Errorf("network.reachability %q: want auto, public or private", n.Reachability)
	}
	var err error
	if cfg.Bootstrap, err = addrInfos("network.bootstrap", n.Bootstrap); err != nil {
		return cfg, err
	}
	if len(n.Bootstrap) == 0 {
		cfg.Bootstrap = nil // nil: the public set, unless public_bootstrap is false
	}
	if cfg.StaticRelays, err = addrInfos("network.relays", n.Relays); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func addrInfos(key string, addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("%s %q: want a multiaddress ending in /p2p/PEER: %w", key, a, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}
