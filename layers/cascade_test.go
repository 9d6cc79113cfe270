package layers_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/aes"
	"github.com/tchat-p2p/tchat/layers/mlkem"
	"github.com/tchat-p2p/tchat/layers/signal"
)

// peer is one member of a test conversation, with every layer.
type peer struct {
	name  string
	id    []byte
	aes   *aes.Layer
	mls   *fakeMLS
	sig   *signal.Layer
	ident *signal.Identity
	kem   *mlkem.Layer
	kemK  *mlkem.PrivateKey
	c     *layers.Cascade
}

var groupID = []byte("group-0123456789")

// conversation makes members of one group whose cascades run policy.
func conversation(t testing.TB, policy string, n int) []*peer {
	t.Helper()
	p := layers.MustParsePolicy(policy)
	room := aes.GenerateKey()
	var secret [32]byte
	rand.Read(secret[:])
	ps := make([]*peer, n)
	for i := range ps {
		name := fmt.Sprintf("member%d", i)
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		ident, err := signal.NewIdentity(priv)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := signal.New([]byte(name), ident)
		if err != nil {
			t.Fatal(err)
		}
		kemK, err := mlkem.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = &peer{
			name: name, id: []byte(name),
			aes: aes.New(room, nil), mls: newFakeMLS([]byte(name), secret),
			sig: sig, ident: ident, kem: mlkem.New(kemK, nil), kemK: kemK,
		}
	}
	for _, a := range ps {
		for _, b := range ps {
			if a == b {
				continue
			}
			enc, _ := b.ident.Bundle().MarshalBinary() // as it rides in the LeafNode
			bundle, err := signal.ParseBundle(enc)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.sig.SetPeer(b.id, bundle); err != nil {
				t.Fatal(err)
			}
			pub, err := mlkem.ParsePublicKey(b.kemK.Public().Bytes())
			if err != nil {
				t.Fatal(err)
			}
			a.kem.SetPeer(b.id, pub)
		}
		a.c = cascadeFor(t, p, a)
	}
	return ps
}

func cascadeFor(t testing.TB, p layers.Policy, m *peer) *layers.Cascade {
	t.Helper()
	var ls []layers.Layer
	for _, id := range p.Layers() {
		switch id {
		case layers.MLKEM:
			ls = append(ls, m.kem)
		case layers.Signal:
			ls = append(ls, m.sig)
		case layers.MLS:
			ls = append(ls, m.mls)
		case layers.AES:
			ls = append(ls, m.aes)
		}
	}
	c, err := layers.NewCascade(p, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sealFrom(t testing.TB, c *layers.Cascade, from *peer, pt []byte, to ...*peer) []byte {
	t.Helper()
	ctx := &layers.Context{Group: groupID, Sender: from.id}
	for _, m := range to {
		ctx.Recipients = append(ctx.Recipients, m.id)
	}
	msg, err := c.Seal(ctx, pt)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func openAt(c *layers.Cascade, msg []byte) ([]byte, *layers.Context, error) {
	ctx := &layers.Context{Group: groupID}
	pt, err := c.Open(ctx, msg)
	return pt, ctx, err
}

func mustOpen(t testing.TB, to, from *peer, msg, want []byte) {
	t.Helper()
	ctx := &layers.Context{Group: groupID}
	if !to.c.Policy().Has(layers.MLS) {
		ctx.Sender = from.id // without mls, the transport names the sender
	}
	pt, err := to.c.Open(ctx, msg)
	if err != nil {
		t.Fatalf("%s opening from %s: %v", to.name, from.name, err)
	}
	if !bytes.Equal(pt, want) || !bytes.Equal(ctx.Sender, from.id) {
		t.Fatalf("%s opened %.20q from %s", to.name, pt, ctx.Sender)
	}
}

func others(ps []*peer, p *peer) []*peer {
	var out []*peer
	for _, x := range ps {
		if x != p {
			out = append(out, x)
		}
	}
	return out
}

// snapshot encodes the state of every stateful layer of m.
func snapshot(t testing.TB, m *peer) []byte {
	t.Helper()
	var all []byte
	for _, s := range []layers.Stateful{m.aes, m.mls, m.sig, m.kem} {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		all = fmt.Appendf(all, "%d:%x;", len(b), b)
	}
	return all
}

func TestCascadeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		policy string
		n      int
	}{
		{layers.PolicyPair, 2},
		{layers.PolicyGroup, 4},
		{layers.PolicyLarge, 4},
		{layers.PolicyHandshake, 3},
		{"aes", 2},
		{"signal,aes", 2},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.policy, tc.n), func(t *testing.T) {
			ps := conversation(t, tc.policy, tc.n)
			for round, size := range []int{0, 1, 100, 1024, 64 << 10} {
				for _, from := range ps {
					pt := bytes.Repeat([]byte{byte(round)}, size)
					msg := sealFrom(t, from.c, from, pt, others(ps, from)...)
					for _, to := range others(ps, from) {
						mustOpen(t, to, from, msg, pt)
					}
				}
			}
		})
	}
}

