package mlsgroup

import (
	"fmt"
	"testing"
)

// BenchmarkMarshalState encodes the state of a member of a 50-member group with the
// default suite after each message it sends, as tchat saves it.
func BenchmarkMarshalState(b *testing.B) {
	creator := creatorOf(b, 50)
	var size int
	for b.Loop() {
		if _, err := creator.g.SealApplication([]byte("hello")); err != nil {
			b.Fatal(err)
		}
		st, err := creator.g.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		size = len(st)
	}
	b.ReportMetric(float64(size), "state_bytes")
}

// BenchmarkMarshalStateAfterCommit encodes the state of a member of a 200-member group
// once per epoch, as tchat saves it after each commit: a commit (of an update path)
// changes a path of the tree, and the rest of the tree is as it was.
func BenchmarkMarshalStateAfterCommit(b *testing.B) {
	creator := creatorOf(b, 200)
	var size int
	for b.Loop() {
		b.StopTimer()
		pc, err := creator.g.Commit(CommitOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := creator.g.Merge(pc); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		st, err := creator.g.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		size = len(st)
	}
	b.ReportMetric(float64(size), "state_bytes")
}

// creatorOf returns the creator of a group of n members with the default suite, which
// added the others in one commit.
func creatorOf(b *testing.B, n int) *member {
	creator := newMember(b, DefaultCipherSuite, "creator")
	g, err := Create(creator.key, []byte("creator"), []byte("bench group"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	creator.g = g
	var joiners []*member
	for i := range n - 1 {
		joiners = append(joiners, newMember(b, DefaultCipherSuite, fmt.Sprint("m", i)))
	}
	add(b, creator, nil, joiners...)
	return creator
}
