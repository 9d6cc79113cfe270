package signal

import (
	"bytes"
	"testing"

	"github.com/tchat-p2p/tchat/layers"
)

// FuzzOpen feeds bob's layer messages from alice: real pairwise, prekey and
// group messages, and what the fuzzer makes of them. Nothing may panic, a
// refusal must be the one auth error, and only the exact sealed messages may
// open (Open alone commits nothing, so the state stays the same throughout).
func FuzzOpen(f *testing.F) {
	ms := group(f, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	var valid [][]byte
	add := func(msg []byte) {
		valid = append(valid, msg)
		f.Add(msg)
	}
	add(sealTo(f, a, []byte("prekey"), b))
	add(sealTo(f, a, []byte("group with distribution"), b, c))
	// Established: bob has answered, and alice's sender key is known.
	mustOpen(f, b, a, valid[0], []byte("prekey"))
	mustOpen(f, b, a, valid[1], []byte("group with distribution"))
	mustOpen(f, a, b, sealTo(f, b, []byte("reply"), a), []byte("reply"))
	valid = valid[:0]
	add(sealTo(f, a, []byte("pairwise"), b))
	add(sealTo(f, a, []byte("group"), b, c))
	add(sealTo(f, a, nil, b))
	// A sender key message opens only with OpenSenderKey.
	km, _, err := a.l.SealSenderKey(b.id, testAD)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(km)
	before := state(f, b)

	f.Fuzz(func(t *testing.T, msg []byte) {
		ctx := &layers.Context{Group: []byte("g"), Sender: a.id, AD: testAD}
		pt, commit, err := b.l.Open(ctx, msg)
		if err != nil {
			if err != layers.ErrAuth && err != layers.ErrNoKey {
				t.Fatalf("error %v is not the auth error", err)
			}
			return
		}
		if commit == nil || pt == nil && len(msg) > 0 && msg[0] != typePairwise {
			t.Fatalf("opened without a commit")
		}
		for _, v := range valid {
			if bytes.Equal(v, msg) {
				return
			}
		}
		t.Fatalf("a message that was never sealed opened: %x", msg)
	})
	if !bytes.Equal(before, state(f, b)) {
		f.Fatal("state changed")
	}
}

// FuzzOpenSenderKey feeds bob's OpenSenderKey sender key messages from
// alice (on a session bob has answered) and from carol (a prekey message),
// other messages of theirs, and what the fuzzer makes of them. Nothing may
// panic, a refusal must be the one auth error and change nothing, and only
// the exact sender key messages sealed may open, each from its sender. Every
// input goes to bob as saved before, so that one opening does not hide the
// next.
func FuzzOpenSenderKey(f *testing.F) {
	ms := group(f, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	mustOpen(f, b, a, sealTo(f, a, []byte("hello"), b), []byte("hello"))
	mustOpen(f, a, b, sealTo(f, b, []byte("reply"), a), []byte("reply"))
	valid := make(map[bool][]byte) // by fromCarol
	for _, fromCarol := range []bool{false, true} {
		from := a
		if fromCarol {
			from = c
		}
		km, _, err := from.l.SealSenderKey(b.id, testAD)
		if err != nil {
			f.Fatal(err)
		}
		valid[fromCarol] = km
		f.Add(fromCarol, km)
		f.Add(fromCarol, sealTo(f, from, newOwnSenderKey().distribution(), b))
		f.Add(fromCarol, sealTo(f, from, []byte("group"), b, map[bool]*member{false: c, true: a}[fromCarol]))
	}
	saved := state(f, b)

	f.Fuzz(func(t *testing.T, fromCarol bool, msg []byte) {
		from := a
		if fromCarol {
			from = c
		}
		l, _ := New(b.id, b.ident)
		if err := l.UnmarshalBinary(saved); err != nil {
			t.Fatal(err)
		}
		err := l.OpenSenderKey(from.id, testAD, msg)
		now, _ := l.MarshalBinary()
		if err != nil {
			if err != layers.ErrAuth && err != layers.ErrNoKey {
				t.Fatalf("error %v is not the auth error", err)
			}
			if !bytes.Equal(now, saved) {
				t.Fatal("state changed on a refused message")
			}
			return
		}
		if !bytes.Equal(msg, valid[fromCarol]) {
			t.Fatalf("a message that was never sealed opened: %x", msg)
		}
		if len(l.peers[string(from.id)].keys) != 1 {
			t.Fatal("opened without installing the key")
		}
	})
}

// FuzzParseBundle: a bundle parses only if well formed and signed, and then
// encodes back to the same bytes.
func FuzzParseBundle(f *testing.F) {
	m := newMember(f, "alice")
	enc, _ := m.ident.Bundle().MarshalBinary()
	f.Add(enc)
	otb, _ := m.ident.OneTimeBundle()
	enc, _ = otb.MarshalBinary()
	f.Add(enc)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		again, _ := b.MarshalBinary()
		if !bytes.Equal(again, data) {
			t.Fatalf("bundle %x re-encodes as %x", data, again)
		}
	})
}

