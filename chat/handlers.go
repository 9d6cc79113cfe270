package chat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/signal"
	"github.com/tchat-p2p/tchat/mlsgroup"
	"github.com/tchat-p2p/tchat/net/proto"
)

// newSignalIdentity makes fresh signal keys for one group, and the leaf extensions that
// publish their prekey bundle through the MLS tree.
func (c *Client) newSignalIdentity() (*signal.Identity, map[uint16][]byte, error) {
	id, err := signal.NewIdentity(c.signer)
	if err != nil {
		return nil, nil, err
	}
	b, err := id.Bundle().MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	return id, map[uint16][]byte{layers.ExtensionSignalPrekeys: b}, nil
}

// newKeyPackage makes a KeyPackage for joining one group, with fresh signal keys in its
// leaf.
func (c *Client) newKeyPackage() (*signal.Identity, *mlsgroup.KeyPackageBundle, error) {
	sigID, leafExt, err := c.newSignalIdentity()
	if err != nil {
		return nil, nil, err
	}
	bundle, err := mlsgroup.NewKeyPackage(c.sigKey, c.self, mlsgroup.KeyPackageOptions{
		Extensions:          leafExt,
		SupportedExtensions: supportedExtensions,
	})
	if err != nil {
		return nil, nil, err
	}
	return sigID, bundle, nil
}

// joined starts a group we entered by a Welcome for bundle.
func (c *Client) joined(ctx context.Context, mg *mlsgroup.Group, name string, room []byte, sigID *signal.Identity, bundle *mlsgroup.KeyPackageBundle) (GroupID, error) {
	g, err := c.newGroup(mg, name, room, sigID, nil)
	if err != nil {
		return "", err
	}
	g.joinBundle, g.joinSig, g.joinUntil = bundle, sigID, time.Now().Add(c.cfg.IntentTimeout)
	if err := g.save(ctx, nil); err != nil {
		return "", err
	}
	if err := c.start(g); err != nil {
		return "", err
	}
	// At once: until it is on its way to a member, our messages carry the key for it.
	g.post(func() { g.handOutKey(nil, 1, 0) })
	g.post(func() { g.resendEarlier(g.c.ctx) })
	c.emit(EpochChanged{Group: g.gid, Epoch: mg.Epoch(), Authenticator: mg.EpochAuthenticator()[:authPrefix]})
	return g.gid, nil
}

// ReasonAlreadyIn is the reason of a refusal (proto.RemoteError) of a join request from
// a member of the group, and of a Welcome (/tchat/welcome/2) to a group we are in.
const ReasonAlreadyIn = "already a member"

type joinHandler struct{ c *Client }

// HandleJoin answers /tchat/join/2: it checks the proof and the invite, asks the group to
// add the joiner, and returns the Welcome once the commit that adds it has settled.
func (h joinHandler) HandleJoin(ctx context.Context, from peer.ID, req *proto.JoinRequest) (*proto.JoinResponse, error) {
	g, err := h.c.group(groupIDOf(req.GroupID))
	if err != nil {
		return nil, proto.Refuse(proto.CodeNotFound, "not a member of this group")
	}
	kp := bytes.Clone(req.KeyPackage)
	proof := bytes.Clone(req.InviteProof)
	var in *intent
	var again *proto.JoinResponse
	err = g.do(ctx, func() error {
		x, err := g.admit(ctx, from, kp, proof)
		var done *joinAnswered
		switch {
		case errors.As(err, &done):
			again, err = done.resp, nil
		case errors.Is(err, errJoinAgain):
			// The same request again: its answer was lost (the joiner timed out, the
			// stream broke). It gets the answer of the first, not a second leaf.
			in, again, err = g.joinAgain(x)
		case err == nil:
			in = g.want(x)
		}
		return err
	})
	if again != nil {
		return again, nil
	}
	if err == nil {
		start := time.Now()
		var r intentResult
		r, err = g.wait(ctx, in)
		h.c.cfg.Logger.Debug("join answered", "group", g.gid[:8], "joiner", from, "waited", time.Since(start), "err", err, "welcome", len(r.welcome), "tree", len(r.tree))
		if err == nil {
			return &proto.JoinResponse{Welcome: r.welcome, RatchetTree: r.tree}, nil
		}
	}
	var re *proto.RemoteError
	if errors.As(err, &re) {
		return nil, err
	}
	h.c.emit(Error{Group: g.gid, Err: fmt.Errorf("chat: join from %s: %w", from, err)})
	return nil, proto.Refuse(proto.CodeInternal, "")
}

