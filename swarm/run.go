package swarm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/tchat-p2p/tchat/chat"
	"github.com/tchat-p2p/tchat/net/proto"
)

// Run starts a swarm, forms its group, sends cfg.Messages at cfg.Rate with the faults
// asked for, waits for the deliveries and agreement (at most cfg.Drain) and returns the
// report. The error is for a run that could not take place; a run with losses is a
// report that says so.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	s, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := s.Form(ctx); err != nil {
		return nil, err
	}
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	s.Drain(ctx)
	return s.Report(ctx), nil
}

// Form has peer 0 create the group and invite the others, JoinBatch at a time; each
// joiner joins with a token of its own. It returns once every joiner is in (or failed
// three times), the members agree on the epoch and every member holds every other's
// sender key (see WaitKeysOut), or a minute has gone by waiting for each.
func (s *Swarm) Form(ctx context.Context) (chat.GroupID, error) {
	creator := s.peers[0].Client()
	gid, err := creator.CreateGroupWith(chat.GroupOptions{Name: "swarm", Policy: s.cfg.Policy, Suite: s.cfg.Suite})
	if err != nil {
		return "", fmt.Errorf("swarm: create the group: %w", err)
	}
	s.mu.Lock()
	s.gid = gid
	s.member[0] = true
	s.mu.Unlock()
	start := time.Now()
	n := len(s.peers)
	joined := 1
	s.progress("form", joined, n)
	for b := 1; b < n; b += s.cfg.JoinBatch {
		var wg sync.WaitGroup
		for i := b; i < min(b+s.cfg.JoinBatch, n); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.join(ctx, gid, i); err != nil {
					s.note("peer %d did not join: %v", i, err)
					s.mu.Lock()
					s.joinFails++
					s.mu.Unlock()
					return
				}
				s.mu.Lock()
				s.member[i] = true
				joined++
				s.progress("form", joined, n)
				s.mu.Unlock()
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	s.mu.Lock()
	s.formation = time.Since(start)
	fails := s.joinFails
	s.mu.Unlock()
	if fails == n-1 {
		return "", errors.New("swarm: no peer could join the group")
	}
	if ok, views := s.WaitAgree(ctx, 60*time.Second); !ok {
		s.note("members do not agree after forming: %v", views)
	}
	if owed := s.WaitKeysOut(ctx, 60*time.Second); owed > 0 {
		s.note("%d sender-key hand-outs still owed after forming", owed)
	}
	s.mu.Lock()
	s.keysOut = time.Since(start)
	s.mu.Unlock()
	return gid, nil
}

// join lets peer i in with an invite of the creator's, trying up to four times. The
// tries after the first use an invite of another member, picked at random, as a user
// whose inviter does not answer would ask someone else in the group: the creator, which
// every joiner asks first, is the busiest member of a large swarm. A member that did
// not answer in time may have let the joiner in all the same: the others answer with the
// Welcome of that add while they keep its epoch, and refuse the joiner as a member
// already after; the joiner then asks that member again, which answers with it.
func (s *Swarm) join(ctx context.Context, gid chat.GroupID, i int) error {
	var errs []error
	var unanswered []int // inviters whose answer did not come
	for attempt := range 4 {
		inviter := 0
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
			if k := len(unanswered); k > 0 && alreadyIn(errs[len(errs)-1]) {
				inviter = unanswered[k-1]
			} else {
				inviter = s.pickNear(i)
			}
		}
		tok, err := s.peers[inviter].Client().Invite(gid)
		if err != nil {
			return err
		}
		jctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		_, err = s.peers[i].Client().Join(jctx, tok)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if re := (*proto.RemoteError)(nil); !errors.As(err, &re) {
			unanswered = append(unanswered, inviter)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// alreadyIn: a member refused the join because the joiner is a member already.
func alreadyIn(err error) bool {
	re := (*proto.RemoteError)(nil)
	return errors.As(err, &re) && re.Reason == chat.ReasonAlreadyIn
}

// members returns the peers counted as members now: in the group and not being removed
// or re-added.
func (s *Swarm) members() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for i, m := range s.member {
		if m && !s.uncertain[i] {
			out = append(out, i)
		}
	}
	return out
}

// Send has peer i send text to the group, counting a delivery at every other member.
// Texts must be unique within a run.
func (s *Swarm) Send(ctx context.Context, i int, text string) error {
	s.mu.Lock()
	gid := s.gid
	want := make([]bool, len(s.peers))
	for j, m := range s.member {
		want[j] = m && !s.uncertain[j] && j != i
	}
	s.mu.Unlock()
	c := s.peers[i].Client()
	if c == nil {
		return fmt.Errorf("swarm: peer %d is not running", i)
	}
	start := time.Now()
	r := s.col.add(text, i, want, start)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	m, err := c.Send(sctx, gid, text)
	if err != nil && m.ID == "" {
		s.col.fail(r)
		return fmt.Errorf("swarm: peer %d send: %w", i, err)
	}
	s.col.sentIn(time.Since(start))
	return nil
}

// Load sends cfg.Messages messages at cfg.Rate from random members, and runs the
// partitions and churn cycles of the configuration as the count goes by.
func (s *Swarm) Load(ctx context.Context) error {
	total := s.cfg.Messages
	trigger := map[int][]func(){}
	for _, p := range s.cfg.Partitions {
		at := int(math.Round(p.At * float64(total)))
		trigger[at] = append(trigger[at], func() { s.partitionFor(ctx, p) })
	}
	for k := range s.cfg.Churn {
		at := int(float64(total) * (float64(k) + 0.5) / float64(s.cfg.Churn))
		trigger[at] = append(trigger[at], func() {
			if err := s.Churn(ctx); err != nil {
				s.note("churn: %v", err)
			}
		})
	}
	var faults, sends sync.WaitGroup
	fire := func(i int) {
		for _, f := range trigger[i] {
			faults.Go(f)
		}
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.Rate))
	defer tick.Stop()
	var sent int
	var smu sync.Mutex
	for i := range total {
		fire(i)
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		ms := s.members()
		if len(ms) == 0 {
			return errors.New("swarm: no member left to send")
		}
		from := ms[s.intn(len(ms))]
		sends.Go(func() {
			if err := s.Send(ctx, from, fmt.Sprintf("swarm message %d", i)); err != nil {
				s.cfg.Logger.Debug("swarm: send", "err", err)
			}
			smu.Lock()
			sent++
			s.progress("send", sent, total)
			smu.Unlock()
		})
	}
	fire(total)
	sends.Wait()
	faults.Wait()
	return nil
}

// partitionFor cuts a contiguous run of the ring off for p.For, then heals.
func (s *Swarm) partitionFor(ctx context.Context, p Partition) {
	n := len(s.peers)
	k := max(1, min(n-1, int(math.Round(p.Fraction*float64(n)))))
	first := s.intn(n)
	side := make([]bool, n)
	for j := range k {
		side[(first+j)%n] = true
	}
	s.cfg.Logger.Info("swarm: partition", "cut_off", k, "from", first, "for", p.For)
	cut := s.Partition(side)
	select {
	case <-time.After(p.For):
	case <-ctx.Done():
	}
	if err := s.Heal(ctx, cut); err != nil {
		s.note("heal: %v", err)
	}
	s.cfg.Logger.Info("swarm: healed")
}

// Partition splits the swarm: peers with side[i] true lose every connection to the
// others, and no new one is made until Heal of the Cut it returns. Partitions may
// overlap; two peers stay apart while any of them separates the two.
func (s *Swarm) Partition(side []bool) *Cut {
	cut := &Cut{Side: slices.Clone(side)}
	s.gate.add(cut)
	for i, p := range s.peers {
		c := p.Client()
		if c == nil {
			continue
		}
		h := c.Node().Host()
		for j, q := range s.peers {
			if cut.separates(i, j) {
				h.Peerstore().ClearAddrs(q.ID())
				h.Network().ClosePeer(q.ID())
			}
		}
	}
	return cut
}

// Heal ends the partition cut: every pair it separated, and no other partition still
// does, gets its addresses back (a member must reach any other directly when it must:
// a sender key, a Welcome), and the swarm's links between them are dialled again.
func (s *Swarm) Heal(ctx context.Context, cut *Cut) error {
	if !s.gate.remove(cut) {
		return nil
	}
	addrs := make([]peer.AddrInfo, len(s.peers))
	for j, q := range s.peers {
		addrs[j] = q.AddrInfo()
	}
	for i, p := range s.peers {
		c := p.Client()
		if c == nil {
			continue
		}
		ps := c.Node().Host().Peerstore()
		for j := range s.peers {
			if cut.separates(i, j) && !s.gate.blocked(i, j) && len(addrs[j].Addrs) > 0 {
				ps.AddAddrs(addrs[j].ID, addrs[j].Addrs, peerstore.AddressTTL)
			}
		}
	}
	var cross [][2]int
	for _, e := range s.edges {
		if cut.separates(e[0], e[1]) {
			cross = append(cross, e)
		}
	}
	return s.connect(ctx, cross)
}

// Churn removes a random member (not the creator) by the hand of another, restarts it
// and adds it back, and waits until the members agree again. The member is left out of
// the delivery counts meanwhile.
//
// The removed member is restarted before it is added again because a chat client that
// was removed from a group keeps it (inactive) and refuses a Welcome to it
// ("already a member"); a new client on the same profile does not load inactive groups.
func (s *Swarm) Churn(ctx context.Context) error {
	s.mu.Lock()
	gid := s.gid
	var cand []int
	for i, m := range s.member {
		if m && !s.uncertain[i] && i != 0 {
			cand = append(cand, i)
		}
	}
	if len(cand) < 2 {
		s.mu.Unlock()
		return errors.New("not enough members to churn")
	}
	x := cand[s.intn(len(cand))]
	s.uncertain[x] = true
	s.mu.Unlock()
	by := s.pickNear(x)
	s.cfg.Logger.Info("swarm: churn", "remove", x, "by", by)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.peers[by].Client().Remove(cctx, gid, s.peers[x].ID()); err != nil {
		return fmt.Errorf("peer %d removing peer %d: %w", by, x, err)
	}
	var removedAt uint64 // the epoch of the removal's commit
	if st, err := s.peers[by].Client().Group(cctx, gid); err == nil {
		removedAt = st.Epoch
	}
	s.mu.Lock()
	s.member[x] = false
	s.mu.Unlock()
	// The removal may have been made on a branch that lost, and made again on the winning
	// one after x was counted back in (its author makes it again once it is there): x is
	// then out for good, and is added again, up to three times in all.
	for round := 1; ; round++ {
		s.col.withdraw(x)
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
		if err := s.readd(ctx, rctx, gid, x, removedAt); err != nil {
			rcancel()
			return err
		}
		s.mu.Lock()
		s.member[x] = true
		s.mu.Unlock()
		ok, views := s.WaitAgree(rctx, time.Minute)
		out := !ok && !s.active(rctx, gid, x)
		rcancel()
		if ok {
			break
		}
		if round < 3 && out {
			s.note("peer %d removed again after it was re-added (a removal made again on the winning branch); adding it again", x)
			s.mu.Lock()
			s.member[x] = false
			s.mu.Unlock()
			continue
		}
		s.note("no agreement after re-adding peer %d: %v", x, views)
		break
	}
	s.mu.Lock()
	s.uncertain[x] = false
	s.mu.Unlock()
	return nil
}

// readd restarts peer x, removed from the group, and adds it back (see Churn).
func (s *Swarm) readd(ctx, cctx context.Context, gid chat.GroupID, x int, removedAt uint64) error {
	if err := s.peers[x].Restart(cctx); err != nil {
		return fmt.Errorf("restart peer %d: %w", x, err)
	}
	// A partition may hold meanwhile: the member is added back by one on its side, and
	// again if that fails: for want of a connection, because that member has not
	// applied the removal yet (it still counts x in: ErrAlreadyIn), because it is out
	// of the group itself just then (its branch lost a removal: ErrNotMember), or
	// because x refused the Welcome (one of a branch that lost). An add that failed may
	// still have brought x back, or the removal may have been undone (its branch lost,
	// and x took its leaf back): if the adds still fail after ten tries, x counts as
	// back once it is active in the group and a member counts it in (within a minute:
	// it may still be catching up, by external commits after a fork).
	for attempt := 0; ; attempt++ {
		by := s.pickNear(x)
		err := s.peers[by].Client().Add(cctx, gid, s.peers[x].AddrInfo())
		if err == nil {
			s.cfg.Logger.Info("swarm: churn: added", "peer", x, "by", by)
			break
		}
		if errors.Is(err, chat.ErrClosed) || attempt == 10 || cctx.Err() != nil {
			if !s.waitBackIn(ctx, x, by, removedAt, time.Minute) {
				return fmt.Errorf("peer %d adding peer %d again: %w", by, x, err)
			}
			s.note("peer %d counted back in, its adds failing (%d tries, the last: %v)", x, attempt+1, err)
			break
		}
		s.cfg.Logger.Info("swarm: churn: add again", "peer", x, "by", by, "err", err)
		time.Sleep(time.Second)
	}
	return nil
}

// active reports whether peer x is an active member of the group.
func (s *Swarm) active(ctx context.Context, gid chat.GroupID, x int) bool {
	c := s.peers[x].Client()
	if c == nil {
		return false
	}
	st, err := c.Group(ctx, gid)
	return err == nil && st.Active
}

// backIn reports whether peer x is active in the group past epoch removedAt, on the same
// epoch as member by, which counts it in. (A client restarted before it learnt of its
// removal has the group active until it does.)
func (s *Swarm) backIn(ctx context.Context, x, by int, removedAt uint64) bool {
	s.mu.Lock()
	gid := s.gid
	s.mu.Unlock()
	cx, cb := s.peers[x].Client(), s.peers[by].Client()
	if cx == nil || cb == nil {
		return false
	}
	st, err := cx.Group(ctx, gid)
	if err != nil || !st.Active {
		return false
	}
	sb, err := cb.Group(ctx, gid)
	if err != nil || st.Epoch <= removedAt || sb.Epoch != st.Epoch || !bytes.Equal(sb.Authenticator, st.Authenticator) {
		return false
	}
	return slices.ContainsFunc(sb.Members, func(m chat.Member) bool { return m.Peer == s.peers[x].ID() })
}

// waitBackIn waits at most d for backIn.
func (s *Swarm) waitBackIn(ctx context.Context, x, by int, removedAt uint64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !s.backIn(ctx, x, by, removedAt) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
	return true
}

// pickNear picks a random counted member other than x that a partition does not
// separate from x (any counted member if there is none).
func (s *Swarm) pickNear(x int) int {
	ms := s.members()
	var near []int
	for _, m := range ms {
		if m != x && !s.gate.blocked(m, x) {
			near = append(near, m)
		}
	}
	if len(near) == 0 {
		near = ms
	}
	return near[s.intn(len(near))]
}

// view is one member's idea of the group.
type view struct {
	peer    int
	epoch   uint64
	auth    []byte
	members int
	owed    int
	err     error
}

func (v view) String() string {
	if v.err != nil {
		return fmt.Sprintf("%d: %v", v.peer, v.err)
	}
	return fmt.Sprintf("%d: epoch %d %x %d members", v.peer, v.epoch, v.auth, v.members)
}

// views asks every member (in the harness's bookkeeping) where the group is.
func (s *Swarm) views(ctx context.Context) []view {
	s.mu.Lock()
	gid := s.gid
	var idx []int
	for i, m := range s.member {
		if m {
			idx = append(idx, i)
		}
	}
	s.mu.Unlock()
	out := make([]view, len(idx))
	var wg sync.WaitGroup
	for k, i := range idx {
		wg.Go(func() {
			v := view{peer: i}
			c := s.peers[i].Client()
			if c == nil {
				v.err = errors.New("not running")
			} else {
				gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				st, err := c.Group(gctx, gid)
				cancel()
				v.err = err
				if err == nil {
					v.epoch, v.auth, v.members, v.owed = st.Epoch, st.Authenticator, len(st.Members), st.KeysOwed
					if !st.Active {
						v.err = errors.New("not active")
					}
				}
			}
			out[k] = v
		})
	}
	wg.Wait()
	return out
}

// agree reports whether every view is the same epoch and authenticator with every member
// of the harness's bookkeeping in the roster.
func agree(vs []view) bool {
	if len(vs) == 0 {
		return false
	}
	for _, v := range vs {
		if v.err != nil || v.epoch != vs[0].epoch || !bytes.Equal(v.auth, vs[0].auth) || v.members != len(vs) {
			return false
		}
	}
	return true
}

// WaitAgree waits at most d until every member is on the same epoch authenticator with
// the same roster; it returns false and the members' views if they do not.
func (s *Swarm) WaitAgree(ctx context.Context, d time.Duration) (bool, []string) {
	deadline := time.Now().Add(d)
	for {
		vs := s.views(ctx)
		if agree(vs) {
			return true, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, summarize(vs)
		}
		// Every view reads the member's roster and peer list: at 200 members, polling
		// every 200 ms took 2% of a run's CPU while the members disagreed.
		time.Sleep(max(200*time.Millisecond, time.Duration(len(vs))*5*time.Millisecond))
	}
}

// WaitKeysOut waits at most d until no member owes another its sender key
// (chat.GroupState.KeysOwed), and returns how many hand-outs are owed then. Form waits
// for it before the messages start, as it waits for the members to agree: the hand-outs
// that follow the joins (about 2,450 in a group of 50, each a stream and, the first time,
// a PQXDH handshake; 100–300 were still owed when the members agreed) were out 2.0–2.5 s
// after the last join, and messages sent meanwhile came in late in some runs (the first
// tenth's p99 up to 0.56–0.76 s where the rest stayed under 0.25 s). The report gives
// the time as keys_out_s.
func (s *Swarm) WaitKeysOut(ctx context.Context, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		vs := s.views(ctx)
		owed := 0
		for _, v := range vs {
			owed += v.owed
		}
		total := len(vs) * (len(vs) - 1)
		s.progress("keys", max(0, total-owed), total)
		if owed == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return owed
		}
		time.Sleep(max(100*time.Millisecond, time.Duration(len(vs))*5*time.Millisecond))
	}
}

