package chat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
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
)

// ExtensionGroupName is the GroupContext extension that holds the group's name, so that
// a rename is a commit like any other change and every member agrees on it.
const ExtensionGroupName uint16 = 0xF7C4

// maxFuture bounds the frames kept for epochs we have not reached yet.
const maxFuture = 4096

// group is one group's state. Everything but the immutable fields (c, gid, id, room, and
// topic once started) is touched only by its actor goroutine (run).
type group struct {
	c     *Client
	gid   GroupID
	id    []byte
	room  []byte
	name  string
	mls   *mlsgroup.Group
	pol   layers.Policy
	app   *layers.Cascade // the conversation's policy
	hs    *layers.Cascade // handshakes: mls,aes
	topic *gossip.Topic
	ops   chan func()
	quit  chan struct{} // closed to stop the actor (the group is replaced)
	done  chan struct{} // closed when the actor has stopped

	key    *aes.Key
	aesApp *aes.Layer       // kept across branch switches: it holds the replay window
	sigID  *signal.Identity // our signal keys in this group (nil without a signal layer)
	sig    *signal.Layer    // nil without a signal layer

	joinEpoch    uint64            // the epoch we entered the group at
	hist         []epochRec        // the last epochs of our branch, oldest first
	histDirty    map[uint64]bool   // epochs of hist changed since the last save
	histStored   map[uint64]bool   // epochs of hist in the store (nil: not known)
	future       []keptFrame       // frames that could not be handled yet, oldest first
	kept         map[[32]byte]bool // the hashes of future's frames
	retrying     bool
	seen         *seenSet                     // frames already handled
	sent         map[uint64]uint32            // our application messages per epoch (this branch)
	got          map[uint64]map[string]uint32 // received application messages per epoch and sender
	peers        map[string]*peerInfo         // by identity
	syncing      map[peer.ID]bool
	forkSeen     map[string]uint64 // peer → the epoch of the last fork reported with it
	stuck        map[string]*mismatch
	rejoining    bool
	fetchingTree bool              // readdedBy asks a member for a tree
	keyGiving    map[string]bool   // members handOutKey is giving our sender key to
	keySeries    map[string]uint64 // member → the handOutKey call whose tries it is in
	keySeriesN   uint64
	keysTaken    map[string]int // hand-outs of members' sender keys we took (by member)
	// vouched: joiners a branch of ours added that lost, until when we re-admit them
	// (see lostChanges).
	vouched    map[string]time.Time
	awaited    map[string]*awaitedJoiner // joiners we admitted, not heard from yet (see checkJoiners)
	syncRuns   map[peer.ID]*syncRun      // syncs that take several answers, by member (see applySync)
	sigWaiters []chan error              // keys taken, waiting for the signal state to be saved
	// sigSums is what the store holds of the signal layer's state: the layer's stamp at
	// the last save, and the members with a record (nil: this layer not saved yet), so
	// that a save writes only what changed (see sigSave).
	sigSums  *sigSaved
	lastFork time.Time
	// keyResent and keyResentFrom: when we last sent our messages again for a member that
	// lacked our sender key, and from which epoch (see keyLacked).
	keyResent     time.Time
	keyResentFrom uint64
	outranked     int // competing commits judged to lose to our branch (compared around a sync)
	// out: the branch the group went on with removed us while we were on another one,
	// which our MLS state still shows us in (see leftOut).
	out        bool
	outChecked time.Time        // when we last looked for a leaf of ours, once out
	refusedBy  map[peer.ID]bool // members far ahead of us that refused us a sync (see refusedFarAhead)
	refusedAt  string           // our epoch and authenticator when they did

	intents    []*intent
	removers   map[uint32]uint32 // removed leaf → the leaf that proposed it, in this epoch
	renamer    *uint32           // the leaf that proposed new extensions (a name) in this epoch
	proposals  int               // proposals received in this epoch
	foreign    [][]byte          // proposal envelopes for this epoch that MLS refused (of another branch?)
	timer      *time.Timer       // commit timer (nil: none)
	timerAt    uint64            // the epoch the timer was armed for
	proposing  bool              // proposeSoon's timer is set
	gatherFrom time.Time         // when it was set

	pend       pending     // received messages not saved yet
	flushTimer *time.Timer // nil: nothing pending
	stateTimer *time.Timer // non-nil: the state moved on since it was last saved (stateEvery)
	stateSaved time.Time   // when the group state was last saved
	stateBuf   []byte      // the buffer save encodes the group state in, reused (the store copies it)
	lease      sendLease   // what the state last saved covers of our messages
	metaSaved  bool
	started    time.Time // when the actor started, or we last entered the group
	liveSince  time.Time // the same by Config.Now, which senders stamp messages by

	// The KeyPackage we joined with, kept for a while: if the commit that added us loses
	// to a competing one, the member that admitted us adds us again on the winning
	// branch, and the new Welcome comes in that commit.
	joinBundle *mlsgroup.KeyPackageBundle
	joinSig    *signal.Identity
	joinUntil  time.Time
	confirmed  bool // a member's heartbeat agreed with our epoch since we entered it

	rost  *roster   // see roster
	held  [][]byte  // our application frames not published yet: nobody was on the topic
	ahead aheadNote // members ahead of us
}

