package mlsgroup

import (
	"bytes"
	"errors"
	"testing"
)

func TestCompactApplicationMessages(t *testing.T) {
	alice, bob, carol := threeMembers(t, X25519_AES128GCM_SHA256_Ed25519)
	msg, err := alice.g.SealApplication([]byte("compact"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := alice.g.Seal([]byte("compact"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) >= len(full) {
		t.Errorf("compact form %d bytes, full %d", len(msg), len(full))
	}
	// Opening does not consume until the caller commits: it can be opened again.
	for range 2 {
		o, commit, err := bob.g.OpenApplication(msg)
		if err != nil {
			t.Fatal(err)
		}
		if string(o.Data) != "compact" || !bytes.Equal(o.Identity, []byte("alice")) || o.Sender != 0 || o.Late {
			t.Fatalf("opened %+v", o)
		}
		_ = commit
	}
	_, commit, err := bob.g.OpenApplication(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bob.g.OpenApplication(msg); !errors.Is(err, ErrAuth) {
		t.Errorf("replay after commit: %v", err)
	}
	// A commit of an already consumed message fails (two opens racing).
	_, c1, err := carol.g.OpenApplication(msg)
	if err != nil {
		t.Fatal(err)
	}
	_, c2, err := carol.g.OpenApplication(msg)
	if err != nil {
		t.Fatal(err)
	}
	if c1() != nil || !errors.Is(c2(), ErrAuth) {
		t.Error("both racing opens committed")
	}
	// Tampering anywhere is refused.
	for i := range msg {
		bad := bytes.Clone(msg)
		bad[i] ^= 0x40
		if _, _, err := alice.g.OpenApplication(bad); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	// A message from a future epoch, and a late one after the epoch moved on.
	late, err := carol.g.SealApplication([]byte("late"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := alice.g.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.Merge(pc); err != nil {
		t.Fatal(err)
	}
	future, err := alice.g.SealApplication([]byte("future"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bob.g.OpenApplication(future); !errors.Is(err, ErrFutureEpoch) {
		t.Errorf("future epoch: %v", err)
	}
	if _, err := bob.g.Process(pc.Message); err != nil {
		t.Fatal(err)
	}
	reload(t, bob)
	o, _, err := bob.g.OpenApplication(late)
	if err != nil || !o.Late || string(o.Identity) != "carol" {
		t.Fatalf("late: %+v %v", o, err)
	}
	if o, _, err := bob.g.OpenApplication(future); err != nil || string(o.Data) != "future" {
		t.Fatalf("future message after the commit: %+v %v", o, err)
	}
}

// TestPastEpochNotKept: a message of an epoch before a member joined never opens for it,
// and says so (ErrPastEpoch, which is also ErrAuth); a member that keeps the epoch opens
// it, marked late.
func TestPastEpochNotKept(t *testing.T) {
	cs := X25519_AES128GCM_SHA256_Ed25519
	alice, bob, carol := threeMembers(t, cs)
	before, err := alice.g.SealApplication([]byte("before dave"))
	if err != nil {
		t.Fatal(err)
	}
	dave := newMember(t, cs, "dave")
	add(t, alice, []*member{bob, carol}, dave)
	_, _, err = dave.g.OpenApplication(before)
	if !errors.Is(err, ErrPastEpoch) || !errors.Is(err, ErrAuth) {
		t.Fatalf("dave opening a message of before he joined: %v", err)
	}
	o, _, err := bob.g.OpenApplication(before)
	if err != nil || !o.Late || string(o.Data) != "before dave" {
		t.Fatalf("bob: %+v, %v", o, err)
	}
	// A message of the epoch he joined in opens.
	now, err := alice.g.SealApplication([]byte("now"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dave.g.OpenApplication(now); err != nil {
		t.Fatalf("dave opening a current message: %v", err)
	}
}
