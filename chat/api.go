package chat

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/mlsgroup"
)

// MaxNameLen bounds group names and nicknames, in bytes.
const MaxNameLen = 64

// GroupOptions are the choices of CreateGroupWith.
type GroupOptions struct {
	// Name is the group's name, shown to every member (at most MaxNameLen bytes).
	Name string
	// Policy is the cascade, e.g. "mls,aes", "signal,mls,aes" (DefaultPolicy when empty).
	Policy string
	// Suite is the MLS cipher suite (mlsgroup.DefaultCipherSuite when 0).
	Suite mlsgroup.CipherSuite
}

// Member is one member of a group, as this client sees it.
type Member struct {
	Peer        peer.ID
	LeafIndex   uint32
	Nick        string // the nickname the member last gave ("" if none heard)
	Fingerprint string // the short fingerprint of its identity key
	Verified    bool   // the user verified this identity key by safety number
	Online      bool   // heard from recently (always true for ourselves)
	Self        bool
}

// GroupState is a snapshot of a group as its actor sees it.
type GroupState struct {
	ID            GroupID
	Name          string
	Policy        string
	Suite         mlsgroup.CipherSuite
	SuiteName     string
	Epoch         uint64
	Authenticator []byte // the first 8 bytes of the epoch authenticator
	Members       []Member
	Active        bool // false once this client left or was removed
	Syncing       bool // catching up from a peer
	// KeysOwed counts the other members our sender key has not reached yet (its
	// hand-out is on its way, failed or not begun): our messages skip them until it
	// arrives, or carry the key for them.
	KeysOwed int
}

// Message is one message of a group's history.
type Message struct {
	Cursor   int64 // its place in the local history: History's cursor
	ID       string
	Group    GroupID
	Sender   peer.ID
	Nick     string // the sender's nickname as last heard ("" if none)
	Text     string
	Time     time.Time // the sender's clock
	Received time.Time
	Epoch    uint64 // the epoch it was first sent in
	Own      bool   // sent by this client
	Late     bool   // arrived after its epoch had passed (catch-up, a slow link)
	Resent   bool   // sent again because its first epoch lost a commit race
}

// History returns up to limit messages of a group older than the cursor before (0: the
// newest), oldest first, and the cursor of the page before (0: none).
func (c *Client) History(ctx context.Context, id GroupID, before int64, limit int) ([]Message, int64, error) {
	b, err := id.Bytes()
	if err != nil {
		return nil, 0, fmt.Errorf("%w %s", ErrUnknownGroup, id)
	}
	if g, err := c.group(id); err == nil {
		// Messages already told (MessageReceived) and not yet stored are stored first.
		_ = g.do(ctx, func() error { g.flush(); return nil })
	}
	ms, next, err := c.st.History(ctx, b, before, limit)
	if err != nil {
		return nil, 0, err
	}
	nicks := map[peer.ID]string{c.PeerID(): c.Nick()}
	out := make([]Message, len(ms))
	for i, m := range ms {
		p := peer.ID(m.Sender)
		nick, ok := nicks[p]
		if !ok {
			if pr, err := c.st.Peer(ctx, m.Sender); err == nil {
				nick = pr.Name
			}
			nicks[p] = nick
		}
		out[i] = messageOf(id, m, nick)
	}
	return out, next, nil
}

func messageOf(id GroupID, m store.Message, nick string) Message {
	return Message{
		Cursor: m.Seq, ID: hex.EncodeToString(m.MsgID), Group: id, Sender: peer.ID(m.Sender), Nick: nick,
		Text: string(m.Content), Time: m.SentAt, Received: m.ReceivedAt, Epoch: m.Epoch,
		Own: m.Flags&store.FlagOwn != 0, Late: m.Flags&store.FlagLate != 0, Resent: m.Flags&store.FlagResent != 0,
	}
}

// NetStatus is the state of the client's network node.
type NetStatus struct {
	PeerID       peer.ID
	Addrs        []string
	Connected    int    // peers with a connection
	Reachability string // "public", "private" (behind a NAT), "relayed" or "unknown"
}