// epochRec is one past epoch of our branch: enough to go back to it when a commit for it
// that beats the one we applied turns up.
type epochRec struct {
	epoch   uint64
	auth    []byte // the epoch's authenticator
	state   []byte // the MLS state in the epoch, before its commit
	frame   []byte // the commit frame that left the epoch
	key     commitKey
	applied time.Time
	props   [][]byte        // proposal envelopes of the epoch from other branches, for judge
	idents  map[string]bool // the members' identities in the epoch
}

type peerInfo struct {
	heard    time.Time
	nick     string
	online   bool
	added    time.Time // when a commit we applied added it (it counts as online for a while, see onlineRank)
	hbEpoch  uint64    // from its last heartbeat
	hbAuth   []byte
	claimed  map[uint64]uint32 // the message counts its last heartbeat gave, by epoch
	heardN   map[uint64]uint32 // the highest count its messages gave (payload.N), by epoch
	gapAt    time.Time         // when we saw we lack some of its messages, or last asked for them (zero: we do not lack any)
	gapTries int               // how many times we asked for them
	via      peer.ID           // whom to ask for them: a member that relayed its counts (see relayCounts)
	lackKey  bool              // a message of its did not open for lack of its sender key
	lackFrom uint64            // the oldest epoch of such a message, while we lack its key (lackSet)
	lackSet  bool
	keyAsked time.Time // when it last told us it lacks our sender key (see keyLacked)
	forkSync time.Time // when we last asked it for its branch
	// behindAt is the epoch and authenticator its heartbeats have shown since
	// behindSince, when that epoch is one before the oldest we keep (see staysBehind).
	behindAt    string
	behindSince time.Time
	saved       bool // its addresses are in the store (this session)
}

// newGroup builds a group's layers. sigID is our signal identity in the group (nil if the
// policy has none); sigState, if not nil, is the signal layer's saved state.
func (c *Client) newGroup(mg *mlsgroup.Group, name string, room []byte, sigID *signal.Identity, sigState *savedSignal) (*group, error) {
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
		mls: mg, pol: pol, ops: make(chan func()), quit: make(chan struct{}), done: make(chan struct{}), key: key,
		aesApp:    aes.New(key, nil),
		joinEpoch: mg.Epoch(), seen: newSeenSet(8192), kept: map[[32]byte]bool{},
		sent: map[uint64]uint32{}, got: map[uint64]map[string]uint32{},
		peers: map[string]*peerInfo{}, syncing: map[peer.ID]bool{}, forkSeen: map[string]uint64{}, stuck: map[string]*mismatch{},
		removers: map[uint32]uint32{}, keyGiving: map[string]bool{}, keySeries: map[string]uint64{}, keysTaken: map[string]int{}, vouched: map[string]time.Time{},
		awaited: map[string]*awaitedJoiner{}, syncRuns: map[peer.ID]*syncRun{},
	}
	if n, ok := mg.Extension(ExtensionGroupName); ok {
		g.name = string(n)
	}
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
				if g.sigSums, err = sigState.restore(g.sig); err != nil {
					return nil, fmt.Errorf("chat: signal state: %w", err)
				}
			} else if err := g.syncPeers(nil); err != nil {
				return nil, err
			}
		case layers.MLS, layers.AES:
		default:
			return nil, fmt.Errorf("chat: policy %s: layer %s is not supported by this version", pol, l)
		}
	}
	if err := g.buildCascades(); err != nil {
		return nil, err
	}
	return g, nil
}

