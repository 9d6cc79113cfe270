package mlsgroup

import (
	"bytes"
	"testing"
)

// FuzzProcess feeds arbitrary bytes to a member's Process, starting each time from the same
// saved state: it must never panic, and only the genuine messages it was seeded with may be
// accepted.
func FuzzProcess(f *testing.F) {
	alice, bob, _ := threeMembers(f, X25519_AES128GCM_SHA256_Ed25519)
	state, err := bob.g.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	var genuine [][]byte
	for _, public := range []bool{true, false} {
		pc, err := alice.g.Commit(CommitOptions{Public: public})
		if err != nil {
			f.Fatal(err)
		}
		genuine = append(genuine, pc.Message)
	}
	two := uint32(2)
	prop, err := alice.g.Propose(Proposal{Remove: &two}, true)
	if err != nil {
		f.Fatal(err)
	}
	app, err := alice.g.Seal([]byte("hello"), []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	genuine = append(genuine, prop, app)
	for _, m := range genuine {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Restore(state, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Process(data); err != nil {
			return
		}
		for _, m := range genuine {
			if bytes.Equal(m, data) {
				return
			}
		}
		t.Fatalf("a message that is not genuine was accepted: %x", data)
	})
}

// FuzzJoin feeds arbitrary bytes as a Welcome and as a ratchet tree: Join must never panic,
// nor WelcomeFor, given them as a Welcome or as a KeyPackage.
func FuzzJoin(f *testing.F) {
	cs := X25519_AES128GCM_SHA256_Ed25519
	alice, bob := newMember(f, cs, "alice"), newMember(f, cs, "bob")
	g, err := Create(alice.key, []byte("alice"), nil, Options{})
	if err != nil {
		f.Fatal(err)
	}
	bundle, err := NewKeyPackage(bob.key, []byte("bob"), KeyPackageOptions{})
	if err != nil {
		f.Fatal(err)
	}
	pc, err := g.Commit(CommitOptions{Add: [][]byte{bundle.KeyPackage()}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pc.Welcome, pc.RatchetTree)
	f.Fuzz(func(t *testing.T, welcome, tree []byte) {
		_, _ = Join(welcome, bundle, tree, Options{})
		// The same bytes as a Welcome and as a KeyPackage (a join request's).
		_, _ = WelcomeFor(welcome, bundle.KeyPackage())
		_, _ = WelcomeFor(pc.Welcome, welcome)
	})
}

// FuzzGroupInfo: a GroupInfo from the network (a sync answer) never panics the tree
// extraction or an external join, seeded with real ones with and without the tree.
func FuzzGroupInfo(f *testing.F) {
	cs := X25519_AES128GCM_SHA256_Ed25519
	alice, bob := newMember(f, cs, "alice"), newMember(f, cs, "bob")
	g, err := Create(alice.key, []byte("alice"), nil, Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, withTree := range []bool{true, false} {
		info, err := g.GroupInfo(withTree)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(info)
	}
	f.Fuzz(func(t *testing.T, info []byte) {
		_, _ = GroupInfoRatchetTree(info)
		_, _, _ = JoinExternal(info, bob.key, []byte("bob"), nil, Options{})
	})
}
