package tui

import (
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tchat-p2p/tchat/tui/components/messages"
)

// bigModel is a 160x50 window on a conversation of 10,000 messages and 1,000 members.
func bigModel(b *testing.B) *Model {
	f := newFake("carol")
	names := []string{"carol"}
	for i := 1; i < 1000; i++ {
		names = append(names, fmt.Sprintf("member%03d", i))
	}
	f.addGroup("big", 1234, names...)
	m := New(testOptions(f))
	m.Init()
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	m.Update(m.loadGroups()())
	cv := m.current()
	for i := range 10000 {
		cv.buf.Append(messages.Entry{Kind: messages.Text, Time: t0.Add(time.Duration(i) * time.Second),
			From: names[i%1000], Key: names[i%1000], Text: fmt.Sprintf("message %d: a line of chat long enough to wrap on a narrow pane now and then", i)})
	}
	if n := len(cv.state.Members); n != 1000 {
		b.Fatalf("%d members", n)
	}
	m.View()
	return m
}

// BenchmarkKeystroke is a key typed into the input, then the redraw: the work between a
// keystroke and the screen. Target: well under 16 ms.
func BenchmarkKeystroke(b *testing.B) {
	m := bigModel(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m.Update(tea.KeyPressMsg{Code: 'a' + rune(i%26), Text: string('a' + rune(i%26))})
		_ = m.View()
	}
}

// BenchmarkView redraws the screen with nothing changed.
func BenchmarkView(b *testing.B) {
	m := bigModel(b)
	for b.Loop() {
		_ = m.View()
	}
}

// BenchmarkResize is the worst redraw: the width changed, every cached line is stale.
func BenchmarkResize(b *testing.B) {
	m := bigModel(b)
	for i := 0; b.Loop(); i++ {
		m.Update(tea.WindowSizeMsg{Width: 150 + i%2, Height: 50})
		_ = m.View()
	}
}

// BenchmarkScroll pages up through the history and redraws.
func BenchmarkScroll(b *testing.B) {
	m := bigModel(b)
	for i := 0; b.Loop(); i++ {
		k := tea.KeyPgUp
		if (i/200)%2 == 1 {
			k = tea.KeyPgDown
		}
		m.Update(tea.KeyPressMsg{Code: k})
		_ = m.View()
	}
}

// BenchmarkMessageArrives is an incoming message and the redraw.
func BenchmarkMessageArrives(b *testing.B) {
	m := bigModel(b)
	cv := m.current()
	for i := 0; b.Loop(); i++ {
		cv.buf.Append(messages.Entry{Kind: messages.Text, Time: t0, From: "x", Key: "x", Text: "hello"})
		_ = m.View()
	}
}
