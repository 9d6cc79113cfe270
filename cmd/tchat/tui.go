package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/config"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/tui"
)

// stdoutIsTerminal is replaceable in tests.
var stdoutIsTerminal = func() bool { return isTerminal(os.Stdout) }

// logFileName is the log's name in the profile directory.
const logFileName = "tchat.log"

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// tuiFlags are tchat's flags without a command: the profile flags, --config, and the
// flags that override the configuration.
type tuiFlags struct {
	*profileFlags
	config, nick, dht, theme, logFile string
	listen                            stringList
	port                              int
	noMDNS, mouse                     bool
}

func newTUIFlags(stderr io.Writer) *tuiFlags {
	f := &tuiFlags{profileFlags: newProfileFlags("tchat", stderr, "[--config FILE] [--home DIR] [--profile NAME] [flags]  (the chat; 'tchat help' lists the commands)")}
	fs := f.fs
	fs.StringVar(&f.config, "config", "", "TOML configuration `file` (config.example.toml documents every key)")
	fs.StringVar(&f.nick, "nick", "", "nickname sent with your messages")
	fs.Var(&f.listen, "listen", "libp2p listen `multiaddress` (repeatable)")
	fs.IntVar(&f.port, "port", 0, "port of the default listen addresses")
	fs.BoolVar(&f.noMDNS, "no-mdns", false, "no peer discovery on the local network")
	fs.StringVar(&f.dht, "dht", "", "DHT `mode`: client, server, auto or off")
	fs.BoolVar(&f.mouse, "mouse", false, "capture the mouse at start (F4 toggles)")
	fs.StringVar(&f.theme, "theme", "", "colours for a `dark` or a light terminal (default: ask the terminal)")
	fs.StringVar(&f.logFile, "log", "", "log `file` (default tchat.log in the profile directory)")
	return f
}

// tuiFlagsHelp lists the flags of the chat, one short line each, for tchat help.
func tuiFlagsHelp(w io.Writer) {
	args := map[string]string{"home": "DIR", "profile": "NAME", "nick": "NAME", "listen": "ADDR", "port": "N",
		"dht": "MODE", "theme": "dark|light", "config": "FILE", "log": "FILE", "passphrase-file": "FILE"}
	newTUIFlags(io.Discard).fs.VisitAll(func(fl *flag.Flag) {
		_, text := flag.UnquoteUsage(fl)
		name := "--" + fl.Name
		if a := args[fl.Name]; a != "" {
			name += " " + a
		}
		if fl.Name == "profile" {
			text += fmt.Sprintf(" (default %q)", fl.DefValue)
		}
		fmt.Fprintf(w, "  %-24s %s\n", name, text)
	})
}

// apply overrides cfg with the flags given on the command line.
func (f *tuiFlags) apply(cfg *config.Config) error {
	var err error
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "home":
			cfg.Profile.Home = f.home
		case "profile":
			cfg.Profile.Name = f.name
		case "nick":
			cfg.Chat.Nick = f.nick
		case "listen":
			cfg.Network.Listen = f.listen
		case "port":
			cfg.Network.Port = f.port
		case "no-mdns":
			cfg.Network.MDNS = !f.noMDNS
		case "dht":
			cfg.Network.DHT = f.dht
		case "mouse":
			cfg.UI.Mouse = f.mouse
		case "theme":
			cfg.UI.Theme = f.theme
		case "log":
			cfg.Log.File = f.logFile
		}
	})
	f.home, f.name = cfg.Profile.Home, cfg.Profile.Name
	if err == nil {
		err = cfg.Check()
	}
	return err
}

// runTUI is tchat without a command: the chat interface on the profile.
func runTUI(args []string, stdout, stderr io.Writer) int {
	f := newTUIFlags(stderr)
	pos, ok := f.parse(args)
	if !ok {
		return 2
	}
	if len(pos) != 0 {
		f.fs.Usage()
		return 2
	}
	if !stdinIsTerminal() || !stdoutIsTerminal() {
		fmt.Fprintf(stdout, "tchat %s: end-to-end encrypted group chat for the terminal.\n\n", version)
		fmt.Fprintln(stdout, "The chat interface needs a terminal (standard input and output); for programs, see the commands below.")
		fmt.Fprintln(stdout)
		usage(stdout)
		return 0
	}
	cfg, err := config.Load(f.config)
	if err == nil {
		err = f.apply(&cfg)
	}
	if err != nil {
		errorf(stderr, "%v", err)
		return 2
	}
	if err := chatTUI(f, cfg, os.Stdin, stdout, stderr); err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	return 0
}