// buildCascades (re)builds the cascades over the current MLS group, keeping the other
// layers' state.
func (g *group) buildCascades() error {
	var stack []layers.Layer
	for _, l := range g.pol.Layers() {
		switch l {
		case layers.Signal:
			stack = append(stack, g.sig)
		case layers.MLS:
			stack = append(stack, mls.New(g.mls, nil))
		case layers.AES:
			stack = append(stack, g.aesApp)
		}
	}
	var err error
	if g.app, err = layers.NewCascade(g.pol, stack...); err != nil {
		return err
	}
	g.hs, err = g.handshakeCascade(g.mls)
	return err
}

// handshakeCascade returns the cascade that seals and opens proposals and commits of
// mg's current epoch. Its aes layer's replay window is not relied on: MLS refuses a
// handshake of another epoch and the seen set one handled already, while a commit that
// must wait for a proposal it refers to has to open again later. Opening goes through
// openHandshake, with a new cascade each time.
func (g *group) handshakeCascade(mg *mlsgroup.Group) (*layers.Cascade, error) {
	return layers.NewCascade(layers.MustParsePolicy(layers.PolicyHandshake), mls.NewHandshake(mg, nil), aes.New(g.key, nil))
}

// openHandshake opens a sealed proposal or commit for mg's current epoch.
func (g *group) openHandshake(mg *mlsgroup.Group, sealed []byte) ([]byte, error) {
	hs, err := g.handshakeCascade(mg)
	if err != nil {
		return nil, err
	}
	return hs.Open(&layers.Context{Group: g.id}, sealed)
}

// prekeysOf maps the members' identities to the signal prekeys in their leaves.
func prekeysOf(ms []mlsgroup.Member) map[string][]byte {
	out := make(map[string][]byte, len(ms))
	for _, m := range ms {
		out[string(m.Identity)] = m.Extensions[layers.ExtensionSignalPrekeys]
	}
	return out
}

// syncPeers gives the signal layer the prekey bundles of the members that are new or have
// a new leaf since before (nil: all of them), and tells it of removed members.
func (g *group) syncPeers(before map[string][]byte) error {
	if g.sig == nil {
		return nil
	}
	now := map[string]bool{}
	for _, m := range g.mls.Members() {
		now[string(m.Identity)] = true
		if m.LeafIndex == g.mls.LeafIndex() {
			continue
		}
		if old, ok := before[string(m.Identity)]; ok && bytes.Equal(old, m.Extensions[layers.ExtensionSignalPrekeys]) {
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
	// A removed member's messages open until the last epoch it was in leaves the
	// epochs we keep (MLS refuses them then anyway).
	g.sig.ForgetRemoved(func(member []byte) bool {
		for _, rec := range g.hist {
			if rec.idents[string(member)] {
				return true
			}
		}
		return false
	})
	return nil
}

func (g *group) leafOf(ident []byte) (uint32, bool) {
	leaf, ok := g.roster().leaf[string(ident)]
	return leaf, ok
}

// roster is what the group asks of its membership for every frame (is the author a
// member, to whom does a message go), worked out once per epoch: listing an MLS group's
// members walks its whole tree.
type roster struct {
	mg     *mlsgroup.Group
	epoch  uint64
	leaf   map[string]uint32 // identity → leaf index
	ident  map[uint32][]byte // leaf index → identity
	recips [][]byte          // the other members' identities
}

func (g *group) roster() *roster {
	if r := g.rost; r != nil && r.mg == g.mls && r.epoch == g.mls.Epoch() {
		return r
	}
	ms := g.mls.Members()
	r := &roster{mg: g.mls, epoch: g.mls.Epoch(), leaf: make(map[string]uint32, len(ms)), ident: make(map[uint32][]byte, len(ms))}
	for _, m := range ms {
		r.leaf[string(m.Identity)] = m.LeafIndex
		r.ident[m.LeafIndex] = m.Identity
		if m.LeafIndex != g.mls.LeafIndex() {
			r.recips = append(r.recips, m.Identity)
		}
	}
	g.rost = r
	return r
}

func (g *group) authPrefix() []byte { return g.mls.EpochAuthenticator()[:authPrefix] }

// chainAuth returns the authenticator of epoch e on our branch (nil if too old).
func (g *group) chainAuth(e uint64) []byte {
	if e == g.mls.Epoch() {
		return g.mls.EpochAuthenticator()
	}
	if r := g.histAt(e); r != nil {
		return r.auth
	}
	return nil
}

func (g *group) histAt(e uint64) *epochRec {
	for i := range g.hist {
		if g.hist[i].epoch == e {
			return &g.hist[i]
		}
	}
	return nil
}

func (g *group) active() bool { return !g.out && g.mls.Status() == mlsgroup.Active }

func sigIDKey(groupID []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: []byte{}, Kind: "chat/signal-identity"}
}

func sigLayerKey(groupID []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: []byte{}, Kind: "signal/layer"}
}

