package signal

import (
	"fmt"
	"testing"

	"github.com/tchat-p2p/tchat/layers"
)

var benchSizes = []int{100, 1024, 64 << 10}

// BenchmarkDoubleRatchet seals and opens one message over an established
// session: one op is a Seal by alice and an Open plus commit by bob.
func BenchmarkDoubleRatchet(b *testing.B) {
	noStampCheck(b)
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			ms := group(b, "alice", "bob")
			al, bo := ms[0], ms[1]
			pt := make([]byte, size)
			mustOpen(b, bo, al, sealTo(b, al, pt, bo), pt)
			mustOpen(b, al, bo, sealTo(b, bo, pt, al), pt)
			var overhead int
			b.SetBytes(int64(size))
			for b.Loop() {
				msg := sealTo(b, al, pt, bo)
				overhead = len(msg) - size
				if _, err := open(bo, al.id, msg, testAD); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(overhead), "overhead-bytes")
		})
	}
}

// BenchmarkSenderKey seals a group message to 7 others and opens it at one
// of them, once every member has the sender key.
func BenchmarkSenderKey(b *testing.B) {
	noStampCheck(b)
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			ms := group(b, "m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7")
			from, to := ms[0], ms[1:]
			pt := make([]byte, size)
			first := sealTo(b, from, pt, to...)
			for _, m := range to {
				mustOpen(b, m, from, first, pt)
			}
			ctx := &layers.Context{Group: []byte("g"), Sender: from.id, AD: testAD}
			for _, m := range to {
				ctx.Recipients = append(ctx.Recipients, m.id)
			}
			var overhead int
			b.SetBytes(int64(size))
			for b.Loop() {
				msg, err := from.l.Seal(ctx, pt)
				if err != nil {
					b.Fatal(err)
				}
				overhead = len(msg) - size
				if _, err := open(to[0], from.id, msg, testAD); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(overhead), "overhead-bytes")
		})
	}
}

// BenchmarkHandshake is PQXDH plus the first message: alice seals a prekey
// message to a new session and bob opens it.
func BenchmarkHandshake(b *testing.B) {
	noStampCheck(b)
	ms := group(b, "alice", "bob")
	al, bo := ms[0], ms[1]
	pt := make([]byte, 100)
	var overhead int
	for b.Loop() {
		al.l.peers["bob"].sessions = nil
		msg := sealTo(b, al, pt, bo)
		overhead = len(msg) - len(pt)
		if _, err := open(bo, al.id, msg, testAD); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(overhead), "overhead-bytes")
}

// BenchmarkMarshalState encodes the state of a member of a 50-member group,
// with a session and a sender key from each of the others, after each group
// message it sends, as tchat saves it.
func BenchmarkMarshalState(b *testing.B) {
	noStampCheck(b)
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprint("m", i)
	}
	ms := group(b, names...)
	me := ms[0]
	for _, m := range ms[1:] {
		mustOpen(b, me, m, sealTo(b, m, []byte("key"), others(ms, m)...), []byte("key"))
	}
	var size int
	for b.Loop() {
		sealTo(b, me, []byte("hello"), ms[1:]...)
		st, err := me.l.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		size = len(st)
	}
	b.ReportMetric(float64(size), "state_bytes")
}

// BenchmarkMarshalSplit200 encodes the state of a member of a 200-member group, with a
// session and a sender key from each of the others, as one blob (MarshalBinaryAhead) and
// split (MarshalSplitAhead), as tchat saves it. The split one reports the size of its head
// and of its largest record: what a save writes when one member's record changed.
func BenchmarkMarshalSplit200(b *testing.B) {
	noStampCheck(b)
	me, _ := member200(b)
	b.Run("blob", func(b *testing.B) {
		var size int
		for b.Loop() {
			st, _, err := me.l.MarshalBinaryAhead(sendAheadTest)
			if err != nil {
				b.Fatal(err)
			}
			size = len(st)
		}
		b.ReportMetric(float64(size), "state_bytes")
	})
	b.Run("split", func(b *testing.B) {
		var size, head, largest int
		for b.Loop() {
			h, records, _, err := me.l.MarshalSplitAhead(sendAheadTest)
			if err != nil {
				b.Fatal(err)
			}
			size, head, largest = len(h), len(h), 0
			for _, r := range records {
				size += len(r)
				largest = max(largest, len(r))
			}
		}
		b.ReportMetric(float64(size), "state_bytes")
		b.ReportMetric(float64(head), "head_bytes")
		b.ReportMetric(float64(largest), "record_bytes")
	})
}

// member200 makes a 200-member group and returns its first member (with a session and a
// sender key from each of the others, and a message of its own sent) and the others: the
// state the 200-member benchmarks save.
func member200(b *testing.B) (me *member, rest []*member) {
	names := make([]string, 200)
	for i := range names {
		names[i] = fmt.Sprint("m", i)
	}
	ms := group(b, names...)
	me, rest = ms[0], ms[1:]
	for i, m := range rest {
		msg := sealTo(b, m, []byte("key"), me, rest[(i+1)%len(rest)])
		mustOpen(b, me, m, msg, []byte("key"))
	}
	sealTo(b, me, []byte("mine"), rest...)
	return me, rest
}
