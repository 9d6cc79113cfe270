// Package tui is tchat's terminal interface, a Bubble Tea v2 program over the chat
// package's API: conversations on the left with unread counts and mention marks, the
// messages of the current one in the middle, its members with the group's epoch, cipher
// suite and layer policy on the right, an input line and a status line. Narrow windows
// hide the side panes behind toggles (F2, F3).
//
// The root Model routes messages to its components (tui/components/…), which share a
// common.Common of styles and key bindings. The chat core is reached only through
// commands (tea.Cmd), never from Update or View, and its events arrive through a command
// that waits on the Events channel and is re-armed after each event.
package tui

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/internal/config"
)

// Backend is the part of the chat API the interface uses; *chat.Client implements it,
// tests use a fake.
type Backend interface {
	PeerID() peer.ID
	NetStatus() chat.NetStatus
	Nick() string
	SetNick(ctx context.Context, nick string) error
	Groups() []chat.GroupID
	Group(ctx context.Context, id chat.GroupID) (chat.GroupState, error)
	CreateGroupWith(o chat.GroupOptions) (chat.GroupID, error)
	InviteWith(id chat.GroupID, ttl time.Duration, maxUses int) (string, error)
	Join(ctx context.Context, token string) (chat.GroupID, error)
	Add(ctx context.Context, id chat.GroupID, p peer.AddrInfo) error
	Remove(ctx context.Context, id chat.GroupID, member peer.ID) error
	Leave(ctx context.Context, id chat.GroupID) error
	Rename(ctx context.Context, id chat.GroupID, name string) error
	Send(ctx context.Context, id chat.GroupID, text string) (chat.Message, error)
	History(ctx context.Context, id chat.GroupID, before int64, limit int) ([]chat.Message, int64, error)
	SafetyNumber(p peer.ID) (string, error)
	Verify(ctx context.Context, p peer.ID) error
	Unverify(ctx context.Context, p peer.ID) error
	Events() <-chan chat.Event
}

var _ Backend = (*chat.Client)(nil)

// Prompt says what the interface must ask before it can open the chat core.
type Prompt int

const (
	// PromptNone: Open needs no passphrase (given by a file, the environment, or an
	// unencrypted profile).
	PromptNone Prompt = iota
	// PromptUnlock: Open needs the profile's passphrase.
	PromptUnlock
	// PromptCreate: the profile does not exist yet; Open creates it with a new
	// passphrase, asked twice.
	PromptCreate
)

// Options configure the interface.
type Options struct {
	// Backend, if set, is the running chat core; else Open starts it.
	Backend Backend
	// Open opens (or creates) the profile with the passphrase and starts the chat core.
	// It runs outside the event loop and may take seconds (scrypt, network start).
	Open func(ctx context.Context, passphrase string) (Backend, error)
	// Prompt is what Open needs.
	Prompt Prompt
	// Profile and ProfileDir name the profile, for the passphrase page and the hint.
	Profile, ProfileDir string
	// LogFile is where the log goes, shown in the first hint.
	LogFile string

	UI   config.UI
	Chat config.Chat

	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// NetInterval is how often the status line polls the network state (0: 2 s).
	NetInterval time.Duration
	// Logger receives the interface's log (nil: none). It must not write to the screen.
	Logger *slog.Logger
}