func TestCascadeSizeLimit(t *testing.T) {
	ps := conversation(t, layers.PolicyGroup, 3)
	a := ps[0]
	big := make([]byte, layers.MaxPlaintext)
	msg := sealFrom(t, a.c, a, big, ps[1:]...)
	mustOpen(t, ps[1], a, msg, big)
	if _, err := a.c.Seal(&layers.Context{Group: groupID, Sender: a.id, Recipients: [][]byte{ps[1].id, ps[2].id}},
		make([]byte, layers.MaxPlaintext+1)); err != layers.ErrTooLarge {
		t.Fatalf("sealing MaxPlaintext+1: %v", err)
	}
}

// counting wraps a layer and counts the Opens that reach it.
type counting struct {
	layers.Layer
	opens *int
}

func (c counting) Open(ctx *layers.Context, msg []byte) ([]byte, layers.Commit, error) {
	*c.opens++
	return c.Layer.Open(ctx, msg)
}

func TestCascadeBadInput(t *testing.T) {
	ps := conversation(t, layers.PolicyPair, 2)
	a, b := ps[0], ps[1]
	// Establish the session, so the message under test is a plain one.
	mustOpen(t, b, a, sealFrom(t, a.c, a, []byte("hi"), b), []byte("hi"))
	mustOpen(t, a, b, sealFrom(t, b.c, b, []byte("hi"), a), []byte("hi"))
	pt := []byte("attack at dawn")
	msg := sealFrom(t, a.c, a, pt, b)

	opens := 0
	watched, err := layers.NewCascade(b.c.Policy(),
		counting{b.kem, &opens}, counting{b.sig, &opens}, counting{b.mls, &opens}, counting{b.aes, &opens})
	if err != nil {
		t.Fatal(err)
	}
	refuse := func(c *layers.Cascade, bad []byte, group []byte, what string, noWork bool) {
		t.Helper()
		before := snapshot(t, b)
		opens = 0
		got, err := c.Open(&layers.Context{Group: group}, bad)
		if err != layers.ErrAuth {
			t.Fatalf("%s: got (%q, %v), want ErrAuth", what, got, err)
		}
		if noWork && opens != 0 {
			t.Fatalf("%s: %d layers worked on it", what, opens)
		}
		if !bytes.Equal(before, snapshot(t, b)) {
			t.Fatalf("%s: state changed", what)
		}
	}
	for bit := range 8 * len(msg) {
		bad := bytes.Clone(msg)
		bad[bit/8] ^= 1 << (bit % 8)
		refuse(watched, bad, groupID, fmt.Sprintf("bit %d flipped", bit), bit < 8*12)
	}
	for n := range len(msg) {
		refuse(watched, msg[:n], groupID, fmt.Sprintf("truncated to %d", n), n <= 12)
	}
	refuse(watched, append(bytes.Clone(msg), 0), groupID, "extended", false)
	refuse(watched, msg, []byte("another group"), "wrong group", false)

	// Header surgery: reorder, strip, add and re-version layers.
	hdr := msg[:12]
	swapped := bytes.Clone(msg)
	copy(swapped[4:6], hdr[6:8])
	copy(swapped[6:8], hdr[4:6])
	refuse(watched, swapped, groupID, "layers reordered", true)
	stripped := append([]byte{'t', 'c', 1, 3}, msg[6:]...) // mlkem named no more
	refuse(watched, stripped, groupID, "layer stripped from the header", true)
	reversion := bytes.Clone(msg)
	reversion[5] = 2
	refuse(watched, reversion, groupID, "layer version changed", true)
	// A message really sealed under a weaker policy (downgrade), and one
	// with a layer more than the policy.
	weaker := sealFrom(t, cascadeFor(t, layers.MustParsePolicy("signal,mls,aes"), a), a, pt, b)
	refuse(watched, weaker, groupID, "signal,mls,aes to a pair policy", true)
	large := conversation(t, layers.PolicyLarge, 2)
	more := sealFrom(t, ps[0].c, ps[0], pt, ps[1])
	refuse(large[1].c, more, groupID, "pair policy to mls,aes", true)

	// The wrong room key: another conversation's cascade.
	other := conversation(t, layers.PolicyPair, 2)
	if _, _, err := openAt(other[1].c, msg); err != layers.ErrAuth {
		t.Fatalf("wrong key: %v", err)
	}

	mustOpen(t, b, a, msg, pt)
	refuse(watched, msg, groupID, "replay", false)
}

