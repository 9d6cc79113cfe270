package chat

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Event is something that happened in a group: one of MessageReceived, MemberJoined,
// MemberLeft, EpochChanged or Error.
type Event interface{ event() }

// MessageReceived: a member's text message was received and stored.
type MessageReceived struct {
	Group  GroupID
	Sender peer.ID
	ID     string // the message id, hex
	Text   string
	Time   time.Time // the sender's clock
	Epoch  uint64
	Late   bool // sent in an epoch the group has since left
}

// MemberJoined: a commit added Member to the group.
type MemberJoined struct {
	Group  GroupID
	Member peer.ID
	Epoch  uint64
}

// MemberLeft: a commit removed Member from the group.
type MemberLeft struct {
	Group  GroupID
	Member peer.ID
	Epoch  uint64
}

// EpochChanged: the group entered Epoch (a commit was applied, or we joined).
type EpochChanged struct {
	Group GroupID
	Epoch uint64
}

// Error: something failed in the background (a message that did not open, a join that
// failed on our side, a state that could not be saved).
type Error struct {
	Group GroupID
	Err   error
}

func (MessageReceived) event() {}
func (MemberJoined) event()    {}
func (MemberLeft) event()      {}
func (EpochChanged) event()    {}
func (Error) event()           {}

func (e Error) Error() string { return string(e.Group) + ": " + e.Err.Error() }
