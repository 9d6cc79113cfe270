package tui

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// TestLayoutGolden runs the interface as a program (teatest) at several window sizes
// and compares the screen, without colours, with testdata/TestLayoutGolden/*.golden.
// Refresh them with: go test ./tui -run TestLayoutGolden -update
func TestLayoutGolden(t *testing.T) {
	for _, tc := range []struct {
		w, h int
		keys []tea.KeyPressMsg
		name string
	}{
		{w: 50, h: 16},
		{w: 60, h: 20},
		{w: 60, h: 20, keys: []tea.KeyPressMsg{{Code: tea.KeyF3}}, name: "members"},
		{w: 60, h: 20, keys: []tea.KeyPressMsg{{Code: tea.KeyF2}}, name: "conversations"},
		{w: 80, h: 24},
		{w: 100, h: 30},
		{w: 120, h: 30},
		{w: 160, h: 40},
	} {
		name := fmt.Sprintf("%dx%d", tc.w, tc.h)
		if tc.name != "" {
			name += "-" + tc.name
		}
		t.Run(name, func(t *testing.T) {
			m := New(testOptions(sampleFake()))
			tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(tc.w, tc.h))
			teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("behind NAT")) },
				teatest.WithDuration(5*time.Second))
			for _, k := range tc.keys {
				tm.Send(k)
			}
			time.Sleep(100 * time.Millisecond) // let the history and keys land
			if err := tm.Quit(); err != nil {
				t.Fatal(err)
			}
			final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
			golden.RequireEqual(t, []byte(ansi.Strip(final.View().Content)+"\n"))
		})
	}
}
