package layers

import (
	"errors"
	"fmt"
	"sync"
)

// A Cascade seals and opens messages through a conversation's layers.
type Cascade struct {
	policy Policy
	layers []Layer    // inner to outer, as in policy
	header []byte     // the envelope header every message of this cascade has
	mu     sync.Mutex // serializes Open, so staged changes commit in order
}

// NewCascade returns a Cascade for policy over layers, given inner to outer;
// their names must be the policy's, in its order.
func NewCascade(policy Policy, layers ...Layer) (*Cascade, error) {
	if policy.Len() == 0 {
		return nil, fmt.Errorf("layers: empty policy")
	}
	if len(layers) != policy.Len() {
		return nil, fmt.Errorf("layers: policy %s has %d layers, got %d", policy, policy.Len(), len(layers))
	}
	tags := make([]layerTag, len(layers))
	for i, l := range layers {
		if l == nil || l.Name() != policy.ids[i].String() {
			name := "nil"
			if l != nil {
				name = l.Name()
			}
			return nil, fmt.Errorf("layers: layer %d is %s, policy %s wants %s", i, name, policy, policy.ids[i])
		}
		tags[i] = layerTag{policy.ids[i], l.Version()}
	}
	return &Cascade{
		policy: policy,
		layers: append([]Layer(nil), layers...),
		header: appendHeader(nil, tags),
	}, nil
}

// Policy returns the cascade's policy.
func (c *Cascade) Policy() Policy { return c.policy }

// Layers returns the cascade's layers, inner to outer (for saving their
// state: see Stateful).
func (c *Cascade) Layers() []Layer { return append([]Layer(nil), c.layers...) }

// Seal seals plaintext through every layer, inner to outer, and returns the
// envelope. ctx.AD is set to the envelope header and group id.
func (c *Cascade) Seal(ctx *Context, plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, ErrTooLarge
	}
	if err := ctx.Check(); err != nil {
		return nil, err
	}
	ctx.AD = associatedData(c.header, ctx.Group)
	data := plaintext
	for i, l := range c.layers {
		out, err := l.Seal(ctx, data)
		if i > 0 {
			clear(data) // an inner layer's output; plaintext-like for the layers outside it
		}
		if err != nil {
			return nil, fmt.Errorf("layers: sealing %s: %w", l.Name(), err)
		}
		data = out
	}
	msg := make([]byte, 0, len(c.header)+len(data))
	msg = append(msg, c.header...)
	return append(msg, data...), nil
}

// Open checks that msg carries exactly the policy's layers, in order and at
// the versions configured, then opens it through every layer, outer to
// inner, and commits the layers' staged state changes only if all opened.
// Every refusal is ErrAuth (or ErrNoKey, or ErrExpired) and leaves all
// state as it was. Open reads ctx.Group and ctx.Sender; on success it writes
// back what the layers authenticated (Sender, Epoch) and ctx.AD. On ErrNoKey from an inner
// layer it writes back the Sender and Epoch the outer layers authenticated, if
// any, so that the caller knows whose key it lacks.
func (c *Cascade) Open(ctx *Context, msg []byte) ([]byte, error) {
	if len(msg) > MaxMessage+MaxHeader || ctx.Check() != nil {
		return nil, ErrAuth
	}
	// The layer list first: no layer does any work on a message whose
	// envelope is not exactly this cascade's.
	if len(msg) <= len(c.header) || string(msg[:len(c.header)]) != string(c.header) {
		return nil, ErrAuth
	}
	local := *ctx
	local.AD = associatedData(c.header, ctx.Group)

	c.mu.Lock()
	defer c.mu.Unlock()
	commits := make([]Commit, 0, len(c.layers))
	// The layers' outputs between the outermost input and the plaintext
	// are cleared when Open returns, not before: a Commit may read its
	// layer's input again.
	var inner [][]byte
	defer func() {
		for _, b := range inner {
			clear(b)
		}
	}()
	data := msg[len(c.header):]
	for i := len(c.layers) - 1; i >= 0; i-- {
		out, commit, err := c.layers[i].Open(&local, data)
		if err != nil {
			if errors.Is(err, ErrNoKey) {
				ctx.Sender, ctx.Epoch = local.Sender, local.Epoch
				return nil, ErrNoKey
			}
			if err == ErrExpired {
				return nil, ErrExpired
			}
			return nil, ErrAuth
		}
		commits = append(commits, commit)
		if i > 0 {
			inner = append(inner, out)
		}
		data = out
	}
	if len(data) > MaxPlaintext {
		clear(data)
		return nil, ErrAuth
	}
	for _, commit := range commits {
		if commit == nil {
			continue
		}
		if err := commit(); err != nil {
			// Another Open of the same message got there first (a layer
			// shared with another cascade); the layers outside this one
			// have committed, which only marks the message as seen.
			clear(data)
			return nil, ErrAuth
		}
	}
	*ctx = local
	return data, nil
}
