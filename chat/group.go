package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/aes"
	"github.com/tchat-p2p/tchat/layers/mls"
	"github.com/tchat-p2p/tchat/layers/signal"
	"github.com/tchat-p2p/tchat/mlsgroup"
	"github.com/tchat-p2p/tchat/net/gossip"
	"github.com/tchat-p2p/tchat/net/proto"
)

// maxPending bounds the messages kept for an epoch we have not reached yet.
const maxPending = 1024

// group is one group's state. Everything but the immutable fields (gid, id, room, name,
// topic once started) is touched only by its actor goroutine (run).
type group struct {
	c     *Client
	gid   GroupID
	id    []byte
	name  string
	room  []byte
	mls   *mlsgroup.Group
	app   *layers.Cascade // the conversation's policy
	hs    *layers.Cascade // handshakes: mls,aes
	topic *gossip.Topic
	ops   chan func()

	sigID *signal.Identity // our signal keys in this group (nil without a signal layer)
	sig   *signal.Layer    // nil without a signal layer

	pending   [][]byte // messages of a future epoch, retried after each commit
	metaSaved bool     // the room secret, name and signal identity are in the store
}

// newGroup builds a group's cascades. sigID is our signal identity in the group (nil if the
// policy has none); sigState, if not nil, is the signal layer's saved state.
func (c *Client) newGroup(mg *mlsgroup.Group, name string, room []byte, sigID *signal.Identity, sigState []byte) (*group, error) {
	pol, err := mls.GroupPolicy(mg)
	if err != nil {
		return nil, fmt.Errorf("chat: group policy: %w", err)
	}
	key, err := aes.NewKey(room)
	if err != nil {
		return nil, err
	}
	g := &group{
		c: c, gid: groupIDOf(mg.GroupID()), id: mg.GroupID(), name: name, room: room,
		mls: mg, ops: make(chan func()),
	}
	var stack []layers.Layer
	for _, l := range pol.Layers() {
		switch l {
		case layers.Signal:
			if sigID == nil {
				return nil, errors.New("chat: no signal identity for a signal group")
			}
			if g.sig, err = signal.New(c.self, sigID); err != nil {
				return nil, err
			}
			g.sigID = sigID
			if sigState != nil {
				if err := g.sig.UnmarshalBinary(sigState); err != nil {
					return nil, fmt.Errorf("chat: signal state: %w", err)
				}
			} else if err := g.syncPeers(nil); err != nil {
				return nil, err
			}
			stack = append(stack, g.sig)
		case layers.MLS:
			stack = append(stack, mls.New(mg, nil))
		case layers.AES:
			stack = append(stack, aes.New(key, nil))
		default:
			return nil, fmt.Errorf("chat: policy %s: layer %s is not supported by this version", pol, l)
		}
	}
	if g.app, err = layers.NewCascade(pol, stack...); err != nil {
		return nil, err
	}
	if g.hs, err = layers.NewCascade(layers.MustParsePolicy(layers.PolicyHandshake), mls.NewHandshake(mg, nil), aes.New(key, nil)); err != nil {
		return nil, err
	}
	return g, nil
}

// syncPeers gives the signal layer the prekey bundles of the members that are new since
// before (nil: all of them), from their MLS leaves, and forgets removed members.
func (g *group) syncPeers(before map[string]bool) error {
	if g.sig == nil {
		return nil
	}
	now := map[string]bool{}
	for _, m := range g.mls.Members() {
		now[string(m.Identity)] = true
		if m.LeafIndex == g.mls.LeafIndex() || (before != nil && before[string(m.Identity)]) {
			continue
		}
		b, err := signal.ParseBundle(m.Extensions[layers.ExtensionSignalPrekeys])
		if err != nil {
			return fmt.Errorf("chat: member %s has no valid signal prekeys: %w", peerOf(m.Identity), err)
		}
		if err := g.sig.SetPeer(m.Identity, b); err != nil {
			return err
		}
	}
	for id := range before {
		if !now[id] {
			g.sig.RemovePeer([]byte(id))
		}
	}
	return nil
}

func (g *group) identities() map[string]bool {
	s := map[string]bool{}
	for _, m := range g.mls.Members() {
		s[string(m.Identity)] = true
	}
	return s
}

func sigIDKey(groupID []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: []byte{}, Kind: "chat/signal-identity"}
}

func sigLayerKey(groupID []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: []byte{}, Kind: "signal/layer"}
}

func metaKey(groupID []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: []byte{}, Kind: "chat/group"}
}

func marshalMeta(room []byte, name string) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(room) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(name)) })
	return b.BytesOrPanic()
}

func parseMeta(meta []byte) (room []byte, name string, err error) {
	s := cryptobyte.String(meta)
	var r, n cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&r) || len(r) != roomSize || !s.ReadUint8LengthPrefixed(&n) || !s.Empty() {
		return nil, "", errors.New("chat: bad stored group metadata")
	}
	return []byte(r), string(n), nil
}

