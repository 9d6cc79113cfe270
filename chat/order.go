package chat

// Ordering without a server (DESIGN.md): every member applies the first commit it sees
// for its epoch at once, and keeps the last Config.KeepEpochs epochs of its branch. When
// another commit for one of those epochs turns up (from a concurrent committer, or from
// the other side of a partition), every member makes the same choice between the two:
// the committer ranked earlier for that epoch wins, then the lower hash. A member whose
// branch lost goes back to the epoch and applies the winner; its own changes there
// (intents) are made again on the winning branch, and its own messages sent on the lost
// branch go out again from the outbox.
//
// Changes (adds, removes, renames, leaves) are intents, kept until the group's state
// shows them done. The member ranked first for the epoch among those online commits;
// the others send proposals and commit themselves only after Config.CommitTimeout
// (grown with the group's size) times their rank, so a committer that went away is
// replaced.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/mlsgroup"
)

// commitKey orders competing commits for one epoch: lower wins.
type commitKey struct {
	rank uint32   // the committer's rank in the epoch
	hash [32]byte // SHA-256 of the commit's handshake envelope
}

func (a commitKey) less(b commitKey) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return bytes.Compare(a.hash[:], b.hash[:]) < 0
}

// rankKey is a member's place in an epoch's committer order.
func rankKey(auth []byte, leaf uint32) [32]byte {
	h := sha256.New()
	h.Write([]byte("tchat committer rank v1"))
	h.Write(auth)
	h.Write(binary.BigEndian.AppendUint32(nil, leaf))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// rankOrder returns the leaves of mg's members in committer order for its epoch.
func rankOrder(mg *mlsgroup.Group) []mlsgroup.Member {
	auth := mg.EpochAuthenticator()
	ms := mg.Members()
	keys := make(map[uint32][32]byte, len(ms))
	for _, m := range ms {
		keys[m.LeafIndex] = rankKey(auth, m.LeafIndex)
	}
	sort.Slice(ms, func(i, j int) bool {
		a, b := keys[ms[i].LeafIndex], keys[ms[j].LeafIndex]
		return bytes.Compare(a[:], b[:]) < 0
	})
	return ms
}

func rankOf(order []mlsgroup.Member, leaf uint32) uint32 {
	for i, m := range order {
		if m.LeafIndex == leaf {
			return uint32(i)
		}
	}
	return uint32(len(order))
}

func identityAt(ms []mlsgroup.Member, leaf uint32) []byte {
	for _, m := range ms {
		if m.LeafIndex == leaf {
			return m.Identity
		}
	}
	return nil
}

// onlineRank is our place in the committer order among the members we believe online.
//
// Until we have heard the group for a few heartbeats (just joined, or restarted), everyone
// counts as online: a member that sees few peers yet must not think itself first. A
// member just added counts as online too, until it has had time to say so: else every
// member that has not heard it yet ranks itself before it, and two commit.
func (g *group) onlineRank() int {
	topic := map[peer.ID]bool{}
	for _, p := range g.topic.Peers() {
		topic[p] = true
	}
	me := g.mls.LeafIndex()
	wait := 3 * g.beat()
	all := time.Since(g.started) < wait
	r := 0
	for _, m := range rankOrder(g.mls) {
		if m.LeafIndex == me {
			return r
		}
		pi := g.peers[string(m.Identity)]
		if all || (pi != nil && (pi.online || time.Since(pi.added) < wait)) || topic[peerOf(m.Identity)] {
			r++
		}
	}
	return r
}

// noteAdded records that a commit we applied just added the member ident.
func (g *group) noteAdded(ident []byte) {
	if pi := g.peerInfo(ident); pi != nil {
		pi.added = time.Now()
	}
}

func (g *group) pushHist(r epochRec) {
	r.applied = time.Now()
	r.props, g.foreign = append(r.props, g.foreign...), nil
	g.hist = append(g.hist, r)
	g.markHist(r.epoch)
	if n := len(g.hist) - g.c.cfg.KeepEpochs; n > 0 {
		g.hist = append([]epochRec(nil), g.hist[n:]...)
	}
}

// receiveCommit handles a commit frame from the topic or from a sync answer.
func (g *group) receiveCommit(from peer.ID, f *commitFrame, raw []byte, quiet bool) {
	if !g.active() {
		return
	}
	hh := sha256.Sum256(f.hs)
	if g.readdedBy(from, f) {
		return
	}
	cur := g.mls.Epoch()
	switch {
	case f.epoch == cur:
		g.applyCommit(from, f, raw, hh, quiet)
	case f.epoch > cur:
		g.stash(clone(raw)) // the commits before it are likely on their way too
		g.noteAhead(from, f.epoch)
	default:
		rec := g.histAt(f.epoch)
		switch {
		case rec != nil && rec.key.hash == hh:
			// The same commit by two paths (gossip and a sync) is normal; one coming
			// long after it was applied is someone replaying it.
			if !quiet && time.Since(rec.applied) > 4*g.c.cfg.Heartbeat {
				g.errorf("chat: a commit for epoch %d that was already applied came again; ignored", f.epoch)
			}
		case g.seen.has(hh):
			// A competing commit already judged: it lost (we would be on its branch
			// otherwise), or its branch lost since.
			g.outranked++
		case rec == nil:
			g.debug("a commit older than the epochs kept was ignored", "for", f.epoch)
		default:
			g.judge(from, rec, f, raw, hh, quiet)
		}
	}
}

// applyCommit applies a commit for the current epoch.
func (g *group) applyCommit(from peer.ID, f *commitFrame, raw []byte, hh [32]byte, quiet bool) {
	before := g.mls.Members()
	order := rankOrder(g.mls)
	state, err := g.mls.MarshalBinary()
	if err != nil {
		g.errorf("chat: %w", err)
		return
	}
	auth := g.mls.EpochAuthenticator()
	inner, err := g.openHandshake(g.mls, f.hs)
	if err != nil {
		if !quiet && !g.quiet() {
			g.errorf("chat: a commit did not open: %w", err)
		}
		return
	}
	p, err := g.mls.Process(inner)
	if errors.Is(err, mlsgroup.ErrUnknownProposal) {
		// Gossip brought the commit before a proposal it refers to: kept until the
		// proposal comes (or a sync brings both).
		g.debug("a commit waits for a proposal", "from", from)
		g.stash(clone(raw))
		return
	}
	if err != nil {
		if !quiet && !g.quiet() {
			g.errorf("chat: commit refused: %w", err)
		}
		return
	}
	if p.Kind != mlsgroup.KindCommit || (p.SenderKind != mlsgroup.SenderMember && p.SenderKind != mlsgroup.SenderNewMemberCommit) {
		g.errorf("chat: a commit frame held something else than a commit")
		return
	}
	g.seen.add(hh)
	if p.SenderKind == mlsgroup.SenderNewMemberCommit {
		// An external commit may only bring back a member (it replaces its own leaf): a
		// member removed, or anyone else holding a GroupInfo, does not get in by itself.
		was := idents(before)
		for _, m := range g.mls.Members() {
			if was[string(m.Identity)] {
				continue
			}
			mg, err := mlsgroup.Restore(state, g.c.mlsOptions())
			if err == nil {
				g.mls = mg
				err = g.buildCascades()
			}
			if err != nil {
				g.errorf("chat: %w", err)
				return
			}
			if !quiet {
				g.errorf("chat: an external commit by %s, not a member, was refused", peerOf(m.Identity))
			}
			return
		}
	}
	committer := identityAt(before, p.Sender)
	if p.SenderKind == mlsgroup.SenderNewMemberCommit {
		// A member rejoining by external commit (it replaces its own leaf): it ranks
		// after every member.
		p.Sender, committer = ^uint32(0), nil
	}
	g.debug("commit applied", "from", from, "committer", p.Sender)
	g.pushHist(epochRec{epoch: f.epoch, auth: auth, state: state, frame: raw,
		key: commitKey{rankOf(order, p.Sender), hh}, idents: idents(before)})
	g.afterCommit(before, committer, f, raw, nil)
}

func idents(ms []mlsgroup.Member) map[string]bool {
	s := make(map[string]bool, len(ms))
	for _, m := range ms {
		s[string(m.Identity)] = true
	}
	return s
}

// judge compares a commit for a past epoch of our branch with the one we applied there,
// and moves to its branch if it wins.
func (g *group) judge(from peer.ID, rec *epochRec, f *commitFrame, raw []byte, hh [32]byte, quiet bool) {
	tmp, err := mlsgroup.Restore(rec.state, g.c.mlsOptions())
	if err != nil {
		g.errorf("chat: %w", err)
		return
	}
	before := tmp.Members()
	order := rankOrder(tmp)
	// The competing commit may refer to proposals only its branch had.
	for _, prop := range rec.props {
		if inner, err := g.openHandshake(tmp, prop); err == nil {
			_, _ = tmp.Process(inner)
		}
	}
	// Around a fork, a commit of a third branch, or of one whose epoch of that number is
	// not the one we kept, is expected not to open (see quiet).
	inner, err := g.openHandshake(tmp, f.hs)
	if err != nil {
		g.debug("a competing commit did not open", "for", f.epoch, "err", err)
		if !quiet && !g.quiet() {
			g.errorf("chat: a competing commit for epoch %d did not open: %w", f.epoch, err)
		}
		return
	}
	p, err := tmp.Process(inner)
	if err == nil && (p.Kind != mlsgroup.KindCommit || (p.SenderKind != mlsgroup.SenderMember && p.SenderKind != mlsgroup.SenderNewMemberCommit)) {
		err = errors.New("not a commit")
	}
	if err != nil {
		g.debug("a competing commit was refused", "for", f.epoch, "err", err)
		if !quiet && !g.quiet() && !errors.Is(err, mlsgroup.ErrUnknownProposal) {
			g.errorf("chat: a competing commit for epoch %d was refused: %v", f.epoch, err)
		}
		return
	}
	g.seen.add(hh)
	if p.SenderKind == mlsgroup.SenderNewMemberCommit {
		p.Sender = ^uint32(0) // ranks after every member, as in applyCommit
	}
	key := commitKey{rankOf(order, p.Sender), hh}
	g.debug("competing commit", "for", f.epoch, "committer", p.Sender, "wins", key.less(rec.key))
	g.lastFork = time.Now()
	g.c.emit(ForkDetected{Group: g.gid, Peer: from, Epoch: f.epoch})
	if !key.less(rec.key) {
		g.outranked++
		g.c.emit(ForkResolved{Group: g.gid, Epoch: g.mls.Epoch(), How: "kept"})
		return
	}
	// The other branch wins: go back to rec's epoch and take its commit.
	cur, head := g.mls.Members(), g.mls.Epoch()
	i := 0
	for g.hist[i].epoch != rec.epoch {
		i++
	}
	// The proposals for the epoch the switch leads to that we refused as of another
	// branch: with our head at that epoch, those of g.foreign; else those kept with it.
	refused := g.foreign
	if i+1 < len(g.hist) {
		refused = g.hist[i+1].props
	}
	back := *rec
	back.frame, back.key, back.applied = raw, key, time.Now()
	g.hist = append(g.hist[:i:i], back)
	g.markHist(back.epoch)
	g.mls = tmp
	if err := g.buildCascades(); err != nil {
		g.errorf("chat: %w", err)
		return
	}
	for e := range g.sent {
		if e > rec.epoch {
			delete(g.sent, e)
		}
	}
	for e := range g.got {
		if e > rec.epoch {
			delete(g.got, e)
		}
	}
	for _, pi := range g.peers {
		for e := range pi.heardN {
			if e > rec.epoch {
				delete(pi.heardN, e)
			}
		}
	}
	g.proposals, g.foreign = 0, nil
	g.removers, g.renamer = map[uint32]uint32{}, nil
	for _, in := range g.intents {
		in.proposed = 0
	}
	if g.sig != nil {
		// Our sender key may have reached some members only in messages of the lost
		// branch: the next message carries a fresh one to everyone.
		g.sig.Rekey()
	}
	drop := rec.epoch
	lost := lostChanges(before, cur, g.mls.Members(), g.c.self)
	g.dropSuperseded(rec.epoch, cur)
	g.bindUndoneRemovals(rec.epoch, before)
	g.afterCommit(cur, identityAt(before, p.Sender), f, raw, &drop)
	g.c.emit(ForkResolved{Group: g.gid, Epoch: g.mls.Epoch(), How: "switched"})
	g.retake(refused)
	g.resendDead(g.c.ctx, false)
	g.madeAgain(lost, head)
}

// retake offers the proposals we refused as of another branch (their authentication
// failed on ours) to the branch a switch moved us to: its next commit may refer to them,
// and no copy comes again (gossip has seen them, and so have we). Taken, a commit of the
// new branch waiting for one of them applies.
func (g *group) retake(refused [][]byte) {
	took := false
	for _, hs := range refused {
		if _, _, ok := g.takeProposal(hs); ok {
			took = true
		}
	}
	if took {
		g.debug("took proposals refused before the switch", "epoch", g.mls.Epoch())
		g.retryFuture(nil)
		g.drive()
	}
}

// A change to the roster that a branch which lost had made is made again on the winning
// branch: by its author, which still has it as an intent; but the author may be gone
// (removed on the branch that lost, restarted, offline), and a joiner of that branch
// then stays out, a member removed there keeps a leaf no one holds. So every member that
// saw the change makes it again, madeAgainAfter heartbeats after the switch and one more
// per place in the committer order, if no one has made it by then: it adds the joiner
// (with a KeyPackage fetched from it, as Add does: the joiner takes the Welcome, as it
// handed the KeyPackage out after it entered the branch that lost), or removes the
// member. (A member removed and added again there that still has its old leaf on the
// winning branch takes it back itself, by a resync: see rejoinExternal. A member that
// left the branch before it saw the member added again would remove that leaf first,
// and the member would find itself out; so a removal waits longer (resyncWait) when
// the member is heard on another branch at or past the epoch ours had reached: it was
// a member there after ours removed it. If it still has its old leaf then, it goes.)
// A joiner is also vouched for, for vouchFor: asked by it (a join request without an
// invite proof, see readmit), the member adds it again.

// lostChange is a change to the roster made on a branch that lost: an add (of a member
// the winning branch does not have, new to the group or removed and added again there)
// or a removal. prekeys are, for a removal, the signal prekeys of the member's leaf on
// the winning branch (one given another leaf since is left alone).
type lostChange struct {
	kind         intentKind
	who, prekeys []byte
}

const (
	vouchFor       = 10 * time.Minute
	madeAgainAfter = 2 // heartbeats
)

// lostChanges returns the changes a branch that lost made to the roster, from base
// (where the branches part) to lost (its end), that the winning one, at won, lacks.
// Leaves are told apart by their signal prekeys. We are never one of them.
func lostChanges(base, lost, won []mlsgroup.Member, self []byte) []lostChange {
	in := func(ms []mlsgroup.Member, id []byte) *mlsgroup.Member {
		for i := range ms {
			if bytes.Equal(ms[i].Identity, id) {
				return &ms[i]
			}
		}
		return nil
	}
	pk := func(m *mlsgroup.Member) []byte { return m.Extensions[layers.ExtensionSignalPrekeys] }
	var out []lostChange
	for _, m := range lost {
		b, w := in(base, m.Identity), in(won, m.Identity)
		switch {
		case bytes.Equal(m.Identity, self) || (b != nil && bytes.Equal(pk(b), pk(&m))):
			// Not changed there.
		case w == nil:
			out = append(out, lostChange{kind: intentAdd, who: m.Identity})
		}
	}
	for _, m := range base {
		if w := in(won, m.Identity); !bytes.Equal(m.Identity, self) && in(lost, m.Identity) == nil && w != nil &&
			bytes.Equal(pk(w), pk(&m)) {
			out = append(out, lostChange{kind: intentRemove, who: m.Identity, prekeys: pk(w)})
		}
	}
	return out
}

// madeAgain vouches for the joiners of lost and makes its changes again (see
// lostChanges); head is the epoch our branch that lost had reached.
func (g *group) madeAgain(lost []lostChange, head uint64) {
	until := time.Now().Add(vouchFor)
	for _, ch := range lost {
		if ch.kind == intentAdd {
			g.vouched[string(ch.who)] = until
		}
	}
	if len(lost) == 0 {
		return
	}
	after := time.Duration(madeAgainAfter+g.onlineRank()) * g.beat()
	time.AfterFunc(after, func() { g.post(func() { g.makeAgain(lost, head, true) }) })
}

// makeAgain makes the changes of lost that no one has made yet. A removal of a member
// heard past head on another branch waits resyncWait, once, if mayWait.
func (g *group) makeAgain(lost []lostChange, head uint64, mayWait bool) {
	if !g.active() {
		return
	}
	var wait []lostChange
	for _, ch := range lost {
		switch _, in := g.leafOf(ch.who); {
		case g.wants(ch.kind, ch.who),
			ch.kind == intentAdd && in,
			ch.kind == intentRemove && !g.keepsLeaf(ch.who, ch.prekeys):
			continue // done, or under way
		case ch.kind == intentRemove && mayWait && g.heardPast(ch.who, head):
			g.debug("a member a branch that lost removed is heard on another branch past it: waiting for its resync", "peer", peerOf(ch.who))
			wait = append(wait, ch)
			continue
		case ch.kind == intentRemove:
			g.debug("removing again a member a branch that lost removed", "peer", peerOf(ch.who))
			g.want(&intent{kind: intentRemove, who: ch.who, old: ch.prekeys})
			continue
		}
		g.debug("adding again a member a branch that lost added", "peer", peerOf(ch.who))
		go func() {
			ctx, cancel := context.WithTimeout(g.c.ctx, 2*time.Minute)
			defer cancel()
			if err := g.c.addAgain(ctx, g, peerOf(ch.who)); err != nil && !errors.Is(err, ErrAlreadyIn) {
				g.post(func() { g.debug("adding again failed", "peer", peerOf(ch.who), "err", err) })
			}
		}()
	}
	if len(wait) > 0 {
		time.AfterFunc(g.resyncWait(), func() { g.post(func() { g.makeAgain(wait, head, false) }) })
	}
}

// resyncWait is how long a member that joined a branch which lost can take to come
// over by a resync, twice over: until it finds the others stay behind its epoch (see
// staysBehind), three fruitless syncs, and rejoinSoon's delay.
func (g *group) resyncWait() time.Duration {
	return 2 * (g.behindWait() + 3*max(aheadWait, g.beat()) + 2*g.beat())
}

// heardPast says whether the last heartbeat of the member who showed a branch other
// than ours, at epoch head or later.
func (g *group) heardPast(who []byte, head uint64) bool {
	pi := g.peerByID(peerOf(who))
	return pi != nil && pi.online && pi.hbAuth != nil && pi.hbEpoch >= head && !g.onOurChain(pi)
}

// onOurChain says whether the member's last heartbeat showed an epoch of our branch.
func (g *group) onOurChain(pi *peerInfo) bool {
	if pi.hbAuth == nil {
		return false
	}
	a := g.chainAuth(pi.hbEpoch)
	return a != nil && bytes.Equal(a[:authPrefix], pi.hbAuth)
}

// keepsLeaf says whether the member who is in the group with the leaf whose signal
// prekeys are prekeys.
func (g *group) keepsLeaf(who, prekeys []byte) bool {
	for _, m := range g.mls.Members() {
		if bytes.Equal(m.Identity, who) {
			return bytes.Equal(m.Extensions[layers.ExtensionSignalPrekeys], prekeys)
		}
	}
	return false
}

// dropSuperseded forgets the intents of ours whose commits a switch of branch undid
// (those for epoch from and later; a switch by a Welcome or an external commit, which
// does not tell where the branches part, gives 0) but that the branch which lost had
// itself undone since: a member removed there and then added again (by a user who
// wanted it back), or added and then removed. Made again on the winning branch, the
// first of the two changes would undo the second, which came after it. end are the
// members at the end of the branch that lost. (A member added again there takes its
// leaf back itself: see rejoinExternal.)
func (g *group) dropSuperseded(from uint64, end []mlsgroup.Member) {
	in := idents(end)
	keep := g.intents[:0]
	for _, it := range g.intents {
		if it.at != nil && it.at.epoch >= from {
			switch {
			case it.kind == intentRemove && in[string(it.who)]:
				g.debug("a removal undone by the switch stays undone: the member was added again since", "peer", peerOf(it.who))
				it.finish(nil)
				continue
			case (it.kind == intentAdd || it.kind == intentReadd) && !in[string(it.who)]:
				g.debug("an add undone by the switch stays undone: the member was removed since", "peer", peerOf(it.who))
				it.finish(errors.New("chat: the member was removed again"))
				continue
			}
		}
		keep = append(keep, it)
	}
	g.intents = keep
}

// bindUndoneRemovals binds the removals of ours whose commits a switch of branch undid
// (those for epoch from and later) to the leaf the member had where the branches part
// (base), as a removal made again by another member is (see madeAgain): made again, it
// takes out that leaf, not one the member was added back with since. On the branch that
// lost, another member may have added it back after our removal; on ours, that add
// finds the old leaf, and replaces it or, once our removal took it out, is made again
// (see leafNotOurs): whichever comes first, the member ends in the group, as the user
// who added it back wanted.
func (g *group) bindUndoneRemovals(from uint64, base []mlsgroup.Member) {
	for _, in := range g.intents {
		if in.kind != intentRemove || in.old != nil || in.at == nil || in.at.epoch < from {
			continue
		}
		for _, m := range base {
			if bytes.Equal(m.Identity, in.who) {
				in.old = m.Extensions[layers.ExtensionSignalPrekeys]
			}
		}
	}
}

// removing returns the leaf a removal takes out: the member's, or for one bound to a
// leaf (a removal made again, see madeAgain), that leaf while the member holds it. A
// member added again since (by a user who wanted it back after the removal that lost)
// has another leaf, and stays.
func (g *group) removing(in *intent) (uint32, bool) {
	leaf, ok := g.leafOf(in.who)
	if !ok || (in.old != nil && !g.keepsLeaf(in.who, in.old)) {
		return 0, false
	}
	return leaf, true
}

// wants says whether an intent of ours of this kind for who is under way.
func (g *group) wants(kind intentKind, who []byte) bool {
	for _, in := range g.intents {
		if in.kind == kind && bytes.Equal(in.who, who) {
			return true
		}
	}
	return false
}

// afterCommit saves the new epoch (with the commit in the wire log), tells about it,
// and moves on: kept frames, intents, pruning. before are the members we showed until
// now; by is the committer's identity.
func (g *group) afterCommit(before []mlsgroup.Member, by []byte, f *commitFrame, raw []byte, dropWire *uint64) {
	old := prekeysOf(before)
	if err := g.syncPeers(old); err != nil {
		g.errorf("chat: %w", err)
	}
	renamed := false
	if n, ok := g.mls.Extension(ExtensionGroupName); ok && string(n) != g.name {
		g.name, renamed, g.metaSaved = string(n), true, false
	}
	ch := &change{wire: []store.WireItem{{Epoch: f.epoch, Kind: store.WireCommit, Data: clone(raw)}}, dropWire: dropWire}
	if err := g.save(g.c.ctx, ch); err != nil {
		g.errorf("chat: save: %w", err)
	}
	epoch := f.epoch + 1 // also when we were removed, and our state stays behind
	byPeer := peerOf(by)
	g.c.emit(EpochChanged{Group: g.gid, Epoch: epoch, Authenticator: g.authPrefix()})
	after := idents(g.mls.Members())
	var added [][]byte
	for _, m := range g.mls.Members() {
		if _, was := old[string(m.Identity)]; !was {
			added = append(added, m.Identity)
			g.noteAdded(m.Identity)
			g.c.emit(MemberJoined{Group: g.gid, Member: peerOf(m.Identity), Epoch: epoch})
		}
	}
	if len(added) > 0 && g.active() {
		g.handOutKeySoon(added)
	}
	if !g.active() {
		delete(after, string(g.c.self)) // we are out, whatever the tree we kept says
	}
	for _, m := range before {
		if after[string(m.Identity)] {
			continue
		}
		p := peerOf(m.Identity)
		who, proposed := g.removers[m.LeafIndex]
		switch {
		case proposed && who == m.LeafIndex:
			g.c.emit(MemberLeft{Group: g.gid, Member: p, Epoch: epoch})
		case proposed:
			g.c.emit(MemberRemoved{Group: g.gid, Member: p, By: peerOf(identityAt(before, who)), Epoch: epoch})
		default:
			g.c.emit(MemberRemoved{Group: g.gid, Member: p, By: byPeer, Epoch: epoch})
		}
	}
	if renamed {
		if g.renamer != nil {
			byPeer = peerOf(identityAt(before, *g.renamer))
		}
		g.c.emit(GroupRenamed{Group: g.gid, Name: g.name, By: byPeer, Epoch: epoch})
	}
	g.removers, g.renamer = map[uint32]uint32{}, nil
	g.proposals = 0
	if !g.active() {
		g.endIntents(true)
		return
	}
	g.retryFuture(nil)
	g.checkIntents(f)
	// A member re-added with a fresh leaf (it came back from a lost branch) cannot read
	// what was sent while it was away: our own recent messages go out again for it.
	for _, m := range g.mls.Members() {
		if p, ok := old[string(m.Identity)]; ok && m.LeafIndex != g.mls.LeafIndex() &&
			!bytes.Equal(p, m.Extensions[layers.ExtensionSignalPrekeys]) {
			g.resendDead(g.c.ctx, true)
			break
		}
	}
	g.drive()
	g.pruneOutbox(g.c.ctx)
	if keep := uint64(4 * g.c.cfg.KeepEpochs); epoch > keep && epoch%8 == 0 {
		if _, err := g.c.st.PruneWire(g.c.ctx, g.id, epoch-keep); err != nil {
			g.errorf("chat: prune: %w", err)
		}
	}
}

// intentKind is the kind of change an intent wants.
type intentKind uint8

const (
	intentAdd intentKind = iota + 1
	intentRemove
	intentRename
	intentLeave
	intentReadd // replace a member's leaf with a fresh KeyPackage (it asked, from a lost branch)
)

// roster says whether intents of this kind change one member's place in the group (who).
func (k intentKind) roster() bool {
	return k == intentAdd || k == intentRemove || k == intentReadd
}

// errReplaced ends a change of a member that a later one replaced (see want).
var errReplaced = errors.New("chat: replaced by a later change of the same member")

// intent is a change this member wants, kept until the group's state shows it, and
// then for Config.Settle more (a competing commit may still undo it).
type intent struct {
	kind     intentKind
	kp       []byte // add: the KeyPackage
	who      []byte // add, readd: the joiner's identity; remove: the member's
	old      []byte // readd: the member's signal prekeys in its old leaf; remove: of the leaf to remove (nil: whichever it holds)
	name     string // rename
	proposed uint64 // the epoch+1 it was proposed in (0: not proposed in this epoch)
	created  time.Time
	at       *commitRef    // the commit of our branch that did it (nil: not done)
	doneAt   time.Time     // when that commit was applied
	welcome  []byte        // add: the Welcome of the commit that added the joiner
	tree     []byte        // add: the ratchet tree of the epoch it made (not in the Welcome)
	finished bool          // the caller has its result; kept until the commit is final
	redone   bool          // finished, then undone by a switch of branch, and made again
	push     bool          // add: the Welcome goes to the joiner over /tchat/welcome/2 (an Add, not a join request)
	result   intentResult  // set when done is closed
	done     chan struct{} // closed by finish: every waiter then reads result
}

// commitRef names the commit that left an epoch.
type commitRef struct {
	epoch uint64
	hash  [32]byte
}

type intentResult struct {
	welcome, tree []byte // an add's Welcome, and the tree the joiner needs with it
	err           error
}

// finish gives the intent's caller its result: err, or done (with the Welcome and tree
// of an add).
func (in *intent) finish(err error) {
	if in.done == nil { // not yet wanted: no one waits
		in.done = make(chan struct{})
	}
	select {
	case <-in.done:
		return // the first result stands
	default:
	}
	in.result = intentResult{err: err}
	if err == nil {
		in.result.welcome, in.result.tree = in.welcome, in.tree
	}
	close(in.done)
}

// undo marks an intent whose commit a switch of branch undid, to be made again. One
// finished (its caller has its answer) is redone: its time to be done again starts now.
func (in *intent) undo() {
	in.proposed, in.at, in.doneAt, in.welcome, in.tree = 0, nil, time.Time{}, nil, nil
	if in.finished {
		in.created = time.Now()
		in.redone = true
	}
}

func (g *group) satisfied(in *intent) bool {
	switch in.kind {
	case intentAdd:
		_, ok := g.leafOf(in.who)
		return ok
	case intentRemove:
		_, ok := g.removing(in)
		return !ok
	case intentRename:
		return g.name == in.name
	case intentReadd:
		for _, m := range g.mls.Members() {
			if bytes.Equal(m.Identity, in.who) {
				return !bytes.Equal(m.Extensions[layers.ExtensionSignalPrekeys], in.old)
			}
		}
		return false
	}
	return !g.active()
}

// want adds an intent and drives it. An add, re-add or removal of a member replaces
// those of ours for the same member still kept (one made again after a switch of branch,
// say): the later request stands, and two adds of one member would fail the commit that
// carried both, and every other change in it.
func (g *group) want(in *intent) *intent {
	in.created = time.Now()
	in.done = make(chan struct{})
	if in.kind.roster() {
		g.intents = slices.DeleteFunc(g.intents, func(x *intent) bool {
			if !x.kind.roster() || !bytes.Equal(x.who, in.who) {
				return false
			}
			g.debug("a change of a member replaced by a later one", "peer", peerOf(in.who), "kind", x.kind, "by", in.kind)
			x.finish(errReplaced)
			return true
		})
	}
	g.intents = append(g.intents, in)
	g.checkIntents(nil)
	g.drive()
	return in
}

// checkIntents notes which intents the commit f (nil: none new) did, and which ones a
// switch to another branch undid.
func (g *group) checkIntents(f *commitFrame) {
	var tree []byte // the new epoch's, encoded once for all the joiners of the commit
	for _, in := range g.intents {
		if in.at != nil {
			r := g.histAt(in.at.epoch)
			if (r != nil && r.key.hash == in.at.hash) || (r == nil && in.at.epoch < g.oldestEpoch()) {
				continue // still on our branch
			}
			in.undo()
		}
		if f != nil && g.satisfied(in) {
			in.at = &commitRef{f.epoch, sha256.Sum256(f.hs)}
			in.doneAt = time.Now()
			if (in.kind == intentAdd || in.kind == intentReadd) && g.holdsKeyPackage(in) {
				// The Welcome went to every member with the commit; the tree, as large
				// as the group, goes to the joiner alone, from whoever answers it.
				in.welcome = f.welcome
				if tree == nil {
					var err error
					if tree, err = g.mls.RatchetTree(); err != nil {
						g.errorf("chat: %w", err)
					}
				}
				in.tree = tree
			}
		}
	}
}

// holdsKeyPackage says whether the member of an add has the leaf of the add's KeyPackage:
// the commit that found the add done added it, and its Welcome is the joiner's. (A
// commit that found it done by another leaf, one a switch of branch brought back, has
// another joiner's Welcome, or none: see leafNotOurs.)
func (g *group) holdsKeyPackage(in *intent) bool {
	mine, err := mlsgroup.KeyPackageLeafExtension(in.kp, layers.ExtensionSignalPrekeys)
	if err != nil {
		return false
	}
	return g.keepsLeaf(in.who, mine)
}

// settle gives their result to the intents whose commit stayed on our branch for
// Config.Settle, fails those that could not be done in time, and forgets those whose
// commit is final (older than the epochs we keep). Until then an intent undone by a
// switch to another branch is done again.
func (g *group) settle() {
	if len(g.intents) == 0 {
		return
	}
	keep := g.intents[:0]
	redo := false
	for _, in := range g.intents {
		switch {
		// One finished, undone by a switch of branch and done again is looked at again in
		// the next case, as one not finished is: an add the commit found done by the
		// member's old leaf (see leafNotOurs), an add whose Welcome must go out again.
		case in.at != nil && in.finished && !in.redone:
			if in.at.epoch < g.oldestEpoch() {
				continue // final
			}
		case in.at != nil && time.Since(in.doneAt) >= g.c.cfg.Settle:
			if in.kind == intentAdd && in.welcome == nil {
				switch g.leafNotOurs(in) {
				case leafHeld:
					in.finish(ErrAlreadyIn)
					continue
				case leafUnheld, leafGone:
					redo = true
				}
				keep = append(keep, in) // leafUnknown: a few heartbeats more
				continue
			}
			if in.kind == intentReadd && in.welcome == nil {
				in.finish(errors.New("chat: the member was added, but its Welcome was not seen here"))
				continue
			}
			if in.redone && in.push && (in.kind == intentAdd || in.kind == intentReadd) {
				g.welcomeAgain(in)
			}
			if in.kind == intentAdd && !in.push {
				g.awaitJoiner(in)
			}
			in.redone = false
			in.finish(nil)
			in.finished = true
		case in.at == nil && !in.finished && time.Since(in.created) > g.c.cfg.IntentTimeout:
			in.finish(fmt.Errorf("chat: the change was not committed within %v", g.c.cfg.IntentTimeout))
			continue
		case in.at == nil && in.finished && time.Since(in.created) > g.c.cfg.IntentTimeout:
			g.errorf("chat: a change undone by a fork could not be made again")
			continue
		}
		keep = append(keep, in)
	}
	g.intents = keep
	if redo {
		g.drive()
	}
}

// awaitJoiner notes a joiner we admitted, now that its add is done and its Welcome on
// its way: if it is not heard in the group within Config.JoinerTimeout, checkJoiners
// removes its leaf.
func (g *group) awaitJoiner(in *intent) {
	prekeys, err := mlsgroup.KeyPackageLeafExtension(in.kp, layers.ExtensionSignalPrekeys)
	if err != nil {
		return
	}
	g.awaited[string(in.who)] = &awaitedJoiner{prekeys: prekeys, since: time.Now()}
}

// awaitedJoiner is a joiner we admitted and have not heard from since: the leaf its add
// gave it (told by its signal prekeys) and when the add was done.
type awaitedJoiner struct {
	prekeys []byte
	since   time.Time
}

// checkJoiners removes the leaves of joiners we admitted and never heard from in the
// group within Config.JoinerTimeout: the answer with their Welcome did not reach them,
// and they gave up asking (a joiner asks again with the same KeyPackage for 10 minutes,
// and is answered with the same Welcome). Left alone, such a leaf stays for good: no one
// holds it, and every member's view of the group counts it.
func (g *group) checkJoiners() {
	for id, a := range g.awaited {
		switch pi := g.peers[id]; {
		case pi != nil && pi.heard.After(a.since), !g.keepsLeaf([]byte(id), a.prekeys):
			delete(g.awaited, id) // it came, or its leaf is gone anyway
		case time.Since(a.since) > g.c.cfg.JoinerTimeout && g.active():
			g.debug("removing a joiner never heard from since its add", "peer", peerOf([]byte(id)), "after", time.Since(a.since))
			delete(g.awaited, id)
			g.want(&intent{kind: intentRemove, who: []byte(id), old: a.prekeys})
		}
	}
}

// welcomeAgain sends the joiner the Welcome of an add of ours made again after a switch
// of branch: the Add that asked for it returned long ago, having sent the Welcome of the
// branch that lost (or failed to), and a joiner out of the group does not get the commit
// that carries the new one. Left without it, the joiner stays out, its leaf held by no
// one, and every later add of it is refused as one of a member.
func (g *group) welcomeAgain(in *intent) {
	p, r, name := peerOf(in.who), intentResult{welcome: in.welcome, tree: in.tree}, g.name
	g.debug("sending again the Welcome of an add made again", "peer", p)
	go func() {
		ctx, cancel := context.WithTimeout(g.c.ctx, time.Minute)
		defer cancel()
		if err := g.c.welcome(ctx, g, p, r, name, in.kp); err != nil {
			g.post(func() { g.debug("the Welcome of an add made again did not arrive", "peer", p, "err", err) })
		}
	}()
}

// leafState is what an add that found its member in the group with another leaf makes
// of it (see leafNotOurs).
type leafState int

const (
	leafUnknown leafState = iota
	leafHeld              // the member holds it: it is in
	leafUnheld            // no one does: the add replaces it (the intent became a re-add)
	leafGone              // the member is out again (a removal made again since): the add is made again
)

// leafNotOurs: an add of ours came out done by a commit that did not add the member,
// which had a leaf already: a switch of branch undid its removal (by a branch that lost),
// or it came back by itself. If a removal made again since (see madeAgain) took it out,
// the add is made again: the user asked for it after that removal. If the member has
// been heard in the group since that commit, on our branch, it holds its leaf, and is
// in (one heard on another branch holds another leaf there: the one our add gave it, on
// the branch that lost). Else, a few heartbeats on, we take it that no one holds the
// leaf (the member handed us its KeyPackage out of the group, after the removal, and
// dropped its state of the group then): the intent becomes a re-add that replaces the
// leaf with one for that KeyPackage. Left alone, the member would stay out, and the
// group keep a leaf no one holds.
func (g *group) leafNotOurs(in *intent) leafState {
	var leaf *mlsgroup.Member
	for _, m := range g.mls.Members() {
		if bytes.Equal(m.Identity, in.who) {
			leaf = &m
		}
	}
	switch pi := g.peers[string(in.who)]; {
	case leaf == nil:
		g.debug("adding again a member removed again before its Welcome", "peer", peerOf(in.who))
		in.at, in.doneAt, in.proposed = nil, time.Time{}, 0
		return leafGone
	case pi != nil && pi.heard.After(in.doneAt) && g.onOurChain(pi):
		return leafHeld
	case time.Since(in.doneAt) < 3*g.beat():
		return leafUnknown
	}
	g.debug("adding afresh a member whose old leaf no one holds", "peer", peerOf(in.who))
	in.kind, in.old = intentReadd, leaf.Extensions[layers.ExtensionSignalPrekeys]
	in.at, in.doneAt, in.proposed = nil, time.Time{}, 0
	return leafUnheld
}

func (g *group) stopTimer() {
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
}

// drive makes the current epoch's commit happen: the first-ranked member online commits
// after batchDelay (gathering joiners and proposals into one commit); the others
// propose their changes and commit themselves only after CommitTimeout times their rank.
func (g *group) drive() {
	if !g.active() {
		return
	}
	cur := g.mls.Epoch()
	g.intents = slices.DeleteFunc(g.intents, func(in *intent) bool {
		moot := in.at == nil && in.kind == intentRemove && in.old != nil && g.satisfied(in)
		if moot {
			in.finish(nil) // the leaf it was to remove is gone: nothing left to do
		}
		return moot
	})
	var mine []*intent
	var leave *intent
	for _, in := range g.intents {
		if in.at != nil {
			continue
		}
		if in.kind == intentLeave {
			leave = in
		} else {
			mine = append(mine, in)
		}
	}
	if len(mine) == 0 && leave == nil && g.proposals == 0 {
		g.stopTimer()
		return
	}
	rank := g.onlineRank()
	if leave != nil {
		if leave.proposed != cur+1 {
			g.propose([]*intent{leave})
		}
		return // a leaving member does not commit; the others commit its leave
	}
	if rank > 0 && slices.ContainsFunc(mine, func(in *intent) bool { return in.proposed != cur+1 }) {
		g.proposeSoon()
	}
	if g.timer != nil && g.timerAt == cur {
		return
	}
	g.stopTimer()
	delay := g.batchDelay()
	readd := false
	for _, in := range mine {
		readd = readd || in.kind == intentReadd
	}
	if rank > 0 && !readd { // a re-add, rare and waited for, is committed at once
		delay = time.Duration(rank) * g.scaled(g.c.cfg.CommitTimeout, beatGroup)
	}
	g.debug("commit timer", "rank", rank, "delay", delay, "intents", len(mine), "proposals", g.proposals)
	g.timer, g.timerAt = time.NewTimer(delay), cur
}

// batchDelay is how long changes are gathered before they are committed or proposed:
// Config.BatchDelay, grown with the group as the heartbeat is.
func (g *group) batchDelay() time.Duration { return g.scaled(g.c.cfg.BatchDelay, beatGroup) }

// gatherMax bounds, in batchDelays, how long proposeSoon gathers changes that keep coming.
const gatherMax = 8

// proposeSoon proposes our changes not yet proposed in the epoch we are then in, in one
// frame, once no new one has come for batchDelay (and at most gatherMax batchDelays after
// the first). Changes asked for together (a batch of joiners, each on a join request of
// its own) go out together, and the committer, which commits batchDelay after the first
// proposal it gets, takes them in one commit. Proposed in a frame each, they reached a
// busy committer apart: at 200 peers on the simulated network, every commit took one
// joiner of the ten let in at once. Proposed batchDelay after the first, they still went
// in two or three frames there, as the join requests of a batch came over seconds; the
// committer often got the smaller frame first (frames are validated concurrently), and
// the others were void in the next epoch and went again.
func (g *group) proposeSoon() {
	if g.proposing {
		return
	}
	g.proposing, g.gatherFrom = true, time.Now()
	g.proposeAfter(g.batchDelay())
}

func (g *group) proposeAfter(d time.Duration) {
	time.AfterFunc(d, func() { g.post(g.proposeDue) })
}

// proposeDue is proposeSoon's timer: it proposes what is due, or gathers on.
func (g *group) proposeDue() {
	if !g.active() {
		g.proposing = false
		return
	}
	cur := g.mls.Epoch()
	var due []*intent
	var latest time.Time
	for _, in := range g.intents {
		if in.at == nil && in.kind != intentLeave && in.proposed != cur+1 {
			due = append(due, in)
			if in.created.After(latest) {
				latest = in.created
			}
		}
	}
	now := time.Now()
	bd := g.batchDelay()
	if wait := min(latest.Add(bd).Sub(now), g.gatherFrom.Add(gatherMax*bd).Sub(now)); len(due) > 0 && wait > 0 {
		g.proposeAfter(wait)
		return
	}
	g.proposing = false
	g.propose(due)
}

// propose sends intents as proposals, in one frame (maxFrameProposals at most), saved
// with the state that made them before it leaves.
func (g *group) propose(ins []*intent) {
	cur := g.mls.Epoch()
	var hs [][]byte
	for _, in := range ins {
		if sealed, ok := g.proposal(in); ok {
			hs = append(hs, sealed)
		}
	}
	var frames [][]byte
	for c := range slices.Chunk(hs, maxFrameProposals) {
		frames = append(frames, (&proposalFrame{epoch: cur, hs: c}).marshal())
	}
	if len(frames) == 0 {
		return
	}
	wire := make([]store.WireItem, len(frames))
	for i, frame := range frames {
		g.seen.add(frameHash(frame))
		wire[i] = store.WireItem{Epoch: cur, Kind: store.WireMessage, Data: frame, Sender: g.c.self}
	}
	if err := g.save(g.c.ctx, &change{wire: wire}); err != nil {
		g.errorf("chat: save: %w", err)
		return
	}
	for _, frame := range frames {
		if err := g.topic.Publish(g.c.ctx, frame); err != nil {
			g.errorf("chat: publish proposal: %w", err)
		}
	}
}

// proposal makes the sealed proposal of an intent; false if there is none to send.
func (g *group) proposal(in *intent) ([]byte, bool) {
	var p mlsgroup.Proposal
	switch in.kind {
	case intentAdd:
		p.Add = in.kp
	case intentRemove:
		leaf, ok := g.removing(in)
		if !ok {
			return nil, false
		}
		p.Remove = &leaf
	case intentRename:
		p.Extensions = g.extensionsWithName(in.name)
	case intentLeave:
		leaf := g.mls.LeafIndex()
		p.Remove = &leaf
	case intentReadd:
		return nil, false // not expressible as proposals (the Add would duplicate the old leaf): committed by value
	}
	msg, err := g.mls.Propose(p, false)
	if err != nil {
		in.finish(fmt.Errorf("chat: propose: %w", err))
		g.dropIntent(in)
		return nil, false
	}
	sealed, err := g.hs.Seal(&layers.Context{Group: g.id, Sender: g.c.self}, msg)
	if err != nil {
		g.errorf("chat: %w", err)
		return nil, false
	}
	cur := g.mls.Epoch()
	g.debug("proposed", "kind", in.kind)
	in.proposed = cur + 1
	g.proposals++
	me := g.mls.LeafIndex()
	if p.Remove != nil {
		g.removers[*p.Remove] = me
	}
	if p.Extensions != nil {
		g.renamer = &me
	}
	return sealed, true
}

func (g *group) dropIntent(in *intent) {
	for i, x := range g.intents {
		if x == in {
			g.intents = append(g.intents[:i], g.intents[i+1:]...)
			return
		}
	}
}

// extensionsWithName returns the group's GroupContext extensions with the name set.
func (g *group) extensionsWithName(name string) map[uint16][]byte {
	exts := map[uint16][]byte{ExtensionGroupName: []byte(name)}
	if b, ok := g.mls.Extension(layers.ExtensionPolicy); ok {
		exts[layers.ExtensionPolicy] = b
	}
	return exts
}

// receiveProposal keeps a member's proposals for the commit of this epoch.
func (g *group) receiveProposal(f *proposalFrame, raw []byte) {
	if !g.active() {
		return
	}
	hh := frameHash(raw)
	if g.seen.has(hh) {
		return
	}
	cur := g.mls.Epoch()
	if f.epoch > cur {
		g.stash(clone(raw))
		return
	}
	if f.epoch < cur {
		// Its epoch is over (the proposer proposes again if it still wants it), but a
		// competing commit for that epoch may refer to it.
		// Not marked as seen: a switch that goes back further drops the proposals kept
		// with this epoch, and on the branch it moves to, a copy from a sync must be
		// taken.
		if rec := g.histAt(f.epoch); rec != nil {
			n := len(rec.props)
			for _, hs := range f.hs {
				rec.props = keepForeign(rec.props, hs)
			}
			if len(rec.props) != n {
				g.markHist(f.epoch)
			}
		}
		return
	}
	var proposer []byte
	opened, took := false, false
	for _, hs := range f.hs {
		who, o, ok := g.takeProposal(hs)
		opened = opened || o
		if ok && !took {
			proposer, took = who, true
		}
	}
	if opened {
		g.seen.add(hh) // a copy again would be refused again
	}
	if !took {
		return
	}
	// Logged for sync: a member catching up needs it before the commit that refers to it.
	// Logged with its sender, so that a sync for another sender's messages leaves it out.
	// Saved as received messages are (see flush), not with a state of its own: while a
	// large group forms, proposals come by the dozen, and the state is hundreds of KB.
	// A crash before the state is saved loses the proposal from it; the commit that
	// refers to it then does not apply, and a sync brings both.
	g.pend.wire = append(g.pend.wire, store.WireItem{Epoch: cur, Kind: store.WireMessage, Data: clone(raw), Sender: proposer})
	g.flushSoon()
	g.retryFuture(nil) // a commit may have been waiting for it
	if g.mls.Epoch() == cur {
		g.drive()
	}
}

// takeProposal opens and processes one proposal envelope of this epoch. It returns the
// proposer's identity (nil for a proposal not by a member), whether it opened and
// whether it was taken.
func (g *group) takeProposal(hs []byte) (proposer []byte, opened, taken bool) {
	// A proposal that does not open or is refused is not the user's concern (nothing
	// they can do about it); one for our epoch number that fails authentication is most
	// likely of another branch, kept for judging that branch's commit.
	inner, err := g.openHandshake(g.mls, hs)
	if err != nil {
		g.debug("a proposal did not open", "err", err)
		return nil, false, false
	}
	p, err := g.mls.Process(inner)
	if errors.Is(err, mlsgroup.ErrAuth) {
		// Reported as not opened, so that receiveProposal does not mark it seen: a
		// switch to its branch that goes back further than this epoch drops g.foreign,
		// and there a copy from a sync must be taken. (In a 20-peer fault run, seed 71,
		// two members that switched waited 16 s for a proposal they had dropped so.)
		g.debug("a proposal was refused", "err", err)
		g.foreign = keepForeign(g.foreign, hs)
		return nil, false, false
	}
	if err != nil {
		g.debug("a proposal was refused", "err", err)
		return nil, true, false
	}
	if p.Kind != mlsgroup.KindProposal {
		g.errorf("chat: a proposal frame held something else than a proposal")
		return nil, true, false
	}
	g.proposals++
	if p.SenderKind != mlsgroup.SenderMember {
		return nil, true, true
	}
	if p.Removed != nil {
		g.removers[*p.Removed] = p.Sender
	}
	if p.Extensions {
		sender := p.Sender
		g.renamer = &sender
	}
	return g.roster().ident[p.Sender], true, true
}

// maxForeign bounds the proposals of other branches kept for one epoch.
const maxForeign = 64

// keepForeign adds the proposal envelope hs to props, the proposals of other branches
// kept for one epoch, unless it is there already or props is full.
func keepForeign(props [][]byte, hs []byte) [][]byte {
	if len(props) >= maxForeign || slices.ContainsFunc(props, func(b []byte) bool { return bytes.Equal(b, hs) }) {
		return props
	}
	return append(props, hs)
}

// commitDue commits our intents and the proposals received, when the commit timer fires.
func (g *group) commitDue() {
	cur := g.mls.Epoch()
	if !g.active() || g.timerAt != cur {
		g.drive()
		return
	}
	var mine []*intent
	for _, in := range g.intents {
		if in.at == nil && in.kind != intentLeave {
			mine = append(mine, in)
		}
	}
	buildOf := func(mine []*intent, byRef bool) mlsgroup.CommitOptions {
		// The Welcome travels with the commit to every member; its tree would make
		// that O(members) per member, so joiners get the tree over a stream.
		opts := mlsgroup.CommitOptions{ReferencePending: byRef}
		for _, in := range mine {
			if byRef && in.proposed == cur+1 {
				continue // in the pending proposals
			}
			switch in.kind {
			case intentAdd:
				opts.Add = append(opts.Add, in.kp)
			case intentRemove:
				if leaf, ok := g.removing(in); ok {
					opts.Remove = append(opts.Remove, leaf)
				}
			case intentRename:
				opts.Extensions = g.extensionsWithName(in.name)
			case intentReadd:
				if leaf, ok := g.leafOf(in.who); ok {
					opts.Remove = append(opts.Remove, leaf)
				}
				opts.Add = append(opts.Add, in.kp) // its old leaf gone (removed since), a plain add
			}
		}
		return opts
	}
	build := func(byRef bool) mlsgroup.CommitOptions { return buildOf(mine, byRef) }
	opts := build(g.proposals > 0)
	if !opts.ReferencePending && len(opts.Add) == 0 && len(opts.Remove) == 0 && opts.Extensions == nil {
		return
	}
	pc, err := g.mls.Commit(opts)
	if err != nil && opts.ReferencePending {
		// A proposal received cannot be committed (it conflicts with another, or removes
		// us): commit our own changes alone.
		opts = build(false)
		if len(opts.Add) == 0 && len(opts.Remove) == 0 && opts.Extensions == nil {
			g.proposals = 0
			return
		}
		pc, err = g.mls.Commit(opts)
	}
	g.debug("committing", "proposals", g.proposals, "by_ref", opts.ReferencePending, "adds", len(opts.Add), "removes", len(opts.Remove))
	if err != nil {
		// Only the changes that fail on their own are given up; the others are made in
		// the next commit.
		bad := mine
		if len(mine) > 1 {
			bad = nil
			for _, in := range mine {
				if _, err := g.mls.Commit(buildOf([]*intent{in}, false)); err != nil {
					bad = append(bad, in)
				}
			}
			if len(bad) == 0 {
				bad = mine // they fail together only
			}
		}
		g.errorf("chat: a commit of %d changes failed, %d of them given up: %w", len(mine), len(bad), err)
		for _, in := range bad {
			in.finish(fmt.Errorf("chat: commit: %w", err))
			g.dropIntent(in)
		}
		if len(bad) < len(mine) {
			g.drive()
		}
		return
	}
	g.commitPending(pc)
}

// commitPending seals, applies, saves and publishes our own commit.
func (g *group) commitPending(pc *mlsgroup.PendingCommit) {
	before := g.mls.Members()
	order := rankOrder(g.mls)
	state, err := g.mls.MarshalBinary()
	if err != nil {
		g.errorf("chat: %w", err)
		return
	}
	auth := g.mls.EpochAuthenticator()
	cur := g.mls.Epoch()
	// The handshake cascade takes commits of the current epoch: seal before the merge.
	sealed, err := g.hs.Seal(&layers.Context{Group: g.id, Sender: g.c.self}, pc.Message)
	if err != nil {
		g.errorf("chat: %w", err)
		return
	}
	f := &commitFrame{epoch: cur, hs: sealed, welcome: pc.Welcome}
	raw := f.marshal()
	if err := g.mls.Merge(pc); err != nil {
		g.errorf("chat: %w", err)
		return
	}
	hh := sha256.Sum256(sealed)
	g.seen.add(hh)
	g.debug("committed")
	g.pushHist(epochRec{epoch: cur, auth: auth, state: state, frame: raw,
		key: commitKey{rankOf(order, g.mls.LeafIndex()), hh}, idents: idents(before)})
	g.afterCommit(before, g.c.self, f, raw, nil) // saves the new epoch before the commit leaves
	if err := g.topic.Publish(g.c.ctx, raw); err != nil {
		g.errorf("chat: publish commit: %w", err)
	}
}

// endIntents ends our changes once we are out of the group: a leave is done, the others
// cannot be, except those a commit did already on our branch, if a later commit of the
// same branch (mine is true) removed us. Such an add still gets its Welcome to the
// joiner (see addWith): left without it, the joiner would keep a leaf in the group
// that no one holds, and no one else can send it.
func (g *group) endIntents(mine bool) {
	g.stopTimer()
	for _, in := range g.intents {
		switch {
		case in.kind == intentLeave:
			in.finish(nil)
		case mine && in.at != nil && (in.welcome != nil || in.kind != intentAdd && in.kind != intentReadd):
			in.finish(nil)
		default:
			in.finish(ErrNotMember)
		}
	}
	g.intents = nil
}

// wait waits for an intent's result.
func (g *group) wait(ctx context.Context, in *intent) (intentResult, error) {
	select {
	case <-in.done:
		return in.result, in.result.err
	case <-ctx.Done():
		return intentResult{}, ctx.Err()
	case <-g.c.ctx.Done():
		return intentResult{}, ErrClosed
	case <-g.done:
		select {
		case <-in.done:
			return in.result, in.result.err
		default:
			// A Join or a Welcome replaced the group before the change was made.
			return intentResult{}, g.stopped()
		}
	}
}
