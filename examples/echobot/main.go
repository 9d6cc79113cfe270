// Command echobot is an example bot written against tchat's Go API, package chat: it
// makes a group and prints an invite for it (or joins one), then answers every message
// with "echo: " and the message. A Go program needs no `tchat bot` process: the chat
// core runs inside it.
//
//	tchat id --profile echobot                 # once: creates the profile
//	echobot --profile echobot --create "echo"  # prints "invite tchat1…"
//	echobot --profile echobot --join tchat1…   # or joins someone's group
//
// The passphrase comes from --passphrase-file FILE or $TCHAT_PASSPHRASE. SIGINT or
// SIGTERM stops the bot; its state is saved as it goes and again on the way out.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/net/node"
)

func main() {
	var (
		home     = flag.String("home", "", "directory holding the profiles (default $TCHAT_HOME, else $XDG_DATA_HOME/tchat)")
		profile  = flag.String("profile", "echobot", "profile `name` (create it with: tchat id --profile NAME)")
		passFile = flag.String("passphrase-file", "", "read the passphrase from the first line of `file` (default $TCHAT_PASSPHRASE)")
		create   = flag.String("create", "", "create a group with this `name` and print an invite for it")
		join     = flag.String("join", "", "join the group of this invite `token`")
		listen   = flag.String("listen", "", "listen on this multiaddr only (default: all interfaces)")
		lanOnly  = flag.Bool("lan-only", false, "no DHT: find peers on the LAN and through invites only")
		noMDNS   = flag.Bool("no-mdns", false, "no LAN discovery")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := node.Config{NoMDNS: *noMDNS}
	if *listen != "" {
		cfg.ListenAddrs = []string{*listen}
	}
	if *lanOnly {
		cfg.DHT = node.DHTOff
	}
	if err := run(log, *home, *profile, *passFile, *create, *join, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "echobot:", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, home, profile, passFile, create, join string, cfg node.Config) error {
	if (create == "") == (join == "") {
		return fmt.Errorf("give one of --create NAME or --join TOKEN")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Open the profile: its identity key, its database, and the chat core over them.
	// The deferred calls close them in the right order: chat, database, profile.
	home, err := identity.Home(home)
	if err != nil {
		return err
	}
	dir, err := identity.ProfileDir(home, profile)
	if err != nil {
		return err
	}
	pass, err := passphrase(passFile)
	if err != nil {
		return err
	}
	p, err := identity.Open(dir, pass)
	if err != nil {
		return err
	}
	defer p.Close()
	st, err := store.Open(p.Dir, p.DatabaseKey())
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := chat.New(ctx, chat.Config{Dir: p.Dir, Identity: p.Identity, Store: st, Node: cfg})
	if err != nil {
		return err
	}
	defer c.Close()

	var gid chat.GroupID
	if create != "" {
		if gid, err = c.CreateGroup(create); err != nil {
			return err
		}
		token, err := c.Invite(gid)
		if err != nil {
			return err
		}
		fmt.Println("invite", token)
	} else {
		if gid, err = c.Join(ctx, join); err != nil {
			return err
		}
	}
	fmt.Println("group", gid)
	log.Info("echobot: running", "peer", c.PeerID(), "group", gid)

	// Replies go out from their own goroutine: Send waits for the group, and the group
	// may be waiting for us to read its next event.
	replies := make(chan chat.MessageReceived, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range replies {
			if _, err := c.Send(ctx, m.Group, "echo: "+m.Text); err != nil {
				log.Warn("echobot: reply failed", "group", m.Group, "err", err)
			}
		}
	}()
	defer func() { close(replies); <-done }()

	for {
		select {
		case <-ctx.Done():
			log.Info("echobot: stopping")
			return nil
		case ev, ok := <-c.Events():
			if !ok {
				return nil
			}
			switch e := ev.(type) {
			case chat.MessageReceived:
				if e.Sender == c.PeerID() || strings.HasPrefix(e.Text, "echo: ") {
					continue // never answer ourselves or another echo bot
				}
				replies <- e
			case chat.MemberJoined:
				log.Info("echobot: member joined", "group", e.Group, "peer", e.Member)
			case chat.MemberLeft:
				log.Info("echobot: member left", "group", e.Group, "peer", e.Member)
			case chat.Error:
				log.Warn("echobot: chat error", "err", e)
			}
		}
	}
}

func passphrase(file string) (string, error) {
	if file == "" {
		return os.Getenv("TCHAT_PASSPHRASE"), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("passphrase file %s: %w", file, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
