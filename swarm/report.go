package swarm

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Report is what a run measured. The JSON names are the report's stable format.
type Report struct {
	Peers int `json:"peers"`
	// FormationS: from the first invite to the last joiner's Welcome, in seconds.
	FormationS float64 `json:"formation_s"`
	// KeysOutS: from the first invite until the members agreed on the epoch and each
	// held every other's sender key (or a minute more went by waiting for either), in
	// seconds; the messages are sent after it.
	KeysOutS     float64 `json:"keys_out_s"`
	MessagesSent int     `json:"messages_sent"`
	// DeliveriesExpected: for each message, the members of the group when it was sent
	// other than its sender (members being removed or re-added at that moment are left
	// out, as whether they should get it depends on the commit race).
	DeliveriesExpected int `json:"deliveries_expected"`
	// DeliveriesDone: the expected deliveries that happened (a MessageReceived event at
	// the recipient), each counted once.
	DeliveriesDone int     `json:"deliveries_done"`
	DeliveryRatio  float64 `json:"delivery_ratio"`
	// LatencyP50Ms and LatencyP99Ms: receive time minus send time (the start of Send) of
	// the deliveries done, in milliseconds.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// LatencyP99ByTenthMs: the p99 of the deliveries of each tenth of the messages, in the
	// order they were sent (the first tenth includes the warm-up after formation).
	LatencyP99ByTenthMs []float64 `json:"latency_p99_by_tenth_ms,omitempty"`
	// SendP50Ms and SendP99Ms: how long Send took, in milliseconds: the sender's part of
	// the latency (waiting for its group's loop, sealing, the synced save before the
	// message leaves).
	SendP50Ms float64 `json:"send_p50_ms"`
	SendP99Ms float64 `json:"send_p99_ms"`
	// Commits: the final epoch of the group (the commits on the branch that won).
	Commits uint64 `json:"commits"`
	// ForksDetected and ForksResolved: ForkDetected and ForkResolved events summed over
	// the peers.
	ForksDetected int64 `json:"forks_detected"`
	ForksResolved int64 `json:"forks_resolved"`
	// FinalEpochsAgree: every member ends on the same epoch authenticator, with every
	// member in its roster.
	FinalEpochsAgree bool `json:"final_epochs_agree"`
	// BytesSentPerPeer: libp2p stream payload bytes sent, averaged over the peers.
	BytesSentPerPeer int64 `json:"bytes_sent_per_peer"`
	// BytesByProtocol: the same bytes, summed over the peers, by libp2p protocol.
	BytesByProtocol map[string]int64 `json:"bytes_by_protocol,omitempty"`
	// PeakRSSMB: the process's peak resident set (VmHWM), in MiB.
	PeakRSSMB float64 `json:"peak_rss_mb"`

	// What else helps to read the figures.
	Net          Net    `json:"net"`
	Seed         uint64 `json:"seed"`
	Members      int    `json:"members"`       // in the group at the end
	JoinFailures int    `json:"join_failures"` // joiners that never got in
	SendFailures int    `json:"send_failures"` // Send calls that failed with nothing sent
	// Withdrawn: deliveries to a member that had not happened when it was removed (churn),
	// so left out of deliveries_expected.
	Withdrawn     int   `json:"deliveries_withdrawn"`
	GossipDropped int64 `json:"gossip_dropped"` // gossip messages thrown away by --drop
	// DeliveriesLate: deliveries done that the chat core marked late: by sync (lost or
	// held up on the way), or after the epoch they were sent in.
	DeliveriesLate int `json:"deliveries_late"`
	// GossipQueueDrops: gossip messages gossipsub itself threw away, summed over the
	// peers, for want of room in a queue (validation, a peer's outbound queue, our
	// subscription's buffer); sync makes up for them, late.
	GossipQueueDrops int64 `json:"gossip_queue_drops"`
	// The same by queue: validation, a peer's outbound queue, our subscription's buffer.
	GossipQueueDropsBy [3]int64 `json:"gossip_queue_drops_by"`
	EpochChanges       int64    `json:"epoch_changes"` // EpochChanged events summed over the peers
	ErrorEvents        int64    `json:"error_events"`  // chat Error events summed over the peers
	// ErrorKinds counts the error events by their text with peer ids, hex strings and
	// numbers taken out: the most frequent maxErrorKinds kinds.
	ErrorKinds    map[string]int64 `json:"error_kinds,omitempty"`
	LateOrMissing []string         `json:"missing,omitempty"`
	Notes         []string         `json:"notes,omitempty"`
	DurationS     float64          `json:"duration_s"`
}

