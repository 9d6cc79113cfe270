package botrpc

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/chat"
)

// Chat is the part of *chat.Client the server drives. Tests substitute a fake.
type Chat interface {
	PeerID() peer.ID
	NetStatus() chat.NetStatus
	Nick() string
	SetNick(ctx context.Context, nick string) error

	// Events is read by Server.Run only.
	Events() <-chan chat.Event

	CreateGroupWith(o chat.GroupOptions) (chat.GroupID, error)
	Invite(id chat.GroupID) (string, error)
	InviteWith(id chat.GroupID, ttl time.Duration, maxUses int) (string, error)
	Join(ctx context.Context, token string) (chat.GroupID, error)
	Add(ctx context.Context, id chat.GroupID, p peer.AddrInfo) error
	Remove(ctx context.Context, id chat.GroupID, member peer.ID) error
	Leave(ctx context.Context, id chat.GroupID) error
	Rename(ctx context.Context, id chat.GroupID, name string) error
	Send(ctx context.Context, id chat.GroupID, text string) (chat.Message, error)

	Groups() []chat.GroupID
	Group(ctx context.Context, id chat.GroupID) (chat.GroupState, error)
	Members(ctx context.Context, id chat.GroupID) ([]chat.Member, error)
	History(ctx context.Context, id chat.GroupID, before int64, limit int) ([]chat.Message, int64, error)

	SafetyNumber(p peer.ID) (string, error)
	Verify(ctx context.Context, p peer.ID) error
	Unverify(ctx context.Context, p peer.ID) error
}

var _ Chat = (*chat.Client)(nil)