// admit checks a join request: the proof, the invite, and that the KeyPackage is the
// requester's own. It returns the intent that adds the joiner.
func (g *group) admit(ctx context.Context, from peer.ID, kp, proof []byte) (*intent, error) {
	if !g.active() {
		return nil, proto.Refuse(proto.CodeNotFound, "not a member of this group")
	}
	if len(proof) == 0 {
		return g.readmit(from, kp)
	}
	if len(proof) < inviteIDSize+sha256.Size {
		return nil, proto.Refuse(proto.CodeRefused, "invalid invite proof")
	}
	inviteID, ok := checkJoinProof(g.room, proof[:inviteIDSize+sha256.Size], from, kp)
	if !ok {
		return nil, proto.Refuse(proto.CodeRefused, "invalid invite proof")
	}
	if err := g.learnInvite(ctx, inviteID, proof[inviteIDSize+sha256.Size:]); err != nil {
		return nil, err
	}
	who, _, err := mlsgroup.KeyPackageIdentity(kp)
	if err != nil {
		return nil, proto.Refuse(proto.CodeRefused, "key package refused: "+err.Error())
	}
	if peerOf(who) != from {
		return nil, proto.Refuse(proto.CodeRefused, "the key package is not the requester's")
	}
	for _, x := range g.intents {
		if x.kind == intentAdd && bytes.Equal(x.kp, kp) {
			return x, errJoinAgain
		}
	}
	if leaf, in := g.leafOf(who); in {
		if resp := g.keptWelcome(kp, leaf); resp != nil {
			return nil, &joinAnswered{resp}
		}
		return nil, proto.Refuse(proto.CodeRefused, ReasonAlreadyIn)
	}
	for _, x := range g.intents {
		if x.kind == intentAdd && bytes.Equal(x.who, who) && x.at == nil {
			return nil, proto.Refuse(proto.CodeRefused, "a join of this peer is already under way")
		}
	}
	inv, err := g.c.st.UseInvite(ctx, inviteID, []byte(from), g.c.cfg.Now())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, proto.Refuse(proto.CodeRefused, "unknown invite")
		}
		if errors.Is(err, store.ErrInviteExpired) || errors.Is(err, store.ErrInviteUsedUp) || errors.Is(err, store.ErrInviteRevoked) {
			return nil, proto.Refuse(proto.CodeRefused, err.Error())
		}
		return nil, err
	}
	if !bytes.Equal(inv.GroupID, g.id) {
		return nil, proto.Refuse(proto.CodeRefused, "the invite is for another group")
	}
	return &intent{kind: intentAdd, kp: kp, who: who}, nil
}

// joinAnswered is admit's answer to a join request whose KeyPackage a commit of our
// branch added: the joiner asks us, as the member that added it did not answer (it
// gave up waiting, or that member is gone), and gets the Welcome of that commit.
type joinAnswered struct{ resp *proto.JoinResponse }

func (*joinAnswered) Error() string { return "chat: joined already" }

// keptWelcome finds, in the commits of the epochs we keep, the Welcome of the one that
// added KeyPackage kp, and the ratchet tree of the epoch it opens (ours, or a kept
// one's), if kp's leaf is the member's leaf now (at index leaf). nil if there is none.
func (g *group) keptWelcome(kp []byte, leaf uint32) *proto.JoinResponse {
	ext, err := mlsgroup.KeyPackageLeafExtension(kp, layers.ExtensionSignalPrekeys)
	if err != nil {
		return nil
	}
	var now []byte // (both nil in a group without the signal layer: WelcomeFor tells)
	for _, m := range g.mls.Members() {
		if m.LeafIndex == leaf {
			now = m.Extensions[layers.ExtensionSignalPrekeys]
		}
	}
	if !bytes.Equal(now, ext) {
		return nil // the member holds another leaf since
	}
	for i := len(g.hist) - 1; i >= 0; i-- {
		f, err := parseCommitFrame(g.hist[i].frame)
		if err != nil || len(f.welcome) == 0 {
			continue
		}
		if ok, err := mlsgroup.WelcomeFor(f.welcome, kp); err != nil || !ok {
			continue
		}
		var tree []byte
		if e := g.hist[i].epoch + 1; e == g.mls.Epoch() {
			tree, err = g.mls.RatchetTree()
		} else if i+1 < len(g.hist) && g.hist[i+1].epoch == e {
			var mg *mlsgroup.Group
			if mg, err = mlsgroup.Restore(g.hist[i+1].state, g.c.mlsOptions()); err == nil {
				tree, err = mg.RatchetTree()
			}
		}
		if err != nil || tree == nil {
			return nil
		}
		return &proto.JoinResponse{Welcome: clone(f.welcome), RatchetTree: tree}
	}
	return nil
}

