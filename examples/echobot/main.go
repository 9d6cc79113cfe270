// Command echobot is an example bot written against tchat's Go API, package chat: it
// makes a group and prints an invite for it (or joins one), then answers every message,
// in every group it is in, with "echo: " and the message. With --accept-adds, members
// of other groups may add it to theirs directly. A Go program needs no `tchat bot`
// process: chat.OpenProfile runs the chat core inside it. It uses only the module's
// public packages (chat, identity, net/node), as a program outside the module must.
//
//	tchat id --profile echobot                 # once: creates the profile
//	echobot --profile echobot --create "echo"  # prints "invite tchat1…" and "group ID"
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
	"slices"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/identity"
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
		adds     = flag.Bool("accept-adds", false, "accept being added to groups directly by their members")
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
	if err := run(log, *home, *profile, *passFile, *create, *join, *adds, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "echobot:", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, home, profile, passFile, create, join string, acceptAdds bool, cfg node.Config) error {
	if (create == "") == (join == "") {
		return fmt.Errorf("give one of --create NAME or --join TOKEN")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Open the profile: its identity key, its database, and the chat core over them.
	// Closing the client closes all three.
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
	c, err := chat.OpenProfile(ctx, dir, pass, chat.Config{
		Node: cfg,
		// Being added to a group directly (by a member's add, with no invite): the bot
		// goes where it is added only with --accept-adds. It is asked before the adder
		// commits anything, when name is not known yet, and again with the Welcome.
		AcceptAdd: func(from peer.ID, group chat.GroupID, name string) bool {
			log.Info("echobot: a member adds us to a group", "group", group, "name", name, "from", from, "accept", acceptAdds)
			return acceptAdds
		},
	})
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
	groups := c.Groups() // the groups it answers in; a group it is added to is printed too
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
			case chat.MemberRemoved:
				log.Info("echobot: member removed", "group", e.Group, "peer", e.Member, "by", e.By, "us", e.Member == c.PeerID())
			case chat.EpochChanged:
				if !slices.Contains(groups, e.Group) {
					groups = append(groups, e.Group)
					fmt.Println("group", e.Group) // a group we were added to
				}
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
