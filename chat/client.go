// Package chat is tchat's application core and public Go API: groups over the network,
// invites and joins, sending and receiving, and a stream of events. The TUI, the bot server
// and the swarm use only this package.
//
// Every group's MLS state has one owner, a goroutine of the Client (its "actor"): network
// messages, sends and join requests for the group are all run there, so the state has a
// single writer. The state is saved to the store after every change and before any message
// that depends on it leaves.
//
// Groups are ordered without a server (see order.go): a preferred committer per epoch
// with failover, a deterministic choice between concurrent commits, heartbeats that
// reveal forks and missed messages, and catch-up over /tchat/sync/1.
package chat

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	multiaddr "github.com/multiformats/go-multiaddr"

	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/mls"
	"github.com/tchat-p2p/tchat/layers/signal"
	"github.com/tchat-p2p/tchat/mlsgroup"
	"github.com/tchat-p2p/tchat/net/node"
	"github.com/tchat-p2p/tchat/net/proto"
)

// DefaultPolicy is the policy of groups made by CreateGroup in this version.
const DefaultPolicy = layers.PolicyGroup // "signal,mls,aes"

// DefaultInviteTTL is how long an invite is valid when Config.InviteTTL is zero.
const DefaultInviteTTL = 7 * 24 * time.Hour

// GroupID names a group: the hex encoding of its MLS group id.
type GroupID string

func groupIDOf(b []byte) GroupID { return GroupID(hex.EncodeToString(b)) }

// Bytes returns the MLS group id.
func (g GroupID) Bytes() ([]byte, error) { return hex.DecodeString(string(g)) }

// Errors of the Client.
var (
	ErrClosed       = errors.New("chat: client closed")
	ErrUnknownGroup = errors.New("chat: unknown group")
	ErrAlreadyIn    = errors.New("chat: already a member of this group")
	// ErrNotMember: this client left the group or was removed from it.
	ErrNotMember = errors.New("chat: not a member of this group any more")
	// ErrUnreachable: a peer (an inviter, a peer to add) could not be reached.
	ErrUnreachable = errors.New("chat: peer unreachable")
)

// Config configures a Client.
type Config struct {
	// Dir is the profile directory (informational for now; the store is passed in).
	Dir string
	// Identity is the profile's identity key. Required.
	Identity *identity.Identity
	// Store is the profile's open database. Required. The Client does not close it.
	Store *store.Store
	// Node configures the libp2p node; Key and Handlers are set by the Client.
	Node node.Config
	// InviteTTL is the validity of new invites (0: DefaultInviteTTL).
	InviteTTL time.Duration
	// InviteMaxUses is the use count of new invites (0: 1).
	InviteMaxUses int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// EventBuffer is the size of the Events channel (0: 1024).
	EventBuffer int

	// Heartbeat is how often each member of a group of up to 16 says where it is (0:
	// 2 s). Members of larger groups say it less often, in proportion to the group's
	// size, so that a group carries about 8 heartbeats a second however large it is.
	Heartbeat time.Duration
	// BatchDelay is how long the preferred committer gathers changes before it commits,
	// and the others theirs before they propose them (0: 50 ms). In groups of more than
	// 16 it grows in proportion to the group's size, as the heartbeat does: there a
	// commit takes seconds to go round, and one that takes all of a batch of joiners
	// saves rounds.
	BatchDelay time.Duration
	// CommitTimeout is how long the member ranked r waits, times r, for the preferred
	// committer before it commits pending changes itself (0: 2 s). In groups of more
	// than 16 it grows with the group's size, as Heartbeat does: a commit takes longer
	// to reach every member of a larger group, and a member that commits before the
	// preferred committer's commit reaches it makes a fork.
	CommitTimeout time.Duration
	// Settle is how long a change must stay on our branch before it counts as done: a
	// joiner gets its Welcome only then (0: 500 ms).
	Settle time.Duration
	// KeepEpochs is how many past epochs of our branch are kept to judge a competing
	// commit and to open late messages (0: 16).
	KeepEpochs int
	// IntentTimeout bounds the wait for a change to be committed (0: 2 min).
	IntentTimeout time.Duration
	// JoinerTimeout is how long a member that admitted a joiner waits to hear from it in
	// the group before it removes the joiner's leaf: the answer did not reach it, and it
	// gave up (0: 12 min; a joiner asks again with the same KeyPackage for 10, see
	// askedFor).
	JoinerTimeout time.Duration
	// Logger receives the core's debug and error log (nil: none). It never receives
	// message contents or keys.
	Logger *slog.Logger
	// AcceptAdd decides whether to accept being added to a group by a member (Add): it is
	// asked when the member fetches our KeyPackage (name is "" then: the request does not
	// carry it), before anything is committed, and again with the name when the Welcome
	// comes. nil accepts every add.
	AcceptAdd func(from peer.ID, group GroupID, name string) bool
}

