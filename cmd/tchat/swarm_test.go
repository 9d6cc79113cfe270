package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/swarm"
)

// Off a terminal, progress is a line per phase, and within a phase at most one
// every progressEvery.
func TestProgressLog(t *testing.T) {
	var out bytes.Buffer
	l := &progressLog{w: &out, start: time.Now()}
	l.update(swarm.Progress{Phase: "form", Done: 0, Total: 200})
	l.update(swarm.Progress{Phase: "form", Done: 1, Total: 200}) // too soon: not written
	l.last = l.last.Add(-progressEvery)
	l.update(swarm.Progress{Phase: "form", Done: 37, Total: 200})
	l.update(swarm.Progress{Phase: "send", Done: 0, Total: 1000})
	l.update(swarm.Progress{Phase: "done"})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"swarm: form 0/200 ", "swarm: form 37/200 ", "swarm: send 0/1000 ", "swarm: done "}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to begin %q", i, lines[i], w)
		}
	}
}
