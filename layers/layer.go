package layers

import (
	"errors"
	"fmt"
)

// Size limits. Every length that comes off the network is checked against one
// of these before anything is allocated or decrypted.
const (
	// MaxPlaintext is the largest plaintext a Cascade seals: 10 MiB.
	MaxPlaintext = 10 << 20
	// MaxMessage is the largest sealed message or inner layer output that is
	// accepted. The 4 MiB above MaxPlaintext leaves room for the layers'
	// overhead, including the sender-key distributions that ride on the first
	// group message after a rekey (about 1.3 KB per member when a pairwise
	// session still has to be set up).
	MaxMessage = MaxPlaintext + 4<<20
	// MaxIDLen bounds group and member ids.
	MaxIDLen = 255
)

// ErrAuth is the one error for every authentication failure: a flipped bit,
// a truncated or replayed message, a stripped, added or reordered layer, the
// wrong group, the wrong key, a removed sender. Layers return exactly this
// value (or ErrNoKey, or ErrExpired) from Open and the Cascade passes it on unchanged, so
// that a failure says nothing about which check failed.
var ErrAuth = errors.New("layers: message authentication failed")

// ErrNoKey reports that a message could not be opened because a key is not
// there yet: no sender key from this sender, no session, a future MLS epoch.
// It is also ErrAuth (errors.Is(ErrNoKey, ErrAuth) holds), so callers that do
// not care treat it as any other failure; a caller that does may keep the
// message and try again once its state has moved (a distribution or commit
// arrived). As with ErrAuth, nothing changed.
var ErrNoKey error = noKeyError{}

type noKeyError struct{}

func (noKeyError) Error() string        { return "layers: no key for this message yet" }
func (noKeyError) Is(target error) bool { return target == ErrAuth }

// ErrExpired reports that a message is of an MLS epoch whose keys this member
// does not have and never will: one before it joined, or one older than the
// epochs it keeps. Such a message is expected now and then (a member that
// joined just after it was sent, a message delayed for long), not a sign of
// tampering; callers may drop it quietly. It is also ErrAuth, and nothing
// changed.
var ErrExpired error = expiredError{}

type expiredError struct{}

func (expiredError) Error() string        { return "layers: message of an epoch whose keys are gone" }
func (expiredError) Is(target error) bool { return target == ErrAuth }

// ErrTooLarge is returned by Seal for a plaintext over MaxPlaintext.
var ErrTooLarge = fmt.Errorf("layers: plaintext larger than %d bytes", MaxPlaintext)

// Context is what a layer knows about one message besides its bytes. The
// Cascade passes one Context through all layers, so a layer may fill in what
// it authenticated for the layers inside it.
//
// What each layer reads and writes:
//
//   - aes: AD only (the room key is per conversation).
//   - mls: Group; Open sets Sender (the credential identity of the sender's
//     leaf) and Epoch, or checks Sender if the caller set it; Seal sets Epoch.
//   - signal: Seal reads Recipients (one recipient: the pairwise Double
//     Ratchet; more: Sender Keys); Open needs Sender (set by the caller from
//     the transport, or by the mls layer outside it).
//   - mlkem: Seal reads Recipients (exactly one); Open reads nothing.
//
// Member ids are the same bytes in every layer: the member's MLS credential
// identity (in tchat, its identity public key).
type Context struct {
	// Group is the conversation's MLS group id (1 to MaxIDLen bytes).
	Group []byte
	// Sender is the member who sealed the message. On Seal, the caller
	// itself; on Open, the claimed sender if the transport names one, else
	// empty, to be set by a layer that authenticates it.
	Sender []byte
	// Recipients are the members a message is sealed for, the sender
	// excluded. Only Seal reads them.
	Recipients [][]byte
	// Epoch is the MLS epoch the message belongs to, set by the mls layer.
	Epoch uint64
	// AD is associated data that every layer binds into its authentication.
	// The Cascade sets it to the envelope header and the group id; a caller
	// using a layer on its own sets it as it likes.
	AD []byte
}

// Check reports whether the ids in c have plausible sizes.
func (c *Context) Check() error {
	if len(c.Group) == 0 || len(c.Group) > MaxIDLen {
		return fmt.Errorf("layers: group id of %d bytes, want 1 to %d", len(c.Group), MaxIDLen)
	}
	if len(c.Sender) > MaxIDLen {
		return fmt.Errorf("layers: sender id of %d bytes, want at most %d", len(c.Sender), MaxIDLen)
	}
	for _, r := range c.Recipients {
		if len(r) == 0 || len(r) > MaxIDLen {
			return fmt.Errorf("layers: recipient id of %d bytes, want 1 to %d", len(r), MaxIDLen)
		}
	}
	return nil
}

// Commit applies the state change that a successful Open staged: a replay
// entry, an advanced ratchet, a consumed key. The Cascade calls it only after
// every layer has opened. It returns ErrAuth if the change no longer applies
// (another Open of the same message committed first); then nothing changed.
// A nil Commit means there was nothing to change.
type Commit func() error

// Layer seals and opens one level of the cascade.
//
// Seal may change the layer's state at once (a sending chain moves on; a
// skipped message number is harmless to the receiver). Open must not: it
// returns the inner bytes and a Commit that applies its state change, so
// that a message refused by any layer leaves every layer as it was. Open
// returns ErrAuth or ErrNoKey for every input it refuses and must not panic
// on any input. Neither may return a slice that aliases its input. A Commit
// may read the input and ctx.AD of its Open again (to redo its work if the
// layer's state moved in between), so the caller keeps both unchanged until
// the Commit has returned; the Cascade commits outer to inner.
type Layer interface {
	// Name is the layer's policy name: "mlkem", "signal", "mls" or "aes".
	Name() string
	// Version is the version of the layer's wire format, carried in the
	// envelope.
	Version() uint8
	Seal(ctx *Context, plaintext []byte) ([]byte, error)
	Open(ctx *Context, sealed []byte) ([]byte, Commit, error)
}

// Stateful is implemented by layers whose state must survive a restart
// (replay windows, ratchets). The store saves MarshalBinary after each Seal
// and Open and hands it back to UnmarshalBinary at start-up. The bytes hold
// secrets: store them encrypted.
type Stateful interface {
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}