// Client is one profile's chat core.
type Client struct {
	cfg    Config
	id     *identity.Identity
	self   []byte // our MLS credential identity: the identity public key
	sigKey *mlsgroup.SigningKey
	signer ed25519.PrivateKey // the identity key, signing signal prekeys
	st     *store.Store
	node   *node.Node

	ctx    context.Context
	cancel context.CancelFunc
	events chan Event

	mu     sync.Mutex
	closed bool
	nick   string
	groups map[GroupID]*group
	// swaps holds, for a group being replaced by one we join (by Join or a Welcome), a
	// channel closed once the new one is registered: group waits on it, so that callers
	// find the new group rather than none while the old one stops.
	swaps map[GroupID]chan struct{}
	wg    sync.WaitGroup
	kps   []*offeredKP           // KeyPackages handed out over /tchat/kp/1, waiting for a Welcome
	asked map[GroupID]*askedJoin // KeyPackages of join requests left unanswered
	// welcoming is held while a Welcome is taken (HandleWelcome): two members adding us
	// at once send the same Welcome, and the second must find us in the group.
	welcoming sync.Mutex

	closers []func() error // what OpenProfile opened, closed after the node

	evMu     sync.RWMutex
	evClosed bool // the events channel is closed
}

// New starts a Client: its libp2p node, and the groups saved in the store.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Identity == nil || cfg.Store == nil {
		return nil, errors.New("chat: Config needs Identity and Store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 1024
	}
	if cfg.InviteTTL <= 0 {
		cfg.InviteTTL = DefaultInviteTTL
	}
	if cfg.InviteMaxUses <= 0 {
		cfg.InviteMaxUses = 1
	}
	setDefault(&cfg.Heartbeat, 2*time.Second)
	setDefault(&cfg.BatchDelay, 50*time.Millisecond)
	setDefault(&cfg.CommitTimeout, 2*time.Second)
	setDefault(&cfg.Settle, 500*time.Millisecond)
	setDefault(&cfg.IntentTimeout, 2*time.Minute)
	setDefault(&cfg.JoinerTimeout, askedFor+2*time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepEpochs <= 0 {
		cfg.KeepEpochs = 16
	}
	sigKey, err := mlsgroup.NewSigningKey(mlsgroup.DefaultCipherSuite, cfg.Identity.Seed())
	if err != nil {
		return nil, fmt.Errorf("chat: signing key: %w", err)
	}
	c := &Client{
		cfg:    cfg,
		id:     cfg.Identity,
		self:   cfg.Identity.PublicKey().Bytes(),
		sigKey: sigKey,
		signer: ed25519.NewKeyFromSeed(cfg.Identity.Seed()),
		st:     cfg.Store,
		events: make(chan Event, cfg.EventBuffer),
		groups: map[GroupID]*group{},
		swaps:  map[GroupID]chan struct{}{},
	}
	if b, err := cfg.Store.Session(ctx, nickKey()); err == nil {
		c.nick = string(b)
	}
	ncfg := cfg.Node
	if ncfg.Key == nil {
		if ncfg.Key, err = cfg.Identity.Libp2pKey(); err != nil {
			return nil, err
		}
	}
	ncfg.Handlers = proto.Handlers{Join: joinHandler{c}, Sync: syncHandler{c}, KeyPackage: kpHandler{c}, Welcome: welcomeHandler{c}, SenderKey: senderKeyHandler{c}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if c.node, err = node.New(ctx, ncfg); err != nil {
		c.cancel()
		return nil, err
	}
	go func() { // the node's events are not used yet; keep its channel drained
		for range c.node.Events() {
		}
	}()
	if err := c.loadGroups(ctx); err != nil {
		c.Close()
		return nil, err
	}
	go c.redial()
	return c, nil
}

// Close stops the Client: its groups' goroutines and its node. The Events channel is
// closed when everything has stopped.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	for _, g := range c.groups {
		g.topic.Close()
	}
	c.mu.Unlock()
	err := c.node.Close()
	for _, f := range c.closers {
		err = errors.Join(err, f())
	}
	c.evMu.Lock()
	c.evClosed = true
	close(c.events)
	c.evMu.Unlock()
	return err
}

