// Package mlsbench measures tchat's MLS groups at scale: one Commit adding N-1 members,
// joining from its Welcome, path commits in a fresh and in a full tree, commit processing,
// and application message protection. `tchat bench mls` prints its Report.
package mlsbench

import (
	"errors"
	"fmt"
	"time"

	"github.com/tchat-p2p/tchat/mlsgroup"
)

// Config says what to measure.
type Config struct {
	Members int                  // group size N (at least 2)
	Suite   mlsgroup.CipherSuite // cipher suite
	// Progress, if set, is told what is being measured.
	Progress func(step string)
}

// Report holds the measurements, in the units their names say.
type Report struct {
	Members            int     `json:"members"`
	Suite              string  `json:"suite"`
	AddMs              float64 `json:"add_ms"`
	WelcomeBytes       int     `json:"welcome_bytes"`
	JoinMs             float64 `json:"join_ms"`
	PathCommitFirstMs  float64 `json:"path_commit_first_ms"`
	PathCommitSteadyMs float64 `json:"path_commit_steady_ms"`
	CommitBytes        int     `json:"commit_bytes"`
	ProcessCommitMs    float64 `json:"process_commit_ms"`
	EncryptUs          float64 `json:"encrypt_us"`
	DecryptUs          float64 `json:"decrypt_us"`
	StateBytes         int     `json:"state_bytes"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// client is a member the benchmark drives.
type client struct {
	key    *mlsgroup.SigningKey
	bundle *mlsgroup.KeyPackageBundle
	g      *mlsgroup.Group
}

// Run builds a group of cfg.Members members and measures it.
func Run(cfg Config) (*Report, error) {
	n := cfg.Members
	if n < 2 {
		return nil, errors.New("mlsbench: a group needs at least 2 members")
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string) {}
	}
	rep := &Report{Members: n, Suite: cfg.Suite.String()}

	progress(fmt.Sprintf("making %d key packages", n-1))
	aliceKey, err := mlsgroup.GenerateSigningKey(cfg.Suite)
	if err != nil {
		return nil, err
	}
	alice, err := mlsgroup.Create(aliceKey, []byte("member 0"), nil, mlsgroup.Options{})
	if err != nil {
		return nil, err
	}
	clients := make([]*client, n) // by leaf index; clients[0] is alice
	clients[0] = &client{key: aliceKey, g: alice}
	kps := make([][]byte, 0, n-1)
	for i := 1; i < n; i++ {
		key, err := mlsgroup.GenerateSigningKey(cfg.Suite)
		if err != nil {
			return nil, err
		}
		b, err := mlsgroup.NewKeyPackage(key, fmt.Appendf(nil, "member %d", i), mlsgroup.KeyPackageOptions{})
		if err != nil {
			return nil, err
		}
		clients[i] = &client{key: key, bundle: b}
		kps = append(kps, b.KeyPackage())
	}

	progress(fmt.Sprintf("adding %d members in one commit", n-1))
	start := time.Now()
	add, err := alice.Commit(mlsgroup.CommitOptions{Add: kps})
	if err != nil {
		return nil, err
	}
	if err := alice.Merge(add); err != nil {
		return nil, err
	}
	rep.AddMs = ms(time.Since(start))
	rep.WelcomeBytes = len(add.Welcome)

	// The members that will commit to fill the tree: leaves 1, 2, 4, ... (see below).
	var fillers []int
	for l := 1; l < n; l *= 2 {
		fillers = append(fillers, l)
	}
	progress("joining from the welcome")
	for i, l := range fillers {
		c := clients[l]
		start := time.Now()
		g, err := mlsgroup.Join(add.Welcome, c.bundle, add.RatchetTree, mlsgroup.Options{})
		if err != nil {
			return nil, fmt.Errorf("mlsbench: member %d joining: %w", l, err)
		}
		if i == len(fillers)-1 {
			rep.JoinMs = ms(time.Since(start)) // the last joiner: the tree is the same for all
		}
		c.g = g
	}
	joined := append([]int{0}, fillers...)

	// broadcast has every joined member but the committer process a commit.
	broadcast := func(from int, msg []byte) (time.Duration, error) {
		var last time.Duration
		for _, l := range joined {
			if l == from {
				continue
			}
			start := time.Now()
			if _, err := clients[l].g.Process(msg); err != nil {
				return 0, fmt.Errorf("mlsbench: member %d processing a commit of %d: %w", l, from, err)
			}
			last = time.Since(start)
		}
		return last, nil
	}
	commit := func(from int) (*mlsgroup.PendingCommit, time.Duration, error) {
		start := time.Now()
		pc, err := clients[from].g.Commit(mlsgroup.CommitOptions{Path: true})
		if err != nil {
			return nil, 0, err
		}
		d := time.Since(start)
		if _, err := broadcast(from, pc.Message); err != nil {
			return nil, 0, err
		}
		return pc, d, clients[from].g.Merge(pc)
	}

	progress("first path commit")
	_, d, err := commit(0)
	if err != nil {
		return nil, err
	}
	rep.PathCommitFirstMs = ms(d)

	// Leaf 2^k's path covers the root of leaf 0's copath subtree at level k, so after
	// commits from leaves 1, 2, 4, ... every copath node of leaf 0 resolves to one node:
	// the tree is full as far as leaf 0's commits are concerned.
	progress("filling the tree")
	for _, l := range fillers {
		if _, _, err := commit(l); err != nil {
			return nil, err
		}
	}
	progress("steady path commit")
	start = time.Now()
	pc, err := alice.Commit(mlsgroup.CommitOptions{Path: true})
	if err != nil {
		return nil, err
	}
	rep.PathCommitSteadyMs = ms(time.Since(start))
	rep.CommitBytes = len(pc.Message)
	start = time.Now()
	if _, err := clients[fillers[len(fillers)-1]].g.Process(pc.Message); err != nil {
		return nil, err
	}
	rep.ProcessCommitMs = ms(time.Since(start))
	if err := alice.Merge(pc); err != nil {
		return nil, err
	}

	progress("application messages")
	reader := clients[fillers[len(fillers)-1]].g
	data := make([]byte, 100)
	const rounds = 200
	var enc, dec time.Duration
	for range rounds {
		start := time.Now()
		msg, err := alice.Seal(data, nil)
		if err != nil {
			return nil, err
		}
		enc += time.Since(start)
		start = time.Now()
		if _, err := reader.Process(msg); err != nil {
			return nil, err
		}
		dec += time.Since(start)
	}
	rep.EncryptUs = float64(enc.Microseconds()) / rounds
	rep.DecryptUs = float64(dec.Microseconds()) / rounds
	state, err := alice.MarshalBinary()
	if err != nil {
		return nil, err
	}
	rep.StateBytes = len(state)
	return rep, nil
}
