package chat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/signal"
	"github.com/tchat-p2p/tchat/mlsgroup"
	"github.com/tchat-p2p/tchat/net/proto"
)

// The last rungs of the recovery ladder: a member on a branch that syncing cannot bring
// back asks a member of the other branch, over /tchat/join/2 with no invite proof, to
// re-add it: that member, which still has us in its tree, commits the removal of our old
// leaf and the addition of a fresh KeyPackage, and answers with the Welcome. Our own
// messages of the lost branch then go out again.

// rejoinSoon goes to the second rung (rejoinExternal) with p after a random delay of up
// to two heartbeats, unless p's heartbeats agree with us by then. The members of a
// branch that lost find out at about the same time, and their external commits compete:
// one wins each epoch, and every other one has to start over. Also once we are out (see
// leftOut): p's branch may have a leaf of ours again (a member added us, and the Welcome
// did not reach us), which a resync takes back.
func (g *group) rejoinSoon(p peer.ID) {
	if g.rejoining {
		return
	}
	g.rejoining = true
	time.AfterFunc(mrand.N(2*g.beat()), func() {
		g.post(func() {
			g.rejoining = false
			if pi := g.peerByID(p); !(g.active() || g.out) || pi == nil || pi.hbEpoch == g.mls.Epoch() && bytes.Equal(pi.hbAuth, g.authPrefix()) {
				return
			}
			g.rejoinExternal(p)
		})
	})
}

// rejoinExternal is the second rung: it fetches a GroupInfo of p's branch over
// /tchat/sync/1 and joins that branch by an external commit that replaces our old leaf
// (a resync, RFC 9420 Section 12.4.3.2). If that fails it goes to the third rung.
func (g *group) rejoinExternal(p peer.ID) {
	if g.rejoining || p == "" {
		return
	}
	g.rejoining = true
	g.debug("rejoining by external commit", "from", p)
	g.fetchGroupInfo(p, func(info []byte, err error) {
		g.rejoining = false
		if err == nil && len(info) > 0 {
			if err = g.joinExternal(info); err == nil {
				return
			}
			if errors.Is(err, errRemovedThere) {
				g.leftOut(p)
				return
			}
		}
		g.debug("external commit failed, asking to be re-added", "err", err)
		g.rejoin(p)
	})
}

// errRemovedThere: the branch we would rejoin has no leaf of ours.
var errRemovedThere = errors.New("chat: removed on the branch the group went on with")

// leftOut: p's branch, the one the group went on with, removed us while we were on a
// branch that cannot come back to it. We are out, as if we had applied the commit that
// removed us: a member may add us again. (An external commit would add us as a new
// member, which every member refuses; see applyCommit.)
func (g *group) leftOut(p peer.ID) {
	g.debug("removed on the branch the group went on with", "from", p)
	if g.out {
		return // still
	}
	g.out = true
	g.endIntents(false)
	if err := g.save(g.c.ctx, nil); err != nil {
		g.errorf("chat: save: %w", err)
	}
	g.c.emit(MemberRemoved{Group: g.gid, Member: g.c.node.ID(), Epoch: g.mls.Epoch()})
}

// fetchGroupInfo asks p, in the background, for a GroupInfo of its branch, with the
// ratchet tree (over /tchat/sync/1), and gives it to done on the group's loop.
func (g *group) fetchGroupInfo(p peer.ID, done func(info []byte, err error)) {
	go func() {
		ctx, cancel := context.WithTimeout(g.c.ctx, 30*time.Second)
		defer cancel()
		resp, err := g.c.node.Sync(ctx, p, &proto.SyncRequest{GroupID: g.id, Want: proto.WantGroupInfo, MaxItems: 1})
		var info []byte
		if err == nil {
			info = resp.GroupInfo
		}
		g.post(func() { done(info, err) })
	}()
}

// joinExternal joins the branch of info by an external commit that replaces our old leaf,
// and publishes it. It fails with errRemovedThere if that branch has no leaf of ours.
func (g *group) joinExternal(info []byte) error {
	key, err := mlsgroup.NewSigningKey(g.mls.CipherSuite(), g.c.id.Seed())
	if err != nil {
		return err
	}
	re, err := mlsgroup.Resyncs(info, key, nil, g.c.mlsOptions())
	if err != nil {
		return fmt.Errorf("chat: external join: %w", err)
	}
	if !re {
		return errRemovedThere
	}
	return g.externalCommit(info, key)
}

