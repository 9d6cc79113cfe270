package mlsgroup

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/tsmls"
)

// interopSuites are the suites both tchat and ts-mls implement that the interop tests run.
var interopSuites = []CipherSuite{X25519_AES128GCM_SHA256_Ed25519, CipherSuite(tsmls.SuiteXWing)}

func sameEpoch(t *testing.T, who string, g *Group, epoch uint64, auth []byte) {
	t.Helper()
	if g.Epoch() != epoch || !bytes.Equal(g.EpochAuthenticator(), auth) {
		t.Fatalf("%s: tchat at epoch %d %x, ts-mls at %d %x", who, g.Epoch(), g.EpochAuthenticator(), epoch, auth)
	}
}

// TestInteropTsMLSJoinsUs: ts-mls joins a group tchat created, follows our commits (with and
// without path, public and private) and reads our messages; we read its messages and commits.
func TestInteropTsMLSJoinsUs(t *testing.T) {
	tsmls.Require(t)
	for _, cs := range interopSuites {
		t.Run(fmt.Sprintf("%04x", uint16(cs)), func(t *testing.T) {
			alice := newMember(t, cs, "alice")
			g, err := Create(alice.key, []byte("alice"), nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			alice.g = g
			bob := tsmls.Start(t)
			if _, err := bob.Init(uint16(cs), []byte("bob")); err != nil {
				t.Fatal(err)
			}
			kp, err := bob.KeyPackage()
			if err != nil {
				t.Fatal(err)
			}
			pc, err := g.Commit(CommitOptions{Add: [][]byte{kp}, RatchetTreeInWelcome: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Merge(pc); err != nil {
				t.Fatal(err)
			}
			ep, err := bob.JoinFromWelcome(pc.Welcome, nil)
			if err != nil {
				t.Fatal(err)
			}
			sameEpoch(t, "after bob joined", g, ep.Epoch, ep.EpochAuthenticator)

			// Our path commits, private and public.
			for _, public := range []bool{false, true} {
				pc, err := g.Commit(CommitOptions{Public: public})
				if err != nil {
					t.Fatal(err)
				}
				res, err := bob.Process(pc.Message)
				if err != nil {
					t.Fatalf("ts-mls processing our commit (public %v): %v", public, err)
				}
				if err := g.Merge(pc); err != nil {
					t.Fatal(err)
				}
				sameEpoch(t, "after our commit", g, res.Epoch, res.EpochAuthenticator)
			}

			// Application messages both ways, and the exporter.
			msg, err := g.Seal([]byte("hello ts-mls"), nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := bob.Process(msg)
			if err != nil || res.Kind != tsmls.KindApplication || string(res.Plaintext) != "hello ts-mls" {
				t.Fatalf("ts-mls read %+v, %v", res, err)
			}
			reply, err := bob.Encrypt([]byte("hello tchat"))
			if err != nil {
				t.Fatal(err)
			}
			p, err := g.Process(reply)
			if err != nil || string(p.Data) != "hello tchat" {
				t.Fatalf("we read %+v, %v", p, err)
			}
			theirs, err := bob.Export("tchat test", []byte("ctx"), 32)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := g.Export("tchat test", []byte("ctx"), 32)
			if err != nil || !bytes.Equal(ours, theirs) {
				t.Fatalf("exporter: ours %x, theirs %x (%v)", ours, theirs, err)
			}

			// ts-mls commits with a path; we follow.
			cr, err := bob.Commit(tsmls.CommitOptions{WireFormat: tsmls.Public})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.Process(cr.Commit); err != nil {
				t.Fatalf("processing ts-mls's commit: %v", err)
			}
			sameEpoch(t, "after ts-mls's commit", g, cr.Epoch, cr.EpochAuthenticator)

			// An add-only commit without path, tree sent beside the Welcome: carol (ts-mls)
			// joins; bob follows.
			carol := tsmls.Start(t)
			if _, err := carol.Init(uint16(cs), []byte("carol")); err != nil {
				t.Fatal(err)
			}
			kp, err = carol.KeyPackage()
			if err != nil {
				t.Fatal(err)
			}
			pc, err = g.Commit(CommitOptions{Add: [][]byte{kp}})
			if err != nil {
				t.Fatal(err)
			}
			if res, err = bob.Process(pc.Message); err != nil {
				t.Fatalf("ts-mls processing our add: %v", err)
			}
			if err := g.Merge(pc); err != nil {
				t.Fatal(err)
			}
			sameEpoch(t, "bob after carol's add", g, res.Epoch, res.EpochAuthenticator)
			ep, err = carol.JoinFromWelcome(pc.Welcome, pc.RatchetTree)
			if err != nil {
				t.Fatal(err)
			}
			sameEpoch(t, "carol after joining", g, ep.Epoch, ep.EpochAuthenticator)

			// We remove bob; carol follows and bob learns he is out.
			pc, err = g.Commit(CommitOptions{Remove: []uint32{1}})
			if err != nil {
				t.Fatal(err)
			}
			if res, err = carol.Process(pc.Message); err != nil {
				t.Fatal(err)
			}
			if err := g.Merge(pc); err != nil {
				t.Fatal(err)
			}
			sameEpoch(t, "carol after bob's removal", g, res.Epoch, res.EpochAuthenticator)
			if res, err = bob.Process(pc.Message); err != nil || res.State != "removedFromGroup" {
				t.Fatalf("bob after his removal: %+v, %v", res, err)
			}
		})
	}
}

// TestInteropWeJoinTsMLS: tchat joins a group ts-mls created and follows it.
func TestInteropWeJoinTsMLS(t *testing.T) {
	tsmls.Require(t)
	for _, cs := range interopSuites {
		t.Run(fmt.Sprintf("%04x", uint16(cs)), func(t *testing.T) {
			alice := tsmls.Start(t)
			if _, err := alice.Init(uint16(cs), []byte("alice")); err != nil {
				t.Fatal(err)
			}
			if _, err := alice.CreateGroup([]byte("ts-mls group")); err != nil {
				t.Fatal(err)
			}
			bob := newMember(t, cs, "bob")
			bundle, err := NewKeyPackage(bob.key, []byte("bob"), KeyPackageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cr, err := alice.AddMembers([][]byte{bundle.KeyPackage()}, false)
			if err != nil {
				t.Fatal(err)
			}
			g, err := Join(cr.Welcome, bundle, cr.RatchetTree, Options{})
			if err != nil {
				t.Fatalf("joining ts-mls's group: %v", err)
			}
			sameEpoch(t, "after joining", g, cr.Epoch, cr.EpochAuthenticator)

			msg, err := alice.Encrypt([]byte("welcome, bob"))
			if err != nil {
				t.Fatal(err)
			}
			p, err := g.Process(msg)
			if err != nil || string(p.Data) != "welcome, bob" {
				t.Fatalf("%+v, %v", p, err)
			}
			for _, wf := range []tsmls.WireFormat{tsmls.Private, tsmls.Public} {
				cr, err = alice.Commit(tsmls.CommitOptions{WireFormat: wf})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := g.Process(cr.Commit); err != nil {
					t.Fatalf("ts-mls %s commit: %v", wf, err)
				}
				sameEpoch(t, "after ts-mls's commit", g, cr.Epoch, cr.EpochAuthenticator)
			}
			pc, err := g.Commit(CommitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := alice.Process(pc.Message)
			if err != nil {
				t.Fatalf("ts-mls processing our commit: %v", err)
			}
			if err := g.Merge(pc); err != nil {
				t.Fatal(err)
			}
			sameEpoch(t, "after our commit", g, res.Epoch, res.EpochAuthenticator)
			out, err := g.Seal([]byte("thanks"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res, err = alice.Process(out); err != nil || string(res.Plaintext) != "thanks" {
				t.Fatalf("%+v, %v", res, err)
			}
		})
	}
}