// Events returns the Client's events; the channel is closed by Close. Read it promptly:
// a full channel holds up the groups.
func (c *Client) Events() <-chan Event { return c.events }

// PeerID returns our peer id.
func (c *Client) PeerID() peer.ID { return c.node.ID() }

// Node returns the libp2p node (for addresses and tests).
func (c *Client) Node() *node.Node { return c.node }

func (c *Client) emit(ev Event) {
	c.evMu.RLock()
	defer c.evMu.RUnlock()
	if c.evClosed {
		return
	}
	select {
	case c.events <- ev:
	case <-c.ctx.Done():
	}
}

func (c *Client) group(id GroupID) (*group, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waitSwap(id)
	if c.closed {
		return nil, ErrClosed
	}
	g, ok := c.groups[id]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownGroup, id)
	}
	return g, nil
}

// waitSwap waits, with c.mu held, until group id is not being replaced. A swap takes
// the old actor's stop, a save and a start, so it waits without a deadline.
func (c *Client) waitSwap(id GroupID) {
	for {
		ch, ok := c.swaps[id]
		if !ok {
			return
		}
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// swapping marks group gid as being replaced until the returned function is called:
// between the old group's stop and the new one's start, group waits instead of failing
// with ErrUnknownGroup. What runs in between must not call group for gid.
func (c *Client) swapping(gid GroupID) (end func()) {
	c.mu.Lock()
	c.waitSwap(gid)
	ch := make(chan struct{})
	c.swaps[gid] = ch
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.swaps, gid)
		c.mu.Unlock()
		close(ch)
	}
}

// onGroup runs f on group id's actor. If the group stopped before f ran (a Join or a
// Welcome replaced it), f runs on the group that replaced it.
func (c *Client) onGroup(ctx context.Context, id GroupID, f func(g *group) error) (*group, error) {
	for {
		g, err := c.group(id)
		if err != nil {
			return nil, err
		}
		err = g.do(ctx, func() error { return f(g) })
		if errors.Is(err, errStopped) {
			if now, _ := c.group(id); now != nil && now != g {
				continue
			}
		}
		return g, err
	}
}

// Groups lists the groups this client is or was a member of (GroupState.Active tells).
func (c *Client) Groups() []GroupID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]GroupID, 0, len(c.groups))
	for id := range c.groups {
		out = append(out, id)
	}
	return out
}