// errJoinAgain is admit's answer to a join request with the KeyPackage of an add
// already under way or done here: the intent it returns is that add's.
var errJoinAgain = errors.New("chat: the same join again")

// joinAgain answers a join request that repeats one whose add in is under way or done:
// the caller waits for in (wait) or has the answer at once (resp). An add done, then
// undone by a switch to another branch and not done again yet, is refused as under way.
func (g *group) joinAgain(in *intent) (wait *intent, resp *proto.JoinResponse, err error) {
	if !in.finished {
		return in, nil, nil
	}
	if in.at == nil || in.welcome == nil {
		return nil, nil, proto.Refuse(proto.CodeRefused, "a join of this peer is already under way")
	}
	return nil, &proto.JoinResponse{Welcome: clone(in.welcome), RatchetTree: clone(in.tree)}, nil
}

// learnInvite records an invite another member issued, from the token a joiner sent with
// its proof, so that this member can admit the joiner: the token must be signed by a
// member of the group, name this group, its room secret and invite id, and be valid. The
// use count is then kept by each admitting member on its own.
func (g *group) learnInvite(ctx context.Context, inviteID []byte, token []byte) error {
	if len(token) == 0 {
		return nil
	}
	err := g.c.st.View(ctx, func(tx *store.Tx) error { _, err := tx.Invite(inviteID); return err })
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return err // known (or the store failed)
	}
	inv, err := ParseInvite(string(token))
	if err != nil || !bytes.Equal(inv.ID, inviteID) || !bytes.Equal(inv.GroupID, g.id) ||
		subtle.ConstantTimeCompare(inv.RoomSecret, g.room) != 1 {
		return proto.Refuse(proto.CodeRefused, "invalid invite token")
	}
	pub, err := identity.PublicKeyFromPeerID(inv.Inviter)
	if err != nil {
		return proto.Refuse(proto.CodeRefused, "invalid invite token")
	}
	if _, member := g.leafOf(pub.Bytes()); !member {
		return proto.Refuse(proto.CodeRefused, "the invite was not issued by a member")
	}
	if err := inv.Check(g.c.cfg.Now()); err != nil {
		return proto.Refuse(proto.CodeRefused, err.Error())
	}
	return g.c.st.PutInvite(ctx, store.Invite{
		ID: inv.ID, GroupID: g.id, CreatedAt: g.c.cfg.Now(), ExpiresAt: inv.Expires, MaxUses: int(inv.MaxUses), Token: token,
	})
}

type syncHandler struct{ c *Client }

// maxSyncItems and maxSyncBytes bound one sync answer; the requester asks again for more.
// (A variable for tests, which make syncs take many answers.)
var maxSyncItems = 2000

const maxSyncBytes = 8 << 20

