// Package keymap is the key bindings of tchat's interface.
package keymap

import "charm.land/bubbles/v2/key"

// KeyMap holds every binding of the interface.
type KeyMap struct {
	Send, Newline, Complete, Clear   key.Binding
	PageUp, PageDown, Top, Bottom    key.Binding
	NextConv, PrevConv, GotoConv     key.Binding
	HistoryPrev, HistoryNext         key.Binding
	Help, ToggleConvs, ToggleMembers key.Binding
	ToggleMouse, Quit                key.Binding
	Conv                             [9]key.Binding // Alt+1 … Alt+9
}

// Default returns the default bindings: WeeChat's and irssi's habits where they exist.
func Default() *KeyMap {
	k := &KeyMap{
		Send:          key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send")),
		Newline:       key.NewBinding(key.WithKeys("alt+enter", "shift+enter", "ctrl+j"), key.WithHelp("alt+enter", "new line")),
		Complete:      key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "complete")),
		Clear:         key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear")),
		PageUp:        key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "scroll up")),
		PageDown:      key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "scroll down")),
		Top:           key.NewBinding(key.WithKeys("ctrl+home"), key.WithHelp("ctrl+home", "oldest")),
		Bottom:        key.NewBinding(key.WithKeys("ctrl+end"), key.WithHelp("ctrl+end", "newest")),
		NextConv:      key.NewBinding(key.WithKeys("ctrl+n", "alt+down"), key.WithHelp("ctrl+n", "next conversation")),
		PrevConv:      key.NewBinding(key.WithKeys("ctrl+p", "alt+up"), key.WithHelp("ctrl+p", "previous conversation")),
		GotoConv:      key.NewBinding(key.WithKeys("alt+1"), key.WithHelp("alt+1…9", "go to conversation")),
		HistoryPrev:   key.NewBinding(key.WithKeys("up"), key.WithHelp("↑", "previous input")),
		HistoryNext:   key.NewBinding(key.WithKeys("down"), key.WithHelp("↓", "next input")),
		Help:          key.NewBinding(key.WithKeys("f1"), key.WithHelp("F1", "help")),
		ToggleConvs:   key.NewBinding(key.WithKeys("f2"), key.WithHelp("F2", "conversations")),
		ToggleMembers: key.NewBinding(key.WithKeys("f3"), key.WithHelp("F3", "members")),
		ToggleMouse:   key.NewBinding(key.WithKeys("f4"), key.WithHelp("F4", "mouse")),
		Quit:          key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
	}
	for i := range k.Conv {
		d := string(rune('1' + i))
		k.Conv[i] = key.NewBinding(key.WithKeys("alt+"+d), key.WithHelp("alt+"+d, "conversation "+d))
	}
	return k
}

// ShortHelp implements help.KeyMap.
func (k *KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Send, k.Newline, k.Complete, k.Help, k.Quit}
}

// FullHelp implements help.KeyMap.
func (k *KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Send, k.Newline, k.Complete, k.Clear, k.HistoryPrev, k.HistoryNext},
		{k.PageUp, k.PageDown, k.Top, k.Bottom},
		{k.NextConv, k.PrevConv, k.GotoConv},
		{k.Help, k.ToggleConvs, k.ToggleMembers, k.ToggleMouse, k.Quit},
	}
}