func metaKey(groupID []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: []byte{}, Kind: "chat/group"}
}

func deliveryKey(groupID []byte) store.SessionKey {
	return store.SessionKey{GroupID: groupID, PeerID: []byte{}, Kind: "chat/delivery"}
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

// marshalDelivery encodes what the group knows of message delivery: the epoch we joined
// at, the per-epoch counts of messages sent and received, and whether we are out (a byte
// added later: a record without it is of a member that is not).
func (g *group) marshalDelivery() []byte {
	var b cryptobyte.Builder
	b.AddUint64(g.joinEpoch)
	epochs := make([]uint64, 0, len(g.sent))
	for e := range g.sent {
		epochs = append(epochs, e)
	}
	sort.Slice(epochs, func(i, j int) bool { return epochs[i] < epochs[j] })
	b.AddUint32(uint32(len(epochs)))
	for _, e := range epochs {
		b.AddUint64(e)
		b.AddUint32(g.sent[e])
	}
	n := 0
	for _, m := range g.got {
		n += len(m)
	}
	b.AddUint32(uint32(n))
	for e, m := range g.got {
		for id, c := range m {
			b.AddUint64(e)
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(id)) })
			b.AddUint32(c)
		}
	}
	if g.out {
		b.AddUint8(1)
	}
	return b.BytesOrPanic()
}

func (g *group) parseDelivery(data []byte) error {
	s := cryptobyte.String(data)
	var n uint32
	if !s.ReadUint64(&g.joinEpoch) || !s.ReadUint32(&n) {
		return errors.New("chat: bad stored delivery state")
	}
	for range n {
		var e uint64
		var c uint32
		if !s.ReadUint64(&e) || !s.ReadUint32(&c) {
			return errors.New("chat: bad stored delivery state")
		}
		g.sent[e] = c
	}
	if !s.ReadUint32(&n) {
		return errors.New("chat: bad stored delivery state")
	}
	for range n {
		var e uint64
		var id cryptobyte.String
		var c uint32
		if !s.ReadUint64(&e) || !s.ReadUint8LengthPrefixed(&id) || !s.ReadUint32(&c) {
			return errors.New("chat: bad stored delivery state")
		}
		if g.got[e] == nil {
			g.got[e] = map[string]uint32{}
		}
		g.got[e][string(id)] = c
	}
	var out uint8
	if !s.Empty() && (!s.ReadUint8(&out) || out != 1) || !s.Empty() {
		return errors.New("chat: bad stored delivery state")
	}
	g.out = out == 1
	return nil
}

// change is what one save writes besides the group's state.
type change struct {
	msgs      []store.Message
	wire      []store.WireItem
	outbox    []store.OutboxItem
	dropWire  *uint64 // the branch was switched at this epoch: its later commits and messages are dead
	clearWire bool    // we rejoined: everything logged is of a dead branch
	covered   bool    // our message in it is covered by the state saved (see sendLease): leave the state out
}