// Group returns a snapshot of a group.
func (c *Client) Group(ctx context.Context, id GroupID) (GroupState, error) {
	var s GroupState
	_, err := c.onGroup(ctx, id, func(g *group) error {
		s = g.state(ctx)
		return nil
	})
	return s, err
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// supportedExtensions are the GroupContext extensions tchat understands.
var supportedExtensions = []uint16{layers.ExtensionPolicy, ExtensionGroupName}

func (c *Client) mlsOptions() mlsgroup.Options {
	return mlsgroup.Options{
		Now:                 c.cfg.Now,
		PastEpochs:          8,
		SupportedExtensions: supportedExtensions,
		// A credential is the member's identity public key, which is also its MLS
		// signature key: the roster names peers, and nobody can claim another's identity.
		CheckCredential: func(identity, signatureKey []byte) error {
			if !bytes.Equal(identity, signatureKey) {
				return errors.New("chat: credential identity is not its signature key")
			}
			return nil
		},
	}
}

// CreateGroupWith creates a group with this client as its only member, with a fresh
// room secret, and joins its topic.
func (c *Client) CreateGroupWith(o GroupOptions) (GroupID, error) {
	if err := checkName("group name", o.Name); err != nil {
		return "", err
	}
	pol, err := parseGroupPolicy(o.Policy)
	if err != nil {
		return "", err
	}
	if o.Suite == 0 {
		o.Suite = mlsgroup.DefaultCipherSuite
	}
	polType, polBody, err := mls.PolicyExtension(pol)
	if err != nil {
		return "", err
	}
	opts := c.mlsOptions()
	opts.Extensions = map[uint16][]byte{polType: polBody, ExtensionGroupName: []byte(o.Name)}
	sigID, leafExt, err := c.newSignalIdentity()
	if err != nil {
		return "", err
	}
	opts.LeafExtensions = leafExt
	sigKey := c.sigKey
	if o.Suite != mlsgroup.DefaultCipherSuite {
		if sigKey, err = mlsgroup.NewSigningKey(o.Suite, c.cfg.Identity.Seed()); err != nil {
			return "", fmt.Errorf("chat: cipher suite %v: %w", o.Suite, err)
		}
		// The identity key is every member's MLS signature key: the suite must sign with
		// Ed25519.
		if !bytes.Equal(sigKey.PublicKey(), c.self) {
			return "", fmt.Errorf("chat: cipher suite %v does not sign with Ed25519, which tchat identities use", o.Suite)
		}
	}
	mg, err := mlsgroup.Create(sigKey, c.self, nil, opts)
	if err != nil {
		return "", fmt.Errorf("chat: create group: %w", err)
	}
	room := make([]byte, roomSize)
	if _, err := rand.Read(room); err != nil {
		return "", err
	}
	g, err := c.newGroup(mg, o.Name, room, sigID, nil)
	if err != nil {
		return "", err
	}
	if err := g.save(c.ctx, nil); err != nil {
		return "", err
	}
	if err := c.start(g); err != nil {
		return "", err
	}
	return g.gid, nil
}

// Invite makes an invite token for a group: one line, signed by this client, valid for
// Config.InviteTTL and Config.InviteMaxUses joiners.
func (c *Client) Invite(id GroupID) (string, error) {
	return c.InviteWith(id, c.cfg.InviteTTL, c.cfg.InviteMaxUses)
}

// InviteWith is Invite with an explicit validity (a negative ttl makes an already expired
// token, for tests) and use count (0: unlimited).
func (c *Client) InviteWith(id GroupID, ttl time.Duration, maxUses int) (string, error) {
	g, err := c.group(id)
	if err != nil {
		return "", err
	}
	now := c.cfg.Now()
	inv := &Invite{
		GroupID:    g.id,
		Name:       g.name,
		RoomSecret: g.room,
		Inviter:    c.node.ID(),
		Addrs:      c.node.Addrs(),
		ID:         make([]byte, inviteIDSize),
		Expires:    now.Add(ttl),
		MaxUses:    uint32(maxUses),
	}
	if _, err := rand.Read(inv.ID); err != nil {
		return "", err
	}
	token, err := encodeInvite(inv, c.id)
	if err != nil {
		return "", err
	}
	if err := c.st.PutInvite(c.ctx, store.Invite{
		ID: inv.ID, GroupID: g.id, CreatedAt: now, ExpiresAt: inv.Expires, MaxUses: maxUses, Token: []byte(token),
	}); err != nil {
		return "", err
	}
	return token, nil
}

// Join joins the group of an invite token: it checks the token, dials the inviter, sends a
// KeyPackage with proof of the token over /tchat/join/2 and joins from the Welcome.
func (c *Client) Join(ctx context.Context, token string) (GroupID, error) {
	inv, err := ParseInvite(token)
	if err != nil {
		return "", err
	}
	if err := inv.Check(c.cfg.Now()); err != nil {
		return "", err
	}
	gid := groupIDOf(inv.GroupID)
	if _, err := c.stale(ctx, gid, 0, time.Time{}); err != nil {
		return "", err
	}
	if inv.Inviter == c.node.ID() {
		return "", errors.New("chat: this is our own invite")
	}
	sigID, bundle, err := c.joinKeyPackage(gid)
	if err != nil {
		return "", err
	}
	kp := bundle.KeyPackage()
	req := &proto.JoinRequest{
		GroupID:    inv.GroupID,
		KeyPackage: kp,
		// The proof, then the token itself: a member other than the inviter checks the
		// inviter's signature on it.
		InviteProof: append(joinProof(inv.RoomSecret, inv.ID, c.node.ID(), kp), []byte(token)...),
	}
	asked := time.Now()
	resp, err := c.askToJoin(ctx, inv, req)
	c.cfg.Logger.Debug("asked to join", "group", gid[:8], "took", time.Since(asked), "err", err)
	if err != nil {
		// The member may have added us all the same (we gave up waiting, or the stream
		// broke): a Join again asks with the same KeyPackage, and is answered with the
		// Welcome of that add rather than refused as a member already.
		c.keepAsked(gid, &askedJoin{sigID: sigID, bundle: bundle, until: time.Now().Add(askedFor)})
		return "", err
	}
	mg, err := mlsgroup.Join(resp.Welcome, bundle, resp.RatchetTree, c.mlsOptions())
	if err != nil {
		return "", fmt.Errorf("chat: welcome: %w", err)
	}
	if !bytes.Equal(mg.GroupID(), inv.GroupID) {
		return "", errors.New("chat: the welcome is for another group than the invite")
	}
	c.keepAsked(gid, nil)
	defer c.swapping(gid)()
	if err := c.dropInactive(ctx, gid); err != nil {
		return "", err
	}
	return c.joined(ctx, mg, inv.Name, inv.RoomSecret, sigID, bundle)
}

// askedJoin is the KeyPackage of a join request that got no answer.
type askedJoin struct {
	sigID  *signal.Identity
	bundle *mlsgroup.KeyPackageBundle
	until  time.Time
}

// askedFor is how long a KeyPackage of an unanswered join request is asked with again:
// longer than a member takes to add a joiner or give up (Config.IntentTimeout).
const askedFor = 10 * time.Minute

// joinKeyPackage returns the KeyPackage to ask to join group gid with: that of an
// earlier request left unanswered, or a new one.
func (c *Client) joinKeyPackage(gid GroupID) (*signal.Identity, *mlsgroup.KeyPackageBundle, error) {
	c.mu.Lock()
	a := c.asked[gid]
	c.mu.Unlock()
	if a != nil && time.Now().Before(a.until) {
		return a.sigID, a.bundle, nil
	}
	return c.newKeyPackage()
}

// keepAsked records a (nil: forgets) the unanswered join request of group gid.
func (c *Client) keepAsked(gid GroupID, a *askedJoin) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a == nil {
		delete(c.asked, gid)
		return
	}
	if c.asked == nil {
		c.asked = map[GroupID]*askedJoin{}
	}
	c.asked[gid] = a
}