func TestCascadeFailedInnerLayerCommitsNothing(t *testing.T) {
	ps := conversation(t, layers.PolicyGroup, 3)
	a, b, c := ps[0], ps[1], ps[2]
	// A pairwise message to bob also reaches carol: aes and mls open it
	// there, signal does not, so carol's aes and mls must not record it.
	msg := sealFrom(t, a.c, a, []byte("for bob"), b)
	before := snapshot(t, c)
	if _, _, err := openAt(c.c, msg); !errors.Is(err, layers.ErrAuth) {
		t.Fatalf("carol opened bob's message: %v", err)
	}
	if !bytes.Equal(before, snapshot(t, c)) {
		t.Fatal("outer layers committed for a message an inner one refused")
	}
	mustOpen(t, b, a, msg, []byte("for bob"))
}

func TestCascadeRemovedMember(t *testing.T) {
	ps := conversation(t, layers.PolicyGroup, 4)
	for _, from := range ps {
		msg := sealFrom(t, from.c, from, []byte("all four"), others(ps, from)...)
		for _, to := range others(ps, from) {
			mustOpen(t, to, from, msg, []byte("all four"))
		}
	}
	dave, rest := ps[3], ps[:3]
	// An MLS commit removes dave: the others move to a new epoch and forget
	// his signal sessions, which makes them rekey.
	var secret [32]byte
	rand.Read(secret[:])
	for _, m := range rest {
		m.mls.advance(secret)
		m.sig.RemovePeer(dave.id)
	}
	for _, from := range rest {
		pt := []byte("without dave")
		msg := sealFrom(t, from.c, from, pt, others(rest, from)...)
		for _, to := range others(rest, from) {
			mustOpen(t, to, from, msg, pt)
		}
		before := snapshot(t, dave)
		if _, _, err := openAt(dave.c, msg); !errors.Is(err, layers.ErrAuth) {
			t.Fatalf("removed member opened: %v", err)
		}
		if !bytes.Equal(before, snapshot(t, dave)) {
			t.Fatal("removed member's state changed")
		}
		// Even if the MLS layer failed us and dave had the new epoch
		// secret, the signal layer keeps him out.
		dave.mls.advance(secret)
		if _, _, err := openAt(dave.c, msg); !errors.Is(err, layers.ErrAuth) {
			t.Fatalf("removed member with the MLS secret opened: %v", err)
		}
		dave.mls = newFakeMLS(dave.id, [32]byte{}) // back to the old epoch
		dave.c = cascadeFor(t, layers.MustParsePolicy(layers.PolicyGroup), dave)
	}
}

