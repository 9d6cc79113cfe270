package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/signal"
	"github.com/tchat-p2p/tchat/net/proto"
)

// MaxText bounds a text message, in bytes. A message travels as one gossipsub message,
// capped at 4 MiB, and its JSON escaping can grow a text up to six times.
const MaxText = 512 << 10

// payload is the plaintext of an application message.
type payload struct {
	ID     string `json:"id"`
	Time   int64  `json:"t"` // unix milliseconds
	Text   string `json:"text"`
	Nick   string `json:"nick,omitempty"`
	Epoch  uint64 `json:"e"`           // the epoch it was first sent in
	Resent bool   `json:"r,omitempty"` // sent again after its first epoch lost
	// N is how many messages the sender has sent in the epoch it sealed this one in,
	// this one included: a receiver that has fewer of them lost some on the way.
	N uint32 `json:"n,omitempty"`
	// Kind is empty for a chat message. Any other kind is counted and logged like a
	// message, but is not one: it is not stored in the history or told about.
	Kind string `json:"k,omitempty"`
}

// outboxEntry is what the outbox keeps of an own message until its epoch is final: the
// authenticator of the epoch it went out in (on another branch it must go out again) and
// the payload.
type outboxEntry struct {
	Auth    []byte  `json:"a"`
	Payload payload `json:"p"`
}

// recipients returns the other members' identities (not to be modified).
func (g *group) recipients() [][]byte { return g.roster().recips }

// send seals a text message, saves it (history, outbox, wire log) with the state it used,
// and publishes it.
func (g *group) send(ctx context.Context, text string) (Message, error) {
	if !g.active() {
		return Message{}, ErrNotMember
	}
	if len(text) > MaxText {
		return Message{}, fmt.Errorf("chat: a message is at most %d bytes", MaxText)
	}
	idb := make([]byte, 16)
	if _, err := rand.Read(idb); err != nil {
		return Message{}, err
	}
	now := g.c.cfg.Now()
	p := payload{ID: hex.EncodeToString(idb), Time: now.UnixMilli(), Text: text, Nick: g.c.Nick(), Epoch: g.mls.Epoch()}
	msgs := []store.Message{{
		GroupID: g.id, MsgID: idb, Epoch: p.Epoch, Sender: []byte(g.c.node.ID()),
		SentAt: now, ReceivedAt: now, Flags: store.FlagOwn, Content: []byte(text),
	}}
	if len(g.recipients()) == 0 {
		// Alone in the group: the message goes into the history only; members added
		// later must not read what was said before them.
		if err := g.c.st.Update(ctx, func(tx *store.Tx) error { _, err := tx.AppendMessages(msgs); return err }); err != nil {
			return Message{}, fmt.Errorf("chat: save: %w", err)
		}
		return messageOf(g.gid, msgs[0], p.Nick), nil
	}
	if err := g.sendPayload(ctx, p, msgs); err != nil {
		return Message{}, err
	}
	return messageOf(g.gid, msgs[0], p.Nick), nil
}

// sendPayload seals p in the current epoch and sends it; msgs go into the history in the
// same transaction.
func (g *group) sendPayload(ctx context.Context, p payload, msgs []store.Message) error {
	epoch := g.mls.Epoch()
	p.N = g.sent[epoch] + 1
	pt, err := json.Marshal(p)
	if err != nil {
		return err
	}
	lctx := &layers.Context{Group: g.id, Sender: g.c.self, Recipients: g.recipients()}
	sealed, err := g.app.Seal(lctx, pt)
	if err != nil {
		return fmt.Errorf("chat: seal: %w", err)
	}
	frame := appFrame(sealed)
	entry, err := json.Marshal(outboxEntry{Auth: g.authPrefix(), Payload: p})
	if err != nil {
		return err
	}
	idb, _ := hex.DecodeString(p.ID)
	g.sent[epoch]++
	g.seen.add(frameHash(frame))
	// The key generations used are gone from the state: unless the state saved covers
	// them (sendLease), save it before the message leaves.
	if err := g.save(ctx, &change{
		covered: g.covered(),
		msgs:    msgs,
		wire:    []store.WireItem{{Epoch: epoch, Kind: store.WireMessage, Data: frame, Sender: g.c.self}},
		outbox:  []store.OutboxItem{{GroupID: g.id, MsgID: idb, Epoch: epoch, CreatedAt: g.c.cfg.Now(), Payload: entry}},
	}); err != nil {
		g.sent[epoch]--
		return fmt.Errorf("chat: save: %w", err)
	}
	g.publish(ctx, frame)
	return nil
}

// handOutKey hands our signal sender key to every member that lacks it, each over a
// stream of its own (/tchat/senderkey/1), a few at a time: after we join, after a
// commit adds members, after a restart, and when a member we owe a key is heard from
// again. Our group messages then need not carry the key: there it costs
// about 1.35 KB per member that lacks it (a PQXDH handshake, most of it ML-KEM), in a
// message that gossip floods to every member, so a large group's first messages would
// cost every member O(members²) bytes. A member counts as having the key once it said
// it saved it. While a hand-out is on its way, our group messages carry the key for no
// one it goes to; for a member the key could not reach, they carry it, from where the
// hand-out had it (see signal.Layer.SealSenderKey), as in Signal.
func (g *group) handOutKey(members [][]byte, try, waits int) {
	if g.sig == nil || !g.active() {
		return
	}
	if members == nil {
		members = g.recipients()
	}
	var todo [][]byte
	for _, m := range g.sig.SenderKeyLacking(members) {
		if !g.keyGiving[string(m)] {
			g.keyGiving[string(m)] = true
			todo = append(todo, m)
		}
	}
	if len(todo) == 0 {
		return
	}
	// This call's tries take over from any earlier ones for the same members (a member
	// heard from again starts over at the first try): one series of tries per member.
	g.keySeriesN++
	series := g.keySeriesN
	for _, m := range todo {
		g.keySeries[string(m)] = series
	}
	ours := func(ms [][]byte) [][]byte {
		return slices.DeleteFunc(ms, func(m []byte) bool { return g.keySeries[string(m)] != series })
	}
	sig := g.sig
	// Our messages skip the members whose hand-outs are coming rather than carry the key
	// for each: but only those we can dial at once, with addresses known.
	var coming [][]byte
	for _, m := range todo {
		if len(g.c.node.Host().Peerstore().Addrs(peerOf(m))) > 0 {
			coming = append(coming, m)
		}
	}
	keyID := sig.HandOutsComing(coming)
	go func() {
		sem := make(chan struct{}, keyStreams)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var again, notReady, more [][]byte
		for _, m := range todo {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				// A member that has not applied the commit that added us (or it), has
				// not taken its Welcome yet, or is out of reach (its addresses may come
				// later) is tried again a little later. One that refused the key is not:
				// our messages carry the key for it from then on. (Trying it again as one
				// out of reach, the sim-200 swarm formed in 575 s with 531 forks; without,
				// in 467 s with none.) A member that still cannot open our messages tells
				// us so (see keyLacked).
				err := g.giveKey(sig, m, keyID, try >= maxKeyTries)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					more = append(more, m) // perhaps owed another key
				case errors.Is(err, proto.ErrUnavailable) || errors.Is(err, proto.ErrNotFound):
					notReady = append(notReady, m)
				case !errors.Is(err, proto.ErrRefused) && !errors.Is(err, ErrNotMember):
					again = append(again, m)
				}
			}()
		}
		wg.Wait()
		g.post(func() {
			for _, m := range todo {
				delete(g.keyGiving, string(m))
			}
			if len(notReady) > 0 {
				if waits < keyReadyTries && try < maxKeyTries {
					time.AfterFunc(keyReadyRetry<<waits, func() {
						g.post(func() {
							if m := ours(notReady); len(m) > 0 {
								g.handOutKey(m, try, waits+1)
							}
						})
					})
				} else {
					again = append(again, notReady...)
				}
			}
			next := try + 1
			if try >= maxKeyTries {
				// Given up, but for a member our messages skipped: nothing else may bring it
				// the key for them (we may send nothing more), so on, at the longest interval.
				next, again = try, slices.DeleteFunc(again, func(m []byte) bool { return g.sig != sig || !sig.SenderKeyOwed(m) })
			}
			if len(again) > 0 {
				time.AfterFunc(g.beat()<<(min(try, maxKeyTries)-1), func() {
					g.post(func() {
						if m := ours(again); len(m) > 0 {
							g.handOutKey(m, next, keyReadyTries)
						}
					})
				})
			}
			if len(more) > 0 && g.sig == sig {
				owed := g.sig.SenderKeyLacking(more)
				if try >= maxKeyTries {
					// Past the last try, a member that took one hand-out still gets those
					// our messages skipped it for (as a member we could not reach keeps
					// being tried above): each that arrives is one fewer. Stopping here
					// left it unable to read the messages of a later key for good
					// (seen in 20-peer swarm runs with churn across partitions).
					owed = slices.DeleteFunc(owed, func(m []byte) bool { return !sig.SenderKeyOwed(m) })
				}
				if len(owed) > 0 {
					g.handOutKey(owed, min(try+1, maxKeyTries), 0)
				}
			}
		})
	}()
}

