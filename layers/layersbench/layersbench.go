// Package layersbench builds real conversations with the whole cascade (MLS groups, signal
// sessions, ML-KEM keys, a room key) and measures sealing and opening through it.
// `tchat bench layers` prints its results; tests use its conversations.
package layersbench

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/aes"
	"github.com/tchat-p2p/tchat/layers/mlkem"
	"github.com/tchat-p2p/tchat/layers/mls"
	"github.com/tchat-p2p/tchat/layers/signal"
	"github.com/tchat-p2p/tchat/mlsgroup"
)

// Member is one participant with its own state in every layer.
type Member struct {
	ID      []byte
	Group   *mlsgroup.Group
	Cascade *layers.Cascade // the conversation's policy
	Signal  *signal.Layer   // nil if the policy has no signal layer
	MLKEM   *mlkem.Layer    // nil if the policy has no mlkem layer
}

// Conversation is a group whose members all run the same cascade.
type Conversation struct {
	Policy  layers.Policy
	GroupID []byte
	Members []*Member
}

// NewConversation makes a conversation of n members under policy (e.g. "signal,mls,aes"):
// member 0 creates the MLS group with the policy in its GroupContext and adds the others,
// whose KeyPackages carry their signal prekey bundle and ML-KEM public key as leaf
// extensions; every member then builds its layers from the roster.
func NewConversation(policy string, n int, cs mlsgroup.CipherSuite) (*Conversation, error) {
	p, err := layers.ParsePolicy(policy)
	if err != nil {
		return nil, err
	}
	polType, polBody, err := mls.PolicyExtension(p)
	if err != nil {
		return nil, err
	}
	room := aes.GenerateKey()
	type keys struct {
		sig   *mlsgroup.SigningKey
		sigID *signal.Identity
		kem   *mlkem.PrivateKey
		ext   map[uint16][]byte
	}
	ks := make([]keys, n)
	for i := range ks {
		k := &ks[i]
		if k.sig, err = mlsgroup.GenerateSigningKey(cs); err != nil {
			return nil, err
		}
		_, edKey, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		if k.sigID, err = signal.NewIdentity(edKey); err != nil {
			return nil, err
		}
		bundle, err := k.sigID.Bundle().MarshalBinary()
		if err != nil {
			return nil, err
		}
		if k.kem, err = mlkem.GenerateKey(); err != nil {
			return nil, err
		}
		k.ext = map[uint16][]byte{layers.ExtensionSignalPrekeys: bundle, layers.ExtensionMLKEMKey: k.kem.Public().Bytes()}
	}
	c := &Conversation{Policy: p}
	id := func(i int) []byte { return fmt.Appendf(nil, "member-%d", i) }
	creator, err := mlsgroup.Create(ks[0].sig, id(0), nil, mlsgroup.Options{
		Extensions:     map[uint16][]byte{polType: polBody},
		LeafExtensions: ks[0].ext,
	})
	if err != nil {
		return nil, err
	}
	groups := []*mlsgroup.Group{creator}
	if n > 1 {
		var kps [][]byte
		var bundles []*mlsgroup.KeyPackageBundle
		for i := 1; i < n; i++ {
			b, err := mlsgroup.NewKeyPackage(ks[i].sig, id(i), mlsgroup.KeyPackageOptions{
				Extensions: ks[i].ext, SupportedExtensions: []uint16{polType}})
			if err != nil {
				return nil, err
			}
			bundles = append(bundles, b)
			kps = append(kps, b.KeyPackage())
		}
		pc, err := creator.Commit(mlsgroup.CommitOptions{Add: kps})
		if err != nil {
			return nil, err
		}
		if err := creator.Merge(pc); err != nil {
			return nil, err
		}
		for _, b := range bundles {
			g, err := mlsgroup.Join(pc.Welcome, b, pc.RatchetTree, mlsgroup.Options{})
			if err != nil {
				return nil, err
			}
			groups = append(groups, g)
		}
	}
	c.GroupID = creator.GroupID()
	for i, g := range groups {
		agreed, err := mls.GroupPolicy(g)
		if err != nil || agreed != p {
			return nil, fmt.Errorf("layersbench: member %d sees policy %v (%v)", i, agreed, err)
		}
		m := &Member{ID: id(i), Group: g}
		var stack []layers.Layer
		for _, lid := range p.Layers() {
			switch lid {
			case layers.MLKEM:
				m.MLKEM = mlkem.New(ks[i].kem, nil)
				stack = append(stack, m.MLKEM)
			case layers.Signal:
				if m.Signal, err = signal.New(m.ID, ks[i].sigID); err != nil {
					return nil, err
				}
				stack = append(stack, m.Signal)
			case layers.MLS:
				stack = append(stack, mls.New(g, nil))
			case layers.AES:
				stack = append(stack, aes.New(room, nil))
			}
		}
		// Peers' keys come from the roster's leaf extensions, which MLS authenticated.
		for _, peer := range g.Members() {
			if string(peer.Identity) == string(m.ID) {
				continue
			}
			if m.Signal != nil {
				b, err := signal.ParseBundle(peer.Extensions[layers.ExtensionSignalPrekeys])
				if err != nil {
					return nil, err
				}
				if err := m.Signal.SetPeer(peer.Identity, b); err != nil {
					return nil, err
				}
			}
			if m.MLKEM != nil {
				pub, err := mlkem.ParsePublicKey(peer.Extensions[layers.ExtensionMLKEMKey])
				if err != nil {
					return nil, err
				}
				m.MLKEM.SetPeer(peer.Identity, pub)
			}
		}
		if m.Cascade, err = layers.NewCascade(p, stack...); err != nil {
			return nil, err
		}
		c.Members = append(c.Members, m)
	}
	return c, nil
}

