package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tchat-p2p/tchat/layers/layersbench"
	"github.com/tchat-p2p/tchat/mlsgroup"
	"github.com/tchat-p2p/tchat/mlsgroup/mlsbench"
)

// runBench implements `tchat bench KIND [flags]`.
func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		errorf(stderr, "usage: tchat bench mls [--members N] [--suite S] [--json] | tchat bench layers [--rounds N] [--json]")
		return 2
	}
	switch args[0] {
	case "mls":
		return benchMLS(args[1:], stdout, stderr)
	case "layers":
		return benchLayers(args[1:], stdout, stderr)
	}
	errorf(stderr, "unknown benchmark %q (known: mls, layers)", args[0])
	return 2
}

// parseSuite reads a cipher suite as a number (0x0001, 1) or a name.
func parseSuite(s string) (mlsgroup.CipherSuite, error) {
	if v, err := strconv.ParseUint(s, 0, 16); err == nil {
		return mlsgroup.CipherSuite(v), nil
	}
	for _, cs := range mlsgroup.CipherSuites() {
		if strings.EqualFold(cs.String(), s) {
			return cs, nil
		}
	}
	return 0, fmt.Errorf("unknown cipher suite %q", s)
}

func benchMLS(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tchat bench mls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	members := fs.Int("members", 1024, "group size")
	suiteName := fs.String("suite", "0x0001", "cipher suite (number or name)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cs, err := parseSuite(*suiteName)
	if err != nil {
		errorf(stderr, "%v", err)
		return 2
	}
	if _, err := mlsgroup.GenerateSigningKey(cs); err != nil {
		errorf(stderr, "%v", err)
		return 2
	}
	cfg := mlsbench.Config{Members: *members, Suite: cs}
	if !*asJSON {
		cfg.Progress = func(step string) { fmt.Fprintf(stderr, "tchat: %s...\n", step) }
	}
	rep, err := mlsbench.Run(cfg)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(rep); err != nil {
			errorf(stderr, "%v", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "MLS, %d members, %s\n", rep.Members, rep.Suite)
	fmt.Fprintf(stdout, "  add %d members in one commit  %8.1f ms (welcome %d bytes)\n", rep.Members-1, rep.AddMs, rep.WelcomeBytes)
	fmt.Fprintf(stdout, "  join from the welcome          %8.1f ms\n", rep.JoinMs)
	fmt.Fprintf(stdout, "  first path commit              %8.1f ms\n", rep.PathCommitFirstMs)
	fmt.Fprintf(stdout, "  path commit, full tree         %8.2f ms (%d bytes)\n", rep.PathCommitSteadyMs, rep.CommitBytes)
	fmt.Fprintf(stdout, "  process a commit               %8.2f ms\n", rep.ProcessCommitMs)
	fmt.Fprintf(stdout, "  100 B message                  %8.1f µs seal, %.1f µs open\n", rep.EncryptUs, rep.DecryptUs)
	if rep.StateBytes > 0 {
		fmt.Fprintf(stdout, "  group state                    %8d bytes\n", rep.StateBytes)
	}
	return 0
}

func benchLayers(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tchat bench layers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("rounds", 200, "messages measured per policy and size")
	suiteName := fs.String("suite", "0x0001", "MLS cipher suite (number or name)")
	asJSON := fs.Bool("json", false, "print one JSON array")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cs, err := parseSuite(*suiteName)
	if err != nil || *rounds < 1 {
		errorf(stderr, "bad --suite or --rounds")
		return 2
	}
	res, err := layersbench.Run(cs, *rounds)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			errorf(stderr, "%v", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "%-22s %7s %10s %10s %9s\n", "policy", "size", "seal µs", "open µs", "overhead")
	for _, r := range res {
		fmt.Fprintf(stdout, "%-22s %7d %10.1f %10.1f %9d\n", r.Policy, r.Size, r.SealUs, r.OpenUs, r.OverheadBytes)
	}
	return 0
}
