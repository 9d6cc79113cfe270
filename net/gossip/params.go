package gossip

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer-score thresholds (gossipsub v1.1, "Peer Scoring"). A peer whose score
// falls below GraylistThreshold has its RPCs dropped by gossipsub and is then
// blacklisted by the Router for BlacklistFor.
const (
	GossipThreshold   = -100
	PublishThreshold  = -200
	GraylistThreshold = -400
)

// validateQueue is how many received messages wait for validation. The
// queue is shared by all topics of a host; a message that finds it full is
// dropped before anyone sees it, and must come again by another mesh peer,
// by gossip a heartbeat later, or by sync. Bursts of a busy group on a
// busy machine filled a queue of 64; 256 frames of the usual 1 to
// 2 KiB are little memory.
const validateQueue = 256

// invalidWeight is the weight of P4 (invalid messages, counted squared):
// seven rejected messages bring a peer below the graylist threshold.
const invalidWeight = -10

// The mesh of a topic: its target size (gossipsub's D, 6 by default), its floor (Dlo, 5)
// and its ceiling (Dhi, 12), and the outbound peers it keeps (Dout, 2; below D/2).
// Members publish by flooding to every member they are connected to, which in a group is
// every member (sender keys go member to member), and each member then forwards each
// message to its whole mesh: in a calm group the mesh carries only copies the members
// have already. Its use is mending what flooding missed: a frame lost on a link, a
// member cut off by a partition, and there 4 suffices, with sync behind it.
//
// A ceiling of 8 in place of 12 cut a 50-member swarm's gossip by a fifth (`tchat swarm
// --peers 50 --messages 1000 --rate 25`: 398–415 MB against 473–482 MB a run), since
// meshes fill up towards it. A target of 4 (ceiling 6) then cut the bytes a 50-peer
// swarm's member sent by a quarter (`tchat swarm --peers 50 --messages 2000`, seeds 1
// and 2: 7.5–7.7 MB against 9.9–10.1) and its CPU time by 8% (77–81 s against 83–91).
// An earlier attempt at 4 had lost messages in partitioned, churning groups, before
// sync caught them all: this time the 20-peer fault runs (`--peers 20 --messages 300
// --rate 40 --drop 0.05 --partition 0.2:3s,0.6:2s:0.3 --churn 3`, seeds 101–130) passed
// 30 of 30, and the 50-peer ones (`--peers 50 --messages 1000 --drop 0.05 --partition
// 0.3:3s --churn 2`, seeds 1–7) 7 of 7.
const (
	meshTarget   = 4
	meshLow      = 3
	meshHigh     = 6
	meshOutbound = 1
)

// gossipFactor is the share of a topic's peers outside its mesh that each gossipsub
// heartbeat tells which messages it has (IHAVE), when that is more than gossipsub's
// Dlazy (6). Gossipsub's default, a quarter, fits a topic that reaches a few peers of a
// large network; a group's members all connect to each other, so at 100 members a
// quarter is 25 peers a heartbeat, every member, each told of every message of the last
// three heartbeats, and most of them have it. With none beyond Dlazy, the formation of
// 100 members on the simulated network (`tchat swarm --net sim --peers 100 --messages 10
// --rate 10 --drain 20s --seed 1`) sent 364 MB of gossip with 163 s of CPU, against 587 MB
// and 219 s, one run each; lost messages still come by the mesh, by the Dlazy peers'
// IHAVEs, and by sync.
const gossipFactor = 0

func gossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi, p.Dout = meshTarget, meshLow, meshHigh, meshOutbound
	p.GossipFactor = gossipFactor
	return p
}

func thresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             GossipThreshold,
		PublishThreshold:            PublishThreshold,
		GraylistThreshold:           GraylistThreshold,
		AcceptPXThreshold:           100, // peer exchange is off anyway
		OpportunisticGraftThreshold: 3,
	}
}

// localNets are exempt from the IP-colocation penalty (P6): many tchat peers
// on one machine or one LAN are normal (tests, `tchat swarm`, a family's
// laptops behind one router).
func localNets() []*net.IPNet {
	var out []*net.IPNet
	for _, s := range []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
		"192.168.0.0/16", "169.254.0.0/16", "fc00::/7", "fe80::/10"} {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			panic("gossip: internal error: " + err.Error())
		}
		out = append(out, n)
	}
	return out
}

func peerScoreParams() *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:                      map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:               50,
		AppSpecificScore:            func(peer.ID) float64 { return 0 },
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    -5,
		IPColocationFactorThreshold: 8,
		IPColocationFactorWhitelist: localNets(),
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               pubsub.DefaultDecayInterval,
		DecayToZero:                 pubsub.DefaultDecayToZero,
		RetainScore:                 30 * time.Minute,
	}
}

// topicScoreParams scores a group topic. Chat traffic is bursty and small
// groups are quiet, so the mesh-delivery penalties (P3, P3b), which punish
// peers for not forwarding enough, are off: they would push honest members out
// of a quiet group's mesh. What counts is time in the mesh (P1), first
// deliveries (P2), and above all invalid messages (P4), which the validators
// decide.
func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                     1,
		TimeInMeshWeight:                0.01,
		TimeInMeshQuantum:               time.Second,
		TimeInMeshCap:                   300,
		FirstMessageDeliveriesWeight:    0.5,
		FirstMessageDeliveriesDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:       40,
		MeshMessageDeliveriesWeight:     0,
		MeshMessageDeliveriesDecay:      0,
		MeshMessageDeliveriesCap:        0,
		MeshMessageDeliveriesThreshold:  0,
		MeshMessageDeliveriesWindow:     0,
		MeshMessageDeliveriesActivation: 0,
		MeshFailurePenaltyWeight:        0,
		MeshFailurePenaltyDecay:         0,
		InvalidMessageDeliveriesWeight:  invalidWeight,
		InvalidMessageDeliveriesDecay:   pubsub.ScoreParameterDecay(time.Hour),
		SkipAtomicValidation:            true,
	}
}