// handOutKeySoon hands our sender key to members (nil: all) after keyDelay.
func (g *group) handOutKeySoon(members [][]byte) {
	time.AfterFunc(g.keyDelay(), func() { g.post(func() { g.handOutKey(members, 1, 0) }) })
}

// keyDelay is a random point within Config.Heartbeat, so that members who learn of the
// same join do not all hand their keys out at once. It does not grow with the group, as
// the heartbeat does: until the keys are out, messages skip the members or carry the
// keys for them.
func (g *group) keyDelay() time.Duration { return mrand.N(g.c.cfg.Heartbeat) }

// Handing our sender key out over streams: streams at once, and tries for a member not
// ready for it or out of reach (a heartbeat apart, then two, four, eight).
//
// Until a member has our key, our messages skip it (the hand-out is coming) or carry the
// key for it, so the sooner they all have it the better: with 8 streams at once, the
// first tenth of a 50-peer swarm's messages (`tchat swarm --peers 50 --messages 2000`)
// had a p99 of 1.2–2.5 s, with 48 of 0.35–2.0 s (four runs each), and the swarm used less
// CPU (82–85 s against 86–95 s). A member that cannot be reached holds up one stream
// of many.
const (
	keyStreams  = 48
	maxKeyTries = 5
)

// A member that refused a hand-out as not ready for it (it has not taken the Welcome
// that adds it, or not applied the commit that adds us or it) is tried again sooner,
// keyReadyRetry later and twice that each time, keyReadyTries times before the
// tries above go on. It is usually ready within a second or two: a joiner whose
// Welcome comes with the answer to its join, a member a commit behind. A heartbeat
// apart (6 s in a group of 50), the members that had tried too early left a fresh
// joiner unable to read them for seconds, and the first messages of a 50-peer swarm had
// a p99 of 0.5–2 s.
const (
	keyReadyRetry = 250 * time.Millisecond
	keyReadyTries = 5
)