// NetStatus returns the node's peer id, addresses, connection count and reachability.
func (c *Client) NetStatus() NetStatus {
	var addrs []string
	for _, a := range c.node.Addrs() {
		addrs = append(addrs, a.String())
	}
	return NetStatus{
		PeerID:       c.node.ID(),
		Addrs:        addrs,
		Connected:    len(c.node.Peers()),
		Reachability: c.node.Reachability().String(),
	}
}

func checkName(what, s string) error {
	if len(s) > MaxNameLen {
		return fmt.Errorf("chat: %s longer than %d bytes", what, MaxNameLen)
	}
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\n\r") {
		return fmt.Errorf("chat: %s must be one line of UTF-8", what)
	}
	return nil
}

// nickKey is where the nickname is kept: a session row of no group (group ids are
// random 16-byte values or longer, never this word).
func nickKey() store.SessionKey {
	return store.SessionKey{GroupID: []byte("profile"), PeerID: []byte{}, Kind: "chat/nick"}
}

// Nick returns the nickname this client sends with its messages.
func (c *Client) Nick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nick
}

// SetNick sets the nickname this client sends with its messages and heartbeats, and
// saves it in the profile.
func (c *Client) SetNick(ctx context.Context, nick string) error {
	if err := checkName("nickname", nick); err != nil {
		return err
	}
	if err := c.st.SaveSession(ctx, nickKey(), []byte(nick)); err != nil {
		return err
	}
	c.mu.Lock()
	c.nick = nick
	c.mu.Unlock()
	return nil
}

// Members lists the members of a group, with what this client knows of each.
func (c *Client) Members(ctx context.Context, id GroupID) ([]Member, error) {
	s, err := c.Group(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.Members, nil
}

// SafetyNumber returns the safety number between this client and member p, to compare
// out of band (in person, or over another channel).
func (c *Client) SafetyNumber(p peer.ID) (string, error) {
	pub, err := identity.PublicKeyFromPeerID(p)
	if err != nil {
		return "", fmt.Errorf("chat: %s: %w", p, err)
	}
	return identity.SafetyNumber(c.id.PublicKey(), pub), nil
}

// Verify marks p as verified: the user compared the safety number. The mark is bound to
// p's identity key.
func (c *Client) Verify(ctx context.Context, p peer.ID) error {
	pub, err := identity.PublicKeyFromPeerID(p)
	if err != nil {
		return fmt.Errorf("chat: %s: %w", p, err)
	}
	return c.st.SetVerified(ctx, []byte(p), pub.Bytes())
}

// Unverify clears the verified mark of p.
func (c *Client) Unverify(ctx context.Context, p peer.ID) error {
	return c.st.SetVerified(ctx, []byte(p), nil)
}

// CreateGroup creates a group named name under DefaultPolicy and the default cipher suite.
func (c *Client) CreateGroup(name string) (GroupID, error) {
	return c.CreateGroupWith(GroupOptions{Name: name})
}

var errPolicy = errors.New("chat: unsupported policy")

func parseGroupPolicy(s string) (layers.Policy, error) {
	if s == "" {
		s = DefaultPolicy
	}
	pol, err := layers.ParsePolicy(s)
	if err != nil {
		return layers.Policy{}, err
	}
	hasMLS := false
	for _, l := range pol.Layers() {
		hasMLS = hasMLS || l == layers.MLS
	}
	if !hasMLS {
		return layers.Policy{}, fmt.Errorf("%w %q: a group's policy needs the mls layer", errPolicy, s)
	}
	return pol, nil
}

// OpenProfile opens the profile in dir (unlocking its keystore with passphrase, "" for
// one kept without), opens its database and starts a Client on it: what a Go program
// outside this module uses. cfg's Identity, Store and Dir are set here. Closing the
// Client closes the database and the profile too.
func OpenProfile(ctx context.Context, dir, passphrase string, cfg Config) (*Client, error) {
	p, err := identity.Open(dir, passphrase)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(p.Dir, p.DatabaseKey())
	if err != nil {
		p.Close()
		return nil, err
	}
	cfg.Dir, cfg.Identity, cfg.Store = p.Dir, p.Identity, st
	c, err := New(ctx, cfg)
	if err != nil {
		st.Close()
		p.Close()
		return nil, err
	}
	c.closers = append(c.closers, st.Close, p.Close)
	return c, nil
}
