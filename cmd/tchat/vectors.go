package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/tchat-p2p/tchat/mlsgroup/conformance"
)

// runVectors implements `tchat vectors DIR...`: one line per file, one line per failed
// entry, and last `N passed, M failed`. Files of a kind without a runner yet are listed as
// not run and counted in neither number.
func runVectors(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		errorf(stderr, "usage: tchat vectors DIR...")
		return 2
	}
	files, err := conformance.Find(args...)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	if len(files) == 0 {
		errorf(stderr, "no test-vector files found under %s", strings.Join(args, ", "))
		return 1
	}
	var passed, failed, notRun int
	notRunKinds := map[string]bool{}
	for _, path := range files {
		res := conformance.RunFile(path)
		switch {
		case res.Err != nil:
			fmt.Fprintf(stdout, "%s: error: %v\n", path, res.Err)
			failed++
		case res.NotRun:
			fmt.Fprintf(stdout, "%s: not run (%d entries; kind %s not supported yet)\n", path, res.Total, res.Kind)
			notRun += res.Total
			notRunKinds[res.Kind] = true
		default:
			fmt.Fprintf(stdout, "%s: %d/%d\n", path, res.Passed, res.Total)
			for _, f := range res.Failures {
				fmt.Fprintf(stdout, "  entry %d: %v\n", f.Index, f.Err)
			}
			passed += res.Passed
			failed += len(res.Failures)
		}
	}
	if notRun > 0 {
		kinds := make([]string, 0, len(notRunKinds))
		for k := range notRunKinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		fmt.Fprintf(stdout, "%d entries not run (kinds not supported yet: %s)\n", notRun, strings.Join(kinds, ", "))
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}
