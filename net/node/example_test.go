package node_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tchat-p2p/tchat/net/gossip"
	"github.com/tchat-p2p/tchat/net/node"
	"github.com/tchat-p2p/tchat/net/proto"
)

// The chat core's side of the network: a node, a group topic with a
// validator, the direct protocols, and the events.
func Example() {
	// In tchat the key is (*identity.Identity).Libp2pKey().
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	n, err := node.New(context.Background(), node.Config{
		Key: key,
		// A laptop needs nothing else; this example stays on loopback.
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		DHT:         node.DHTOff,
		NoMDNS:      true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()

	groupID, roomSecret := []byte("group id"), make([]byte, 32)
	topic, err := n.JoinTopic(groupID, roomSecret, func(ctx context.Context, from peer.ID, data []byte) gossip.Result {
		// The chat core parses the envelope: junk is Reject, an epoch it
		// does not know yet is Ignore, the rest Accept.
		return gossip.Accept
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for m := range topic.Messages() { // closed when the topic or node closes
			_ = m.Data
		}
	}()
	go func() {
		for ev := range n.Events() { // closed by Close
			_ = ev
		}
	}()
	if err := topic.Publish(context.Background(), []byte("an MLS message, wrapped")); err != nil {
		log.Fatal(err)
	}

	// Members answer the direct protocols with the handlers set through
	// SetHandlers; a member that missed epochs asks another one like this:
	//	resp, err := n.Sync(ctx, member, &proto.SyncRequest{...})
	_ = &proto.SyncRequest{GroupID: groupID, SinceEpoch: 3, Want: proto.WantCommits}
	fmt.Println(len(topic.Name()) > 0)
	// Output: true
}