// summarize groups views by where they are, biggest group first.
func summarize(vs []view) []string {
	groups := map[string][]int{}
	for _, v := range vs {
		k := fmt.Sprintf("epoch %d %x %d members", v.epoch, v.auth, v.members)
		if v.err != nil {
			k = v.err.Error()
		}
		groups[k] = append(groups[k], v.peer)
	}
	var out []string
	for k, ps := range groups {
		out = append(out, fmt.Sprintf("%s: peers %v", k, ps))
	}
	sort.Slice(out, func(i, j int) bool { return len(groups[out[i]]) > len(groups[out[j]]) })
	return out
}

// WaitDelivered waits at most d until every expected delivery happened, and reports
// whether it did.
func (s *Swarm) WaitDelivered(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		done, exp := s.col.counts()
		if done >= exp {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Drain waits at most cfg.Drain for every delivery, then for agreement.
func (s *Swarm) Drain(ctx context.Context) {
	deadline := time.Now().Add(s.cfg.Drain)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				d, e := s.col.counts()
				s.progress("drain", d, e)
			}
		}
	}()
	defer close(done)
	s.WaitDelivered(ctx, s.cfg.Drain)
	if ok, views := s.WaitAgree(ctx, max(time.Until(deadline), 5*time.Second)); !ok {
		s.note("members do not agree at the end: %v", views)
	}
}