// Send seals data from member i to everyone else.
func (c *Conversation) Send(i int, data []byte) ([]byte, error) {
	ctx := &layers.Context{Group: c.GroupID, Sender: c.Members[i].ID}
	for j, m := range c.Members {
		if j != i {
			ctx.Recipients = append(ctx.Recipients, m.ID)
		}
	}
	return c.Members[i].Cascade.Seal(ctx, data)
}

// Receive opens msg at member j and returns the data and the authenticated sender.
func (c *Conversation) Receive(j int, msg []byte) ([]byte, []byte, error) {
	ctx := &layers.Context{Group: c.GroupID}
	data, err := c.Members[j].Cascade.Open(ctx, msg)
	return data, ctx.Sender, err
}

// Result is one measurement of `tchat bench layers`.
type Result struct {
	Policy        string  `json:"policy"`
	Size          int     `json:"size"`
	SealUs        float64 `json:"seal_us"`
	OpenUs        float64 `json:"open_us"`
	OverheadBytes int     `json:"overhead_bytes"`
}

// Run measures every default policy at 100 B, 1 KiB and 64 KiB: groups of 8 members, and 2
// for the two-member policy.
func Run(cs mlsgroup.CipherSuite, rounds int) ([]Result, error) {
	var out []Result
	for _, pc := range []struct {
		policy  string
		members int
	}{{layers.PolicyLarge, 8}, {layers.PolicyGroup, 8}, {layers.PolicyPair, 2}} {
		c, err := NewConversation(pc.policy, pc.members, cs)
		if err != nil {
			return nil, err
		}
		// Warm up as a conversation does: the first messages carry the handshake (PQXDH)
		// and the sender-key distributions, until the other side has answered.
		for range 3 {
			for _, dir := range [][2]int{{0, 1}, {1, 0}} {
				msg, err := c.Send(dir[0], []byte("warm up"))
				if err != nil {
					return nil, err
				}
				if _, _, err := c.Receive(dir[1], msg); err != nil {
					return nil, err
				}
			}
		}
		for _, size := range []int{100, 1024, 65536} {
			data := make([]byte, size)
			var seal, open time.Duration
			var overhead int
			for range rounds {
				start := time.Now()
				msg, err := c.Send(0, data)
				if err != nil {
					return nil, err
				}
				seal += time.Since(start)
				overhead = len(msg) - size
				start = time.Now()
				if _, _, err := c.Receive(1, msg); err != nil {
					return nil, err
				}
				open += time.Since(start)
			}
			out = append(out, Result{
				Policy: pc.policy, Size: size, OverheadBytes: overhead,
				SealUs: float64(seal.Microseconds()) / float64(rounds),
				OpenUs: float64(open.Microseconds()) / float64(rounds),
			})
		}
	}
	return out, nil
}