// HandleSync answers /tchat/sync/1 for a member of the group (on our branch, now or in
// one of the epochs we keep): the commits and messages we have from SinceEpoch, and a
// GroupInfo if asked.
func (h syncHandler) HandleSync(ctx context.Context, from peer.ID, req *proto.SyncRequest) (*proto.SyncResponse, error) {
	g, ident, err := h.c.requester(req.GroupID, from)
	if err != nil {
		return nil, err
	}
	id := string(ident)
	allowed := false
	var info []byte
	lacks := req.Want&proto.WantSenderKey != 0 && bytes.Equal(req.Sender, h.c.self)
	err = g.do(ctx, func() error {
		_, allowed = g.roster().leaf[id]
		if allowed && lacks {
			g.keyLacked(ident, req.SinceEpoch)
		}
		for _, r := range g.hist {
			allowed = allowed || r.idents[id]
		}
		if allowed {
			g.flush() // what we received and have not stored yet goes in the answer too
		}
		if allowed && req.Want&proto.WantGroupInfo != 0 && g.active() {
			var err error
			info, err = g.mls.GroupInfo(true)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !allowed {
		return nil, proto.Refuse(proto.CodeRefused, "not a member of this group")
	}
	limit := int(req.MaxItems)
	if limit <= 0 || limit > maxSyncItems {
		limit = maxSyncItems
	}
	q := store.WireQuery{
		Commits: req.Want&proto.WantCommits != 0, CommitsFrom: req.SinceEpoch,
		Messages: req.Want&proto.WantRecent != 0, MessagesFrom: req.RecentFrom(),
		Sender: req.Sender, After: store.WireCursor{Epoch: req.After.Epoch, Seq: int64(min(req.After.Seq, math.MaxInt64))},
		Limit: limit,
	}
	resp := &proto.SyncResponse{GroupInfo: info}
	items, more, err := h.c.st.WireRead(ctx, g.id, q)
	if err != nil {
		return nil, err
	}
	resp.More = more
	size := len(info)
	for i, it := range items {
		if size+len(it.Data) > maxSyncBytes && i > 0 {
			resp.More = true
			break
		}
		if it.Kind == store.WireCommit {
			resp.Commits = append(resp.Commits, syncItem(it.Epoch, it.Data))
		} else {
			resp.Recent = append(resp.Recent, syncItem(it.Epoch, it.Data))
		}
		resp.Next = proto.SyncCursor{Epoch: it.Epoch, Seq: uint64(it.Seq)}
		size += len(it.Data) + 8
	}
	return resp, nil
}

// offeredKP is a KeyPackage handed out over /tchat/kp/1, kept until it expires. One a
// Welcome came for stays too: a commit that added us on a branch that lost is made again,
// with the same KeyPackage, on the branch that won, and its Welcome must open as well.
type offeredKP struct {
	to      peer.ID
	sigID   *signal.Identity
	bundle  *mlsgroup.KeyPackageBundle
	at      time.Time // when it was handed out
	expires time.Time
}

// maxOffered bounds the KeyPackages handed out and not expired.
const maxOffered = 64

type kpHandler struct{ c *Client }

// HandleKeyPackage answers /tchat/kp/1: a fresh KeyPackage, for a member that wants to
// add us to a group.
func (h kpHandler) HandleKeyPackage(ctx context.Context, from peer.ID, req *proto.KeyPackageRequest) (*proto.KeyPackageResponse, error) {
	if req.CipherSuite != 0 && req.CipherSuite != uint16(mlsgroup.DefaultCipherSuite) {
		return nil, proto.Refuse(proto.CodeRefused, "unsupported cipher suite")
	}
	// Asked before anything is committed, so a declined add leaves no trace in the group.
	if h.c.cfg.AcceptAdd != nil && !h.c.cfg.AcceptAdd(from, groupIDOf(req.GroupID), "") {
		return nil, proto.Refuse(proto.CodeRefused, "declined")
	}
	sigID, bundle, err := h.c.newKeyPackage()
	if err != nil {
		return nil, err
	}
	c := h.c
	c.mu.Lock()
	now := time.Now()
	keep := c.kps[:0]
	for _, o := range c.kps {
		if now.Before(o.expires) {
			keep = append(keep, o)
		}
	}
	c.kps = keep
	if len(c.kps) >= maxOffered {
		c.mu.Unlock()
		return nil, proto.Refuse(proto.CodeUnavailable, "too many key packages handed out")
	}
	c.kps = append(c.kps, &offeredKP{to: from, sigID: sigID, bundle: bundle, at: now, expires: now.Add(10 * time.Minute)})
	c.mu.Unlock()
	return &proto.KeyPackageResponse{KeyPackage: bundle.KeyPackage()}, nil
}

type welcomeHandler struct{ c *Client }

// HandleWelcome answers /tchat/welcome/2: a member added us with one of the KeyPackages
// we handed it, and sends the Welcome with the group's room secret and name.
func (h welcomeHandler) HandleWelcome(ctx context.Context, from peer.ID, req *proto.WelcomeRequest) (*proto.WelcomeResponse, error) {
	c := h.c
	if len(req.RoomSecret) != roomSize || checkName("group name", req.Name) != nil {
		return nil, proto.Refuse(proto.CodeBadRequest, "bad room secret or name")
	}
	c.welcoming.Lock()
	defer c.welcoming.Unlock()
	gid := groupIDOf(req.GroupID)
	if c.cfg.AcceptAdd != nil && !c.cfg.AcceptAdd(from, gid, req.Name) {
		return nil, proto.Refuse(proto.CodeRefused, "declined")
	}
	// The KeyPackages handed to from first; then the others: a member whose add was
	// done by another member's commit (both asked for us at once) forwards that
	// commit's Welcome, for the KeyPackage we handed the other.
	c.mu.Lock()
	var offers, others []*offeredKP
	for _, o := range c.kps {
		if o.to == from {
			offers = append(offers, o)
		} else {
			others = append(others, o)
		}
	}
	offers = append(offers, others...)
	c.mu.Unlock()
	var failed error // why a Welcome addressed to one of our KeyPackages did not open
	for _, o := range offers {
		mg, err := mlsgroup.Join(req.Welcome, o.bundle, req.RatchetTree, c.mlsOptions())
		if err != nil {
			if !errors.Is(err, mlsgroup.ErrNotForUs) && failed == nil {
				failed = err
			}
			continue
		}
		if !bytes.Equal(mg.GroupID(), req.GroupID) {
			return nil, proto.Refuse(proto.CodeRefused, "the Welcome is for another group")
		}
		// A member added us afresh, so its branch has no leaf of ours. If we are in the
		// group, but behind the Welcome's epoch, or entered the group before the member
		// asked us for the KeyPackage, our branch is stale (it lost, or removed us there,
		// while we were away): we take the Welcome, where we used to answer that we are
		// in and leave a leaf no one holds in the member's branch. Otherwise two branches
		// compete (two members added us at once), and ours may win.
		end := c.swapping(gid)
		defer end()
		if err := c.dropGroup(ctx, gid, mg.Epoch(), o.at); err != nil {
			if errors.Is(err, ErrAlreadyIn) {
				return nil, proto.Refuse(proto.CodeRefused, ReasonAlreadyIn)
			}
			return nil, err
		}
		if _, err := c.joined(ctx, mg, req.Name, bytes.Clone(req.RoomSecret), o.sigID, o.bundle); err != nil {
			return nil, err
		}
		return &proto.WelcomeResponse{}, nil
	}
	// Another member's commit added us, and this one forwards its Welcome, for a
	// KeyPackage we used when that member's Welcome came: we answer that we are in, if
	// we are.
	if _, err := c.stale(ctx, gid, 0, time.Time{}); err != nil {
		if errors.Is(err, ErrAlreadyIn) {
			return nil, proto.Refuse(proto.CodeRefused, ReasonAlreadyIn)
		}
		return nil, err
	}
	if failed != nil {
		return nil, proto.Refuse(proto.CodeRefused, "the Welcome for our KeyPackage does not open: "+failed.Error())
	}
	return nil, proto.Refuse(proto.CodeRefused, "no KeyPackage of ours handed to this peer opens the Welcome")
}

// Add adds a known peer to a group: its KeyPackage is fetched from it over /tchat/kp/1,
// a commit adds it, and once the commit has settled the Welcome, the room secret and the
// group's name go to it over /tchat/welcome/2.
func (c *Client) Add(ctx context.Context, id GroupID, p peer.AddrInfo) error {
	g, err := c.group(id)
	if err != nil {
		return err
	}
	if p.ID == c.PeerID() {
		return ErrAlreadyIn
	}
	if len(p.Addrs) > 0 {
		if err := c.node.Connect(ctx, p); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnreachable, p.ID, err)
		}
	}
	resp, err := c.node.KeyPackage(ctx, p.ID, &proto.KeyPackageRequest{GroupID: g.id, CipherSuite: uint16(mlsgroup.DefaultCipherSuite)})
	if err != nil {
		var re *proto.RemoteError
		if !errors.As(err, &re) {
			err = fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return fmt.Errorf("chat: key package from %s: %w", p.ID, err)
	}
	return c.addWith(ctx, g, p.ID, resp.KeyPackage)
}

// addAgain adds p to group g again, with a KeyPackage fetched from it (see madeAgain).
func (c *Client) addAgain(ctx context.Context, g *group, p peer.ID) error {
	resp, err := c.node.KeyPackage(ctx, p, &proto.KeyPackageRequest{GroupID: g.id, CipherSuite: uint16(mlsgroup.DefaultCipherSuite)})
	if err != nil {
		return fmt.Errorf("chat: key package from %s: %w", p, err)
	}
	return c.addWith(ctx, g, p, resp.KeyPackage)
}

// addWith adds p to group g with its KeyPackage kp, and sends it the Welcome.
func (c *Client) addWith(ctx context.Context, g *group, p peer.ID, kp []byte) error {
	who, _, err := mlsgroup.KeyPackageIdentity(kp)
	if err != nil {
		return fmt.Errorf("chat: key package from %s: %w", p, err)
	}
	if peerOf(who) != p {
		return fmt.Errorf("chat: %s answered with someone else's key package", p)
	}
	var name string
	r, err := c.change(ctx, g.gid, func(g *group) (*intent, error) {
		name = g.name
		if _, in := g.leafOf(who); in {
			// The member has a leaf, yet handed us a KeyPackage: it may hold the leaf (it
			// is in), or no one may (it lost its state of the group, or a switch of branch
			// brought back a leaf it had left). One heard on our branch lately is in;
			// else the add counts as done by our last commit, and settle finds out which
			// (see leafNotOurs): in, or a leaf no one holds, which the add replaces.
			pi := g.peers[string(who)]
			if len(g.hist) == 0 || pi != nil && g.onOurChain(pi) && time.Since(pi.heard) < 2*g.beat() {
				return nil, ErrAlreadyIn
			}
			last := g.hist[len(g.hist)-1]
			return &intent{kind: intentAdd, kp: kp, who: who, push: true, at: &commitRef{last.epoch, last.key.hash}, doneAt: time.Now()}, nil
		}
		return &intent{kind: intentAdd, kp: kp, who: who, push: true}, nil
	})
	if err != nil {
		return err
	}
	return c.welcome(ctx, g, p, r, name, kp)
}

// welcome sends the joiner p the Welcome of the add r, with KeyPackage kp (with the room
// secret, the group's name and the ratchet tree), and removes p again if it cannot read
// the group: the leaf of kp, not one p holds by another add.
func (c *Client) welcome(ctx context.Context, g *group, p peer.ID, r intentResult, name string, kp []byte) error {
	if _, err := c.node.Welcome(ctx, p, &proto.WelcomeRequest{GroupID: g.id, Welcome: r.welcome, RoomSecret: g.room, Name: name, RatchetTree: r.tree}); err != nil {
		re := (*proto.RemoteError)(nil)
		switch {
		case !errors.As(err, &re):
			err = fmt.Errorf("%w: %w", ErrUnreachable, err)
		case re.Reason == ReasonAlreadyIn:
			// It took a Welcome already: another member added it at the same time,
			// and its commit did ours.
			return nil
		}
		// A member that cannot read the group must not stay in it.
		if rerr := c.removeLeaf(ctx, g.gid, p, kp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("and removing it again failed: %w", rerr))
		}
		return fmt.Errorf("chat: %s did not take the Welcome: %w", p, err)
	}
	return nil
}

type senderKeyHandler struct{ c *Client }

// HandleSenderKey answers /tchat/senderkey/1: a member hands us its signal sender key
// (see handOutKey), and we install it and save it before we answer.
func (h senderKeyHandler) HandleSenderKey(ctx context.Context, from peer.ID, req *proto.SenderKeyRequest) (*proto.SenderKeyResponse, error) {
	g, member, err := h.c.requester(req.GroupID, from)
	if err != nil {
		return nil, err
	}
	key := bytes.Clone(req.Key)
	var saved <-chan error
	err = g.do(ctx, func() error {
		if g.sig == nil || !g.active() {
			return proto.Refuse(proto.CodeNotFound, "not a member of this group")
		}
		if _, ok := g.roster().leaf[string(member)]; !ok {
			// Perhaps added by a commit that has not reached us yet.
			return proto.Refuse(proto.CodeUnavailable, "not a member here (yet)")
		}
		if err := g.takeKey(member, key); err != nil {
			g.debug("a sender key did not open", "from", from, "err", err)
			return proto.Refuse(proto.CodeRefused, "the sender key does not open")
		}
		saved = g.saveSignalSoon()
		return nil
	})
	if err != nil {
		return nil, err
	}
	select {
	case err := <-saved:
		if err != nil {
			g.post(func() { g.errorf("chat: save: %w", err) })
			return nil, proto.Refuse(proto.CodeInternal, "")
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &proto.SenderKeyResponse{}, nil
}

// requester finds the group a request names and the requester's identity (whether it is
// a member is the handler's to check), or the refusal to answer with.
func (c *Client) requester(groupID []byte, from peer.ID) (*group, []byte, error) {
	g, err := c.group(groupIDOf(groupID))
	if err != nil {
		return nil, nil, proto.Refuse(proto.CodeNotFound, "not a member of this group")
	}
	pub, err := identity.PublicKeyFromPeerID(from)
	if err != nil {
		return nil, nil, proto.Refuse(proto.CodeRefused, "not a member of this group")
	}
	return g, pub.Bytes(), nil
}