// sendAhead is how many of our messages a saved state covers: the group state and the
// signal layer's are saved with our key ratchets that many messages on from where they
// stand (see mlsgroup.Group.MarshalBinaryAhead). Our messages up to there need no save
// of the state, which in a large group is most of what a message costs its sender; a
// restart skips what is left of them, which members skip as they skip lost messages.
const sendAhead = 32

// sendLease is what the state last saved covers of our messages.
type sendLease struct {
	mls   *mlsgroup.Group
	epoch uint64
	gen   uint64 // the first generation of our application ratchet the saved state hands out
	sig   signal.SendMark
	ok    bool
}

// covered reports whether the state saved covers the messages sealed since: a restart
// would not use their keys again.
func (g *group) covered() bool {
	l := &g.lease
	if !l.ok || l.mls != g.mls || l.epoch != g.mls.Epoch() {
		return false
	}
	if gen, err := g.mls.AppGeneration(); err != nil || gen > l.gen {
		return false
	}
	return g.sig == nil || l.sig.Covers(g.sig)
}

// save stores the group state, the layers' state and ch in one transaction.
func (g *group) save(ctx context.Context, ch *change) error {
	if ch == nil {
		ch = &change{}
	}
	pend, own := g.pend, ch.msgs
	if len(pend.wire) > 0 { // every pending message has its frame in pend.wire
		ch.msgs = append(pend.msgs, ch.msgs...)
		ch.wire = append(pend.wire, ch.wire...)
	}
	var state []byte
	var sigState *sigSave
	var lease sendLease
	if !ch.covered {
		var err error
		lease = sendLease{mls: g.mls, epoch: g.mls.Epoch(), ok: true}
		if state, lease.gen, err = g.mls.AppendBinaryAhead(g.stateBuf[:0], sendAhead); err != nil {
			return err
		}
		g.stateBuf = state
		if g.sig != nil {
			if sigState, lease.sig, err = g.marshalSignal(sendAhead); err != nil {
				return err
			}
		}
	}
	delivery := g.marshalDelivery()
	hist, err := g.marshalHist()
	if err != nil {
		return err
	}
	err = g.c.st.Update(ctx, func(tx *store.Tx) error {
		if !ch.covered {
			if err := tx.SaveGroupState(g.id, g.mls.Epoch(), state); err != nil {
				return err
			}
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
		if err := tx.SaveSession(deliveryKey(g.id), delivery); err != nil {
			return err
		}
		if sigState != nil {
			if err := sigState.write(tx, g); err != nil {
				return err
			}
		}
		if hist != nil {
			if err := hist.write(tx, g); err != nil {
				return err
			}
		}
		if ch.clearWire {
			for _, k := range []store.WireKind{store.WireCommit, store.WireMessage} {
				if _, err := tx.DeleteWireFrom(g.id, k, 0); err != nil {
					return err
				}
			}
		}
		if ch.dropWire != nil {
			if _, err := tx.DeleteWireFrom(g.id, store.WireCommit, *ch.dropWire); err != nil {
				return err
			}
			if _, err := tx.DeleteWireFrom(g.id, store.WireMessage, *ch.dropWire+1); err != nil {
				return err
			}
		}
		if len(ch.wire) > 0 {
			if err := tx.AppendWire(g.id, ch.wire); err != nil {
				return err
			}
		}
		for _, it := range ch.outbox {
			if err := tx.PutOutbox(it); err != nil {
				return err
			}
		}
		// AppendMessages sets the Seq of the messages it inserts (copies are skipped).
		_, err := tx.AppendMessages(ch.msgs)
		return err
	})
	if err != nil {
		return err
	}
	if sigState != nil {
		sigState.saved(g)
	}
	if hist != nil {
		hist.saved(g)
	}
	g.metaSaved = true
	if ch.covered {
		if len(pend.wire) > 0 {
			g.saveStateLater()
		}
	} else {
		g.lease = lease
		g.stateSaved = time.Now()
		if g.stateTimer != nil {
			g.stateTimer.Stop()
			g.stateTimer = nil
		}
	}
	for i := range own {
		own[i].Seq = ch.msgs[len(pend.msgs)+i].Seq // the caller's copies get their cursor
	}
	g.saved(pend, ch.msgs)
	return nil
}

// saveSignalSoon saves the signal layer's state (alone) shortly, with the other changes
// made by then, and tells the channel returned how it went. A member that hands us its
// sender key is answered once the key is on disk: it then stops sending the key in its
// messages, so a key lost in a crash would be lost for good. Our own hand-outs leave
// once the session keys they used are on disk (see giveKey).
func (g *group) saveSignalSoon() <-chan error {
	ch := make(chan error, 1)
	g.sigWaiters = append(g.sigWaiters, ch)
	if len(g.sigWaiters) == 1 {
		time.AfterFunc(sigSaveDelay, func() { g.post(g.flushSignal) })
	}
	return ch
}

// sigSaveDelay gathers the sender keys that arrive together (a join's) into one save.
const sigSaveDelay = 50 * time.Millisecond

func (g *group) flushSignal() {
	ws := g.sigWaiters
	g.sigWaiters = nil
	var err error
	if g.sig != nil {
		var st *sigSave
		var mark signal.SendMark
		if st, mark, err = g.marshalSignal(sendAhead); err == nil {
			err = g.c.st.Update(g.c.ctx, func(tx *store.Tx) error { return st.write(tx, g) })
		}
		if err == nil {
			st.saved(g)
			g.lease.sig = mark // what we send with is as it was: the state on disk moved on
		}
	}
	for _, w := range ws {
		w <- err
	}
}

// saveMessages stores the received messages pending, without the group state: see flush.
// They are not synced to disk at once: what a power failure loses of them, the members
// send again as they would after a crash.
func (g *group) saveMessages(ctx context.Context) error {
	pend := g.pend
	err := g.c.st.UpdateUnsynced(ctx, func(tx *store.Tx) error {
		if err := tx.AppendWire(g.id, pend.wire); err != nil {
			return err
		}
		_, err := tx.AppendMessages(pend.msgs)
		return err
	})
	if err != nil {
		return err
	}
	g.saved(pend, pend.msgs)
	return nil
}

// saved tells about the received messages of pend once msgs (which begin with them) are
// stored.
func (g *group) saved(pend pending, msgs []store.Message) {
	g.pend = pending{}
	if g.flushTimer != nil {
		g.flushTimer.Stop()
		g.flushTimer = nil
	}
	for i, ev := range pend.events {
		if !toldAtOnce(ev) && msgs[i].Seq != 0 { // new, not a copy of a message we have
			g.c.emit(ev)
		}
	}
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
	case <-g.done:
		return g.stopped()
	}
	select {
	case err := <-done:
		return err
	case <-g.c.ctx.Done():
		return ErrClosed
	case <-g.done:
		// f ran to its end before the actor stopped, if it ran at all.
		select {
		case err := <-done:
			return err
		default:
			return g.stopped()
		}
	}
}