// askToJoin sends a join request to the inviter or, if it cannot be reached, to the
// members of the group found through its rendezvous.
func (c *Client) askToJoin(ctx context.Context, inv *Invite, req *proto.JoinRequest) (*proto.JoinResponse, error) {
	ask := func(p peer.AddrInfo) (*proto.JoinResponse, error) {
		if err := c.node.Connect(ctx, p); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, p.ID, err)
		}
		resp, err := c.node.Join(ctx, p.ID, req)
		if err != nil {
			var re *proto.RemoteError
			if errors.As(err, &re) {
				return nil, fmt.Errorf("chat: join refused by %s: %w", p.ID, err)
			}
			return nil, fmt.Errorf("chat: join: %w: %s: %w", ErrUnreachable, p.ID, err)
		}
		return resp, nil
	}
	resp, err := ask(peer.AddrInfo{ID: inv.Inviter, Addrs: inv.Addrs})
	if err == nil || !errors.Is(err, ErrUnreachable) {
		return resp, err
	}
	// Any online member admits a joiner with a valid token.
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	found, ferr := c.node.FindGroupPeers(fctx, inv.GroupID, inv.RoomSecret)
	if ferr != nil {
		return nil, err
	}
	for p := range found {
		if p.ID == inv.Inviter || p.ID == c.node.ID() {
			continue
		}
		if resp, err2 := ask(p); err2 == nil || !errors.Is(err2, ErrUnreachable) {
			return resp, err2
		}
	}
	return nil, err
}

// Send sends a text message to a group and returns it as stored in the history. A
// message that was saved but could not be published yet is returned with an error, and
// still reaches the members (they fetch it by sync, or it goes out again).
func (c *Client) Send(ctx context.Context, id GroupID, text string) (Message, error) {
	var m Message
	_, err := c.onGroup(ctx, id, func(g *group) error {
		var err error
		m, err = g.send(ctx, text)
		return err
	})
	return m, err
}