// chatTUI runs the interface until the user quits.
func chatTUI(f *tuiFlags, cfg config.Config, in io.Reader, out, stderr io.Writer) error {
	dir, err := f.dir()
	if err != nil {
		return err
	}
	nodeCfg, err := cfg.Node()
	if err != nil {
		return err
	}
	opts := tui.Options{Profile: f.name, ProfileDir: dir, UI: cfg.UI, Chat: cfg.Chat}
	exists := identity.Exists(dir)
	// The passphrase comes from --passphrase-file or $TCHAT_PASSPHRASE when given;
	// else the interface asks for it.
	given := f.passphraseFile != "" || os.Getenv("TCHAT_PASSPHRASE") != ""
	switch {
	case !exists && f.noPassphrase:
		opts.Prompt = tui.PromptNone
		warnUnencrypted(stderr, f.name)
	case !exists && given:
		opts.Prompt = tui.PromptNone
	case !exists:
		opts.Prompt = tui.PromptCreate
	default:
		enc, err := identity.Encrypted(dir)
		if err != nil {
			return err
		}
		if enc && f.noPassphrase {
			return fmt.Errorf("profile %q is protected by a passphrase; --no-passphrase only applies when creating a profile", f.name)
		}
		if !enc {
			warnUnencrypted(stderr, f.name)
		}
		opts.Prompt = tui.PromptUnlock
		if !enc || given {
			opts.Prompt = tui.PromptNone
		}
	}
	logPath := cfg.Log.File
	if logPath == "" {
		logPath = filepath.Join(dir, logFileName)
	}
	opts.LogFile = logPath
	level, _ := cfg.LogLevel()
	// The interface logs from the start, into the file that Open opens.
	tuiLog := &lateHandler{dst: new(atomic.Pointer[slog.Handler])}
	opts.Logger = slog.New(tuiLog).With("part", "tui")

	var (
		mu      sync.Mutex
		sess    *session
		logF    *os.File
		restore func()
	)
	opts.Open = func(ctx context.Context, pass string) (tui.Backend, error) {
		if pass == "" && given {
			var err error
			if pass, err = f.passphrase(io.Discard, "", false); err != nil {
				return nil, err
			}
		}
		p, err := openProfileWith(f, dir, exists, pass)
		if err != nil {
			return nil, err
		}
		// From here on, the log file takes whatever the libraries print, so that
		// nothing lands on the screen.
		lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("log: %w", err)
		}
		logger := slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: level}))
		log.SetOutput(lf)
		rs := redirectStderr(lf)
		logger.Info("tchat starting", "version", version, "profile", f.name, "peer", p.Identity.PeerID())
		tuiLog.set(logger.Handler())
		nc := nodeCfg
		nc.Logger = logger.With("part", "node")
		s, err := startChat(ctx, p, chat.Config{
			Logger:        logger.With("part", "chat"),
			Node:          nc,
			InviteTTL:     time.Duration(cfg.Chat.InviteTTL),
			InviteMaxUses: max(cfg.Chat.InviteUses, 1),
		})
		if err != nil {
			logger.Error("start", "err", err)
			rs()
			lf.Close()
			return nil, err
		}
		mu.Lock()
		sess, logF, restore = s, lf, rs
		mu.Unlock()
		return s.Client, nil
	}
	m := tui.New(opts)
	prog := tea.NewProgram(m, tea.WithInput(in), tea.WithOutput(out))
	_, runErr := prog.Run()
	m.Close()
	mu.Lock()
	defer mu.Unlock()
	var closeErr error
	if sess != nil {
		closeErr = sess.Close()
	}
	if restore != nil {
		restore()
	}
	if logF != nil {
		logF.Close()
	}
	if errors.Is(runErr, tea.ErrInterrupted) {
		runErr = nil
	}
	return errors.Join(runErr, closeErr)
}

// lateHandler is a slog.Handler whose destination is set later: it drops records until
// set is called.
type lateHandler struct {
	dst   *atomic.Pointer[slog.Handler] // shared with the handlers derived by WithAttrs
	attrs []slog.Attr
}

func (h *lateHandler) set(dst slog.Handler) { h.dst.Store(&dst) }

func (h *lateHandler) target() slog.Handler {
	if p := h.dst.Load(); p != nil {
		return (*p).WithAttrs(h.attrs)
	}
	return nil
}

func (h *lateHandler) Enabled(ctx context.Context, l slog.Level) bool {
	t := h.target()
	return t != nil && t.Enabled(ctx, l)
}

func (h *lateHandler) Handle(ctx context.Context, r slog.Record) error {
	if t := h.target(); t != nil {
		return t.Handle(ctx, r)
	}
	return nil
}

func (h *lateHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lateHandler{dst: h.dst, attrs: append(slices.Clone(h.attrs), as...)}
}

// WithGroup is not used by the interface: the group is dropped.
func (h *lateHandler) WithGroup(string) slog.Handler { return h }

// openProfileWith opens the profile in dir with pass, or creates it (and its database)
// when it does not exist yet.
func openProfileWith(f *tuiFlags, dir string, exists bool, pass string) (*identity.Profile, error) {
	if exists {
		p, err := identity.Open(dir, pass)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	opts := identity.CreateOptions{NoPassphrase: f.noPassphrase, ScryptWorkFactor: scryptWorkFactor}
	if !f.noPassphrase {
		opts.Passphrase = pass
	}
	p, err := identity.Create(dir, opts)
	if err != nil {
		return nil, err
	}
	s, err := store.Open(p.Dir, p.DatabaseKey())
	if err != nil {
		p.Close()
		return nil, err
	}
	if err := s.Close(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}
