package tsmls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestTsMLSPair runs two ts-mls members against each other through the Go wrapper, for
// suite 1 and for ts-mls's X-Wing suite 83. It checks the driver and this wrapper, so that
// interop tests against tchat's own MLS can build on them.
func TestTsMLSPair(t *testing.T) {
	for _, tc := range []struct {
		name  string
		suite uint16
	}{
		{"suite1_X25519_AES128GCM", SuiteX25519AES128},
		{"suite83_XWing_AES256GCM", SuiteXWing},
	} {
		t.Run(tc.name, func(t *testing.T) { runPair(t, tc.suite) })
	}
}

func runPair(t *testing.T, suite uint16) {
	alice, bob := Start(t), Start(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	ai, err := alice.Init(suite, []byte("alice"))
	must(err)
	if len(ai.SignaturePrivateKey) != 48 || !bytes.HasPrefix(ai.SignaturePrivateKey, ed25519PKCS8Prefix) {
		t.Errorf("alice's signature key is not PKCS#8 Ed25519: %x", ai.SignaturePrivateKey)
	}
	_, err = bob.Init(suite, []byte("bob"))
	must(err)

	groupID := []byte(fmt.Sprintf("tsmls-pair-%d", suite))
	e0, err := alice.CreateGroup(groupID)
	must(err)
	if e0.Epoch != 0 || e0.OwnLeaf != 0 {
		t.Fatalf("new group: epoch %d, own leaf %d", e0.Epoch, e0.OwnLeaf)
	}

	kp, err := bob.KeyPackage()
	must(err)
	add, err := alice.AddMembers([][]byte{kp}, true)
	must(err)
	if add.Epoch != 1 || add.Welcome == nil || add.Commit == nil || add.RatchetTree == nil {
		t.Fatalf("add: epoch %d, welcome %d bytes, commit %d bytes, tree %d bytes",
			add.Epoch, len(add.Welcome), len(add.Commit), len(add.RatchetTree))
	}
	joined, err := bob.JoinFromWelcome(add.Welcome, nil)
	must(err)
	if joined.Epoch != 1 || joined.OwnLeaf != 1 {
		t.Fatalf("bob joined at epoch %d, leaf %d", joined.Epoch, joined.OwnLeaf)
	}
	if !bytes.Equal(joined.EpochAuthenticator, add.EpochAuthenticator) {
		t.Fatalf("epoch 1 authenticators differ: alice %x, bob %x", add.EpochAuthenticator, joined.EpochAuthenticator)
	}

	as, err := alice.State()
	must(err)
	bs, err := bob.State()
	must(err)
	if len(as.Members) != 2 || !bytes.Equal(as.Members[0].Identity, []byte("alice")) ||
		!bytes.Equal(as.Members[1].Identity, []byte("bob")) {
		t.Fatalf("alice sees members %+v", as.Members)
	}
	if !bytes.Equal(as.RatchetTree, add.RatchetTree) || !bytes.Equal(bs.RatchetTree, add.RatchetTree) {
		t.Fatal("ratchet trees differ after the join")
	}
	if !bytes.Equal(as.TreeHash, bs.TreeHash) || !bytes.Equal(bs.GroupID, groupID) || bs.Suite != suite {
		t.Fatalf("bob's state %+v does not match alice's", bs)
	}

	// alice's empty commit carries an UpdatePath; send one of each wire format.
	epoch := uint64(1)
	for _, wf := range []WireFormat{Private, Public} {
		c, err := alice.Commit(CommitOptions{Update: true, WireFormat: wf})
		must(err)
		epoch++
		if c.Epoch != epoch || c.Welcome != nil {
			t.Fatalf("%s commit: epoch %d, welcome %v", wf, c.Epoch, c.Welcome != nil)
		}
		p, err := bob.Process(c.Commit)
		must(err)
		if p.Kind != KindCommit || p.Epoch != epoch || !bytes.Equal(p.EpochAuthenticator, c.EpochAuthenticator) {
			t.Fatalf("bob processed alice's %s commit: %+v, alice at %d %x", wf, p, c.Epoch, c.EpochAuthenticator)
		}
	}

	// bob commits too, then both exchange application messages.
	c, err := bob.Commit(CommitOptions{Update: true})
	must(err)
	epoch++
	p, err := alice.Process(c.Commit)
	must(err)
	if p.Kind != KindCommit || p.Epoch != epoch || !bytes.Equal(p.EpochAuthenticator, c.EpochAuthenticator) {
		t.Fatalf("alice processed bob's commit: %+v", p)
	}

	for i, msg := range []string{"hello from bob", "", "second message"} {
		ct, err := bob.Encrypt([]byte(msg))
		must(err)
		p, err := alice.Process(ct)
		must(err)
		if p.Kind != KindApplication || !bytes.Equal(p.Plaintext, []byte(msg)) || p.Epoch != epoch {
			t.Fatalf("message %d: alice got %+v, want %q", i, p, msg)
		}
	}
	ct, err := alice.Encrypt([]byte("hi bob"))
	must(err)
	p, err = bob.Process(ct)
	must(err)
	if p.Kind != KindApplication || string(p.Plaintext) != "hi bob" {
		t.Fatalf("bob got %+v", p)
	}

	xa, err := alice.Export("tchat interop", []byte{1, 2, 3}, 32)
	must(err)
	xb, err := bob.Export("tchat interop", []byte{1, 2, 3}, 32)
	must(err)
	if len(xa) != 32 || !bytes.Equal(xa, xb) {
		t.Fatalf("exporter: alice %x, bob %x", xa, xb)
	}

	// charlie joins without the ratchet_tree extension: the tree comes out of band. The Add
	// commit goes out as a PublicMessage.
	charlie := Start(t)
	_, err = charlie.Init(suite, []byte("charlie"))
	must(err)
	kpc, err := charlie.KeyPackage()
	must(err)
	addc, err := alice.AddMembersWith([][]byte{kpc}, AddOptions{WireFormat: Public})
	must(err)
	epoch++
	p, err = bob.Process(addc.Commit)
	must(err)
	if p.Kind != KindCommit || !bytes.Equal(p.EpochAuthenticator, addc.EpochAuthenticator) {
		t.Fatalf("bob processed charlie's Add: %+v", p)
	}
	if _, err := charlie.JoinFromWelcome(addc.Welcome, nil); err == nil {
		t.Fatal("charlie joined without any ratchet tree")
	}
	jc, err := charlie.JoinFromWelcome(addc.Welcome, addc.RatchetTree)
	must(err)
	if jc.Epoch != epoch || jc.OwnLeaf != 2 || !bytes.Equal(jc.EpochAuthenticator, addc.EpochAuthenticator) {
		t.Fatalf("charlie joined at %+v, alice is at %d %x", jc, addc.Epoch, addc.EpochAuthenticator)
	}

	// A proposal by bob, committed by alice: Remove bob.
	prop, err := bob.ProposeRemove(1, Public)
	must(err)
	pp, err := alice.Process(prop)
	must(err)
	if pp.Kind != KindProposal || pp.Epoch != epoch {
		t.Fatalf("alice processed bob's proposal: %+v", pp)
	}
	rm, err := alice.Commit(CommitOptions{})
	must(err)
	epoch++
	p, err = bob.Process(rm.Commit)
	must(err)
	if p.Kind != KindCommit || p.State != "removedFromGroup" {
		t.Fatalf("bob processed his removal: %+v", p)
	}
	pc, err := charlie.Process(prop)
	must(err)
	if pc.Kind != KindProposal {
		t.Fatalf("charlie processed bob's proposal: %+v", pc)
	}
	pc, err = charlie.Process(rm.Commit)
	must(err)
	if pc.Kind != KindCommit || pc.Epoch != epoch || !bytes.Equal(pc.EpochAuthenticator, rm.EpochAuthenticator) {
		t.Fatalf("charlie processed bob's removal: %+v, alice at %d %x", pc, rm.Epoch, rm.EpochAuthenticator)
	}
	as, err = alice.State()
	must(err)
	if as.Epoch != epoch || len(as.Members) != 2 || as.Members[1].Leaf != 2 {
		t.Fatalf("after removing bob alice has epoch %d, members %+v", as.Epoch, as.Members)
	}
}

var ed25519PKCS8Prefix = []byte{0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20}

// TestDriverErrors checks that bad requests come back as errors and leave the driver usable.
func TestDriverErrors(t *testing.T) {
	c := Start(t)
	var e *Error
	if _, err := c.State(); !errors.As(err, &e) {
		t.Fatalf("state before init: %v", err)
	}
	if _, err := c.Init(0x9999, []byte("x")); !errors.As(err, &e) {
		t.Fatalf("unknown suite: %v", err)
	}
	if _, err := c.Init(SuiteX25519AES128, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateGroup([]byte("g")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Process([]byte{0, 1, 2}); !errors.As(err, &e) {
		t.Fatalf("garbage message: %v", err)
	}
	if _, err := c.JoinFromWelcome([]byte{0, 1}, nil); !errors.As(err, &e) {
		t.Fatalf("join while in a group: %v", err)
	}
	kp, err := Start(t).initAndKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddMembersWith([][]byte{kp}, AddOptions{WithPath: true}); !errors.As(err, &e) {
		t.Fatalf("add with path: %v", err)
	}
	if err := c.call("nosuchop", nil, nil); !errors.As(err, &e) {
		t.Fatalf("unknown op: %v", err)
	}
	if err := c.call("commit", map[string]any{"removeLeaves": "x"}, nil); !errors.As(err, &e) {
		t.Fatalf("bad removeLeaves: %v", err)
	}
	s, err := c.State()
	if err != nil || s.Epoch != 0 {
		t.Fatalf("state after errors: %+v, %v", s, err)
	}
}

func (c *Client) initAndKeyPackage() ([]byte, error) {
	if _, err := c.Init(SuiteX25519AES128, []byte("y")); err != nil {
		return nil, err
	}
	return c.KeyPackage()
}
