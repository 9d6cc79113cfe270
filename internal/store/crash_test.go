package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test re-runs the test binary as a child that writes in a loop. Each
// iteration is one transaction that advances a group's generation counter (kept
// in the group state, as a secret-tree generation would be) and appends a message
// carrying that generation; after the commit the child prints "group generation".
// The parent kills the child with SIGKILL at random moments (also during Open and
// during WAL checkpoints), reopens the store and checks that nothing committed
// was lost and that no generation was used twice.
const crashChildEnv = "TCHAT_STORE_CRASH_CHILD_DIR"

var crashGroups = []string{"alpha", "beta", "gamma"}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("run by TestCrashSafety")
	}
	s, err := Open(dir, testKey(7))
	if err != nil {
		fmt.Fprintf(os.Stderr, "child open: %v\n", err)
		os.Exit(3)
	}
	pad := make([]byte, 3000)
	for i := 0; ; i++ {
		g := crashGroups[i%len(crashGroups)]
		var gen uint64
		err := s.Update(ctx, func(tx *Tx) error {
			_, st, err := tx.GroupState([]byte(g))
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				return err
			default:
				gen = binary.BigEndian.Uint64(st)
			}
			gen++
			// Vary the sizes so the WAL grows and checkpoints run.
			state := binary.BigEndian.AppendUint64(nil, gen)
			state = append(state, pad[:rand.IntN(len(pad))]...)
			if err := tx.SaveGroupState([]byte(g), gen/16, state); err != nil {
				return err
			}
			_, err = tx.AppendMessages([]Message{{
				GroupID: []byte(g),
				MsgID:   binary.BigEndian.AppendUint64(nil, gen),
				Epoch:   gen / 16,
				Sender:  []byte("me"),
				Content: append(fmt.Appendf(nil, "%s %d ", g, gen), pad[:rand.IntN(len(pad))]...),
			}})
			return err
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "child update: %v\n", err)
			os.Exit(4)
		}
		// os.Stdout is unbuffered: the line is in the pipe when this returns.
		fmt.Fprintf(os.Stdout, "%s %d\n", g, gen)
	}
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	rounds := 30
	committed := map[string]uint64{} // highest generation reported per group
	totalReported := 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var reported []string
		var wg sync.WaitGroup
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				reported = append(reported, sc.Text())
			}
		})
		// Some rounds kill during start-up and Open, most while writing.
		delay := time.Duration(rand.IntN(40)) * time.Millisecond
		if round%5 != 0 {
			delay += time.Duration(30+rand.IntN(150)) * time.Millisecond
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		wg.Wait()
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child ended by itself: %v\n%s", round, werr, stderr.String())
		}
		for _, line := range reported {
			g, n, ok := strings.Cut(line, " ")
			gen, err := strconv.ParseUint(n, 10, 64)
			if !ok || err != nil {
				// A partial last line cannot happen (one write per line), but the
				// test framework may print too; only our lines matter.
				continue
			}
			if gen <= committed[g] {
				t.Fatalf("round %d: generation %s %d reported again (had %d): reused after restart", round, g, gen, committed[g])
			}
			committed[g] = gen
			totalReported++
		}
		verifyCrashStore(t, round, dir, committed)
	}
	t.Logf("%d rounds, %d commits reported by killed children; highest generations %v", rounds, totalReported, committed)
	if totalReported == 0 {
		t.Fatal("no child ever committed")
	}
}

func verifyCrashStore(t *testing.T, round int, dir string, committed map[string]uint64) {
	t.Helper()
	s, err := Open(dir, testKey(7))
	if err != nil {
		t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
	}
	defer s.Close()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("round %d: integrity: %v", round, err)
	}
	for _, g := range crashGroups {
		var stateGen uint64
		_, st, err := s.GroupState(ctx, []byte(g))
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			t.Fatalf("round %d: group %s: %v", round, g, err)
		default:
			stateGen = binary.BigEndian.Uint64(st)
		}
		// Every generation from 1 to the state's is present once, in order.
		var gens []uint64
		before := int64(0)
		for {
			page, next, err := s.History(ctx, []byte(g), before, 500)
			if err != nil {
				t.Fatalf("round %d: history %s: %v", round, g, err)
			}
			var pg []uint64
			for _, m := range page {
				gen := binary.BigEndian.Uint64(m.MsgID)
				if !strings.HasPrefix(string(m.Content), fmt.Sprintf("%s %d ", g, gen)) {
					t.Fatalf("round %d: message %s %d has content %.20q", round, g, gen, m.Content)
				}
				pg = append(pg, gen)
			}
			gens = append(pg, gens...)
			if next == 0 {
				break
			}
			before = next
		}
		for i, gen := range gens {
			if gen != uint64(i+1) {
				t.Fatalf("round %d: group %s: message %d carries generation %d (duplicate, gap or out of order)", round, g, i, gen)
			}
		}
		if uint64(len(gens)) != stateGen {
			t.Fatalf("round %d: group %s: state at generation %d but %d messages: state and message did not commit together", round, g, stateGen, len(gens))
		}
		if stateGen < committed[g] {
			t.Fatalf("round %d: group %s: generation %d was reported committed but the store has only %d", round, g, committed[g], stateGen)
		}
		// Generations committed but not yet reported when the child died count as
		// used: the next child must go on after them.
		committed[g] = stateGen
	}
}