// externalCommit joins the branch of info by an external commit, resync or not, and
// publishes it.
func (g *group) externalCommit(info []byte, key *mlsgroup.SigningKey) error {
	sigID, leafExt, err := g.c.newSignalIdentity()
	if err != nil {
		return err
	}
	opts := g.c.mlsOptions()
	opts.LeafExtensions = leafExt
	mg, msg, err := mlsgroup.JoinExternal(info, key, g.c.self, nil, opts)
	if err != nil || !bytes.Equal(mg.GroupID(), g.id) {
		return fmt.Errorf("chat: external join: %v", err)
	}
	hs, err := g.handshakeCascade(mg)
	if err != nil {
		return err
	}
	sealed, err := hs.Seal(&layers.Context{Group: g.id, Sender: g.c.self}, msg)
	if err != nil {
		return err
	}
	raw := (&commitFrame{epoch: mg.Epoch() - 1, hs: sealed}).marshal()
	g.seen.add(sha256.Sum256(sealed))
	g.replaceState(mg, sigID, "rejoined")
	if err := g.topic.Publish(g.c.ctx, raw); err != nil {
		g.errorf("chat: publish the external commit: %w", err)
	}
	return nil
}

// rejoin asks p to re-add us, in the background: the last rung.
func (g *group) rejoin(p peer.ID) {
	if g.rejoining || p == "" {
		return
	}
	sigID, bundle, err := g.c.newKeyPackage()
	if err != nil {
		g.errorf("chat: rejoin: %v", err)
		return
	}
	g.rejoining = true
	g.debug("asking to be re-added", "by", p)
	go func() {
		ctx, cancel := context.WithTimeout(g.c.ctx, 2*time.Minute)
		defer cancel()
		resp, err := g.c.node.Join(ctx, p, &proto.JoinRequest{GroupID: g.id, KeyPackage: bundle.KeyPackage()})
		g.post(func() {
			g.rejoining = false
			if err != nil {
				g.errorf("chat: asking %s to re-add us: %w", p, err)
				return
			}
			mg, err := mlsgroup.Join(resp.Welcome, bundle, resp.RatchetTree, g.c.mlsOptions())
			if err != nil || !bytes.Equal(mg.GroupID(), g.id) {
				g.errorf("chat: the Welcome from %s to re-add us does not open: %v", p, err)
				return
			}
			g.replaceState(mg, sigID, "re-added")
		})
	}()
}

// replaceState moves the group onto another branch, entered by a Welcome or an external
// commit. The changes to the roster our branch made in the epochs we keep of it, and the
// other one lacks, are made again (see lostChanges).
func (g *group) replaceState(mg *mlsgroup.Group, sigID *signal.Identity, how string) {
	before, head := g.mls.Members(), g.mls.Epoch()
	var lost []lostChange
	var base []mlsgroup.Member // where the branches part, as far as we can tell
	if len(g.hist) > 0 && !g.out {
		if mb, err := mlsgroup.Restore(g.hist[0].state, g.c.mlsOptions()); err == nil {
			base = mb.Members()
			lost = lostChanges(base, before, mg.Members(), g.c.self)
		}
	}
	g.mls, g.out = mg, false
	if g.sig != nil {
		sig, err := signal.New(g.c.self, sigID)
		if err != nil {
			g.errorf("chat: %v", err)
			return
		}
		// A new layer counts its changes afresh (see sigSaved): its first save writes it
		// whole, in place of what the store holds of the old one.
		g.sig, g.sigID, g.sigSums = sig, sigID, nil
		if err := g.syncPeers(nil); err != nil {
			g.errorf("chat: %v", err)
		}
	}
	if err := g.buildCascades(); err != nil {
		g.errorf("chat: %v", err)
		return
	}
	if n, ok := mg.Extension(ExtensionGroupName); ok {
		g.name = string(n)
	}
	g.metaSaved = false // the signal identity changed
	g.forgetHist()
	g.future, g.kept = nil, map[[32]byte]bool{}
	g.joinEpoch = mg.Epoch()
	g.started, g.liveSince = time.Now(), g.c.cfg.Now()
	g.confirmed = false
	g.sent, g.got = map[uint64]uint32{}, map[uint64]map[string]uint32{}
	for _, pi := range g.peers {
		pi.heardN, pi.gapAt, pi.gapTries, pi.lackKey, pi.via = nil, time.Time{}, 0, false, ""
	}
	refused := g.foreign // see retake
	g.proposals, g.foreign, g.removers, g.renamer = 0, nil, map[uint32]uint32{}, nil
	g.stopTimer()
	// Our changes done on the branch we leave are undone here, and made again, but for
	// those that branch undid itself since: a removal of a member added back after it, an
	// add of a member removed after it.
	g.dropSuperseded(0, before)
	g.bindUndoneRemovals(0, base)
	for _, in := range g.intents {
		if in.at != nil {
			in.undo()
		}
		in.proposed = 0 // proposals of the branch we leave are void
	}
	// Those finished that the branch we go on with has done too (an add of a member it
	// has, say) are forgotten: made again, they would fail the commit that carries them,
	// and the others in it. (One whose caller waits still is made again, and answered
	// then.)
	g.intents = slices.DeleteFunc(g.intents, func(in *intent) bool {
		return in.finished && in.kind != intentLeave && g.satisfied(in)
	})
	if err := g.save(g.c.ctx, &change{clearWire: true}); err != nil {
		g.errorf("chat: save: %v", err)
	}
	epoch := mg.Epoch()
	g.c.emit(EpochChanged{Group: g.gid, Epoch: epoch, Authenticator: g.authPrefix()})
	was, now := idents(before), idents(mg.Members())
	for _, m := range mg.Members() {
		if !was[string(m.Identity)] {
			g.c.emit(MemberJoined{Group: g.gid, Member: peerOf(m.Identity), Epoch: epoch})
		}
	}
	for _, m := range before {
		if !now[string(m.Identity)] {
			g.c.emit(MemberRemoved{Group: g.gid, Member: peerOf(m.Identity), Epoch: epoch})
		}
	}
	g.c.emit(ForkResolved{Group: g.gid, Epoch: epoch, How: how})
	if g.mls.Epoch() == head {
		g.retake(refused)
	}
	g.resendDead(g.c.ctx, true)
	// A new signal identity: as after a join, our new sender key goes to the members.
	g.handOutKeySoon(nil)
	g.drive()
	g.madeAgain(lost, head)
}

