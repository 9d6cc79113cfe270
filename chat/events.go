package chat

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Event is something that happened in a group: one of the types below. Every event but
// Error names its group.
type Event interface{ event() }

// MessageReceived: a member's text message was received. A message that came live, sent
// once, is told as soon as it opened, and stored within moments (History stores what is
// waiting before it reads); one that came late or was sent again is told once it is
// stored, and only if it was not there already.
type MessageReceived struct {
	Group  GroupID
	Sender peer.ID
	Nick   string // the sender's nickname, as the sender gave it ("" if none)
	ID     string // the message id, hex
	Text   string
	Time   time.Time // the sender's clock
	Epoch  uint64    // the epoch it was sent in
	Late   bool      // it arrived after the group had left its epoch (catch-up, a slow link)
	Resent bool      // the sender sent it again because its first epoch lost a commit race
}

// MemberJoined: a commit added Member to the group.
type MemberJoined struct {
	Group  GroupID
	Member peer.ID
	Epoch  uint64
}

// MemberLeft: Member left the group of its own accord (Leave).
type MemberLeft struct {
	Group  GroupID
	Member peer.ID
	Epoch  uint64
}

// MemberRemoved: a commit by By removed Member. When Member is this client, it can no
// longer read or send in the group; the group stays in the history.
type MemberRemoved struct {
	Group  GroupID
	Member peer.ID
	By     peer.ID
	Epoch  uint64
}

// GroupRenamed: a commit renamed the group.
type GroupRenamed struct {
	Group GroupID
	Name  string
	By    peer.ID
	Epoch uint64
}

// EpochChanged: the group entered Epoch (a commit was applied, we joined, or a fork was
// resolved onto another branch).
type EpochChanged struct {
	Group         GroupID
	Epoch         uint64
	Authenticator []byte // the first 8 bytes of the epoch authenticator
}

// PeerOnline: a member of the group was heard from after a silence (or for the first time).
type PeerOnline struct {
	Group GroupID
	Peer  peer.ID
}

// PeerOffline: a member of the group has not been heard from for a while.
type PeerOffline struct {
	Group GroupID
	Peer  peer.ID
}

// SyncProgress: catching up from Peer over /tchat/sync/1. Done is set on the last event of
// one catch-up.
type SyncProgress struct {
	Group    GroupID
	Peer     peer.ID
	Commits  int // commits applied so far
	Messages int // messages received so far
	Done     bool
}

// ForkDetected: Peer is on another branch of the group's history at Epoch.
type ForkDetected struct {
	Group GroupID
	Peer  peer.ID
	Epoch uint64
}

// ForkResolved: the group is on one branch again, at Epoch. How says what it took:
// "kept" (our branch won), "switched" (we moved to the winning branch), "rejoined" (we
// were re-added to the winning branch), "agreed" (a member we saw on another branch is
// on ours now).
type ForkResolved struct {
	Group GroupID
	Epoch uint64
	How   string
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
func (MemberRemoved) event()   {}
func (GroupRenamed) event()    {}
func (EpochChanged) event()    {}
func (PeerOnline) event()      {}
func (PeerOffline) event()     {}
func (SyncProgress) event()    {}
func (ForkDetected) event()    {}
func (ForkResolved) event()    {}
func (Error) event()           {}

func (e Error) Error() string { return string(e.Group) + ": " + e.Err.Error() }