// change asks the group for a change and waits until it is committed and settled.
func (c *Client) change(ctx context.Context, id GroupID, mk func(g *group) (*intent, error)) (intentResult, error) {
	var in *intent
	g, err := c.onGroup(ctx, id, func(g *group) error {
		if !g.active() {
			return ErrNotMember
		}
		x, err := mk(g)
		if err != nil {
			return err
		}
		in = g.want(x)
		return nil
	})
	if err != nil {
		return intentResult{}, err
	}
	return g.wait(ctx, in)
}

// Remove removes a member from a group with a commit that every other member applies. The
// removed member learns it from the same commit (a MemberRemoved event naming itself) and
// can read nothing sent after it.
func (c *Client) Remove(ctx context.Context, id GroupID, member peer.ID) error {
	if member == c.PeerID() {
		return errors.New("chat: a member cannot remove itself; use Leave")
	}
	return c.remove(ctx, id, member, nil)
}

// removeLeaf removes member from a group if it holds the leaf of KeyPackage kp: an add
// of ours whose Welcome it did not take. A leaf it holds by another add stays.
func (c *Client) removeLeaf(ctx context.Context, id GroupID, member peer.ID, kp []byte) error {
	prekeys, err := mlsgroup.KeyPackageLeafExtension(kp, layers.ExtensionSignalPrekeys)
	if err != nil {
		return err
	}
	return c.remove(ctx, id, member, prekeys)
}

// remove removes member from a group: the leaf whose signal prekeys are old, or (old
// nil) whichever it holds.
func (c *Client) remove(ctx context.Context, id GroupID, member peer.ID, old []byte) error {
	_, err := c.change(ctx, id, func(g *group) (*intent, error) {
		for _, m := range g.mls.Members() {
			if peerOf(m.Identity) == member {
				return &intent{kind: intentRemove, who: m.Identity, old: old}, nil
			}
		}
		return nil, fmt.Errorf("chat: %s is not a member of the group", member)
	})
	return err
}

// Rename renames a group for every member, by a commit.
func (c *Client) Rename(ctx context.Context, id GroupID, name string) error {
	if err := checkName("group name", name); err != nil {
		return err
	}
	_, err := c.change(ctx, id, func(g *group) (*intent, error) {
		return &intent{kind: intentRename, name: name}, nil
	})
	return err
}

// Leave leaves a group: this client proposes its own removal, which another member
// commits. The group's history stays.
func (c *Client) Leave(ctx context.Context, id GroupID) error {
	_, err := c.change(ctx, id, func(g *group) (*intent, error) {
		if len(g.mls.Members()) == 1 {
			return nil, errors.New("chat: the last member of a group cannot leave it")
		}
		return &intent{kind: intentLeave}, nil
	})
	return err
}

// dropInactive makes way for joining a group again: it fails with ErrAlreadyIn if we are
// a member of gid, and stops the group we keep of it if we left it or were removed (its
// history stays in the store).
func (c *Client) dropInactive(ctx context.Context, gid GroupID) error {
	return c.dropGroup(ctx, gid, 0, time.Time{})
}

// dropGroup is dropInactive for a Welcome to epoch, for a KeyPackage we handed out at
// offered: it also stops the group if we are a member of an earlier epoch, or entered it
// before offered.
func (c *Client) dropGroup(ctx context.Context, gid GroupID, epoch uint64, offered time.Time) error {
	g, err := c.stale(ctx, gid, epoch, offered)
	if g == nil || err != nil {
		return err
	}
	c.mu.Lock()
	if c.groups[gid] == g {
		delete(c.groups, gid)
	}
	c.mu.Unlock()
	close(g.quit)
	<-g.done
	g.topic.Close()
	return nil
}

