package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"
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