// FuzzUnmarshalState: saved layer state from a damaged store must not
// panic, and what loads encodes back to the same bytes.
func FuzzUnmarshalState(f *testing.F) {
	ms := group(f, "alice", "bob", "carol")
	a, b, c := ms[0], ms[1], ms[2]
	mustOpen(f, b, a, sealTo(f, a, []byte("x"), b), []byte("x"))
	mustOpen(f, b, a, sealTo(f, a, []byte("y"), b, c), []byte("y"))
	sealTo(f, a, []byte("skipped"), b)
	mustOpen(f, b, a, sealTo(f, a, []byte("z"), b), []byte("z"))
	sealTo(f, b, []byte("w"), a, c)
	f.Add(state(f, b))
	f.Add(state(f, a))
	b.l.RemovePeer(a.id) // a removed peer, with alice's sender key
	f.Add(state(f, b))
	if err := b.l.SetPeer(a.id, a.ident.Bundle()); err != nil { // added again: its earlier state kept
		f.Fatal(err)
	}
	f.Add(state(f, b))
	f.Add(readFile(f, "testdata/state-v1"))
	f.Add(readFile(f, "testdata/state-v2"))
	f.Add(readFile(f, "testdata/state-v3"))
	f.Add(readFile(f, "testdata/state-v4"))
	// Version 3: a sender key installed at iteration 1 (base 1), with a
	// key skipped, then merged with the distribution at 0 (base 0).
	ms = group(f, "alice", "bob", "carol")
	a, b, c = ms[0], ms[1], ms[2]
	m0 := sealTo(f, a, []byte("m0"), b, c)
	km, _, err := a.l.SealSenderKey(b.id, testAD)
	if err != nil {
		f.Fatal(err)
	}
	sealTo(f, a, []byte("skipped"), b, c)
	mustOpenKey(f, b, a, km)
	mustOpen(f, b, a, sealTo(f, a, []byte("m2"), b, c), []byte("m2"))
	f.Add(state(f, b))
	mustOpen(f, b, a, m0, []byte("m0"))
	f.Add(state(f, b))
	// Version 5: bob owes alice a hand-out, which a message skipped.
	ms = group(f, "alice", "bob", "carol")
	a, b, c = ms[0], ms[1], ms[2]
	if _, _, err := b.l.SealSenderKey(a.id, testAD); err != nil {
		f.Fatal(err)
	}
	sealTo(f, b, []byte("skipped alice"), a, c)
	if len(b.l.handing) != 1 {
		f.Fatal("no hand-out owed")
	}
	f.Add(state(f, b))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, _ := New([]byte("bob"), b.ident)
		if l.UnmarshalBinary(data) != nil {
			return
		}
		again, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if data[0] < stateVersion {
			// An older state is saved as the current version: with a
			// flag byte more per peer from version 1 (removed), a base
			// more per sender key from versions 1 and 2, a flag byte more
			// per peer from versions 1 to 3 (earlier state), and the count
			// of hand-outs owed (none) from versions 1 to 4. That one must
			// round-trip.
			more := 4
			if data[0] <= 3 {
				more += len(l.peers)
			}
			if data[0] <= 2 {
				more += 4 * senderKeys(l)
			}
			if data[0] == 1 {
				more += len(l.peers)
			}
			if len(again) != len(data)+more {
				t.Fatalf("version-%d state of %d bytes, %d peers and %d sender keys re-encodes in %d",
					data[0], len(data), len(l.peers), senderKeys(l), len(again))
			}
			if data = again; l.UnmarshalBinary(data) != nil {
				t.Fatal("older state re-encodes as one that does not load")
			}
			if again, err = l.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("state re-encodes differently")
		}
	})
}