// stale returns the group we keep of gid (nil if none), or ErrAlreadyIn if we are a
// member of it at epoch or later and entered it no earlier than offered. It does not
// wait for a swap, so a swap may call it.
func (c *Client) stale(ctx context.Context, gid GroupID, epoch uint64, offered time.Time) (*group, error) {
	c.mu.Lock()
	g, closed := c.groups[gid], c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if g == nil {
		return nil, nil
	}
	active := false
	if err := g.do(ctx, func() error {
		active = g.active() && g.mls.Epoch() >= epoch && !g.started.Before(offered)
		return nil
	}); err != nil {
		return nil, err
	}
	if active {
		return nil, ErrAlreadyIn
	}
	return g, nil
}

// redial dials, once at start, the members of our groups at the addresses we last saw
// them at: on a network where nothing finds peers (no mDNS, no DHT) the group would
// otherwise stay apart after a restart.
func (c *Client) redial() {
	seen := map[peer.ID]bool{c.PeerID(): true}
	var targets []peer.AddrInfo
	for _, id := range c.Groups() {
		ms, err := c.Members(c.ctx, id)
		if err != nil {
			continue
		}
		for _, m := range ms {
			if seen[m.Peer] {
				continue
			}
			seen[m.Peer] = true
			p, err := c.st.Peer(c.ctx, []byte(m.Peer))
			if err != nil || len(p.Addrs) == 0 {
				continue
			}
			ai := peer.AddrInfo{ID: m.Peer}
			for _, a := range p.Addrs {
				if ma, err := multiaddr.NewMultiaddr(a.Addr); err == nil {
					ai.Addrs = append(ai.Addrs, ma)
				}
			}
			targets = append(targets, ai)
		}
	}
	sem := make(chan struct{}, 8)
	for _, ai := range targets {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if ok, _ := c.node.Connected(ai.ID); ok {
				return
			}
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			defer cancel()
			_ = c.node.Connect(ctx, ai) // best effort: discovery may find it yet
		}()
	}
}

// start registers a group and starts its actor.
func (c *Client) start(g *group) error {
	t, err := c.node.JoinTopic(g.id, g.room, g.validate)
	if err != nil {
		return fmt.Errorf("chat: join topic: %w", err)
	}
	g.topic = t
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		t.Close()
		return ErrClosed
	}
	if _, ok := c.groups[g.gid]; ok {
		t.Close()
		return ErrAlreadyIn
	}
	c.groups[g.gid] = g
	c.wg.Add(1)
	go g.run()
	return nil
}

// loadGroups restarts the groups saved in the store.
func (c *Client) loadGroups(ctx context.Context) error {
	infos, err := c.st.Groups(ctx)
	if err != nil {
		return err
	}
	for _, info := range infos {
		_, state, err := c.st.GroupState(ctx, info.GroupID)
		if err != nil {
			return err
		}
		meta, err := c.st.Session(ctx, metaKey(info.GroupID))
		if err != nil {
			return fmt.Errorf("chat: group %x has no room secret: %w", info.GroupID, err)
		}
		room, name, err := parseMeta(meta)
		if err != nil {
			return err
		}
		mg, err := mlsgroup.Restore(state, c.mlsOptions())
		if err != nil {
			return fmt.Errorf("chat: restore group %x: %w", info.GroupID, err)
		}
		var sigID *signal.Identity
		var sigState *savedSignal
		if b, err := c.st.Session(ctx, sigIDKey(info.GroupID)); err == nil {
			if sigID, err = signal.UnmarshalIdentity(b, c.signer); err != nil {
				return fmt.Errorf("chat: signal identity of group %x: %w", info.GroupID, err)
			}
			if sigState, err = loadSignal(ctx, c.st, info.GroupID); err != nil {
				return err
			}
			if sigState == nil {
				return fmt.Errorf("chat: signal state of group %x: %w", info.GroupID, store.ErrNotFound)
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		g, err := c.newGroup(mg, name, room, sigID, sigState)
		if err != nil {
			return err
		}
		g.metaSaved = true
		if g.hist, g.histStored, err = loadHist(ctx, c.st, info.GroupID, mg.Epoch()); err != nil {
			return err
		}
		if b, err := c.st.Session(ctx, deliveryKey(info.GroupID)); err == nil {
			if err := g.parseDelivery(b); err != nil {
				return fmt.Errorf("chat: group %x: %w", info.GroupID, err)
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := c.start(g); err != nil {
			return err
		}
		g.post(func() { g.handOutKeySoon(nil) }) // what was on its way when we stopped
	}
	return nil
}