// save stores the group state (and the group's metadata) with msgs, in one transaction.
func (g *group) save(ctx context.Context, msgs []store.Message) error {
	state, err := g.mls.MarshalBinary()
	if err != nil {
		return err
	}
	var sigState []byte
	if g.sig != nil {
		if sigState, err = g.sig.MarshalBinary(); err != nil {
			return err
		}
	}
	err = g.c.st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.SaveGroupState(g.id, g.mls.Epoch(), state); err != nil {
			return err
		}
		if !g.metaSaved {
			if err := tx.SaveSession(metaKey(g.id), marshalMeta(g.room, g.name)); err != nil {
				return err
			}
			if g.sigID != nil {
				b, err := g.sigID.MarshalBinary()
				if err != nil {
					return err
				}
				if err := tx.SaveSession(sigIDKey(g.id), b); err != nil {
					return err
				}
			}
		}
		if sigState != nil {
			if err := tx.SaveSession(sigLayerKey(g.id), sigState); err != nil {
				return err
			}
		}
		if len(msgs) > 0 {
			if _, err := tx.AppendMessages(msgs); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		g.metaSaved = true
	}
	return err
}

// do runs f on the group's actor and returns its error.
func (g *group) do(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	select {
	case g.ops <- func() { done <- f() }:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.c.ctx.Done():
		return ErrClosed
	}
	return <-done
}

func (g *group) run() {
	defer g.c.wg.Done()
	msgs := g.topic.Messages()
	for {
		select {
		case <-g.c.ctx.Done():
			return
		case f := <-g.ops:
			f()
		case m, ok := <-msgs:
			if !ok {
				return
			}
			g.receive(m.Data)
		}
	}
}

// validate is the topic validator: junk is rejected, the rest goes to the actor.
func (g *group) validate(_ context.Context, _ peer.ID, data []byte) gossip.Result {
	if _, err := layers.PeekPolicy(data); err != nil {
		return gossip.Reject
	}
	return gossip.Accept
}

func (g *group) members() []Member {
	var out []Member
	online := map[peer.ID]bool{}
	for _, p := range g.topic.Peers() {
		online[p] = true
	}
	for _, m := range g.mls.Members() {
		p := peerOf(m.Identity)
		mem := Member{Peer: p, LeafIndex: m.LeafIndex, Self: m.LeafIndex == g.mls.LeafIndex(), Online: online[p]}
		if pub, err := identity.ParsePublicKey(m.Identity); err == nil {
			mem.Fingerprint = pub.Fingerprint()
		}
		if mem.Self {
			mem.Online, mem.Nick = true, g.c.Nick()
		}
		out = append(out, mem)
	}
	return out
}

// state is the group's snapshot for Client.Group.
func (g *group) state(ctx context.Context) GroupState {
	ms := g.members()
	for i := range ms {
		if pub, err := identity.PublicKeyFromPeerID(ms[i].Peer); err == nil {
			ms[i].Verified = g.c.verified(ctx, ms[i].Peer, pub.Bytes())
		}
		if !ms[i].Self && ms[i].Nick == "" {
			if p, err := g.c.st.Peer(ctx, []byte(ms[i].Peer)); err == nil {
				ms[i].Nick = p.Name
			}
		}
	}
	auth := g.mls.EpochAuthenticator()
	return GroupState{
		ID: g.gid, Name: g.name, Policy: g.app.Policy().String(),
		Suite: g.mls.CipherSuite(), SuiteName: g.mls.CipherSuite().String(),
		Epoch: g.mls.Epoch(), Authenticator: auth[:8], Members: ms,
		Active: g.mls.Status() == mlsgroup.Active,
	}
}

// peerOf returns the peer id of a credential identity (an identity public key).
func peerOf(ident []byte) peer.ID {
	pub, err := identity.ParsePublicKey(ident)
	if err != nil {
		return ""
	}
	p, err := pub.PeerID()
	if err != nil {
		return ""
	}
	return p
}

// payload is the plaintext of an application message.
type payload struct {
	ID   string `json:"id"`
	Time int64  `json:"t"` // unix milliseconds
	Text string `json:"text"`
}

func (g *group) recipients() [][]byte {
	var out [][]byte
	for _, m := range g.mls.Members() {
		if m.LeafIndex != g.mls.LeafIndex() {
			out = append(out, m.Identity)
		}
	}
	return out
}