// stopped is why the group's actor stopped: the client closed, or the group was replaced.
func (g *group) stopped() error {
	if g.c.ctx.Err() != nil {
		return ErrClosed
	}
	return errStopped
}

// errStopped is what do returns when the group's actor stopped before running f: a Join
// or a Welcome replaced the group.
var errStopped = errors.New("chat: the group was replaced while this waited; try again")

// apply runs f on the actor and returns once it ran, or once the group or the client
// stopped. Functions given to post may run in any order; what the caller then does on
// the actor comes after f.
func (g *group) apply(f func()) {
	ran := make(chan struct{})
	select {
	case g.ops <- func() { f(); close(ran) }:
	case <-g.done:
		return
	case <-g.c.ctx.Done():
		return
	}
	select {
	case <-ran:
	case <-g.done:
	case <-g.c.ctx.Done():
	}
}

// post runs f on the actor later, from another goroutine.
func (g *group) post(f func()) {
	go func() {
		select {
		case g.ops <- f:
		case <-g.done:
		case <-g.c.ctx.Done():
		}
	}()
}

func (g *group) run() {
	defer g.c.wg.Done()
	defer close(g.done)
	g.started, g.liveSince = time.Now(), g.c.cfg.Now()
	msgs := g.topic.Messages()
	hb := time.NewTimer(g.beat())
	defer hb.Stop()
	tick := time.NewTicker(g.c.cfg.Settle / 2)
	defer tick.Stop()
	g.heartbeat() // say we are here: members that were waiting for us learn it now
	for {
		var timerC, flushC, stateC <-chan time.Time
		if g.timer != nil {
			timerC = g.timer.C
		}
		if g.flushTimer != nil {
			flushC = g.flushTimer.C
		}
		if g.stateTimer != nil {
			stateC = g.stateTimer.C
		}
		select {
		case <-g.c.ctx.Done():
			if len(g.pend.wire) > 0 || g.stateTimer != nil {
				if err := g.save(context.Background(), nil); err != nil {
					g.c.cfg.Logger.Warn("chat: save at close: " + err.Error())
				}
			}
			return
		case <-flushC:
			g.flushTimer = nil
			g.flush()
		case <-stateC:
			g.stateTimer = nil
			if err := g.save(g.c.ctx, nil); err != nil {
				g.errorf("chat: save: %w", err)
			}
		case <-g.quit:
			return
		case f := <-g.ops:
			f()
		case m, ok := <-msgs:
			if !ok {
				return
			}
			g.receive(m.From, m.Data, false)
		case <-hb.C:
			g.heartbeat()
			g.checkOnline()
			hb.Reset(g.beat())
		case <-tick.C:
			g.settle()
			g.checkJoiners()
			g.checkGaps()
			g.checkAhead()
			g.publishHeld()
		case <-timerC:
			g.timer = nil
			g.commitDue()
		}
	}
}

