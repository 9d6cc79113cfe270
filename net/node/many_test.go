package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/tchat-p2p/tchat/net/proto"
)

// A hundred peers on this machine connect to one node at once and each runs
// a direct protocol: the resource and connection managers let them all in,
// and none is trimmed (the connection manager's low watermark is 200).
// The peers are bare libp2p hosts (TCP only) to keep the test light.
func TestHundredPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	const k = 100
	cfg := testConfig(t)
	cfg.Handlers = handlers("hub")
	hub := startNode(t, cfg)

	peers := make([]host.Host, k)
	for i := range peers {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableMetrics(),
			libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		peers[i] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, k)
	for _, h := range peers {
		wg.Go(func() {
			errs <- h.Connect(ctx, hub.AddrInfo())
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(hub.Peers()); got != k {
		t.Fatalf("hub has %d peers, want %d", got, k)
	}
	// Each is served (one at a time: the service admits 64 requests at once).
	for _, h := range peers {
		if _, err := proto.NewClient(h, proto.Limits{}).KeyPackage(ctx, hub.ID(), &proto.KeyPackageRequest{CipherSuite: 1}); err != nil {
			t.Fatal(err)
		}
	}
}
