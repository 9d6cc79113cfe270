package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/tchat-p2p/tchat/swarm"
)

// runSwarm implements `tchat swarm`: many peers in this process, a group, load, faults
// and a report (package swarm).
func runSwarm(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tchat swarm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg swarm.Config
	fs.IntVar(&cfg.Peers, "peers", 10, "number of peers")
	fs.IntVar(&cfg.Messages, "messages", 100, "messages sent in all, from random members")
	fs.Float64Var(&cfg.Rate, "rate", swarm.DefaultRate, "messages per second across the swarm")
	netName := fs.String("net", "loopback", "network: loopback (TCP on 127.0.0.1) or sim (libp2p's simulated network)")
	fs.DurationVar(&cfg.Latency, "latency", swarm.DefaultLatency, "one-way delay of every simulated link (--net sim)")
	fs.Float64Var(&cfg.Drop, "drop", 0, "probability that a gossip message delivered to a peer is lost")
	partition := fs.String("partition", "", "splits healed mid-run: AT:FOR[:FRACTION],… (e.g. 0.3:5s: half the peers cut off for 5 s once 30% of the messages are out)")
	fs.IntVar(&cfg.Churn, "churn", 0, "members removed and added back during the run")
	fs.StringVar(&cfg.Policy, "policy", "", "the group's cascade, e.g. mls,aes (default signal,mls,aes)")
	suite := fs.String("suite", "", "MLS cipher suite, number or name (default the group default)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the scenario's random choices (0: random, printed)")
	fs.IntVar(&cfg.Degree, "degree", swarm.DefaultDegree, "random links each peer dials besides its ring neighbour")
	fs.IntVar(&cfg.JoinBatch, "batch", swarm.DefaultJoinBatch, "joiners let in at once")
	fs.DurationVar(&cfg.Drain, "drain", swarm.DefaultDrain, "how long to wait after the last message for deliveries and agreement")
	fs.DurationVar(&cfg.Chat.Heartbeat, "heartbeat", 0, "chat heartbeat interval (0: the core's default)")
	fs.DurationVar(&cfg.Chat.CommitTimeout, "commit-timeout", 0, "chat commit failover timeout (0: default)")
	fs.DurationVar(&cfg.Chat.BatchDelay, "batch-delay", 0, "chat commit batching delay (0: default)")
	fs.DurationVar(&cfg.Chat.Settle, "settle", 0, "chat settle window (0: default)")
	fs.IntVar(&cfg.Chat.KeepEpochs, "keep-epochs", 0, "past epochs each peer keeps (0: default)")
	debug := fs.String("debug", "", "write every peer's chat debug log to this file")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end of the run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		errorf(stderr, "swarm: unexpected argument %q", fs.Arg(0))
		return 2
	}
	cfg.Net = swarm.Net(*netName)
	var err error
	if cfg.Partitions, err = swarm.ParsePartitions(*partition); err != nil {
		errorf(stderr, "%v", err)
		return 2
	}
	if *suite != "" {
		if cfg.Suite, err = parseSuite(*suite); err != nil {
			errorf(stderr, "%v", err)
			return 2
		}
	}
	if *debug != "" {
		f, err := os.Create(*debug)
		if err != nil {
			errorf(stderr, "%v", err)
			return 1
		}
		defer f.Close()
		// Buffered, so that logging disturbs the timing of the run less (the handler
		// serializes its writes).
		w := bufio.NewWriterSize(f, 1<<20)
		defer w.Flush()
		cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		bar := &progressBar{w: f}
		cfg.Progress = bar.update
		defer bar.clear()
	} else {
		// A log or a pipe gets a line per phase and one every progressEvery
		// within it: a long run (hundreds of peers) shows where it is.
		pl := &progressLog{w: stderr, start: time.Now()}
		cfg.Progress = pl.update
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			errorf(stderr, "%v", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			errorf(stderr, "%v", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := swarm.Run(ctx, cfg)
	if *memProfile != "" {
		if f, err := os.Create(*memProfile); err != nil {
			errorf(stderr, "%v", err)
		} else {
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				errorf(stderr, "%v", err)
			}
			f.Close()
		}
	}
	if cfg.Progress != nil {
		cfg.Progress(swarm.Progress{Phase: "done"})
	}
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(r); err != nil {
			errorf(stderr, "%v", err)
			return 1
		}
	} else {
		fmt.Fprint(stdout, r)
	}
	if r.DeliveryRatio < 1 || !r.FinalEpochsAgree {
		return 3
	}
	return 0
}

// progressLog writes progress as lines, for stderr that is not a terminal.
type progressLog struct {
	w     io.Writer
	start time.Time
	mu    sync.Mutex
	phase string
	last  time.Time
}

const progressEvery = 10 * time.Second

func (l *progressLog) update(p swarm.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if p.Phase == l.phase && now.Sub(l.last) < progressEvery {
		return
	}
	l.phase, l.last = p.Phase, now
	if p.Phase == "done" {
		fmt.Fprintf(l.w, "swarm: done after %.0f s\n", now.Sub(l.start).Seconds())
		return
	}
	fmt.Fprintf(l.w, "swarm: %s %d/%d after %.0f s\n", p.Phase, p.Done, p.Total, now.Sub(l.start).Seconds())
}

// progressBar draws one line on a terminal: the phase and how far it is.
type progressBar struct {
	w     io.Writer
	mu    sync.Mutex
	last  time.Time
	drawn bool
}

const barWidth = 30

func (b *progressBar) update(p swarm.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.Phase == "done" {
		b.clearLocked()
		return
	}
	now := time.Now()
	if now.Sub(b.last) < 100*time.Millisecond && p.Done < p.Total {
		return
	}
	b.last = now
	frac := 0.0
	if p.Total > 0 {
		frac = min(1, float64(p.Done)/float64(p.Total))
	}
	full := int(frac * barWidth)
	fmt.Fprintf(b.w, "\r\x1b[K%-6s [%s%s] %d/%d", p.Phase, strings.Repeat("=", full), strings.Repeat(" ", barWidth-full), p.Done, p.Total)
	b.drawn = true
}

func (b *progressBar) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clearLocked()
}

func (b *progressBar) clearLocked() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.drawn = false
	}
}