// validate is the topic validator: junk is rejected, the rest goes to the actor.
func (g *group) validate(_ context.Context, _ peer.ID, data []byte) gossip.Result {
	if len(data) < 2 {
		return gossip.Reject
	}
	switch data[0] {
	case frameApp:
		if _, err := layers.PeekPolicy(data[1:]); err != nil {
			return gossip.Reject
		}
	case frameCommit:
		if _, err := parseCommitFrame(data); err != nil {
			return gossip.Reject
		}
	case frameProposal, frameProposals:
		if _, err := parseProposalFrame(data); err != nil {
			return gossip.Reject
		}
	case frameHeartbeat:
		h, err := parseHeartbeat(data)
		if err != nil || !bytes.Equal(h.group, g.id) {
			return gossip.Reject
		}
	default:
		return gossip.Reject
	}
	return gossip.Accept
}

// receive handles one frame from the topic (quiet: one kept for later, tried again).
func (g *group) receive(from peer.ID, data []byte, quiet bool) {
	if len(data) == 0 {
		return
	}
	switch data[0] {
	case frameApp:
		g.receiveApp(data, false, quiet)
	case frameCommit:
		f, err := parseCommitFrame(data)
		if err == nil {
			g.receiveCommit(from, f, data, quiet)
		}
	case frameProposal, frameProposals:
		f, err := parseProposalFrame(data)
		if err == nil {
			g.receiveProposal(f, data)
		}
	case frameHeartbeat:
		h, err := decodeHeartbeat(data) // the topic validator checked its signature
		if err == nil {
			g.receiveHeartbeat(from, h)
		}
	}
}

// keptFrame is a frame that could not be handled yet.
type keptFrame struct {
	frame    []byte
	hash     [32]byte
	sender   string // for a message that lacked its sender's signal key: the sender ("" otherwise)
	fromSync bool   // a message that came in a sync answer: late, whenever it opens
}

// stash keeps a frame that cannot be handled yet (an epoch we have not reached, a
// proposal a commit refers to), for after the next commit.
func (g *group) stash(frame []byte) { g.keep(frame, nil, false) }

// keep keeps a frame that cannot be handled yet; sender, if not nil, is the sender of a
// message whose signal sender key we lack, to try it again after the next message of the
// same sender (the one that carries the key) rather than after every message.
func (g *group) keep(frame []byte, sender []byte, fromSync bool) {
	h := frameHash(frame)
	if g.kept[h] {
		return
	}
	if len(g.future) >= maxFuture {
		delete(g.kept, g.future[0].hash)
		g.future = g.future[1:]
	}
	g.kept[h] = true
	g.future = append(g.future, keptFrame{frame: frame, hash: h, sender: string(sender), fromSync: fromSync})
}