// String formats the report as aligned lines.
func (r *Report) String() string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%-20s %v\n", k, v) }
	line("net", r.Net)
	line("peers", r.Peers)
	line("members", r.Members)
	line("formation_s", fmt.Sprintf("%.2f", r.FormationS))
	line("keys_out_s", fmt.Sprintf("%.2f", r.KeysOutS))
	line("messages_sent", r.MessagesSent)
	line("deliveries", fmt.Sprintf("%d / %d (ratio %.4f)", r.DeliveriesDone, r.DeliveriesExpected, r.DeliveryRatio))
	line("latency_ms", fmt.Sprintf("p50 %.1f, p99 %.1f", r.LatencyP50Ms, r.LatencyP99Ms))
	line("send_ms", fmt.Sprintf("p50 %.1f, p99 %.1f", r.SendP50Ms, r.SendP99Ms))
	if len(r.LatencyP99ByTenthMs) > 0 {
		ps := make([]string, len(r.LatencyP99ByTenthMs))
		for i, p := range r.LatencyP99ByTenthMs {
			ps[i] = fmt.Sprintf("%.0f", p)
		}
		line("p99_by_tenth_ms", strings.Join(ps, " "))
	}
	if r.Withdrawn > 0 {
		line("withdrawn", fmt.Sprintf("%d deliveries to members removed before they got them", r.Withdrawn))
	}
	line("commits", r.Commits)
	line("forks", fmt.Sprintf("%d detected, %d resolved", r.ForksDetected, r.ForksResolved))
	line("final_epochs_agree", r.FinalEpochsAgree)
	line("bytes_sent_per_peer", fmt.Sprintf("%d (%.1f MiB)", r.BytesSentPerPeer, float64(r.BytesSentPerPeer)/(1<<20)))
	protos := slices.Collect(maps.Keys(r.BytesByProtocol))
	slices.SortFunc(protos, func(a, b string) int { return cmp.Compare(r.BytesByProtocol[b], r.BytesByProtocol[a]) })
	for _, p := range protos {
		if n := r.BytesByProtocol[p]; n > 0 {
			line("  "+p, fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)))
		}
	}
	line("peak_rss_mb", fmt.Sprintf("%.0f", r.PeakRSSMB))
	line("gossip_dropped", r.GossipDropped)
	line("gossip_queue_drops", fmt.Sprintf("%d (validation %d, outbound %d, subscription %d)", r.GossipQueueDrops,
		r.GossipQueueDropsBy[0], r.GossipQueueDropsBy[1], r.GossipQueueDropsBy[2]))
	line("deliveries_late", r.DeliveriesLate)
	if r.JoinFailures > 0 || r.SendFailures > 0 || r.ErrorEvents > 0 {
		line("failures", fmt.Sprintf("%d joins, %d sends, %d error events", r.JoinFailures, r.SendFailures, r.ErrorEvents))
	}
	for _, k := range byCount(r.ErrorKinds) {
		line("  error", fmt.Sprintf("%d× %s", r.ErrorKinds[k], k))
	}
	line("seed", r.Seed)
	line("duration_s", fmt.Sprintf("%.1f", r.DurationS))
	for _, m := range r.LateOrMissing {
		line("missing", m)
	}
	for _, n := range r.Notes {
		line("note", n)
	}
	return b.String()
}

// collector gathers the deliveries and events of every peer.
type collector struct {
	n int

	mu        sync.Mutex
	byText    map[string]int  // guarded by mu: message index by text
	msgs      []*msgRecord    // guarded by mu
	expected  int             // guarded by mu
	done      int             // guarded by mu
	lat       []time.Duration // guarded by mu
	latMsg    []int           // guarded by mu: the message index of each lat
	sendDur   []time.Duration // guarded by mu: how long each Send that sent took
	sent      int             // guarded by mu
	failed    int             // guarded by mu
	withdrawn int             // guarded by mu
	late      int             // guarded by mu: deliveries done that came late

	forksDetected, forksResolved atomic.Int64
	epochChanges, errorEvents    atomic.Int64

	errMu    sync.Mutex
	errKinds map[string]int64 // guarded by errMu: error events by errorKind
}

type msgRecord struct {
	text   string
	sender int
	at     time.Time
	want   []bool // recipients counted
	got    []bool
	failed bool
}

func newCollector(n int) *collector {
	return &collector{n: n, byText: map[string]int{}}
}

// add registers a message about to be sent by sender to the recipients in want.
func (c *collector) add(text string, sender int, want []bool, at time.Time) *msgRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &msgRecord{text: text, sender: sender, at: at, want: want, got: make([]bool, c.n)}
	c.byText[text] = len(c.msgs)
	c.msgs = append(c.msgs, r)
	for _, w := range want {
		if w {
			c.expected++
		}
	}
	c.sent++
	return r
}

