package ratchettree

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
)

// TestSimulatedGroup runs random sequences of commits (adds with and without a path,
// removals, updates, empty commits) through a group whose members each process every
// commit on their own copy of the tree: everyone must agree on the tree hash and the
// commit secret, every tree must pass Validate, joiners validate the encoded tree and
// install their path secret, and every member's private keys must match the tree.
func TestSimulatedGroup(t *testing.T) {
	for _, id := range []suite.ID{suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, suite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256, suite.Default} {
		t.Run(id.String(), func(t *testing.T) {
			steps := 40
			if testing.Short() || id != suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 {
				steps = 15
			}
			rng := rand.New(rand.NewPCG(uint64(id), 9420))
			g := newSimGroup(t, mustSuite(t, id))
			for range steps {
				members := slices.Sorted(func(yield func(LeafIndex) bool) {
					for l := range g.members {
						if !yield(l) {
							return
						}
					}
				})
				committer := members[rng.IntN(len(members))]
				others := slices.DeleteFunc(slices.Clone(members), func(l LeafIndex) bool { return l == committer })
				switch op := rng.IntN(6); {
				case op == 0 || len(members) < 3:
					g.commit(committer, g.propose(nil, nil, 1+rng.IntN(3)), rng.IntN(2) == 0)
				case op == 1:
					g.commit(committer, g.propose(nil, nil, 1+rng.IntN(2)), false)
				case op == 2 && len(others) > 0:
					rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
					g.commit(committer, g.propose(nil, others[:1+rng.IntN(min(2, len(others)))], 0), true)
				case op == 3 && len(others) > 0:
					u := others[rng.IntN(len(others))]
					g.commit(committer, g.propose([]LeafIndex{u}, nil, rng.IntN(2)), true)
				case op == 4 && len(others) > 1:
					// Remove and add in one commit: the new member may take the freed leaf.
					g.commit(committer, g.propose(nil, others[:1], 1), true)
				default:
					g.commit(committer, g.propose(nil, nil, 0), true)
				}
			}
		})
	}
}