// retryFuture handles again the frames kept for later: all of them (sender nil, after a
// commit), or the messages of one sender whose key we lacked (after a message of that
// sender opened). Opening a message costs an MLS decryption and a signature check: trying
// every kept frame after every message made a large group's backlog quadratic.
func (g *group) retryFuture(sender []byte) {
	if g.retrying || len(g.future) == 0 {
		return
	}
	g.retrying = true
	defer func() { g.retrying = false }()
	for {
		var retry []keptFrame
		rest := g.future[:0:0]
		for _, k := range g.future {
			if sender == nil || k.sender == string(sender) {
				retry = append(retry, k)
				delete(g.kept, k.hash)
			} else {
				rest = append(rest, k)
			}
		}
		g.future = rest
		for _, k := range retry { // what still cannot be handled is kept again
			if k.fromSync {
				g.receiveApp(k.frame, true, true)
			} else {
				g.receive("", k.frame, true)
			}
		}
		// Handling one may have made another possible (a commit, a sender key): again
		// until a round handles none.
		if len(retry) == 0 || len(g.future)-len(rest) == len(retry) {
			return
		}
	}
}

func (g *group) members() []Member {
	var out []Member
	for _, m := range g.mls.Members() {
		p := peerOf(m.Identity)
		mem := Member{Peer: p, LeafIndex: m.LeafIndex, Self: m.LeafIndex == g.mls.LeafIndex()}
		if pub, err := identity.ParsePublicKey(m.Identity); err == nil {
			mem.Fingerprint = pub.Fingerprint()
		}
		if pi := g.peers[string(m.Identity)]; pi != nil {
			mem.Online, mem.Nick = pi.online, pi.nick
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
	known := map[peer.ID]store.Peer{} // one read for the whole roster
	if ps, err := g.c.st.Peers(ctx); err == nil {
		for _, p := range ps {
			known[peer.ID(p.ID)] = p
		}
	}
	for i := range ms {
		p := known[ms[i].Peer]
		if !ms[i].Self && ms[i].Nick == "" {
			ms[i].Nick = p.Name
		}
		// Verified only for the identity key the user compared (the peer id names it).
		if v, err := identity.ParsePublicKey(p.VerifiedKey); err == nil {
			cur, err := identity.PublicKeyFromPeerID(ms[i].Peer)
			ms[i].Verified = err == nil && v.Equal(cur)
		}
	}
	owed := 0
	if g.sig != nil {
		owed = len(g.sig.SenderKeyLacking(g.recipients()))
	}
	return GroupState{
		ID: g.gid, Name: g.name, Policy: g.pol.String(),
		Suite: g.mls.CipherSuite(), SuiteName: g.mls.CipherSuite().String(),
		Epoch: g.mls.Epoch(), Authenticator: g.authPrefix(), Members: ms,
		Active: g.active(), Syncing: len(g.syncing) > 0, KeysOwed: owed,
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

func (g *group) errorf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	g.c.cfg.Logger.Warn(err.Error(), "group", g.gid[:8], "epoch", g.mls.Epoch())
	g.c.emit(Error{Group: g.gid, Err: err})
}

func (g *group) debug(msg string, args ...any) {
	g.c.cfg.Logger.Debug(msg, append([]any{"group", g.gid[:8], "epoch", g.mls.Epoch()}, args...)...)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func frameHash(b []byte) [32]byte { return sha256.Sum256(b) }

// seenSet remembers the hashes of the last n frames handled.
type seenSet struct {
	m     map[[32]byte]bool
	order [][32]byte
	n     int
}

func newSeenSet(n int) *seenSet { return &seenSet{m: map[[32]byte]bool{}, n: n} }

func (s *seenSet) has(h [32]byte) bool { return s.m[h] }

func (s *seenSet) add(h [32]byte) {
	if s.m[h] {
		return
	}
	if len(s.order) >= s.n {
		delete(s.m, s.order[0])
		s.order = s.order[1:]
	}
	s.m[h] = true
	s.order = append(s.order, h)
}
