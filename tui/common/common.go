// Package common is what every component of tchat's interface shares: styles, key
// bindings, the clock, and the message that carries errors.
package common

import (
	"time"

	"charm.land/bubbles/v2/help"
	tea "charm.land/bubbletea/v2"

	"github.com/tchat-p2p/tchat/tui/keymap"
	"github.com/tchat-p2p/tchat/tui/styles"
)

// Common is embedded by every component (by pointer, so a theme change reaches all).
type Common struct {
	Styles *styles.Styles
	Keys   *keymap.KeyMap
	// Now is the clock (tests fix it).
	Now func() time.Time
	// TimeFormat is the layout of message times ("" : none).
	TimeFormat string
}

// New returns a Common with the dark styles, the default keys and the wall clock.
func New() *Common {
	return &Common{Styles: styles.New(true), Keys: keymap.Default(), Now: time.Now, TimeFormat: "15:04"}
}

// Component is what every pane of the interface implements.
type Component interface {
	help.KeyMap
	Init() tea.Cmd
	View() string
	SetSize(width, height int)
}

// ErrorMsg carries an error to be shown in the interface.
type ErrorMsg struct{ Err error }

func (e ErrorMsg) Error() string { return e.Err.Error() }

// ErrorCmd returns a command that reports err.
func ErrorCmd(err error) tea.Cmd { return func() tea.Msg { return ErrorMsg{err} } }
