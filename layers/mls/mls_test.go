package mls_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/layersbench"
	"github.com/tchat-p2p/tchat/layers/mls"
	"github.com/tchat-p2p/tchat/mlsgroup"
)

const cs = mlsgroup.X25519_AES128GCM_SHA256_Ed25519

// TestCascadeWithRealMLS sends through every default policy with real MLS groups and checks
// what a receiver sees, and that every tampering is refused without changing state.
func TestCascadeWithRealMLS(t *testing.T) {
	for _, pc := range []struct {
		policy string
		n      int
	}{{layers.PolicyLarge, 4}, {layers.PolicyGroup, 4}, {layers.PolicyPair, 2}} {
		t.Run(pc.policy, func(t *testing.T) {
			c, err := layersbench.NewConversation(pc.policy, pc.n, cs)
			if err != nil {
				t.Fatal(err)
			}
			for from := range pc.n {
				msg, err := c.Send(from, []byte("hello"))
				if err != nil {
					t.Fatal(err)
				}
				for to := range pc.n {
					if to == from {
						continue
					}
					data, sender, err := c.Receive(to, msg)
					if err != nil {
						t.Fatalf("%d -> %d: %v", from, to, err)
					}
					if string(data) != "hello" || !bytes.Equal(sender, c.Members[from].ID) {
						t.Fatalf("%d -> %d: %q from %q", from, to, data, sender)
					}
				}
				// A replay is refused.
				to := (from + 1) % pc.n
				if _, _, err := c.Receive(to, msg); !errors.Is(err, layers.ErrAuth) {
					t.Fatalf("replay: %v", err)
				}
			}
			// Every flipped byte is refused, and the genuine message still opens after.
			msg, err := c.Send(0, []byte("tamper"))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(msg); i += 1 + len(msg)/200 {
				bad := bytes.Clone(msg)
				bad[i] ^= 0x10
				if _, _, err := c.Receive(1, bad); !errors.Is(err, layers.ErrAuth) {
					t.Fatalf("byte %d flipped: %v", i, err)
				}
			}
			if data, _, err := c.Receive(1, msg); err != nil || string(data) != "tamper" {
				t.Fatalf("genuine after forgeries: %q %v", data, err)
			}
		})
	}
}

func TestPolicyIsInTheGroup(t *testing.T) {
	c, err := layersbench.NewConversation(layers.PolicyGroup, 3, cs)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members {
		p, err := mls.GroupPolicy(m.Group)
		if err != nil || p.String() != layers.PolicyGroup {
			t.Fatalf("%s: %v %v", m.ID, p, err)
		}
	}
	// A message sealed under another policy (a downgrade to mls,aes) is refused.
	m0 := c.Members[0]
	var stack []layers.Layer
	for _, l := range m0.Cascade.Layers() {
		if l.Name() != "signal" {
			stack = append(stack, l)
		}
	}
	weaker, err := layers.NewCascade(layers.MustParsePolicy(layers.PolicyLarge), stack...)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := weaker.Seal(&layers.Context{Group: c.GroupID, Sender: m0.ID}, []byte("downgrade"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Receive(1, msg); !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("downgraded message: %v", err)
	}
}

// TestEpochs: a message from a future epoch is ErrNoKey (kept for later), and a removed
// member cannot read what is sent after its removal.
func TestEpochs(t *testing.T) {
	c, err := layersbench.NewConversation(layers.PolicyLarge, 3, cs)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob, carol := c.Members[0], c.Members[1], c.Members[2]
	pc, err := alice.Group.Commit(mlsgroup.CommitOptions{Remove: []uint32{carol.Group.LeafIndex()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Group.Merge(pc); err != nil {
		t.Fatal(err)
	}
	msg, err := c.Send(0, []byte("after the commit"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Receive(1, msg); !errors.Is(err, layers.ErrNoKey) {
		t.Fatalf("future epoch: %v", err)
	}
	// The handshake cascade carries the commit.
	hs := func(m *layersbench.Member) *layers.Cascade {
		var aesLayer layers.Layer
		for _, l := range m.Cascade.Layers() {
			if l.Name() == "aes" {
				aesLayer = l
			}
		}
		h, err := layers.NewCascade(layers.MustParsePolicy(layers.PolicyHandshake), mls.NewHandshake(m.Group, nil), aesLayer)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// Alice already merged; her handshake layer checks against her new epoch, so wrap the
	// commit as bob's peer would see it: through bob's own handshake cascade.
	wrapped, err := hs(bob).Seal(&layers.Context{Group: c.GroupID, Sender: alice.ID}, pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*layersbench.Member{bob, carol} {
		commit, err := hs(m).Open(&layers.Context{Group: c.GroupID}, wrapped)
		if err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		if _, err := m.Group.Process(commit); err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
	}
	if data, _, err := c.Receive(1, msg); err != nil || string(data) != "after the commit" {
		t.Fatalf("after catching up: %q %v", data, err)
	}
	if _, _, err := c.Receive(2, msg); err == nil {
		t.Fatal("the removed member read a message sent after its removal")
	}
	// Application data does not pass the handshake layer.
	if _, err := hs(alice).Seal(&layers.Context{Group: c.GroupID, Sender: alice.ID}, []byte("not a commit")); err == nil {
		t.Fatal("the handshake layer sealed application data")
	}
}

// TestExpiredEpoch: a message of an epoch the receiver no longer keeps is ErrExpired
// (also ErrAuth) through the whole cascade, and never opens.
func TestExpiredEpoch(t *testing.T) {
	c, err := layersbench.NewConversation(layers.PolicyLarge, 2, cs)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := c.Members[0], c.Members[1]
	old, err := c.Send(0, []byte("old"))
	if err != nil {
		t.Fatal(err)
	}
	for range mlsgroup.DefaultPastEpochs + 1 {
		pc, err := alice.Group.Commit(mlsgroup.CommitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Group.Process(pc.Message); err != nil {
			t.Fatal(err)
		}
		if err := alice.Group.Merge(pc); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Receive(1, old); err != layers.ErrExpired || !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("a message of an epoch no longer kept: %v", err)
	}
}