// send seals a text message, saves the state it used and the message, and publishes it.
func (g *group) send(ctx context.Context, text string) error {
	idb := make([]byte, 16)
	if _, err := rand.Read(idb); err != nil {
		return err
	}
	now := g.c.cfg.Now()
	p := payload{ID: hex.EncodeToString(idb), Time: now.UnixMilli(), Text: text}
	pt, err := json.Marshal(p)
	if err != nil {
		return err
	}
	lctx := &layers.Context{Group: g.id, Sender: g.c.self, Recipients: g.recipients()}
	sealed, err := g.app.Seal(lctx, pt)
	if err != nil {
		return fmt.Errorf("chat: seal: %w", err)
	}
	// The key generation used is gone from the state: save before the message leaves.
	if err := g.save(ctx, []store.Message{{
		GroupID: g.id, MsgID: idb, Epoch: lctx.Epoch, Sender: []byte(g.c.node.ID()),
		SentAt: now, ReceivedAt: now, Flags: store.FlagOwn, Content: []byte(text),
	}}); err != nil {
		return fmt.Errorf("chat: save: %w", err)
	}
	if err := g.topic.Publish(ctx, sealed); err != nil {
		return fmt.Errorf("chat: publish: %w", err)
	}
	return nil
}

// receive handles one message from the topic (or one retried from the pending buffer).
func (g *group) receive(data []byte) {
	pol, err := layers.PeekPolicy(data)
	if err != nil {
		return // the validator rejects these
	}
	hsNoKey := false
	if pol == g.hs.Policy() {
		inner, err := g.hs.Open(&layers.Context{Group: g.id}, data)
		if err == nil {
			g.handshake(inner)
			return
		}
		hsNoKey = errors.Is(err, layers.ErrNoKey)
		if !hsNoKey && pol != g.app.Policy() {
			g.c.emit(Error{Group: g.gid, Err: fmt.Errorf("chat: a handshake did not open: %w", err)})
			return
		}
	}
	actx := &layers.Context{Group: g.id}
	pt, err := g.app.Open(actx, data)
	switch {
	case err == nil:
	case errors.Is(err, layers.ErrNoKey) || hsNoKey:
		// A message of an epoch we have not reached (or a handshake of a past one):
		// keep it for after the next commit.
		if len(g.pending) >= maxPending {
			g.pending = g.pending[1:]
		}
		g.pending = append(g.pending, clone(data))
		return
	default:
		g.c.emit(Error{Group: g.gid, Err: fmt.Errorf("chat: a message did not open: %w", err)})
		return
	}
	var p payload
	if err := json.Unmarshal(pt, &p); err != nil {
		g.c.emit(Error{Group: g.gid, Err: fmt.Errorf("chat: malformed message: %w", err)})
		return
	}
	sender := peerOf(actx.Sender)
	idb, err := hex.DecodeString(p.ID)
	if err != nil || len(idb) == 0 || sender == "" {
		g.c.emit(Error{Group: g.gid, Err: errors.New("chat: malformed message id or sender")})
		return
	}
	late := actx.Epoch < g.mls.Epoch()
	flags := store.MessageFlags(0)
	if late {
		flags |= store.FlagLate
	}
	sent := time.UnixMilli(p.Time)
	// The opened message's key generation is gone: save the state with the message.
	if err := g.save(g.c.ctx, []store.Message{{
		GroupID: g.id, MsgID: idb, Epoch: actx.Epoch, Sender: []byte(sender),
		SentAt: sent, ReceivedAt: g.c.cfg.Now(), Flags: flags, Content: []byte(p.Text),
	}}); err != nil {
		g.c.emit(Error{Group: g.gid, Err: fmt.Errorf("chat: save: %w", err)})
	}
	g.c.emit(MessageReceived{Group: g.gid, Sender: sender, ID: p.ID, Text: p.Text, Time: sent, Epoch: actx.Epoch, Late: late})
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// handshake applies a proposal or commit that passed the handshake cascade.
func (g *group) handshake(msg []byte) {
	before := g.memberSet()
	beforeIDs := g.identities()
	p, err := g.mls.Process(msg)
	if err != nil {
		g.c.emit(Error{Group: g.gid, Err: fmt.Errorf("chat: handshake refused: %w", err)})
		return
	}
	if p.Kind != mlsgroup.KindCommit {
		if err := g.save(g.c.ctx, nil); err != nil {
			g.c.emit(Error{Group: g.gid, Err: fmt.Errorf("chat: save: %w", err)})
		}
		return
	}
	if err := g.syncPeers(beforeIDs); err != nil {
		g.c.emit(Error{Group: g.gid, Err: err})
	}
	g.afterCommit(before)
}

func (g *group) memberSet() map[peer.ID]bool {
	s := map[peer.ID]bool{}
	for _, m := range g.mls.Members() {
		s[peerOf(m.Identity)] = true
	}
	return s
}

// afterCommit saves the new epoch, tells about it and retries the pending messages.
func (g *group) afterCommit(before map[peer.ID]bool) {
	if err := g.save(g.c.ctx, nil); err != nil {
		g.c.emit(Error{Group: g.gid, Err: fmt.Errorf("chat: save: %w", err)})
	}
	epoch := g.mls.Epoch()
	g.c.emit(EpochChanged{Group: g.gid, Epoch: epoch})
	after := g.memberSet()
	for p := range after {
		if !before[p] {
			g.c.emit(MemberJoined{Group: g.gid, Member: p, Epoch: epoch})
		}
	}
	for p := range before {
		if !after[p] {
			g.c.emit(MemberLeft{Group: g.gid, Member: p, Epoch: epoch})
		}
	}
	if g.mls.Status() == mlsgroup.Removed {
		g.c.emit(MemberLeft{Group: g.gid, Member: g.c.PeerID(), Epoch: epoch})
		return
	}
	if g.mls.Status() != mlsgroup.Active {
		g.c.emit(Error{Group: g.gid, Err: mlsgroup.ErrNotActive})
		return
	}
	pending := g.pending
	g.pending = nil
	for _, m := range pending {
		g.receive(m) // what still cannot be opened goes back to g.pending
	}
}

// remove commits the removal of member and publishes the commit, once the new epoch is
// saved.
func (g *group) remove(ctx context.Context, member peer.ID) error {
	leaf, found := uint32(0), false
	for _, m := range g.mls.Members() {
		if peerOf(m.Identity) == member {
			leaf, found = m.LeafIndex, true
		}
	}
	if !found {
		return fmt.Errorf("chat: %s is not a member of the group", member)
	}
	before := g.memberSet()
	beforeIDs := g.identities()
	pc, err := g.mls.Commit(mlsgroup.CommitOptions{Remove: []uint32{leaf}})
	if err != nil {
		return err
	}
	// The handshake cascade takes commits of the current epoch: seal before the merge.
	sealed, err := g.hs.Seal(&layers.Context{Group: g.id, Sender: g.c.self}, pc.Message)
	if err != nil {
		return err
	}
	if err := g.mls.Merge(pc); err != nil {
		return err
	}
	if err := g.syncPeers(beforeIDs); err != nil {
		g.c.emit(Error{Group: g.gid, Err: err})
	}
	g.afterCommit(before) // saves the new epoch before the commit leaves
	return g.topic.Publish(ctx, sealed)
}

// admit adds a joiner: it checks the proof and the invite, commits the Add, publishes the
// commit and returns the Welcome.
func (g *group) admit(ctx context.Context, from peer.ID, kp, proof []byte) ([]byte, error) {
	inviteID, ok := checkJoinProof(g.room, proof, from, kp)
	if !ok {
		return nil, proto.Refuse(proto.CodeRefused, "invalid invite proof")
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
	if string(inv.GroupID) != string(g.id) {
		return nil, proto.Refuse(proto.CodeRefused, "the invite is for another group")
	}
	if g.memberSet()[from] {
		return nil, proto.Refuse(proto.CodeRefused, "already a member")
	}
	// The KeyPackage must be the requester's own, checked before anything is committed.
	who, _, err := mlsgroup.KeyPackageIdentity(kp)
	if err != nil {
		return nil, proto.Refuse(proto.CodeRefused, "key package refused: "+err.Error())
	}
	if peerOf(who) != from {
		return nil, proto.Refuse(proto.CodeRefused, "the key package is not the requester's")
	}
	before := g.memberSet()
	beforeIDs := g.identities()
	pc, err := g.mls.Commit(mlsgroup.CommitOptions{Add: [][]byte{kp}, RatchetTreeInWelcome: true})
	if err != nil {
		return nil, proto.Refuse(proto.CodeRefused, "key package refused: "+err.Error())
	}
	// The handshake cascade takes commits of the current epoch: seal before the merge.
	sealed, err := g.hs.Seal(&layers.Context{Group: g.id, Sender: g.c.self}, pc.Message)
	if err != nil {
		return nil, err
	}
	if err := g.mls.Merge(pc); err != nil {
		return nil, err
	}
	if err := g.syncPeers(beforeIDs); err != nil {
		g.c.emit(Error{Group: g.gid, Err: err})
	}
	joined := false
	for _, m := range g.mls.Members() {
		if peerOf(m.Identity) == from && !before[from] {
			joined = true
		}
	}
	if !joined {
		// Checked above, so this is a bug; the commit is merged and must still reach the
		// group so that it stays in step.
		g.afterCommit(before)
		_ = g.topic.Publish(ctx, sealed)
		return nil, fmt.Errorf("chat: internal error: the added member is not %s", from)
	}
	g.afterCommit(before) // saves the new epoch before the commit leaves
	if err := g.topic.Publish(ctx, sealed); err != nil {
		g.c.emit(Error{Group: g.gid, Err: fmt.Errorf("chat: publish commit: %w", err)})
	}
	return pc.Welcome, nil
}
