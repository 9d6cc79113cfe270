package main

import (
	"context"
	"errors"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/net/node"
)

// session is an open profile running the chat core: what the TUI and the bot server
// work over.
type session struct {
	Profile *identity.Profile
	Store   *store.Store
	Client  *chat.Client
}

// startChat opens the profile's database and starts the chat core (and its network node)
// on it. The session owns p from then on: Close closes all three.
func startChat(ctx context.Context, p *identity.Profile, cfg chat.Config) (*session, error) {
	st, err := store.Open(p.Dir, p.DatabaseKey())
	if err != nil {
		p.Close()
		return nil, err
	}
	cfg.Dir = p.Dir
	cfg.Identity = p.Identity
	cfg.Store = st
	c, err := chat.New(ctx, cfg)
	if err != nil {
		st.Close()
		p.Close()
		return nil, err
	}
	return &session{Profile: p, Store: st, Client: c}, nil
}

// Close stops the chat core, then closes the database and the profile, in that order,
// so that everything the core saves on the way out is written.
func (s *session) Close() error {
	return errors.Join(s.Client.Close(), s.Store.Close(), s.Profile.Close())
}

// defaultNodeConfig is the network configuration of the embedded defaults; the TUI's and
// the bot's flags and config file override it.
func defaultNodeConfig() node.Config { return node.Config{} }
