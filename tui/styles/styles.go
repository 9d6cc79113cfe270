// Package styles holds the colours and text styles of tchat's interface, in a dark and a
// light variant so that both kinds of terminal stay readable.
package styles

import (
	"hash/fnv"
	"image/color"

	"charm.land/lipgloss/v2"
)

// Styles are the interface's styles for one background.
type Styles struct {
	Dark bool
	// Gen changes with every New, so that caches of rendered text can tell a theme
	// change.
	Gen uint64

	Title, TitleDim         lipgloss.Style // pane titles
	Separator               lipgloss.Style // the lines between panes
	Time                    lipgloss.Style // message times
	Text                    lipgloss.Style // message text
	OwnName                 lipgloss.Style
	System                  lipgloss.Style // joins, leaves, epochs
	Info                    lipgloss.Style // answers to commands
	Error                   lipgloss.Style
	Warn                    lipgloss.Style
	Mark                    lipgloss.Style // (late), (re-sent), …
	Mention                 lipgloss.Style // a message that names us
	Selected, Item          lipgloss.Style // conversation list
	Unread, MentionMark     lipgloss.Style
	Inactive                lipgloss.Style
	Online, Offline         lipgloss.Style
	Verified, Fingerprint   lipgloss.Style
	Status, StatusKey       lipgloss.Style // the status line
	StatusWarn              lipgloss.Style
	Prompt, Placeholder     lipgloss.Style
	Dialog, DialogTitle     lipgloss.Style // the passphrase page
	Help                    lipgloss.Style
	names                   []lipgloss.Style
	statusBg, statusFg      color.Color
	statusKeyFg, statusWarn color.Color
}

var gen uint64

// New returns the styles for a dark or a light background.
func New(dark bool) *Styles {
	gen++
	ld := lipgloss.LightDark(dark)
	c := lipgloss.Color
	s := &Styles{Dark: dark, Gen: gen}
	dim := ld(c("244"), c("245"))
	fg := ld(c("235"), c("252"))
	accent := ld(c("25"), c("75"))
	s.Title = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.TitleDim = lipgloss.NewStyle().Foreground(dim)
	s.Separator = lipgloss.NewStyle().Foreground(ld(c("250"), c("238")))
	s.Time = lipgloss.NewStyle().Foreground(dim)
	s.Text = lipgloss.NewStyle().Foreground(fg)
	s.OwnName = lipgloss.NewStyle().Bold(true).Foreground(fg)
	s.System = lipgloss.NewStyle().Foreground(ld(c("242"), c("247"))).Italic(true)
	s.Info = lipgloss.NewStyle().Foreground(ld(c("24"), c("117")))
	s.Error = lipgloss.NewStyle().Foreground(ld(c("124"), c("203"))).Bold(true)
	s.Warn = lipgloss.NewStyle().Foreground(ld(c("130"), c("214")))
	s.Mark = lipgloss.NewStyle().Foreground(ld(c("130"), c("179"))).Italic(true)
	s.Mention = lipgloss.NewStyle().Foreground(fg).Background(ld(c("230"), c("58")))
	s.Selected = lipgloss.NewStyle().Bold(true).Foreground(ld(c("231"), c("16"))).Background(accent)
	s.Item = lipgloss.NewStyle().Foreground(fg)
	s.Unread = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.MentionMark = lipgloss.NewStyle().Bold(true).Foreground(ld(c("160"), c("204")))
	s.Inactive = lipgloss.NewStyle().Foreground(dim).Strikethrough(true)
	s.Online = lipgloss.NewStyle().Foreground(ld(c("28"), c("78")))
	s.Offline = lipgloss.NewStyle().Foreground(dim)
	s.Verified = lipgloss.NewStyle().Bold(true).Foreground(ld(c("28"), c("78")))
	s.Fingerprint = lipgloss.NewStyle().Foreground(dim)
	s.statusBg = ld(c("254"), c("236"))
	s.statusFg = ld(c("236"), c("250"))
	s.statusKeyFg = accent
	s.statusWarn = ld(c("130"), c("214"))
	s.Status = lipgloss.NewStyle().Foreground(s.statusFg).Background(s.statusBg)
	s.StatusKey = lipgloss.NewStyle().Foreground(s.statusKeyFg).Background(s.statusBg).Bold(true)
	s.StatusWarn = lipgloss.NewStyle().Foreground(s.statusWarn).Background(s.statusBg).Bold(true)
	s.Prompt = lipgloss.NewStyle().Foreground(accent).Bold(true)
	s.Placeholder = lipgloss.NewStyle().Foreground(dim)
	s.Dialog = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(accent).Padding(1, 2)
	s.DialogTitle = lipgloss.NewStyle().Bold(true).Foreground(accent)
	s.Help = lipgloss.NewStyle().Foreground(dim)

	// Name colours: distinct hues that read on the background.
	var palette []string
	if dark {
		palette = []string{"81", "114", "179", "211", "141", "215", "117", "150", "174", "183", "80", "222"}
	} else {
		palette = []string{"25", "28", "130", "125", "91", "166", "31", "64", "131", "97", "30", "136"}
	}
	for _, p := range palette {
		s.names = append(s.names, lipgloss.NewStyle().Bold(true).Foreground(c(p)))
	}
	return s
}

// Name returns the style of a member's name: a colour chosen by a hash of key (its peer
// id), so that a member keeps its colour everywhere.
func (s *Styles) Name(key string) lipgloss.Style {
	h := fnv.New32a()
	h.Write([]byte(key))
	return s.names[h.Sum32()%uint32(len(s.names))]
}