// readdedBy moves us to the branch of commit f if f adds us again, with the KeyPackage
// we joined with, to another branch than ours. The Welcome does not carry the tree: we
// ask from, which passed the commit on, for the tree of that branch.
func (g *group) readdedBy(from peer.ID, f *commitFrame) bool {
	if !g.mayBeReadded() || f.welcome == nil {
		return false
	}
	pj, err := g.joinBundle.OpenWelcome(f.welcome, mlsgroup.PSKs{})
	if err != nil || !bytes.Equal(pj.GroupID(), g.id) {
		return false
	}
	// On our branch (the commit that added us, seen again), or too far back to tell.
	if a := g.chainAuth(pj.Epoch()); a == nil || bytes.Equal(a, pj.EpochAuthenticator()) {
		return false
	}
	g.debug("added again on another branch")
	if pj.HasTree() {
		mg, err := pj.Join(nil, g.c.mlsOptions())
		if err != nil {
			return false
		}
		g.replaceState(mg, g.joinSig, "re-added")
		return true
	}
	if g.fetchingTree || from == "" {
		return true
	}
	g.fetchingTree = true
	welcome := f.welcome
	g.fetchGroupInfo(from, func(info []byte, err error) {
		g.fetchingTree = false
		if err == nil {
			var tree []byte
			if tree, err = mlsgroup.GroupInfoRatchetTree(info); err == nil && g.mayBeReadded() {
				var mg *mlsgroup.Group
				// The tree is checked against the Welcome's GroupContext: one from
				// another epoch or branch does not fit.
				if mg, err = mlsgroup.Join(welcome, g.joinBundle, tree, g.c.mlsOptions()); err == nil {
					g.replaceState(mg, g.joinSig, "re-added")
					return
				}
			}
		}
		g.debug("the tree for the Welcome that re-adds us did not come", "from", from, "err", err)
	})
	return true
}

// mayBeReadded: we joined lately and no member has confirmed our branch yet, so a
// Welcome for the KeyPackage we joined with may move us to another branch.
func (g *group) mayBeReadded() bool {
	return g.joinBundle != nil && !g.confirmed && time.Now().Before(g.joinUntil)
}

// readmit checks a request to be re-added (a join request without an invite proof) from
// a member of our branch, or from a joiner that a branch of ours which lost added (see
// lostChanges), and returns the intent that replaces the member's leaf or adds the
// joiner again.
func (g *group) readmit(from peer.ID, kp []byte) (*intent, error) {
	who, _, err := mlsgroup.KeyPackageIdentity(kp)
	if err != nil {
		return nil, proto.Refuse(proto.CodeRefused, "key package refused: "+err.Error())
	}
	if peerOf(who) != from {
		return nil, proto.Refuse(proto.CodeRefused, "the key package is not the requester's")
	}
	for _, x := range g.intents {
		if x.kind == intentReadd && bytes.Equal(x.who, who) && x.at == nil {
			return nil, proto.Refuse(proto.CodeRefused, "a re-add of this peer is already under way")
		}
	}
	for _, m := range g.mls.Members() {
		if bytes.Equal(m.Identity, who) {
			return &intent{kind: intentReadd, kp: kp, who: who, old: m.Extensions[layers.ExtensionSignalPrekeys]}, nil
		}
	}
	if until, ok := g.vouched[string(who)]; ok {
		if time.Now().Before(until) {
			if g.wants(intentAdd, who) {
				return nil, proto.Refuse(proto.CodeRefused, "a join of this peer is already under way")
			}
			g.debug("adding again a joiner of a branch that lost", "peer", from)
			return &intent{kind: intentAdd, kp: kp, who: who}, nil
		}
		delete(g.vouched, string(who))
	}
	return nil, proto.Refuse(proto.CodeRefused, "invalid invite proof")
}