func TestCascadeNoKeyPassesThrough(t *testing.T) {
	ps := conversation(t, layers.PolicyGroup, 3)
	a, b := ps[0], ps[1]
	var secret [32]byte
	a.mls.advance(secret) // alice is an epoch ahead of bob
	msg := sealFrom(t, a.c, a, []byte("future"), ps[1:]...)
	if _, _, err := openAt(b.c, msg); err != layers.ErrNoKey {
		t.Fatalf("future epoch: %v, want ErrNoKey", err)
	}
	b.mls.advance(secret)
	mustOpen(t, b, a, msg, []byte("future"))
}

func TestNewCascade(t *testing.T) {
	ps := conversation(t, layers.PolicyGroup, 2)
	m := ps[0]
	p := layers.MustParsePolicy(layers.PolicyGroup)
	for _, ls := range [][]layers.Layer{
		{m.sig, m.mls},
		{m.mls, m.sig, m.aes},
		{m.sig, m.mls, m.aes, m.kem},
		{m.sig, nil, m.aes},
	} {
		if _, err := layers.NewCascade(p, ls...); err == nil {
			t.Fatalf("layers %v accepted for %s", ls, p)
		}
	}
	if _, err := layers.NewCascade(layers.Policy{}, m.aes); err == nil {
		t.Fatal("empty policy accepted")
	}
}

func FuzzCascadeOpen(f *testing.F) {
	ps := conversation(f, layers.PolicyPair, 2)
	a, b := ps[0], ps[1]
	var valid [][]byte
	for _, pt := range []string{"", "first", "second"} {
		m := sealFrom(f, a.c, a, []byte(pt), b)
		valid = append(valid, m)
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, err := b.c.Open(&layers.Context{Group: groupID}, msg)
		if err != nil {
			if err != layers.ErrAuth && err != layers.ErrNoKey {
				t.Fatalf("error %v", err)
			}
			return
		}
		for _, v := range valid {
			if bytes.Equal(v, msg) {
				return
			}
		}
		t.Fatalf("a message never sealed opened: %x", msg)
	})
}

// TestCascadeConcurrent has both members of a pair seal and open at once, so
// Opens commit while Seals move the same ratchets (the signal layer then
// redoes a staged step on the moved state).
func TestCascadeConcurrent(t *testing.T) {
	ps := conversation(t, layers.PolicyPair, 2)
	const n = 50
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for i, from := range ps {
		to := ps[1-i]
		ch := make(chan []byte, n)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(ch)
			for j := range n {
				ctx := &layers.Context{Group: groupID, Sender: from.id, Recipients: [][]byte{to.id}}
				msg, err := from.c.Seal(ctx, fmt.Appendf(nil, "%s %d", from.name, j))
				if err != nil {
					errs <- err
					return
				}
				ch <- msg
			}
		}()
		go func() {
			defer wg.Done()
			j := 0
			for msg := range ch {
				pt, err := to.c.Open(&layers.Context{Group: groupID}, msg)
				if err != nil || string(pt) != fmt.Sprintf("%s %d", from.name, j) {
					errs <- fmt.Errorf("%s opening %s's message %d: %q, %v", to.name, from.name, j, pt, err)
					return
				}
				j++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestCascadeNoKeyNamesSender: a member that missed the message carrying a sender's
// signal sender key gets ErrNoKey for the next one, with the sender the MLS layer
// authenticated, so that it can ask for what it missed; once it has that message, both
// open.
func TestCascadeNoKeyNamesSender(t *testing.T) {
	ps := conversation(t, layers.PolicyGroup, 3)
	a, b := ps[0], ps[1]
	first := sealFrom(t, a.c, a, []byte("first"), others(ps, a)...)
	second := sealFrom(t, a.c, a, []byte("second"), others(ps, a)...)
	before := snapshot(t, b)
	_, ctx, err := openAt(b.c, second)
	if err != layers.ErrNoKey {
		t.Fatalf("without the sender key: %v, want ErrNoKey", err)
	}
	if !bytes.Equal(ctx.Sender, a.id) {
		t.Errorf("ErrNoKey names sender %x, want %x", ctx.Sender, a.id)
	}
	if !bytes.Equal(before, snapshot(t, b)) {
		t.Fatal("a message that did not open changed the state")
	}
	mustOpen(t, b, a, first, []byte("first"))
	mustOpen(t, b, a, second, []byte("second"))
}
