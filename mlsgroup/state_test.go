package mlsgroup

import (
	"bytes"
	"errors"
	"testing"
)

// reload saves a member's group and replaces it with the restored copy, checking that the
// encoding is stable.
func reload(t testing.TB, m *member) {
	t.Helper()
	state, err := m.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	g, err := Restore(state, Options{})
	if err != nil {
		t.Fatalf("%s: %v", m.name, err)
	}
	again, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, state) {
		t.Fatalf("%s: state changed in a save/restore round trip", m.name)
	}
	m.g = g
}

// TestStateSurvivesRestart saves and restores every member at every step of a group's life:
// nothing is lost, and no key generation is reused (a restored sender's next message must
// still open at a receiver that already read the previous ones).
func TestStateSurvivesRestart(t *testing.T) {
	for _, cs := range []CipherSuite{X25519_AES128GCM_SHA256_Ed25519, DefaultCipherSuite} {
		alice, bob, carol := threeMembers(t, cs)
		all := []*member{alice, bob, carol}
		for _, m := range all {
			reload(t, m)
		}
		agree(t, all...)
		// Messages before and after a restart; receivers reject nothing.
		for round := range 3 {
			for _, from := range all {
				msg, err := from.g.Seal([]byte("round"), nil)
				if err != nil {
					t.Fatal(err)
				}
				reload(t, from)
				for _, to := range all {
					if to == from {
						continue
					}
					if _, err := to.g.Process(msg); err != nil {
						t.Fatalf("round %d: %s reading %s: %v", round, to.name, from.name, err)
					}
					reload(t, to)
				}
			}
		}
		// A late message of the old epoch still opens after a commit and a restart.
		late, err := carol.g.Seal([]byte("late"), nil)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := bob.g.Commit(CommitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reload(t, bob) // the pending commit survives in memory; bob's state is unchanged
		if _, err := alice.g.Process(pc.Message); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.g.Process(pc.Message); err != nil {
			t.Fatal(err)
		}
		if err := bob.g.Merge(pc); err != nil {
			t.Fatal(err)
		}
		for _, m := range all {
			reload(t, m)
		}
		agree(t, all...)
		if p, err := alice.g.Process(late); err != nil || !p.Late {
			t.Fatalf("late message after restart: %+v, %v", p, err)
		}
		// A replayed message is refused after a restart too.
		msg, err := alice.g.Seal([]byte("once"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bob.g.Process(msg); err != nil {
			t.Fatal(err)
		}
		reload(t, bob)
		if _, err := bob.g.Process(msg); err == nil {
			t.Fatal("replay accepted after a restart")
		}
	}
}

// TestMarshalAheadCoversSends saves a sender's state ahead of its application ratchet, lets
// it send without saving, and restores it as after a crash: its next message must use a
// generation it never used, so the receiver opens it. The state saved the plain way at the
// same moment hands a used generation out again, which the receiver refuses.
func TestMarshalAheadCoversSends(t *testing.T) {
	alice, bob, _ := threeMembers(t, DefaultCipherSuite)
	if g, err := alice.g.AppGeneration(); g != 0 || err != nil { // derives our ratchets
		t.Fatalf("a new member at generation %d, %v", g, err)
	}
	plain, err := alice.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// No generation ahead: the plain encoding, and the generation as it stands.
	same, gen, err := alice.g.MarshalBinaryAhead(0)
	if err != nil || gen != 0 || !bytes.Equal(same, plain) {
		t.Fatalf("MarshalBinaryAhead(0): generation %d, equal to MarshalBinary %v, %v", gen, bytes.Equal(same, plain), err)
	}
	state, upto, err := alice.g.MarshalBinaryAhead(4)
	if err != nil || upto != 4 {
		t.Fatalf("MarshalBinaryAhead(4): generation %d, %v", upto, err)
	}
	// Appended to a buffer (a reused one, too small to hold it and then large enough):
	// the same bytes after what it held.
	buf := []byte("head")
	for range 2 {
		app, gen, err := alice.g.AppendBinaryAhead(buf[:4], 4)
		if err != nil || gen != 4 || string(app[:4]) != "head" || !bytes.Equal(app[4:], state) {
			t.Fatalf("AppendBinaryAhead(4): generation %d, equal to MarshalBinaryAhead %v, %v", gen, bytes.Equal(app[4:], state), err)
		}
		buf = app
	}
	if g, _ := alice.g.AppGeneration(); g != 0 {
		t.Fatalf("the group moved to generation %d when encoded ahead", g)
	}
	for range 3 {
		msg, err := alice.g.Seal([]byte("covered"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bob.g.Process(msg); err != nil {
			t.Fatal(err)
		}
	}
	if g, _ := alice.g.AppGeneration(); g != 3 {
		t.Fatalf("after three messages: generation %d, want 3", g)
	}
	for _, c := range []struct {
		name  string
		state []byte
		gen   uint64
		opens bool
	}{{"plain", plain, 0, false}, {"ahead", state, 4, true}} {
		g, err := Restore(c.state, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if next, _ := g.AppGeneration(); next != c.gen {
			t.Fatalf("%s: restored at generation %d, want %d", c.name, next, c.gen)
		}
		msg, err := g.Seal([]byte("after the crash"), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bob.g.Process(msg)
		if c.opens && err != nil {
			t.Fatalf("%s: the message after the restart does not open: %v", c.name, err)
		}
		if !c.opens && err == nil {
			t.Fatalf("%s: a reused generation opened", c.name)
		}
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	alice, _, _ := threeMembers(t, X25519_AES128GCM_SHA256_Ed25519)
	state, err := alice.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(state); n += 1 + n/16 {
		if _, err := Restore(state[:n], Options{}); !errors.Is(err, ErrBadState) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	if _, err := Restore(append(bytes.Clone(state), 0), Options{}); !errors.Is(err, ErrBadState) {
		t.Fatalf("trailing byte: %v", err)
	}
}