// Report measures the swarm as it is now.
func (s *Swarm) Report(ctx context.Context) *Report {
	vs := s.views(ctx)
	r := &Report{
		Peers:         len(s.peers),
		Net:           s.cfg.Net,
		Seed:          s.cfg.Seed,
		Members:       len(vs),
		GossipDropped: s.meter.dropped.Load(),
		PeakRSSMB:     peakRSSMB(),
		DurationS:     time.Since(s.start).Seconds(),
	}
	r.FinalEpochsAgree = agree(vs)
	for _, v := range vs {
		r.Commits = max(r.Commits, v.epoch)
	}
	for _, p := range s.peers {
		if c := p.Client(); c != nil {
			st := c.Node().GossipStats()
			r.GossipQueueDrops += int64(st.Dropped + st.SendDropped + st.Undelivered)
			r.GossipQueueDropsBy[0] += int64(st.Dropped)
			r.GossipQueueDropsBy[1] += int64(st.SendDropped)
			r.GossipQueueDropsBy[2] += int64(st.Undelivered)
		}
	}
	r.BytesSentPerPeer = s.meter.total() / int64(len(s.peers))
	r.BytesByProtocol = s.meter.byProtocol()
	r.ForksDetected = s.col.forksDetected.Load()
	r.ForksResolved = s.col.forksResolved.Load()
	r.EpochChanges = s.col.epochChanges.Load()
	r.ErrorEvents = s.col.errorEvents.Load()
	r.ErrorKinds = s.col.topErrorKinds()
	s.col.mu.Lock()
	r.MessagesSent = s.col.sent
	r.SendFailures = s.col.failed
	r.Withdrawn = s.col.withdrawn
	r.DeliveriesLate = s.col.late
	r.DeliveriesExpected = s.col.expected
	r.DeliveriesDone = s.col.done
	r.LatencyP50Ms = percentile(s.col.lat, 0.50)
	r.LatencyP99Ms = percentile(s.col.lat, 0.99)
	r.LatencyP99ByTenthMs = s.col.p99ByTenth()
	r.SendP50Ms = percentile(s.col.sendDur, 0.50)
	r.SendP99Ms = percentile(s.col.sendDur, 0.99)
	s.col.mu.Unlock()
	if r.DeliveriesExpected > 0 {
		r.DeliveryRatio = float64(r.DeliveriesDone) / float64(r.DeliveriesExpected)
	} else {
		r.DeliveryRatio = 1
	}
	r.LateOrMissing = s.col.missing(10)
	s.mu.Lock()
	r.FormationS = s.formation.Seconds()
	r.KeysOutS = s.keysOut.Seconds()
	r.JoinFailures = s.joinFails
	r.Notes = append(r.Notes, s.notes...)
	s.mu.Unlock()
	if !r.FinalEpochsAgree {
		r.Notes = append(r.Notes, "final views: "+fmt.Sprint(summarize(vs)))
	}
	return r
}