// sentIn records how long a Send that sent took.
func (c *collector) sentIn(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sendDur = append(c.sendDur, d)
}

// fail withdraws a message whose Send failed with nothing sent.
func (c *collector) fail(r *msgRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.failed = true
	c.sent--
	c.failed++
	for i, w := range r.want {
		if w {
			c.expected--
			if r.got[i] {
				c.done--
			}
		}
	}
}

// withdraw stops counting the deliveries to peer x that have not happened: x was removed
// from the group, and a removed member can no longer read what it missed.
func (c *collector) withdraw(x int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.msgs {
		if r.want[x] && !r.got[x] && !r.failed {
			r.want[x] = false
			c.expected--
			c.withdrawn++
		}
	}
}

func (c *collector) received(to int, text string, at time.Time, late bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.byText[text]
	if !ok {
		return
	}
	r := c.msgs[i]
	if r.got[to] {
		return
	}
	r.got[to] = true
	if r.want[to] && !r.failed {
		c.done++
		c.lat = append(c.lat, at.Sub(r.at))
		c.latMsg = append(c.latMsg, i)
		if late {
			c.late++
		}
	}
}

// noteError counts an error event by its kind.
func (c *collector) noteError(err error) {
	c.errorEvents.Add(1)
	k := errorKind(err)
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.errKinds == nil {
		c.errKinds = map[string]int64{}
	}
	if _, ok := c.errKinds[k]; !ok && len(c.errKinds) >= maxKindsKept {
		k = "(other)"
	}
	c.errKinds[k]++
}

// A run counts at most maxKindsKept kinds of error and reports the maxErrorKinds most
// frequent.
const (
	maxKindsKept  = 200
	maxErrorKinds = 10
	maxKindLen    = 200 // bytes of an error's text kept, cut at a character's start
)

// topErrorKinds returns the maxErrorKinds most frequent kinds of error (nil if none).
func (c *collector) topErrorKinds() map[string]int64 {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	keys := byCount(c.errKinds)
	var out map[string]int64
	for _, k := range keys[:min(len(keys), maxErrorKinds)] {
		if out == nil {
			out = map[string]int64{}
		}
		out[k] = c.errKinds[k]
	}
	return out
}

// byCount returns m's keys, the largest count first.
func byCount(m map[string]int64) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	return keys
}

var (
	peerIDText = regexp.MustCompile(`\b(12D3Koo|Qm)[1-9A-HJ-NP-Za-km-z]{20,}`)
	hexText    = regexp.MustCompile(`\b[0-9a-f]{8,}\b`)
	numberText = regexp.MustCompile(`\d+(\.\d+)?(ms|s|µs|ns)?`)
)

// errorKind is an error's text with what differs between two errors of one kind (peer
// ids, hex strings, numbers) replaced by placeholders.
func errorKind(err error) string {
	s := err.Error()
	s = peerIDText.ReplaceAllString(s, "<peer>")
	s = hexText.ReplaceAllString(s, "<hex>")
	s = numberText.ReplaceAllString(s, "N")
	if len(s) > maxKindLen {
		n := maxKindLen
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}

func (c *collector) counts() (done, expected int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done, c.expected
}

// missing describes up to max expected deliveries that did not happen.
func (c *collector) missing(max int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.msgs {
		if r.failed {
			continue
		}
		var to []string
		for i, w := range r.want {
			if w && !r.got[i] {
				to = append(to, strconv.Itoa(i))
			}
		}
		if len(to) > 0 {
			if len(out) == max {
				out = append(out, "…")
				return out
			}
			out = append(out, fmt.Sprintf("%q from peer %d at +%s: not at peers %s", r.text, r.sender,
				r.at.Format("15:04:05.000"), strings.Join(to, ",")))
		}
	}
	return out
}

// p99ByTenth splits the deliveries by the tenth of the messages (in sending order) they
// belong to, and returns each tenth's p99 in milliseconds; nil with fewer than ten
// messages. Caller holds mu.
func (c *collector) p99ByTenth() []float64 {
	if len(c.msgs) < 10 {
		return nil
	}
	tenths := make([][]time.Duration, 10)
	for k, d := range c.lat {
		t := c.latMsg[k] * 10 / len(c.msgs)
		tenths[t] = append(tenths[t], d)
	}
	out := make([]float64, 10)
	for t, ds := range tenths {
		out[t] = percentile(ds, 0.99)
	}
	return out
}

// percentile returns the q-quantile (0..1) of ds in milliseconds, by nearest rank.
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(math.Ceil(q*float64(len(s)))) - 1
	k = max(0, min(k, len(s)-1))
	return float64(s[k]) / float64(time.Millisecond)
}

// peakRSSMB reads the process's peak resident set from /proc (0 where there is none).
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
