// Package mls is the mls level of tchat's cascading cipher: application data becomes an MLS
// PrivateMessage (RFC 9420, Section 6.3) of the conversation's group, in the group's
// current epoch, signed by the sender's leaf and encrypted with a key of the group's secret
// tree.
//
// The group's policy (its list of layers) rides in the group's GroupContext as the
// extension layers.ExtensionPolicy, so every member agrees on it and it cannot be changed
// without a commit; PolicyExtension and GroupPolicy write and read it.
package mls

import (
	"bytes"
	"errors"
	"sync"

	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/mlsgroup"
)

const version = 1

// Layer carries application data as MLS PrivateMessages of one group. It uses the compact
// form of mlsgroup.SealApplication: the envelope already names the group, so the group id
// and the MLSMessage header are not repeated. The group id and epoch stay authenticated by
// MLS's own AEADs, the envelope header by the layers outside (aes) and by the cascade's
// policy check.
type Layer struct {
	mu sync.Locker // guards g; shared with whoever else uses the group
	g  *mlsgroup.Group
}

var _ layers.Layer = (*Layer)(nil)

// New returns the mls layer of group g. mu guards g: pass the lock the rest of the program
// takes around the group (its commits), or nil for a lock of the layer's own.
func New(g *mlsgroup.Group, mu sync.Locker) *Layer {
	if mu == nil {
		mu = new(sync.Mutex)
	}
	return &Layer{mu: mu, g: g}
}

// Name implements layers.Layer.
func (l *Layer) Name() string { return layers.MLS.String() }

// Version implements layers.Layer.
func (l *Layer) Version() uint8 { return version }

// Seal implements layers.Layer: inner becomes a PrivateMessage of the current epoch, sent
// from this member's leaf. It sets ctx.Epoch. The secret tree generation it uses is gone
// from the group's state when Seal returns; save the group before the message leaves.
func (l *Layer) Seal(ctx *layers.Context, inner []byte) ([]byte, error) {
	if !bytes.Equal(ctx.Group, l.groupID()) {
		return nil, errors.New("mls: context names another group")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out, err := l.g.SealApplication(inner)
	if err != nil {
		return nil, err
	}
	ctx.Epoch = l.g.Epoch()
	return out, nil
}

func (l *Layer) groupID() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.g.GroupID()
}

// Open implements layers.Layer. It decrypts and verifies without changing the group; the
// returned Commit deletes the message's key generation. It sets ctx.Sender to the sender's
// credential identity (or, if the caller named a sender, refuses a message from anyone
// else) and ctx.Epoch. A message of a future epoch gives layers.ErrNoKey (keep it for
// after the next commit), one of a past epoch not kept layers.ErrExpired; everything
// else refused gives layers.ErrAuth.
func (l *Layer) Open(ctx *layers.Context, sealed []byte) ([]byte, layers.Commit, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !bytes.Equal(ctx.Group, l.g.GroupID()) {
		return nil, nil, layers.ErrAuth
	}
	o, consume, err := l.g.OpenApplication(sealed)
	if errors.Is(err, mlsgroup.ErrFutureEpoch) {
		return nil, nil, layers.ErrNoKey
	}
	if errors.Is(err, mlsgroup.ErrPastEpoch) {
		return nil, nil, layers.ErrExpired
	}
	if err != nil {
		return nil, nil, layers.ErrAuth
	}
	if len(ctx.Sender) > 0 && !bytes.Equal(ctx.Sender, o.Identity) {
		return nil, nil, layers.ErrAuth
	}
	ctx.Sender = o.Identity
	ctx.Epoch = o.Epoch
	return o.Data, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if consume() != nil {
			return layers.ErrAuth
		}
		return nil
	}, nil
}

// Handshake is the mls level of the handshake cascade (policy mls,aes): the messages that
// pass it are proposals and commits that the group already protected when it made them
// (Group.Commit, Group.Propose: signed, and encrypted or MACed with the epoch's keys). It
// checks that what it seals or opens is such a message of this group and epoch; the caller
// then applies it with Group.Process, which verifies it in full.
type Handshake struct {
	mu sync.Locker
	g  *mlsgroup.Group
}

var _ layers.Layer = (*Handshake)(nil)

// NewHandshake returns the handshake mls layer of group g; mu as for New.
func NewHandshake(g *mlsgroup.Group, mu sync.Locker) *Handshake {
	if mu == nil {
		mu = new(sync.Mutex)
	}
	return &Handshake{mu: mu, g: g}
}

// Name implements layers.Layer.
func (h *Handshake) Name() string { return layers.MLS.String() }

// Version implements layers.Layer.
func (h *Handshake) Version() uint8 { return version }

// Seal implements layers.Layer: inner must be a proposal or commit of this group's current
// epoch, or the external commit by which this member just joined (for the epoch before).
func (h *Handshake) Seal(ctx *layers.Context, inner []byte) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !bytes.Equal(ctx.Group, h.g.GroupID()) {
		return nil, errors.New("mls: context names another group")
	}
	ctx.Epoch = h.g.Epoch()
	if err := h.g.CheckHandshake(inner); err != nil {
		if h.g.CheckExternalCommit(inner) != nil {
			return nil, err
		}
		ctx.Epoch--
	}
	return bytes.Clone(inner), nil
}

// Open implements layers.Layer: it lets through a proposal or commit of this group's
// current epoch (layers.ErrNoKey for another epoch: the caller may be behind or ahead).
func (h *Handshake) Open(ctx *layers.Context, sealed []byte) ([]byte, layers.Commit, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !bytes.Equal(ctx.Group, h.g.GroupID()) {
		return nil, nil, layers.ErrAuth
	}
	if err := h.g.CheckHandshake(sealed); err != nil {
		if errors.Is(err, mlsgroup.ErrWrongEpoch) {
			return nil, nil, layers.ErrNoKey
		}
		return nil, nil, layers.ErrAuth
	}
	ctx.Epoch = h.g.Epoch()
	return bytes.Clone(sealed), nil, nil
}

// PolicyExtension returns the GroupContext extension that records a conversation's policy,
// to pass in mlsgroup.Options.Extensions when the group is created.
func PolicyExtension(p layers.Policy) (uint16, []byte, error) {
	body, err := p.MarshalBinary()
	return layers.ExtensionPolicy, body, err
}

// GroupPolicy reads a group's policy from its GroupContext.
func GroupPolicy(g *mlsgroup.Group) (layers.Policy, error) {
	body, ok := g.Extension(layers.ExtensionPolicy)
	if !ok {
		return layers.Policy{}, errors.New("mls: the group has no layer policy")
	}
	return layers.UnmarshalPolicy(body)
}
