package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/botrpc"
	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/net/node"
)

// tchat bot: the chat core with no interface, serving JSON-RPC 2.0 (docs/bot-protocol.md)
// on standard input and output, or on a Unix socket with --socket.

const botUsage = "bot [--home DIR] [--profile NAME] [--passphrase-file FILE] [--no-passphrase] [--socket PATH] [--auto-accept] [--nick NAME] [--log FILE] [--verbose] [--listen ADDR]... [--port N] [--no-mdns] [--dht client|server|auto|off]"

// botStdin is what the bot reads requests from without --socket (tests replace it).
var botStdin io.Reader = os.Stdin

// listFlag collects a repeatable flag; each value may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

type botFlags struct {
	*profileFlags
	socket     string
	autoAccept bool
	nick       string
	logFile    string
	verbose    bool
	listen     listFlag
	port       int
	noMDNS     bool
	dht        string
}

func newBotFlags(stderr io.Writer) *botFlags {
	bf := &botFlags{profileFlags: newProfileFlags("bot", stderr, botUsage)}
	fs := bf.fs
	fs.StringVar(&bf.socket, "socket", "", "serve the protocol on a Unix socket at `path` (for several clients) instead of standard input and output")
	fs.BoolVar(&bf.autoAccept, "auto-accept", false, "join the group of every invite token the bot receives in a message, and accept being added to groups directly (without it, direct adds are declined)")
	fs.StringVar(&bf.nick, "nick", "", "set the bot's nickname at start")
	fs.StringVar(&bf.logFile, "log", "", "append logs to `file` instead of standard error")
	fs.BoolVar(&bf.verbose, "verbose", false, "log every request and the network's logs")
	fs.Var(&bf.listen, "listen", "listen on multiaddr `addr` (repeatable; default: all interfaces, TCP and QUIC)")
	fs.IntVar(&bf.port, "port", 0, "port of the default listen addresses (0: a free one)")
	fs.BoolVar(&bf.noMDNS, "no-mdns", false, "turn off LAN discovery")
	fs.StringVar(&bf.dht, "dht", "client", "DHT `mode`: client, server, auto or off")
	return bf
}

func (bf *botFlags) nodeConfig() (node.Config, error) {
	cfg := defaultNodeConfig()
	if len(bf.listen) > 0 {
		cfg.ListenAddrs = bf.listen
	}
	cfg.Port = bf.port
	cfg.NoMDNS = cfg.NoMDNS || bf.noMDNS
	var err error
	if cfg.DHT, err = node.ParseDHTMode(bf.dht); err != nil {
		return cfg, fmt.Errorf("--dht %w", err)
	}
	return cfg, nil
}

func runBot(args []string, stdout, stderr io.Writer) int {
	bf := newBotFlags(stderr)
	pos, ok := bf.parse(args)
	if !ok {
		return 2
	}
	if len(pos) != 0 {
		bf.fs.Usage()
		return 2
	}
	ncfg, err := bf.nodeConfig()
	if err != nil {
		errorf(stderr, "bot: %v", err)
		return 2
	}
	logOut := stderr
	if bf.logFile != "" {
		f, err := os.OpenFile(bf.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			errorf(stderr, "bot: %v", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	level := slog.LevelInfo
	if bf.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	if bf.verbose {
		ncfg.Logger = log.With("component", "node")
	}
	if err := serveBot(bf, ncfg, log, stdout, stderr); err != nil {
		log.Error("bot: stopped on an error", "err", err)
		errorf(stderr, "bot: %v", err)
		return 1
	}
	return 0
}

// serveBot opens the profile, starts the chat core and serves until standard input ends
// (or, with --socket, until SIGINT or SIGTERM), then saves and closes everything.
func serveBot(bf *botFlags, ncfg node.Config, log *slog.Logger, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A reader that goes away must not kill the bot before it saves: a write to a
	// closed pipe then fails instead, and the bot stops.
	signal.Ignore(syscall.SIGPIPE)

	// The socket first: a bot already serving on it is found before anything starts.
	var l net.Listener
	if bf.socket != "" {
		var err error
		if l, err = listenUnix(bf.socket); err != nil {
			return err
		}
		defer os.Remove(bf.socket)
		defer l.Close()
	}
	p, _, err := openOrCreateProfile(bf.profileFlags, stderr)
	if err != nil {
		return err
	}
	// The chat core asks whether to accept a direct add from the moment its node
	// starts; the server that answers exists only once the core does.
	var srvRef atomic.Pointer[botrpc.Server]
	acceptAdd := func(from peer.ID, group chat.GroupID, name string) bool {
		if s := srvRef.Load(); s != nil {
			return s.AcceptAdd(from, group, name)
		}
		log.Info("bot: a direct add before the server started", "group", group, "from", from, "accepted", bf.autoAccept)
		return bf.autoAccept
	}
	sess, err := startChat(ctx, p, chat.Config{Node: ncfg, AcceptAdd: acceptAdd})
	if err != nil {
		return err
	}
	defer func() {
		if err := sess.Close(); err != nil {
			log.Error("bot: stopped, but closing failed", "err", err)
			return
		}
		log.Info("bot: stopped; state saved")
	}()
	c := sess.Client
	if bf.nick != "" {
		if err := c.SetNick(ctx, bf.nick); err != nil {
			log.Error("bot: --nick", "err", err)
		}
	}
	log.Info("bot: started", "profile", p.Name, "peer", c.PeerID(), "addrs", c.NetStatus().Addrs, "groups", len(c.Groups()))

	srv := botrpc.New(c, botrpc.Options{AutoAccept: bf.autoAccept, Version: version, Logger: log})
	srvRef.Store(srv)
	var wg sync.WaitGroup
	runCtx, stopRun := context.WithCancel(context.Background())
	wg.Go(func() { srv.Run(runCtx) })
	defer func() {
		srv.Close()
		stopRun()
		wg.Wait()
	}()

	if bf.socket == "" {
		err := srv.ServeConn(ctx, botStdin, stdout)
		if errors.Is(err, context.Canceled) {
			log.Info("bot: signalled; stopping")
			return nil
		}
		if err == nil {
			log.Info("bot: standard input closed; stopping")
		}
		return err
	}
	log.Info("bot: listening", "socket", bf.socket)
	if err := srv.ServeListener(ctx, l); err != nil {
		return err
	}
	log.Info("bot: signalled; stopping")
	return nil
}