// giveKey gives member our sender key (of layer sig, if it is still ours), of id coming
// if its hand-out was noted as coming (signal.Layer.HandOutsComing). It runs outside the
// group's loop. If the key does not arrive, our group messages carry it for the member
// from then on; but while the member is only not ready for it yet (it has not taken the
// Welcome or applied the commit that added us or it, and cannot open our messages
// anyway), not before the last try.
func (g *group) giveKey(sig *signal.Layer, member []byte, coming uint32, last bool) (err error) {
	ctx, cancel := context.WithTimeout(g.c.ctx, 30*time.Second)
	defer cancel()
	var sealing atomic.Bool // the hand-out was sealed: it is on its way
	defer func() {
		if err != nil && !sealing.Load() {
			// Our messages skip no member for a hand-out that never left.
			g.apply(func() { sig.SenderKeyNotSent(member, coming) })
		}
	}()
	// Reach the member first: once sealed, the hand-out is on its way and our messages
	// skip the member until it arrives or fails, which for a member we cannot dial (no
	// address, behind a NAT) would leave them unreadable there until we send again.
	if err := g.c.node.Host().Connect(ctx, peer.AddrInfo{ID: peerOf(member)}); err != nil {
		g.debug("sender key not handed over", "to", peerOf(member), "err", err)
		return err
	}
	var sealed []byte
	var keyID uint32
	var saved <-chan error
	err = g.do(ctx, func() error {
		if g.sig != sig || !g.active() {
			return ErrNotMember
		}
		var err error
		if sealed, keyID, err = sig.SealSenderKey(member, g.id); err == nil {
			sealing.Store(true)
			// The hand-out used a key of our session with the member. If the state on
			// disk holds the session, a restart would use that key again: the state
			// moved on must be on disk before the hand-out leaves. (It need not for a
			// session made since, which the first hand-out to a member makes.)
			if !g.lease.sig.Covers(sig) {
				saved = g.saveSignalSoon()
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if saved != nil {
		select {
		case err = <-saved:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			g.apply(func() { sig.SenderKeyNotSent(member, keyID) })
			return err
		}
	}
	if _, err := g.c.node.SenderKey(ctx, peerOf(member), &proto.SenderKeyRequest{GroupID: g.id, Key: sealed}); err != nil {
		g.debug("sender key not handed over", "to", peerOf(member), "err", err)
		if last || !(errors.Is(err, proto.ErrUnavailable) || errors.Is(err, proto.ErrNotFound)) {
			g.apply(func() { sig.SenderKeyNotSent(member, keyID) })
		}
		return err
	}
	// Applied before giveKey returns: handOutKey then asks what the member still lacks,
	// and a hand-out not yet noted as arrived would have it sealed again.
	g.apply(func() { sig.SenderKeySent(member, keyID) }) // a key replaced since is not marked
	return nil
}

// takeKey installs a member's sender key handed over on its own, and opens the
// member's messages that waited for it.
func (g *group) takeKey(member, sealed []byte) error {
	if err := g.sig.OpenSenderKey(member, g.id, sealed); err != nil {
		return err
	}
	g.keysTaken[string(member)]++
	g.retryFuture(member)
	return nil
}

// maxHeld bounds the frames held back for want of peers on the topic.
const maxHeld = 256

// publish sends an application frame on the topic. With nobody on the topic yet (we
// have just joined, and the members have not heard of us), the frame would go nowhere:
// it is held and published once someone is there (see publishHeld). Either way it is
// saved, in the outbox and in the wire log: members that miss it see it counted, and
// fetch it by sync.
func (g *group) publish(ctx context.Context, frame []byte) {
	if len(g.topic.Peers()) == 0 {
		if len(g.held) < maxHeld {
			g.held = append(g.held, frame)
		}
		return
	}
	if err := g.topic.Publish(ctx, frame); err != nil {
		g.errorf("chat: publish (the members will fetch the message by sync): %w", err)
	}
}

// publishHeld publishes the frames held back, once there are peers on the topic.
func (g *group) publishHeld() {
	if len(g.held) == 0 || len(g.topic.Peers()) == 0 {
		return
	}
	held := g.held
	g.held = nil
	for _, f := range held {
		g.publish(g.c.ctx, f)
	}
}

// quiet reports whether errors about messages that do not open should be kept quiet:
// around a fork, messages of the losing branch are expected not to open.
func (g *group) quiet() bool {
	return time.Since(g.lastFork) < 30*time.Second
}

// receiveApp opens an application frame, stores and reports the message. fromSync frames
// came over /tchat/sync/1: they are late, and may be ones we already have. A retried
// frame is one kept for later (see retryFuture): one that no longer opens is not an
// error to report, as its sender may have sent it again under a key we took since
// (see keyLacked), whose chain has moved past it.
func (g *group) receiveApp(frame []byte, fromSync, retried bool) {
	h := frameHash(frame)
	if g.seen.has(h) || !g.active() {
		return
	}
	actx := &layers.Context{Group: g.id}
	pt, err := g.app.Open(actx, frame[1:])
	switch {
	case err == nil:
	case errors.Is(err, layers.ErrNoKey):
		// An epoch we have not reached yet, or (the sender known) a sender key we do
		// not have: the message that carried it was lost on the way, or never reached
		// us (see checkGaps).
		g.keep(clone(frame), actx.Sender, fromSync)
		if len(actx.Sender) > 0 {
			if !fromSync {
				g.notePeer(actx.Sender, "") // MLS authenticated it: a member, and there
			}
			g.lackKey(actx.Sender, actx.Epoch)
		}
		return
	case errors.Is(err, layers.ErrExpired):
		// Of an epoch before we joined (sent before our Welcome), or older than the
		// epochs we keep: it never opens here, and no one can do anything about it.
		g.debug("a message of an epoch we do not have", "sync", fromSync)
		return
	default:
		// Not marked as seen: a message of another branch opens once we are on it.
		g.debug("message did not open", "err", err, "sync", fromSync)
		if !fromSync && !retried && !g.quiet() {
			g.errorf("chat: a message did not open: %w", err)
		}
		return
	}
	g.seen.add(h)
	var p payload
	if err := json.Unmarshal(pt, &p); err != nil {
		g.errorf("chat: malformed message: %w", err)
		return
	}
	sender := peerOf(actx.Sender)
	idb, err := hex.DecodeString(p.ID)
	if err != nil || len(idb) == 0 || len(idb) > 64 || sender == "" {
		g.errorf("chat: malformed message id or sender")
		return
	}
	if g.got[actx.Epoch] == nil {
		g.got[actx.Epoch] = map[string]uint32{}
	}
	g.got[actx.Epoch][string(actx.Sender)]++
	sent := time.UnixMilli(p.Time)
	// Late: it came by sync, or from an epoch behind us, or sent again, or sent before we
	// were there to get it live (after a restart gossipsub hands us what it still caches,
	// which opens as if live once the commits have caught up).
	late := fromSync || actx.Epoch < g.mls.Epoch() || p.Epoch < actx.Epoch || sent.Before(g.liveSince)
	flags := store.MessageFlags(0)
	if late {
		flags |= store.FlagLate
	}
	if p.Resent {
		flags |= store.FlagResent
	}
	g.notePeer(actx.Sender, p.Nick)
	g.noteCount(actx.Epoch, actx.Sender, p.N)
	// Saved at most flushDelay from now (or sooner when many come), in one transaction
	// for a burst of messages; see flush. Logged for sync whatever its kind: a member
	// that lacks the sender key it carries asks for it.
	g.pend.wire = append(g.pend.wire, store.WireItem{Epoch: actx.Epoch, Kind: store.WireMessage, Data: clone(frame), Sender: clone(actx.Sender)})
	if p.Kind == "" {
		g.pend.msgs = append(g.pend.msgs, store.Message{
			GroupID: g.id, MsgID: idb, Epoch: p.Epoch, Sender: []byte(sender),
			SentAt: sent, ReceivedAt: g.c.cfg.Now(), Flags: flags, Content: []byte(p.Text),
		})
		ev := MessageReceived{Group: g.gid, Sender: sender, Nick: p.Nick, ID: p.ID, Text: p.Text,
			Time: sent, Epoch: p.Epoch, Late: late, Resent: p.Resent}
		if toldAtOnce(ev) {
			g.c.emit(ev)
		}
		g.pend.events = append(g.pend.events, ev)
	}
	g.flushSoon()
	g.retryFuture(actx.Sender) // it may carry the sender key that kept messages of its sender need
}

// flushSoon saves what is pending flushDelay from now, or at once when much is.
func (g *group) flushSoon() {
	if len(g.pend.wire) >= maxPendingSave {
		g.flush()
	} else if g.flushTimer == nil {
		g.flushTimer = time.NewTimer(flushDelay)
	}
}

// Received messages are saved in batches, flushDelay after the first of a batch came,
// and the group state that opened them at most every stateEvery. A live message is told
// as it opens, so the delay costs no one time (see receiveApp); each transaction costs
// SQLite a few pages of its log whatever it holds. With 20 ms, and messages told once
// saved, a 50-member swarm (`tchat swarm --peers 50 --messages 2000`) wrote 2.8 GB to disk;
// with 250 ms, told at once, 1.4 GB, in 72–85 s of CPU against 82–92.
const (
	flushDelay     = 250 * time.Millisecond
	maxPendingSave = 128
	stateEvery     = time.Second
)

// pending is what received messages left to save.
type pending struct {
	msgs   []store.Message
	wire   []store.WireItem
	events []MessageReceived // one per message
}

// toldAtOnce reports whether a received message is told as it opens: a live message,
// sent once, is new. One that came late or again may be a copy of one stored, and is
// told once the store says it is not (see saved).
func toldAtOnce(ev MessageReceived) bool { return !ev.Late && !ev.Resent }

// flush saves the messages received since the last save. The group state that opened
// them (the layers' used-up keys, the delivery counts) is saved with them only if it was
// last saved stateEvery (grown with the group's size) ago, else that long after that
// save: encoding the state of a large group for every burst of messages costs more than
// anything else a member does. A
// crash in between loses nothing: the state on disk is older, so the messages open again
// when sync brings them back, and the store skips the copies. (Our own messages are
// different: the state that sealed one is on disk before it leaves, see sendPayload.)
func (g *group) flush() {
	if len(g.pend.wire) == 0 {
		return
	}
	// A larger group's state is larger (every member's leaf and signal keys), and is
	// saved less often: writing it is most of what saving costs.
	every := g.scaled(stateEvery, beatGroup)
	since := time.Since(g.stateSaved)
	if since >= every {
		if err := g.save(g.c.ctx, nil); err != nil {
			g.errorf("chat: save: %w", err)
		}
		return
	}
	if err := g.saveMessages(g.c.ctx); err != nil {
		g.errorf("chat: save: %w", err)
		return
	}
	g.saveStateLater()
}

// saveStateLater has the group state saved stateEvery after it was last (see flush).
func (g *group) saveStateLater() {
	if g.stateTimer == nil {
		every := g.scaled(stateEvery, beatGroup)
		g.stateTimer = time.NewTimer(max(0, every-time.Since(g.stateSaved)))
	}
}

// peerInfo returns what we know of the member ident, made empty if we know nothing yet
// (nil for ourselves).
func (g *group) peerInfo(ident []byte) *peerInfo {
	if bytes.Equal(ident, g.c.self) {
		return nil
	}
	pi := g.peers[string(ident)]
	if pi == nil {
		pi = &peerInfo{}
		g.peers[string(ident)] = pi
	}
	return pi
}

// notePeer records that a member was heard from, with the nickname it gave.
func (g *group) notePeer(ident []byte, nick string) {
	pi := g.peerInfo(ident)
	if pi == nil {
		return
	}
	pi.heard = time.Now()
	if nick != "" && nick != pi.nick {
		pi.nick = nick
		if p := peerOf(ident); p != "" {
			if err := g.c.st.PutPeer(g.c.ctx, []byte(p), nick, g.c.cfg.Now()); err != nil {
				g.errorf("chat: save peer: %w", err)
			}
		}
	}
	if !pi.online {
		pi.online = true
		g.c.emit(PeerOnline{Group: g.gid, Peer: peerOf(ident)})
		if g.sig != nil && len(g.sig.SenderKeyLacking([][]byte{ident})) > 0 {
			g.handOutKeySoon([][]byte{ident}) // what we owe it could not reach it before
		}
	}
	if !pi.saved {
		// Its addresses, for dialing it again after a restart when nothing else finds it.
		p := peerOf(ident)
		var addrs []string
		for _, a := range g.c.node.Host().Peerstore().Addrs(p) {
			addrs = append(addrs, a.String())
		}
		if len(addrs) > 0 {
			pi.saved = true
			// Not synced: addresses lost in a power failure are learned again, and a
			// member joining a group of N saves N of them.
			err := g.c.st.UpdateUnsynced(g.c.ctx, func(tx *store.Tx) error {
				return tx.AddPeerAddrs([]byte(p), addrs, g.c.cfg.Now())
			})
			if err != nil {
				g.debug("saving a member's addresses failed", "err", err)
			}
		}
	}
}

// gapWait is how long a message that a later one of the same sender showed missing
// may still be on its way (gossip does not keep order) before we ask for it.
const gapWait = time.Second

// noteCount records that sender said, in a message sealed in epoch, that it had sent n
// messages in that epoch.
func (g *group) noteCount(epoch uint64, sender []byte, n uint32) {
	pi := g.peers[string(sender)]
	if pi == nil || n == 0 {
		return
	}
	if pi.heardN == nil {
		pi.heardN = map[uint64]uint32{}
	}
	pi.heardN[epoch] = max(pi.heardN[epoch], n)
	if g.got[epoch][string(sender)] < pi.heardN[epoch] && pi.gapAt.IsZero() {
		pi.gapAt = time.Now()
	}
}

// lackKey records that a message of sender, sealed in epoch, did not open for lack of
// its signal sender key: the message that carried the key is missing, in this epoch or
// an earlier one.
func (g *group) lackKey(sender []byte, epoch uint64) {
	pi := g.peers[string(sender)]
	if pi == nil {
		return
	}
	if !pi.lackSet || epoch < pi.lackFrom {
		pi.lackFrom, pi.lackSet = epoch, true
	}
	if pi.lackKey {
		return
	}
	pi.lackKey = true
	g.debug("a message lacks its sender key", "from", peerOf(sender))
	if pi.gapAt.IsZero() {
		pi.gapAt = time.Now()
	}
}

// A member whose messages still do not open for lack of its sender key after we asked
// for them once (the message that carried the key for us did not come with them) is
// told so, on keyReports of our asks in a row: it hands the key over again, on a new
// session, and sends its messages again (see keyLacked). That covers a hand-out or
// distribution the member believes arrived, or that our state of it cannot open.
// Bounded, so that a message that never opens does not have it send again for ever.
const keyReports = 4

// keyAskWait is how often at most a member that lacks our sender key is answered (a
// handshake and a hand-out each), and our messages are sent again for such members.
const keyAskWait = 5 * time.Second

// keyLacked answers a member that told us it lacks our sender key (proto.WantSenderKey):
// its messages since epoch since did not open. It gets the key on a new session: our
// session with it may be one it no longer has. Our messages since then are sent again,
// under the key it now gets; the other members keep one copy of each.
func (g *group) keyLacked(member []byte, since uint64) {
	pi := g.peers[string(member)]
	if g.sig == nil || !g.active() || pi == nil || time.Since(pi.keyAsked) < keyAskWait {
		return
	}
	pi.keyAsked = time.Now()
	g.debug("a member lacks our sender key", "member", peerOf(member), "since", since)
	if err := g.sig.NewSession(member); err != nil {
		g.debug("no new session", "member", peerOf(member), "err", err)
		return
	}
	g.sig.ResendSenderKey(member)
	// The hand-out is noted as coming before our messages are sealed again: they skip
	// the member, and the hand-out carries the key from before them.
	g.handOutKey([][]byte{member}, 1, 0)
	if time.Since(g.keyResent) < keyAskWait && g.keyResentFrom <= since {
		return
	}
	g.keyResent, g.keyResentFrom = time.Now(), since
	g.resend(g.c.ctx, func(it store.OutboxItem, _ *outboxEntry) bool { return it.Epoch >= since })
}

// checkGaps asks for the messages that later messages of the same sender showed missing
// for gapWait: lost on the way. (The last messages a member sent before falling silent
// are asked for after its heartbeats, which count them.) A gap that stays is asked for
// again, less and less often.
func (g *group) checkGaps() {
	cur := g.mls.Epoch()
	for id, pi := range g.peers {
		if pi.gapAt.IsZero() || time.Since(pi.gapAt) < gapWait<<min(pi.gapTries, 6) {
			continue
		}
		need, missing := uint64(0), false
		for e, n := range pi.heardN {
			if e < g.joinEpoch || e+uint64(g.c.cfg.KeepEpochs) < cur {
				delete(pi.heardN, e)
				continue
			}
			if g.got[e][id] < n && (!missing || e < need) {
				need, missing = e, true
			}
		}
		lacking := pi.lackKey
		if lacking {
			// The key may have come in any epoch we could still read.
			need, missing = max(g.joinEpoch, g.oldestEpoch()), true
			pi.lackKey = false // set again if its messages still do not open
		}
		if !missing {
			pi.gapAt, pi.gapTries, pi.via, pi.lackSet = time.Time{}, 0, "", false
			continue
		}
		pi.gapAt = time.Now()
		pi.gapTries++
		author := peerOf([]byte(id))
		from := g.syncPeerFor(author)
		if pi.via != "" {
			from = pi.via // it told us it has them; the author may not any more
		}
		req := proto.SyncRequest{SinceEpoch: need, Want: proto.WantRecent, Sender: []byte(id)}
		if _, member := g.roster().leaf[id]; lacking && member && pi.gapTries > 1 && pi.gapTries <= 1+keyReports {
			// Asked before, and its key still lacks: the author is told.
			from = author
			if pi.lackSet {
				req.SinceEpoch = max(need, pi.lackFrom)
			}
			req.Want |= proto.WantSenderKey
		}
		g.debug("messages missing", "from", author, "epoch", need, "asking", from, "key lacking", req.Want&proto.WantSenderKey != 0)
		g.requestSync("gap", from, req)
	}
}

// syncPeerFor picks whom to ask for author's messages: the author if we are connected
// to it, else a member online we are connected to (which most likely has them).
func (g *group) syncPeerFor(author peer.ID) peer.ID {
	if ok, _ := g.c.node.Connected(author); ok && !g.syncing[author] {
		return author
	}
	return g.otherMember(author)
}

// otherMember picks a member online, other than p, that we are connected to and not
// syncing with ("" if there is none).
func (g *group) otherMember(p peer.ID) peer.ID {
	var cands []peer.ID
	for id, pi := range g.peers {
		if q := peerOf([]byte(id)); pi.online && q != p && !g.syncing[q] {
			if ok, _ := g.c.node.Connected(q); ok {
				cands = append(cands, q)
			}
		}
	}
	if len(cands) == 0 {
		return ""
	}
	return cands[mrand.IntN(len(cands))]
}

// checkOnline marks members not heard from for three heartbeats as offline.
func (g *group) checkOnline() {
	limit := 3 * g.beat()
	for id, pi := range g.peers {
		if pi.online && time.Since(pi.heard) > limit {
			pi.online = false
			g.c.emit(PeerOffline{Group: g.gid, Peer: peerOf([]byte(id))})
		}
	}
}

// beatGroup is the group size up to which members send heartbeats every
// Config.Heartbeat; see beat.
const beatGroup = 16

// beat is how often we send heartbeats in this group: Config.Heartbeat, scaled.
func (g *group) beat() time.Duration { return g.scaled(g.c.cfg.Heartbeat, beatGroup) }

// scaled is d times the number of members over per, if there are more than per.
func (g *group) scaled(d time.Duration, per int) time.Duration {
	n := len(g.roster().leaf)
	if n <= per {
		return d
	}
	return d * time.Duration(n) / time.Duration(per)
}

// heartbeat publishes our epoch, authenticator prefix and recent message counts.
func (g *group) heartbeat() {
	if !g.active() {
		return
	}
	h := &heartbeat{
		group: g.id, identity: g.c.self, epoch: g.mls.Epoch(), auth: g.authPrefix(),
		timeMs: uint64(g.c.cfg.Now().UnixMilli()), nick: g.c.Nick(),
	}
	for e, n := range g.sent {
		if n > 0 && e+uint64(g.c.cfg.KeepEpochs) >= g.mls.Epoch() {
			h.counts = append(h.counts, epochCount{e, n})
		}
	}
	sort.Slice(h.counts, func(i, j int) bool { return h.counts[i].epoch < h.counts[j].epoch })
	h.relayed = g.relayCounts()
	b, err := h.sign(g.c.id)
	if err != nil {
		g.errorf("chat: heartbeat: %w", err)
		return
	}
	ctx, cancel := context.WithTimeout(g.c.ctx, 5*time.Second)
	defer cancel()
	_ = g.topic.Publish(ctx, b) // best effort: the next one follows
}

// relayCounts lists the messages we hold of senders that do not count them in their own
// heartbeats any more: a member removed, gone offline, or added again with its counts
// started afresh. Without it, a message such a sender got to only some members (during
// a partition, say) would never be missed by the others. At most maxRelayed, picked at
// random when there are more, so that every one is relayed now and then.
func (g *group) relayCounts() []relayCount {
	var out []relayCount
	cur := g.mls.Epoch()
	for e, m := range g.got {
		if e+uint64(g.c.cfg.KeepEpochs) < cur {
			continue
		}
		for id, n := range m {
			if len(id) != 32 {
				continue // not an identity key: not ours to relay
			}
			if _, member := g.leafOf([]byte(id)); member {
				if pi := g.peers[id]; pi != nil && pi.online && pi.claimed[e] > 0 {
					continue // it counts them itself
				}
			}
			out = append(out, relayCount{sender: []byte(id), epoch: e, count: n})
		}
	}
	if len(out) > maxRelayed {
		mrand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		out = out[:maxRelayed]
	}
	return out
}

// receiveRelayed notes the messages a member (whom p reaches) holds of senders that no
// longer count them themselves, and that we lack: checkGaps asks p for them.
func (g *group) receiveRelayed(p peer.ID, rs []relayCount) {
	for _, r := range rs {
		if bytes.Equal(r.sender, g.c.self) || r.epoch < g.joinEpoch || g.got[r.epoch][string(r.sender)] >= r.count {
			continue
		}
		pi := g.peerInfo(r.sender)
		if pi.heardN == nil {
			pi.heardN = map[uint64]uint32{}
		}
		pi.heardN[r.epoch] = max(pi.heardN[r.epoch], r.count)
		pi.via = p
		if pi.gapAt.IsZero() {
			pi.gapAt = time.Now()
		}
	}
}

// receiveHeartbeat compares a member's view with ours: a member ahead has commits we
// lack, a member on another branch is a fork, a member that sent more messages than we
// have has some we missed. Each case is a sync with that member.
func (g *group) receiveHeartbeat(from peer.ID, h *heartbeat) {
	if g.out && !bytes.Equal(h.identity, g.c.self) && bytes.Equal(h.group, g.id) {
		g.outHeartbeat(from, h)
		return
	}
	if !g.active() || bytes.Equal(h.identity, g.c.self) || !bytes.Equal(h.group, g.id) {
		return
	}
	if _, member := g.leafOf(h.identity); !member {
		return // a removed member, or one added on a branch we do not have (yet)
	}
	// Ask the author if we have a connection to it, else the peer that forwarded the
	// heartbeat (which is connected, and on the author's side of us).
	if author := peerOf(h.identity); from == "" {
		from = author
	} else if ok, _ := g.c.node.Connected(author); ok {
		from = author
	}
	g.notePeer(h.identity, h.nick)
	pi := g.peers[string(h.identity)]
	pi.hbEpoch, pi.hbAuth = h.epoch, h.auth
	claimed := pi.claimed
	pi.claimed = make(map[uint64]uint32, len(h.counts))
	for _, c := range h.counts {
		pi.claimed[c.epoch] = c.count
	}
	cur := g.mls.Epoch()
	switch {
	case h.epoch == cur && bytes.Equal(h.auth, g.authPrefix()):
		delete(g.stuck, string(h.identity))
		g.confirmed = true
		if _, ok := g.forkSeen[string(h.identity)]; ok {
			delete(g.forkSeen, string(h.identity))
			g.c.emit(ForkResolved{Group: g.gid, Epoch: cur, How: "agreed"})
		}
		// Messages the member had sent by its previous heartbeat should be here by now;
		// the ones it sent since may still be on their way.
		need, missing := uint64(0), false
		for _, c := range h.counts {
			if c.epoch < g.joinEpoch || c.epoch+uint64(g.c.cfg.KeepEpochs) < cur {
				continue
			}
			if g.got[c.epoch][string(h.identity)] < min(c.count, claimed[c.epoch]) && (!missing || c.epoch < need) {
				need, missing = c.epoch, true
			}
		}
		if missing {
			g.requestSync("counts", from, proto.SyncRequest{SinceEpoch: need, Want: proto.WantRecent, Sender: h.identity})
		}
		g.receiveRelayed(from, h.relayed)
	case h.epoch > cur:
		g.noteAhead(from, h.epoch)
	default:
		a := g.chainAuth(h.epoch)
		if a == nil {
			pi.noteBehind()
		} else {
			pi.behindAt = ""
		}
		if (a != nil && bytes.Equal(a[:authPrefix], h.auth)) || (a == nil && !g.staysBehind(pi)) {
			// Behind us on our branch (or further back than we can tell): it will
			// sync from us, and find out itself if it is on another branch.
			delete(g.stuck, string(h.identity))
			return
		}
		// One sync per aheadWait with each member on another branch: the member
		// whose branch lost must get to the end of the recovery ladder (fruitlessSync)
		// before the one whose branch won gives way.
		if time.Since(pi.forkSync) < aheadWait {
			return
		}
		pi.forkSync = time.Now()
		if g.forkSeen[string(h.identity)] != h.epoch+1 {
			g.forkSeen[string(h.identity)] = h.epoch + 1
			g.lastFork = time.Now()
			g.c.emit(ForkDetected{Group: g.gid, Peer: peerOf(h.identity), Epoch: h.epoch})
		}
		// The other branch's messages since the oldest epoch we could go back to: if it
		// wins, we need them.
		g.requestSync("fork", from, proto.SyncRequest{SinceEpoch: g.oldestEpoch(), Want: proto.WantCommits | proto.WantRecent})
	}
}

// outHeartbeat: we are out (see leftOut), but the group goes on: every outCheck
// heartbeats we look whether its branch has a leaf of ours again (a member added us, and
// the Welcome did not reach us), to take it back (see rejoinExternal).
func (g *group) outHeartbeat(from peer.ID, h *heartbeat) {
	if time.Since(g.outChecked) < outCheck*g.beat() || (h.epoch == g.mls.Epoch() && bytes.Equal(h.auth, g.authPrefix())) {
		return
	}
	g.outChecked = time.Now()
	if author := peerOf(h.identity); from == "" {
		from = author
	} else if ok, _ := g.c.node.Connected(author); ok {
		from = author
	}
	g.rejoinExternal(from)
}

const outCheck = 8

// aheadWait is how long the commits a member ahead of us has may still be on their way
// to us by gossip before we ask for them.
const aheadWait = time.Second

// aheadNote is what we know of members ahead of us.
type aheadNote struct {
	epoch uint64    // the furthest epoch a member was seen in
	from  peer.ID   // whom to ask
	since time.Time // when we saw we were behind, or last asked (zero: we are not)
}

// noteAhead records that p is in (or has a commit for) a later epoch than ours. In a
// large group every commit reaches some members before others, and their heartbeats
// show them ahead to the rest: asking at once would have every member sync for every
// commit. If we are still behind after aheadWait, checkAhead asks, and again each
// aheadWait while we stay behind.
func (g *group) noteAhead(p peer.ID, epoch uint64) {
	if epoch <= g.mls.Epoch() {
		return
	}
	if epoch >= g.ahead.epoch {
		g.ahead.epoch, g.ahead.from = epoch, p
	}
	if g.ahead.since.IsZero() {
		g.ahead.since = time.Now()
	}
}

// checkAhead asks a member ahead of us for the commits we still lack after aheadWait.
func (g *group) checkAhead() {
	switch {
	case g.ahead.since.IsZero():
	case g.mls.Epoch() >= g.ahead.epoch:
		g.ahead = aheadNote{}
	case time.Since(g.ahead.since) >= aheadWait:
		g.requestSync("behind", g.ahead.from, g.catchUp())
		g.ahead.since = time.Now() // again after aheadWait if still behind
	}
}

// catchUp is the sync request for a member ahead of us: the commits since the oldest
// epoch we could go back to (it may be on another branch), and the messages from our
// epoch on. Messages of older epochs we lack show in heartbeats, and are asked for then.
func (g *group) catchUp() proto.SyncRequest {
	return proto.SyncRequest{SinceEpoch: g.oldestEpoch(), RecentSince: g.mls.Epoch(), Want: proto.WantCommits | proto.WantRecent}
}

// mismatch counts the syncs with one member that left us disagreeing with it.
type mismatch struct {
	ours string // our epoch and authenticator when counting started
	n    int
}

// fruitlessSync is called after a sync with p that moved us nowhere. A member whose
// last heartbeat still disagrees with us after several such syncs is on a branch that
// syncing cannot bring us to (its fork point is older than the epochs we keep, or we
// restarted since): we ask it to re-add us. When neither side can judge, the branch with
// the later epoch (then the lower authenticator) stays; a member whose branch should stay
// but sees the other side not move for long gives way too.
func (g *group) fruitlessSync(p peer.ID) {
	pub, err := identity.PublicKeyFromPeerID(p)
	if err != nil {
		return
	}
	id := string(pub.Bytes())
	pi := g.peers[id]
	if pi == nil || pi.hbAuth == nil {
		return
	}
	cur := g.mls.Epoch()
	if pi.hbEpoch == cur && bytes.Equal(pi.hbAuth, g.authPrefix()) {
		delete(g.stuck, id)
		return
	}
	if a := g.chainAuth(pi.hbEpoch); pi.hbEpoch < cur && ((a == nil && !g.staysBehind(pi)) || (a != nil && bytes.Equal(a[:authPrefix], pi.hbAuth))) {
		return // behind us
	}
	ours := fmt.Sprintf("%d/%x", cur, g.authPrefix())
	m := g.stuck[id]
	if m == nil || m.ours != ours {
		m = &mismatch{ours: ours}
		g.stuck[id] = m
	}
	m.n++
	theirsWins := g.winsOverOurs(pi)
	onOurs, onTheirs := g.onBranches(pi)
	g.debug("fruitless sync", "with", p, "times", m.n, "theirs wins", theirsWins, "on ours", onOurs, "on theirs", onTheirs)
	// The side with fewer members online gives way; between equal sides, the rule of
	// winsOverOurs. (A member that cannot judge a branch, for it entered the group on its
	// own after the two parted, would otherwise make the members of the winning branch
	// come over to its branch, when they outnumber it.)
	if m.n >= 3 && (onOurs < onTheirs || onOurs == onTheirs && (theirsWins || m.n >= 8)) {
		delete(g.stuck, id)
		g.rejoinSoon(p)
	}
}

// onBranches counts the members online on our branch (us too) and on the one pi's last
// heartbeat showed: those whose last heartbeats showed the same epoch and authenticator.
func (g *group) onBranches(pi *peerInfo) (ours, theirs int) {
	ours = 1
	for _, q := range g.peers {
		switch {
		case !q.online && q != pi:
		case q.hbEpoch == g.mls.Epoch() && bytes.Equal(q.hbAuth, g.authPrefix()):
			ours++
		case q.hbEpoch == pi.hbEpoch && bytes.Equal(q.hbAuth, pi.hbAuth):
			theirs++
		}
	}
	return ours, theirs
}

// peerByID returns what we know of the member with peer id p (nil if nothing).
func (g *group) peerByID(p peer.ID) *peerInfo {
	pub, err := identity.PublicKeyFromPeerID(p)
	if err != nil {
		return nil
	}
	return g.peers[string(pub.Bytes())]
}

// winsOverOurs says whether the branch a member's last heartbeat showed wins over ours
// when the two cannot be compared: the later epoch, then the lower authenticator.
func (g *group) winsOverOurs(pi *peerInfo) bool {
	cur := g.mls.Epoch()
	return pi.hbAuth != nil && (pi.hbEpoch > cur || (pi.hbEpoch == cur && bytes.Compare(pi.hbAuth, g.authPrefix()) < 0))
}

// noteBehind records the heartbeat of a member at an epoch before the oldest we keep.
func (pi *peerInfo) noteBehind() {
	if at := fmt.Sprintf("%d/%x", pi.hbEpoch, pi.hbAuth); at != pi.behindAt {
		pi.behindAt, pi.behindSince = at, time.Now()
	}
}

// staysBehind: the member's heartbeats have shown, for a while, one epoch from before we
// entered the group, and no member online is on our branch with us. A member behind us
// on our branch syncs from us and comes up within a heartbeat or two; one that does not
// is on another branch, which we cannot judge (we entered the group on ours after the
// two parted), and which may have won over ours: its members, who judged, wait for us
// to come over.
func (g *group) staysBehind(pi *peerInfo) bool {
	return pi.hbEpoch < g.joinEpoch && pi.behindAt == fmt.Sprintf("%d/%x", pi.hbEpoch, pi.hbAuth) &&
		time.Since(pi.behindSince) >= g.behindWait() && g.alone()
}

// behindWait is how long a member stays behind our epoch before staysBehind says so.
func (g *group) behindWait() time.Duration { return max(5*aheadWait, 3*g.beat()) }

// alone: no member online is on our branch with us (in our epoch, with our
// authenticator).
func (g *group) alone() bool {
	for _, pi := range g.peers {
		if pi.online && pi.hbEpoch == g.mls.Epoch() && bytes.Equal(pi.hbAuth, g.authPrefix()) {
			return false
		}
	}
	return true
}

// stranded: p is on another branch, and we can tell nothing more. Either p is in our
// epoch, and we have no earlier epoch of our branch (we joined in this one, or restarted),
// so no sync shows where the branches part, and no member online is on our branch with
// us (one that confirmed it when we joined may have left it since); or p stays behind
// at an epoch before the oldest we keep (see staysBehind). Syncs with p are then
// fruitless: left alone, a joiner whose Welcome came on a branch that lost would stay
// there.
func (g *group) stranded(p peer.ID) bool {
	cur := g.mls.Epoch()
	pub, err := identity.PublicKeyFromPeerID(p)
	if err != nil {
		return false
	}
	pi := g.peers[string(pub.Bytes())]
	if pi != nil && pi.hbAuth != nil && g.chainAuth(pi.hbEpoch) == nil && g.staysBehind(pi) {
		return true
	}
	if g.oldestEpoch() != cur {
		return false
	}
	if pi == nil || pi.hbEpoch != cur || pi.hbAuth == nil || bytes.Equal(pi.hbAuth, g.authPrefix()) {
		return false
	}
	return g.alone()
}

// partedBeforeKept: p sits behind us at an epoch we keep, with another authenticator, and
// the sync req asked it for every commit from the oldest epoch we keep, at or before
// that one, and none applied: its branch parted from ours before the oldest epoch we
// keep. (When it sits at that oldest epoch, it has no commit from there on to show,
// and the answer is empty.) Another member would answer the same.
func (g *group) partedBeforeKept(p peer.ID, req proto.SyncRequest) bool {
	pi := g.peerByID(p)
	if pi == nil || pi.hbAuth == nil || pi.hbEpoch >= g.mls.Epoch() || req.SinceEpoch > pi.hbEpoch {
		return false
	}
	a := g.chainAuth(pi.hbEpoch)
	return a != nil && !bytes.Equal(a[:authPrefix], pi.hbAuth)
}

// syncElsewhere makes the next catch-up ask another member than p, which did not have
// the commits we lack (it joined after the epoch we are in).
func (g *group) syncElsewhere(p peer.ID) {
	if g.ahead.epoch > g.mls.Epoch() && g.ahead.from == p {
		g.ahead.from = g.otherMember(p)
	}
}

// oldestEpoch is the oldest epoch of our branch we could still go back to.
func (g *group) oldestEpoch() uint64 {
	if len(g.hist) > 0 {
		return g.hist[0].epoch
	}
	return g.mls.Epoch()
}

// requestSync asks p, in the background, for what req says (its GroupID is set here).
// One sync at a time per member.
func (g *group) requestSync(why string, p peer.ID, req proto.SyncRequest) {
	if p == "" || p == g.c.node.ID() || g.syncing[p] {
		return
	}
	g.syncing[p] = true
	req.GroupID = g.id
	g.debug("sync", "why", why, "from", p, "since", req.SinceEpoch, "recent since", req.RecentSince, "want", req.Want, "one sender", len(req.Sender) > 0)
	go func() {
		ctx, cancel := context.WithTimeout(g.c.ctx, 30*time.Second)
		defer cancel()
		resp, err := g.c.node.Sync(ctx, p, &req)
		g.post(func() {
			delete(g.syncing, p)
			if err != nil {
				if errors.Is(err, proto.ErrRefused) && g.refusedFarAhead(p) {
					return
				}
				if g.c.ctx.Err() == nil {
					g.errorf("chat: sync from %s: %w", p, err)
				}
				return
			}
			g.applySync(p, resp, req)
		})
	}()
}

// refusedFarAhead is told that p refused us a sync. A member refuses one to whom it does
// not count as a member, in its current epoch or one it keeps. If p's last heartbeat
// showed it more than KeepEpochs epochs ahead of us, it keeps none of ours: its branch
// removed us (or never had us, if we joined on a branch that lost), and no sync will
// show us the commit that did. Once two such members refused (or the only other one),
// we are out, as if we had applied that commit (see leftOut): a member may add us
// again. It reports whether we are out.
func (g *group) refusedFarAhead(p peer.ID) bool {
	pi := g.peerByID(p)
	if g.out {
		return true
	}
	if !g.active() || pi == nil || pi.hbEpoch <= g.mls.Epoch()+uint64(g.c.cfg.KeepEpochs) {
		return false
	}
	// Counted at our current epoch and authenticator only: one refusal long ago and
	// another now do not add up.
	at := fmt.Sprintf("%d/%x", g.mls.Epoch(), g.authPrefix())
	if g.refusedAt != at {
		g.refusedAt, g.refusedBy = at, map[peer.ID]bool{}
	}
	g.refusedBy[p] = true
	if len(g.refusedBy) < min(2, len(g.recipients())) {
		return false
	}
	g.refusedAt, g.refusedBy = "", nil
	g.leftOut(p)
	return true
}

// applySync applies a sync answer in epoch order: each epoch's messages, then the commit
// that left it.
func (g *group) applySync(p peer.ID, resp *proto.SyncResponse, req proto.SyncRequest) {
	want := req.Want
	type item struct {
		epoch  uint64
		commit bool
		frame  []byte
	}
	var items []item
	for _, b := range resp.Commits {
		if e, f, ok := parseSyncItem(b); ok {
			items = append(items, item{e, true, f})
		}
	}
	for _, b := range resp.Recent {
		if e, f, ok := parseSyncItem(b); ok && (f[0] == frameApp || f[0] == frameProposal || f[0] == frameProposals) {
			items = append(items, item{e, false, f})
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].epoch != items[j].epoch {
			return items[i].epoch < items[j].epoch
		}
		return !items[i].commit && items[j].commit
	})
	commits, msgs, dups := 0, 0, 0
	// What the answers of this sync found so far: one that takes several answers is
	// judged on all of them, not on its last page.
	run := g.syncRuns[p]
	if run == nil || req.After == (proto.SyncCursor{}) {
		run = &syncRun{outranked: g.outranked}
	}
	delete(g.syncRuns, p)
	start := g.mls.Epoch()
	for _, it := range items {
		// p has the commit of an epoch we were in: it knows our part of history.
		run.overlap = run.overlap || (it.commit && it.epoch <= start)
	}
	for _, it := range items {
		if it.commit {
			f, err := parseCommitFrame(it.frame)
			if err != nil {
				continue
			}
			before := g.mls.Epoch()
			g.receiveCommit(p, f, it.frame, true)
			if g.mls.Epoch() != before {
				commits++
			}
			continue
		}
		if it.frame[0] == frameProposal || it.frame[0] == frameProposals {
			if f, err := parseProposalFrame(it.frame); err == nil {
				g.receiveProposal(f, it.frame)
			}
			continue
		}
		before := g.seen.has(frameHash(it.frame))
		if before {
			dups++
		}
		g.receiveApp(it.frame, true, false)
		if !before && g.seen.has(frameHash(it.frame)) {
			msgs++
		}
	}
	g.debug("sync applied", "from", p, "items", len(items), "commits", commits, "messages", msgs, "dups", dups, "more", resp.More)
	g.c.emit(SyncProgress{Group: g.gid, Peer: p, Commits: commits, Messages: msgs, Done: !resp.More})
	run.commits += commits
	if resp.More {
		g.syncRuns[p] = run
		req.After = resp.Next
		g.requestSync("more", p, req)
		return
	}
	if run.commits == 0 && want&proto.WantCommits != 0 {
		switch {
		case g.outranked != run.outranked:
			// p is on a branch that loses to ours: it comes over when it judges ours.
			g.debug("their branch loses", "with", p)
		case run.overlap || g.stranded(p) || g.partedBeforeKept(p, req):
			g.fruitlessSync(p)
		default:
			g.syncElsewhere(p)
		}
	}
}

// syncRun is what the answers of one sync with a member found so far (see applySync).
type syncRun struct {
	overlap   bool // a commit of an epoch we were in
	commits   int  // commits applied
	outranked int  // g.outranked when the sync began
}

// resendDead sends again, in the current epoch, our messages whose epoch is not on our
// branch any more.
func (g *group) resendDead(ctx context.Context, all bool) {
	g.resend(ctx, func(it store.OutboxItem, e *outboxEntry) bool {
		if all {
			return true
		}
		a := g.chainAuth(it.Epoch)
		if a != nil && bytes.Equal(a[:authPrefix], e.Auth) {
			return false
		}
		return a != nil || it.Epoch >= g.oldestEpoch() // else too old to tell; pruned below
	})
}

// rejoinResend is how far back a member added to a group again sends again what it
// sent in its earlier membership; see resendEarlier.
const rejoinResend = 10 * time.Minute

// resendEarlier sends again, in our first epoch after joining, the messages we sent
// within rejoinResend in an earlier membership of the group: we cannot tell which of them
// reached the others. One sent in an epoch of a branch that lost reached only the
// members on that branch; its sender, removed meanwhile, never saw the branch lose, and
// so never sent it again (resendDead). Members that have a message keep one copy. The
// bound keeps a member added back long after from sending old messages to members who
// joined since. They are told by when they were sent, before we joined, not by their
// epoch: the branch we left may have numbered its epochs past the one we join at.
func (g *group) resendEarlier(ctx context.Context) {
	since := g.c.cfg.Now().Add(-rejoinResend)
	g.resend(ctx, func(it store.OutboxItem, _ *outboxEntry) bool {
		return it.CreatedAt.After(since) && it.CreatedAt.Before(g.liveSince)
	})
}

// resend sends again, in the current epoch, the messages of our outbox that pick
// chooses.
func (g *group) resend(ctx context.Context, pick func(store.OutboxItem, *outboxEntry) bool) {
	items, err := g.c.st.Outbox(ctx, g.id)
	if err != nil {
		g.errorf("chat: outbox: %w", err)
		return
	}
	for _, it := range items {
		var e outboxEntry
		if err := json.Unmarshal(it.Payload, &e); err != nil || !pick(it, &e) {
			continue
		}
		e.Payload.Resent = true
		g.debug("resending", "sent in", it.Epoch)
		if err := g.sendPayload(ctx, e.Payload, nil); err != nil {
			g.errorf("chat: resend: %w", err)
		}
	}
}

// pruneOutbox forgets own messages whose epoch is final: Config.KeepEpochs or more
// behind ours, further back than a switch of branch goes. (Not those older than the
// epochs we keep: after a restart we keep none from before it, and they are not final.)
func (g *group) pruneOutbox(ctx context.Context) {
	cur, keep := g.mls.Epoch(), uint64(g.c.cfg.KeepEpochs)
	if cur <= keep {
		return
	}
	items, err := g.c.st.Outbox(ctx, g.id)
	if err != nil {
		return
	}
	for _, it := range items {
		if it.Epoch < cur-keep {
			_ = g.c.st.AckOutbox(ctx, g.id, it.MsgID)
		}
	}
}
