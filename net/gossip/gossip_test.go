package gossip

import (
	"bytes"
	"strings"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestTopicName(t *testing.T) {
	id, secret := []byte("group-1"), bytes.Repeat([]byte{0x42}, 32)
	a := TopicName(id, secret)
	if a != TopicName(id, secret) {
		t.Fatal("topic name not deterministic")
	}
	if a == TopicName(id, bytes.Repeat([]byte{1}, 32)) || a == TopicName([]byte("group-2"), secret) {
		t.Fatal("topic name does not depend on id and secret")
	}
	if strings.Contains(a, "group-1") || !strings.HasPrefix(a, "/tchat/g/1/") || len(a) != len("/tchat/g/1/")+64 {
		t.Fatalf("topic name %q", a)
	}
}

func TestMessageID(t *testing.T) {
	topic := "t"
	m := &pb.Message{Topic: &topic, Data: []byte("x")}
	id := messageID(m)
	other := "u"
	if id != messageID(&pb.Message{Topic: &topic, Data: []byte("x")}) ||
		id == messageID(&pb.Message{Topic: &other, Data: []byte("x")}) ||
		id == messageID(&pb.Message{Topic: &topic, Data: []byte("y")}) {
		t.Fatal("message id is not a function of topic and content")
	}
}

func TestRateTable(t *testing.T) {
	rt := newRateTable(10, 5)
	p := peer.ID("p")
	now := time.Unix(1000, 0)
	for i := range 5 {
		if !rt.allow(p, now) {
			t.Fatalf("burst message %d refused", i)
		}
	}
	if rt.allow(p, now) {
		t.Fatal("over the burst allowed")
	}
	if !rt.allow(peer.ID("q"), now) {
		t.Fatal("another peer is limited")
	}
	if !rt.allow(p, now.Add(100*time.Millisecond)) || rt.allow(p, now.Add(100*time.Millisecond)) {
		t.Fatal("refill is not 10/s")
	}
	// The table stays bounded: idle peers are pruned.
	for i := range maxBuckets + 10 {
		rt.allow(peer.ID(rune(i)), now)
	}
	rt.allow(peer.ID("late"), now.Add(time.Hour))
	if len(rt.buckets) > maxBuckets {
		t.Fatalf("%d buckets", len(rt.buckets))
	}
}
