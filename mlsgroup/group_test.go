package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
	"testing"
)

// member is one client in a test group.
type member struct {
	name string
	key  *SigningKey
	g    *Group
}

func newMember(t testing.TB, cs CipherSuite, name string) *member {
	t.Helper()
	key, err := GenerateSigningKey(cs)
	if err != nil {
		t.Fatal(err)
	}
	return &member{name: name, key: key}
}

// add has committer add the given members; they join from the Welcome.
func add(t testing.TB, committer *member, others []*member, joiners ...*member) {
	t.Helper()
	var kps [][]byte
	var bundles []*KeyPackageBundle
	for _, j := range joiners {
		b, err := NewKeyPackage(j.key, []byte(j.name), KeyPackageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bundles = append(bundles, b)
		kps = append(kps, b.KeyPackage())
	}
	pc, err := committer.g.Commit(CommitOptions{Add: kps})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range others {
		if _, err := o.g.Process(pc.Message); err != nil {
			t.Fatalf("%s processing the add: %v", o.name, err)
		}
	}
	if err := committer.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	for i, j := range joiners {
		g, err := Join(pc.Welcome, bundles[i], pc.RatchetTree, Options{})
		if err != nil {
			t.Fatalf("%s joining: %v", j.name, err)
		}
		j.g = g
	}
}

func agree(t testing.TB, ms ...*member) {
	t.Helper()
	want := ms[0].g.EpochAuthenticator()
	for _, m := range ms[1:] {
		if m.g.Epoch() != ms[0].g.Epoch() || !bytes.Equal(m.g.EpochAuthenticator(), want) {
			t.Fatalf("%s is at epoch %d %x, %s at %d %x", m.name, m.g.Epoch(), m.g.EpochAuthenticator(), ms[0].name, ms[0].g.Epoch(), want)
		}
	}
}

func TestGroupLifecycle(t *testing.T) {
	for _, cs := range []CipherSuite{X25519_AES128GCM_SHA256_Ed25519, DefaultCipherSuite, P256_AES128GCM_SHA256_P256, X448_CHACHA20POLY1305_SHA512_Ed448} {
		t.Run(fmt.Sprintf("%04x", uint16(cs)), func(t *testing.T) {
			alice, bob, carol, dave := newMember(t, cs, "alice"), newMember(t, cs, "bob"), newMember(t, cs, "carol"), newMember(t, cs, "dave")
			g, err := Create(alice.key, []byte("alice"), nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			alice.g = g
			add(t, alice, nil, bob)
			agree(t, alice, bob)
			add(t, bob, []*member{alice}, carol, dave)
			agree(t, alice, bob, carol, dave)

			// Application messages every way.
			for _, from := range []*member{alice, bob, carol, dave} {
				msg, err := from.g.Seal([]byte("hi from "+from.name), nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, to := range []*member{alice, bob, carol, dave} {
					if to == from {
						continue
					}
					p, err := to.g.Process(msg)
					if err != nil {
						t.Fatalf("%s reading %s: %v", to.name, from.name, err)
					}
					if p.Kind != KindApplication || string(p.Data) != "hi from "+from.name {
						t.Fatalf("%s got %+v", to.name, p)
					}
				}
			}

			// An empty commit (path) as a public message, then carol removes bob.
			pc, err := dave.g.Commit(CommitOptions{Public: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []*member{alice, bob, carol} {
				if _, err := m.g.Process(pc.Message); err != nil {
					t.Fatalf("%s: %v", m.name, err)
				}
			}
			if err := dave.g.Merge(pc); err != nil {
				t.Fatal(err)
			}
			agree(t, alice, bob, carol, dave)

			late, err := alice.g.Seal([]byte("late"), nil)
			if err != nil {
				t.Fatal(err)
			}
			pc, err = carol.g.Commit(CommitOptions{Remove: []uint32{bob.g.LeafIndex()}})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []*member{alice, bob, dave} {
				if _, err := m.g.Process(pc.Message); err != nil {
					t.Fatalf("%s: %v", m.name, err)
				}
			}
			if err := carol.g.Merge(pc); err != nil {
				t.Fatal(err)
			}
			agree(t, alice, carol, dave)
			if bob.g.Status() != Removed {
				t.Fatalf("bob's status is %v", bob.g.Status())
			}
			if _, err := bob.g.Seal([]byte("x"), nil); !errors.Is(err, ErrNotActive) {
				t.Errorf("removed bob sealed: %v", err)
			}
			// A message of the previous epoch still opens, marked late.
			p, err := dave.g.Process(late)
			if err != nil || !p.Late || string(p.Data) != "late" {
				t.Fatalf("late message: %+v, %v", p, err)
			}
			// Bob cannot read the new epoch.
			msg, err := alice.g.Seal([]byte("secret"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bob.g.Process(msg); err == nil {
				t.Fatal("removed member read a new message")
			}
			if len(alice.g.Members()) != 3 {
				t.Fatalf("roster %v", alice.g.Members())
			}
		})
	}
}

// threeMembers returns alice, bob and carol in one group of suite cs.
func threeMembers(t testing.TB, cs CipherSuite) (alice, bob, carol *member) {
	alice, bob, carol = newMember(t, cs, "alice"), newMember(t, cs, "bob"), newMember(t, cs, "carol")
	g, err := Create(alice.key, []byte("alice"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice.g = g
	add(t, alice, nil, bob, carol)
	return
}

func TestExternalJoinAndResync(t *testing.T) {
	alice, bob, carol := threeMembers(t, X25519_AES128GCM_SHA256_Ed25519)
	info, err := alice.g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	dave := newMember(t, X25519_AES128GCM_SHA256_Ed25519, "dave")
	if re, err := Resyncs(info, dave.key, nil, Options{}); err != nil || re {
		t.Fatalf("a newcomer's external join counts as a resync: %v, %v", re, err)
	}
	g, commit, err := JoinExternal(info, dave.key, []byte("dave"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dave.g = g
	for _, m := range []*member{alice, bob, carol} {
		if _, err := m.g.Process(commit); err != nil {
			t.Fatalf("%s processing dave's external commit: %v", m.name, err)
		}
	}
	agree(t, alice, bob, carol, dave)
	if len(alice.g.Members()) != 4 {
		t.Fatalf("roster %v", alice.g.Members())
	}

	// Carol lost her state: she rejoins with the same key, replacing her old leaf.
	info, err = bob.g.GroupInfo(false)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := codec.Marshal(ptr(bob.g.cur.tree.Wire()))
	if err != nil {
		t.Fatal(err)
	}
	if re, err := Resyncs(info, carol.key, tree, Options{}); err != nil || !re {
		t.Fatalf("carol's rejoin does not count as a resync: %v, %v", re, err)
	}
	if _, err := Resyncs(info[:len(info)-1], carol.key, tree, Options{}); err == nil {
		t.Fatal("a truncated GroupInfo was taken")
	}
	g, commit, err = JoinExternal(info, carol.key, []byte("carol"), tree, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{alice, bob, dave} {
		if _, err := m.g.Process(commit); err != nil {
			t.Fatalf("%s processing carol's resync: %v", m.name, err)
		}
	}
	if _, err := carol.g.Process(commit); err != nil {
		t.Fatalf("carol's old state: %v", err)
	}
	if carol.g.Status() != Removed {
		t.Errorf("carol's old state is %v", carol.g.Status())
	}
	carol.g = g
	agree(t, alice, bob, carol, dave)
	if len(alice.g.Members()) != 4 {
		t.Fatalf("roster after resync %v", alice.g.Members())
	}
}

func TestProposalsByReference(t *testing.T) {
	alice, bob, carol := threeMembers(t, X25519_AES128GCM_SHA256_Ed25519)
	dave := newMember(t, X25519_AES128GCM_SHA256_Ed25519, "dave")
	bundle, err := NewKeyPackage(dave.key, []byte("dave"), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addMsg, err := bob.g.Propose(Proposal{Add: bundle.KeyPackage()}, false)
	if err != nil {
		t.Fatal(err)
	}
	two := carol.g.LeafIndex()
	rmMsg, err := alice.g.Propose(Proposal{Remove: &two}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{alice, carol} {
		if _, err := m.g.Process(addMsg); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*member{bob, carol} {
		if _, err := m.g.Process(rmMsg); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := bob.g.Commit(CommitOptions{ReferencePending: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{alice, carol} {
		if _, err := m.g.Process(pc.Message); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	if err := bob.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	if dave.g, err = Join(pc.Welcome, bundle, pc.RatchetTree, Options{}); err != nil {
		t.Fatal(err)
	}
	agree(t, alice, bob, dave)
	if carol.g.Status() != Removed {
		t.Errorf("carol: %v", carol.g.Status())
	}
}

// TestCommitBeforeItsProposal: a member that gets a commit before a proposal the commit
// refers to (gossip does not keep order) is told so, its state does not move, and the same
// commit is accepted once the proposal has come.
func TestCommitBeforeItsProposal(t *testing.T) {
	alice, bob, carol := threeMembers(t, X25519_AES128GCM_SHA256_Ed25519)
	two := carol.g.LeafIndex()
	rmMsg, err := alice.g.Propose(Proposal{Remove: &two}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Process(rmMsg); err != nil {
		t.Fatal(err)
	}
	pc, err := bob.g.Commit(CommitOptions{ReferencePending: true}) // a PrivateMessage
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	before := snapshot(carol.g)
	if _, err := carol.g.Process(pc.Message); !errors.Is(err, ErrUnknownProposal) {
		t.Fatalf("carol without the proposal: %v, want ErrUnknownProposal", err)
	}
	if got := snapshot(carol.g); got != before {
		t.Fatalf("the refused commit changed carol's state: %s, was %s", got, before)
	}
	if _, err := alice.g.Process(pc.Message); err != nil { // she has her own proposal
		t.Fatal(err)
	}
	if _, err := carol.g.Process(rmMsg); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.g.Process(pc.Message); err != nil {
		t.Fatalf("carol, once she has the proposal: %v", err)
	}
	if carol.g.Status() != Removed {
		t.Errorf("carol: %v", carol.g.Status())
	}
}

// snapshot is what a test compares to show a failed message changed nothing.
func snapshot(g *Group) string {
	return fmt.Sprintf("%d %x %d %v %d", g.Epoch(), g.EpochAuthenticator(), len(g.Members()), g.Status(), len(g.proposals))
}

// TestBadInputLeavesStateUnchanged feeds forged and malformed handshake messages; each is
// refused with an error and the group state does not move.
func TestBadInputLeavesStateUnchanged(t *testing.T) {
	cs := X25519_AES128GCM_SHA256_Ed25519
	alice, bob, carol := threeMembers(t, cs)
	mallory := newMember(t, cs, "mallory")

	genuine, err := alice.g.Commit(CommitOptions{Public: true})
	if err != nil {
		t.Fatal(err)
	}
	var m wire.MLSMessage
	if err := codec.Unmarshal(genuine.Message, &m); err != nil {
		t.Fatal(err)
	}
	reencode := func(f func(pm *wire.PublicMessage)) []byte {
		var c wire.MLSMessage
		if err := codec.Unmarshal(genuine.Message, &c); err != nil {
			t.Fatal(err)
		}
		f(c.PublicMessage)
		out, err := codec.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A commit removing its own committer, signed properly by a member.
	selfRemove := func() []byte {
		ac, err := bob.g.cur.keys.Sign(bob.g.signer, wire.WireFormatPublicMessage, &wire.FramedContent{
			GroupID: bob.g.cur.ctx.GroupID, Epoch: bob.g.cur.ctx.Epoch,
			Sender:            wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: bob.g.LeafIndex()},
			AuthenticatedData: []byte{}, ContentType: wire.ContentTypeCommit,
			Commit: &wire.Commit{Proposals: []wire.ProposalOrRef{{Type: wire.ProposalOrRefTypeProposal,
				Proposal: &wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: bob.g.LeafIndex()}}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ac.Auth.ConfirmationTag = make([]byte, 32)
		pm, err := bob.g.cur.keys.ProtectPublic(ac)
		if err != nil {
			t.Fatal(err)
		}
		return codec.MustMarshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
	}
	// mallory's own group's messages are for another group.
	mg, err := Create(mallory.key, []byte("mallory"), bob.g.GroupID(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := mg.Commit(CommitOptions{Public: true})
	if err != nil {
		t.Fatal(err)
	}

	cases := map[string][]byte{
		"forged signature":      reencode(func(pm *wire.PublicMessage) { pm.Auth.Signature[3] ^= 1 }),
		"wrong membership tag":  reencode(func(pm *wire.PublicMessage) { pm.MembershipTag[0] ^= 1 }),
		"wrong confirmation":    reencode(func(pm *wire.PublicMessage) { pm.Auth.ConfirmationTag[0] ^= 1 }),
		"wrong epoch":           reencode(func(pm *wire.PublicMessage) { pm.Content.Epoch++ }),
		"sender not a member":   reencode(func(pm *wire.PublicMessage) { pm.Content.Sender.LeafIndex = 7 }),
		"commit removes itself": selfRemove(),
		"other group's keys":    foreign.Message,
		"truncated":             genuine.Message[:len(genuine.Message)-5],
		"garbage":               []byte("not an MLS message at all"),
	}
	for name, msg := range cases {
		for _, recv := range []*member{bob, carol} {
			before := snapshot(recv.g)
			if _, err := recv.g.Process(msg); err == nil {
				t.Errorf("%s: %s accepted it", name, recv.name)
			}
			if after := snapshot(recv.g); after != before {
				t.Errorf("%s: %s changed state: %s -> %s", name, recv.name, before, after)
			}
		}
	}
	// After all that, the genuine commit still applies.
	for _, recv := range []*member{bob, carol} {
		if _, err := recv.g.Process(genuine.Message); err != nil {
			t.Fatalf("genuine commit after forgeries: %v", err)
		}
	}
	if err := alice.g.Merge(genuine); err != nil {
		t.Fatal(err)
	}
	agree(t, alice, bob, carol)
}

func TestWelcomeForSomeoneElse(t *testing.T) {
	cs := X25519_AES128GCM_SHA256_Ed25519
	alice, bob := newMember(t, cs, "alice"), newMember(t, cs, "bob")
	g, err := Create(alice.key, []byte("alice"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bobKP, err := NewKeyPackage(bob.key, []byte("bob"), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eve := newMember(t, cs, "eve")
	eveKP, err := NewKeyPackage(eve.key, []byte("eve"), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := g.Commit(CommitOptions{Add: [][]byte{bobKP.KeyPackage()}, RatchetTreeInWelcome: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(pc.Welcome, eveKP, nil, Options{}); !errors.Is(err, ErrNotForUs) {
		t.Errorf("eve joined with bob's welcome: %v", err)
	}
	if ok, err := WelcomeFor(pc.Welcome, bobKP.KeyPackage()); !ok || err != nil {
		t.Errorf("WelcomeFor bob's KeyPackage: %v, %v", ok, err)
	}
	if ok, err := WelcomeFor(pc.Welcome, eveKP.KeyPackage()); ok || err != nil {
		t.Errorf("WelcomeFor eve's KeyPackage: %v, %v", ok, err)
	}
	if _, err := WelcomeFor(pc.Welcome[:len(pc.Welcome)/2], bobKP.KeyPackage()); err == nil {
		t.Error("WelcomeFor a truncated Welcome: no error")
	}
	// A Welcome whose encrypted group info was tampered with.
	bad := bytes.Clone(pc.Welcome)
	bad[len(bad)-3] ^= 1
	if _, err := Join(bad, bobKP, nil, Options{}); !errors.Is(err, ErrAuth) {
		t.Errorf("tampered welcome: %v", err)
	}
	if _, err := Join(pc.Welcome, bobKP, nil, Options{}); err != nil {
		t.Errorf("genuine welcome: %v", err)
	}
}

func TestReInitAndBranch(t *testing.T) {
	from, to := X25519_AES128GCM_SHA256_Ed25519, DefaultCipherSuite
	alice, bob, carol := threeMembers(t, from)

	// Branch: alice and bob only.
	bobKey2, err := GenerateSigningKey(from)
	if err != nil {
		t.Fatal(err)
	}
	bobKP, err := NewKeyPackage(bobKey2, []byte("bob"), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	aliceKey2, _ := GenerateSigningKey(from)
	branch, pc, err := alice.g.Branch(aliceKey2, []byte("alice"), []byte("side room"), [][]byte{bobKP.KeyPackage()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bobBranch, err := bob.g.JoinSuccessor(pc.Welcome, bobKP, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(branch.EpochAuthenticator(), bobBranch.EpochAuthenticator()) || branch.Epoch() != 1 {
		t.Fatal("branch members disagree")
	}
	// A stranger cannot use a branch welcome without the old group's PSK.
	if _, err := Join(pc.Welcome, bobKP, nil, Options{}); !errors.Is(err, ErrUnknownPSK) {
		t.Errorf("branch welcome without the old group: %v", err)
	}

	// ReInit to the post-quantum suite.
	pc, err = alice.g.Commit(CommitOptions{ReInit: &ReInitParams{GroupID: []byte("group v2"), CipherSuite: to}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{bob, carol} {
		if _, err := m.g.Process(pc.Message); err != nil {
			t.Fatal(err)
		}
		if m.g.Status() != ReInitPending {
			t.Fatalf("%s: %v", m.name, m.g.Status())
		}
	}
	if err := alice.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Seal([]byte("x"), nil); !errors.Is(err, ErrNotActive) {
		t.Errorf("sealing in a closed group: %v", err)
	}
	var kps [][]byte
	var bundles []*KeyPackageBundle
	for _, m := range []*member{bob, carol} {
		k, _ := GenerateSigningKey(to)
		b, err := NewKeyPackage(k, []byte(m.name), KeyPackageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		kps = append(kps, b.KeyPackage())
		bundles = append(bundles, b)
	}
	newKey, _ := GenerateSigningKey(to)
	ng, pc, err := alice.g.Reinitialize(newKey, []byte("alice"), kps, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range []*member{bob, carol} {
		g, err := m.g.JoinSuccessor(pc.Welcome, bundles[i], nil, Options{})
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if !bytes.Equal(g.EpochAuthenticator(), ng.EpochAuthenticator()) || g.CipherSuite() != to {
			t.Fatalf("%s disagrees on the reinitialized group", m.name)
		}
	}
}

func TestGroupContextExtensions(t *testing.T) {
	cs := X25519_AES128GCM_SHA256_Ed25519
	const policy = 0xF7C1
	alice, bob := newMember(t, cs, "alice"), newMember(t, cs, "bob")
	g, err := Create(alice.key, []byte("alice"), nil, Options{Extensions: map[uint16][]byte{policy: []byte("signal,mls,aes")}})
	if err != nil {
		t.Fatal(err)
	}
	alice.g = g
	// Bob's KeyPackage must support the extension to be added.
	plain, err := NewKeyPackage(bob.key, []byte("bob"), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Commit(CommitOptions{Add: [][]byte{plain.KeyPackage()}}); err == nil {
		t.Error("added a client that does not support the group's extension")
	}
	kp, err := NewKeyPackage(bob.key, []byte("bob"), KeyPackageOptions{SupportedExtensions: []uint16{policy}, Extensions: map[uint16][]byte{0xF7C2: []byte("prekeys")}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := g.Commit(CommitOptions{Add: [][]byte{kp.KeyPackage()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	if bob.g, err = Join(pc.Welcome, kp, pc.RatchetTree, Options{}); err != nil {
		t.Fatal(err)
	}
	if v, ok := bob.g.Extension(policy); !ok || string(v) != "signal,mls,aes" {
		t.Fatalf("bob sees policy %q %v", v, ok)
	}
	if got := alice.g.Members()[1].Extensions[0xF7C2]; string(got) != "prekeys" {
		t.Fatalf("bob's leaf extension %q", got)
	}
	// Change the policy; both agree.
	pc, err = bob.g.Commit(CommitOptions{Extensions: map[uint16][]byte{policy: []byte("mls,aes")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Process(pc.Message); err != nil {
		t.Fatal(err)
	}
	if err := bob.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	agree(t, alice, bob)
	if v, _ := alice.g.Extension(policy); string(v) != "mls,aes" {
		t.Fatalf("policy after change %q", v)
	}
	// An extension a member does not support is refused.
	if _, err := bob.g.Commit(CommitOptions{Extensions: map[uint16][]byte{0xF7C9: nil}}); err == nil {
		t.Error("unsupported extension committed")
	}
}

func TestUpdateProposal(t *testing.T) {
	alice, bob, carol := threeMembers(t, X25519_AES128GCM_SHA256_Ed25519)
	upd, err := bob.g.Propose(Proposal{Update: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	reload(t, bob) // the pending leaf key survives a restart
	for _, m := range []*member{alice, carol} {
		if _, err := m.g.Process(upd); err != nil {
			t.Fatal(err)
		}
	}
	// The committer cannot commit bob's Update as its own; alice commits it by reference.
	pc, err := alice.g.Commit(CommitOptions{ReferencePending: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{bob, carol} {
		if _, err := m.g.Process(pc.Message); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	if err := alice.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	agree(t, alice, bob, carol)
	// Bob's new leaf key works: a commit from carol encrypts to it.
	pc, err = carol.g.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{alice, bob} {
		if _, err := m.g.Process(pc.Message); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	if err := carol.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	agree(t, alice, bob, carol)
	// A member may not commit its own Update.
	if _, err := bob.g.Propose(Proposal{Update: true}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Commit(CommitOptions{ReferencePending: true}); err == nil {
		t.Error("a member committed its own Update")
	}
}

func TestExternalSenderProposal(t *testing.T) {
	cs := X25519_AES128GCM_SHA256_Ed25519
	server, err := GenerateSigningKey(cs)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := ExternalSendersExtension([]ExternalSender{{SignatureKey: server.PublicKey(), Identity: []byte("moderation bot")}})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob, carol := newMember(t, cs, "alice"), newMember(t, cs, "bob"), newMember(t, cs, "carol")
	if alice.g, err = Create(alice.key, []byte("alice"), nil, Options{Extensions: map[uint16][]byte{ExternalSenderType: ext}}); err != nil {
		t.Fatal(err)
	}
	add(t, alice, nil, bob, carol)
	two := carol.g.LeafIndex()
	msg, err := ExternalProposal(server, 0, alice.g.GroupID(), alice.g.Epoch(), Proposal{Remove: &two})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{alice, bob, carol} {
		p, err := m.g.Process(msg)
		if err != nil || p.Kind != KindProposal || p.SenderKind != SenderExternal {
			t.Fatalf("%s: %+v, %v", m.name, p, err)
		}
	}
	pc, err := bob.g.Commit(CommitOptions{ReferencePending: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{alice, carol} {
		if _, err := m.g.Process(pc.Message); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	agree(t, alice, bob)
	if carol.g.Status() != Removed {
		t.Errorf("carol: %v", carol.g.Status())
	}
	// A sender index the group does not list, or a key that is not the listed one, is refused.
	impostor, _ := GenerateSigningKey(cs)
	for _, bad := range []struct {
		key *SigningKey
		idx uint32
	}{{server, 1}, {impostor, 0}} {
		one := uint32(1)
		msg, err := ExternalProposal(bad.key, bad.idx, alice.g.GroupID(), alice.g.Epoch(), Proposal{Remove: &one})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.g.Process(msg); err == nil {
			t.Errorf("external proposal with index %d accepted", bad.idx)
		}
	}
}

// TestJoinRejectsBadTree gives a joiner trees that do not match the group: each is refused.
func TestJoinRejectsBadTree(t *testing.T) {
	cs := X25519_AES128GCM_SHA256_Ed25519
	alice, bob, carol := newMember(t, cs, "alice"), newMember(t, cs, "bob"), newMember(t, cs, "carol")
	g, err := Create(alice.key, []byte("alice"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice.g = g
	add(t, alice, nil, bob)
	// A path commit, so that the tree has parent nodes with parent hashes.
	up, err := bob.g.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Process(up.Message); err != nil {
		t.Fatal(err)
	}
	if err := bob.g.Merge(up); err != nil {
		t.Fatal(err)
	}
	kp, err := NewKeyPackage(carol.key, []byte("carol"), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := alice.g.Commit(CommitOptions{Add: [][]byte{kp.KeyPackage()}})
	if err != nil {
		t.Fatal(err)
	}
	var rt wire.RatchetTree
	if err := codec.Unmarshal(pc.RatchetTree, &rt); err != nil {
		t.Fatal(err)
	}
	tamper := func(f func(rt wire.RatchetTree) wire.RatchetTree) []byte {
		var c wire.RatchetTree
		if err := codec.Unmarshal(pc.RatchetTree, &c); err != nil {
			t.Fatal(err)
		}
		return codec.MustMarshal(ptr(f(c)))
	}
	cases := map[string][]byte{
		"parent hash broken": tamper(func(rt wire.RatchetTree) wire.RatchetTree {
			n := 0
			for _, node := range rt {
				if node != nil && node.ParentNode != nil {
					k, err := alice.g.suite.GenerateHPKEKey()
					if err != nil {
						t.Fatal(err)
					}
					node.ParentNode.EncryptionKey = k.PublicKey()
					n++
				}
			}
			if n == 0 {
				t.Fatal("no parent node to break")
			}
			return rt
		}),
		"duplicate leaf": tamper(func(rt wire.RatchetTree) wire.RatchetTree {
			rt[2] = rt[0]
			return rt
		}),
		"leaf removed": tamper(func(rt wire.RatchetTree) wire.RatchetTree { return rt[:3] }),
		"garbage":      []byte{0x01, 0x02},
	}
	for name, tree := range cases {
		if _, err := Join(pc.Welcome, kp, tree, Options{}); err == nil {
			t.Errorf("%s: joined", name)
		}
	}
	if _, err := Join(pc.Welcome, kp, pc.RatchetTree, Options{}); err != nil {
		t.Fatalf("genuine tree: %v", err)
	}
}

// A GroupContextExtensions proposal, committed by reference by another member, changes
// the extensions for all; Processed says what a proposal is about.
func TestExtensionsProposal(t *testing.T) {
	alice, bob, carol := threeMembers(t, X25519_AES128GCM_SHA256_Ed25519)
	// Not every member supports 0xF7C9: the proposal is refused before it is sent.
	if _, err := bob.g.Propose(Proposal{Extensions: map[uint16][]byte{0xF7C9: []byte("x")}}, false); err == nil {
		t.Fatal("proposed an extension the members do not support")
	}
	if _, err := bob.g.Propose(Proposal{Extensions: map[uint16][]byte{}, Update: true}, false); err == nil {
		t.Fatal("a proposal of two kinds was accepted")
	}
	msg, err := bob.g.Propose(Proposal{Extensions: map[uint16][]byte{}}, false)
	if err != nil {
		t.Fatal(err)
	}
	two := carol.g.LeafIndex()
	rm, err := alice.g.Propose(Proposal{Remove: &two}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{alice, carol} {
		p, err := m.g.Process(msg)
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != KindProposal || !p.Extensions || p.Removed != nil || p.Sender != bob.g.LeafIndex() {
			t.Fatalf("%s: %+v", m.name, p)
		}
	}
	p, err := bob.g.Process(rm)
	if err != nil {
		t.Fatal(err)
	}
	if p.Removed == nil || *p.Removed != two || p.Extensions {
		t.Fatalf("remove proposal: %+v", p)
	}
	if _, err := carol.g.Process(rm); err != nil {
		t.Fatal(err)
	}
	pc, err := alice.g.Commit(CommitOptions{ReferencePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Process(pc.Message); err != nil {
		t.Fatal(err)
	}
	if err := alice.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	agree(t, alice, bob)
}

// A Welcome without the tree: the joiner learns the epoch and its authenticator from the
// Welcome alone, needs the tree to join (ErrNoTree), and takes it from any member's
// RatchetTree or GroupInfo of that epoch, but not from another epoch.
func TestJoinWithTreeApart(t *testing.T) {
	cs := X25519_AES128GCM_SHA256_Ed25519
	alice, bob, carol := newMember(t, cs, "alice"), newMember(t, cs, "bob"), newMember(t, cs, "carol")
	g, err := Create(alice.key, []byte("alice"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice.g = g
	add(t, alice, nil, bob)
	before, err := bob.g.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	kp, err := NewKeyPackage(carol.key, []byte("carol"), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := alice.g.Commit(CommitOptions{Add: [][]byte{kp.KeyPackage()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Process(pc.Message); err != nil {
		t.Fatal(err)
	}
	if err := alice.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	pj, err := kp.OpenWelcome(pc.Welcome, PSKs{})
	if err != nil {
		t.Fatal(err)
	}
	if pj.HasTree() || pj.Epoch() != bob.g.Epoch() || !bytes.Equal(pj.EpochAuthenticator(), bob.g.EpochAuthenticator()) {
		t.Fatalf("pending join: tree %v, epoch %d, authenticator %x; bob at %d %x", pj.HasTree(), pj.Epoch(),
			pj.EpochAuthenticator(), bob.g.Epoch(), bob.g.EpochAuthenticator())
	}
	if _, err := Join(pc.Welcome, kp, nil, Options{}); !errors.Is(err, ErrNoTree) {
		t.Fatalf("joined without a tree: %v", err)
	}
	if _, err := Join(pc.Welcome, kp, before, Options{}); err == nil {
		t.Fatal("joined with the tree of the epoch before")
	}
	fromBob, err := bob.g.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromBob, pc.RatchetTree) {
		t.Fatal("bob's tree is not the commit's")
	}
	info, err := bob.g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	fromInfo, err := GroupInfoRatchetTree(info)
	if err != nil || !bytes.Equal(fromInfo, fromBob) {
		t.Fatalf("tree from the group info: %v", err)
	}
	if info, err = bob.g.GroupInfo(false); err != nil {
		t.Fatal(err)
	}
	if _, err := GroupInfoRatchetTree(info); !errors.Is(err, ErrNoTree) {
		t.Fatalf("tree from a group info without one: %v", err)
	}
	if carol.g, err = Join(pc.Welcome, kp, fromInfo, Options{}); err != nil {
		t.Fatal(err)
	}
	agree(t, alice, bob, carol)
}
