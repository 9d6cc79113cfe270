package tui

import (
	"errors"
	"strings"

	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/tchat-p2p/tchat/tui/common"
)

// unlockModel is the first page: it asks for the passphrase that creates or unlocks the
// profile, then waits while Open runs.
type unlockModel struct {
	c       *common.Common
	opts    Options
	in      textinput.Model
	spin    spinner.Model
	repeat  bool   // asking for the new passphrase a second time
	first   string // the new passphrase, until it is repeated
	err     error
	fatal   error // Open failed and there is nothing to ask: quit
	working bool
	w, h    int
}

func newUnlock(c *common.Common, opts Options) unlockModel {
	in := textinput.New()
	in.EchoMode = textinput.EchoPassword
	in.EchoCharacter = '•'
	in.Prompt = "passphrase: "
	in.SetWidth(40)
	return unlockModel{c: c, opts: opts, in: in, spin: spinner.New(spinner.WithSpinner(spinner.MiniDot)),
		working: opts.Prompt == PromptNone}
}

func (u *unlockModel) Init() tea.Cmd {
	return tea.Batch(u.in.Focus(), u.spin.Tick)
}

func (u *unlockModel) setSize(w, h int) { u.w, u.h = w, h }

// failed shows why Open failed and asks again.
func (u *unlockModel) failed(err error) tea.Cmd {
	u.working = false
	u.err = err
	u.repeat, u.first = false, ""
	u.in.Reset()
	u.in.Prompt = "passphrase: "
	return u.in.Focus()
}

func (u *unlockModel) cursor() *tea.Cursor { return nil }

// updateUnlock runs the passphrase page.
func (m *Model) updateUnlock(msg tea.Msg) (tea.Model, tea.Cmd) {
	u := &m.unlock
	switch msg := msg.(type) {
	case spinner.TickMsg:
		var cmd tea.Cmd
		u.spin, cmd = u.spin.Update(msg)
		return m, cmd
	case tea.KeyPressMsg:
		switch msg.String() {
		case "ctrl+c":
			m.quit = true
			m.cancel()
			return m, tea.Quit
		case "esc":
			u.in.Reset()
			return m, nil
		case "enter":
			if u.working || u.fatal != nil {
				return m, nil
			}
			pass := u.in.Value()
			if pass == "" {
				u.err = errors.New("the passphrase is empty")
				return m, nil
			}
			u.err = nil
			if m.opts.Prompt == PromptCreate && !u.repeat {
				u.first, u.repeat = pass, true
				u.in.Reset()
				u.in.Prompt = "repeat it: "
				return m, nil
			}
			if u.repeat && pass != u.first {
				u.err = errors.New("the two passphrases differ; choose one again")
				u.repeat, u.first = false, ""
				u.in.Reset()
				u.in.Prompt = "passphrase: "
				return m, nil
			}
			u.in.Reset()
			u.first = ""
			u.working = true
			m.phase = phaseStarting
			return m, tea.Batch(m.open(pass), u.spin.Tick)
		}
	}
	var cmd tea.Cmd
	u.in, cmd = u.in.Update(msg)
	return m, cmd
}

// view draws the page: a box in the middle of the window, the status line below.
func (u *unlockModel) view(status string) string {
	st := u.c.Styles
	profile := u.opts.Profile
	if profile == "" {
		profile = "default"
	}
	var lines []string
	lines = append(lines, st.DialogTitle.Render("tchat")+st.TitleDim.Render(" · end-to-end encrypted group chat"), "")
	width := min(max(u.w-8, 20), 72)
	wrap := func(s string, style lipgloss.Style) {
		for _, l := range common.Wrap(s, width) {
			lines = append(lines, style.Render(l))
		}
	}
	switch {
	case u.fatal != nil:
		wrap("tchat could not start:", st.Text)
		wrap(u.fatal.Error(), st.Error)
		lines = append(lines, "", st.Help.Render("Ctrl+C quits"))
	case u.working:
		what := "Starting tchat…"
		switch u.opts.Prompt {
		case PromptCreate:
			what = "Creating your profile and starting tchat…"
		case PromptUnlock:
			what = "Unlocking your profile and starting tchat…"
		}
		lines = append(lines, u.spin.View()+" "+st.Text.Render(what))
	default:
		if u.opts.Prompt == PromptCreate {
			wrap("Welcome! This is the first start of profile \""+profile+"\".", st.Text)
			if u.opts.ProfileDir != "" {
				wrap("It will live in "+u.opts.ProfileDir+".", st.Help)
			}
			lines = append(lines, "")
			wrap("Choose a passphrase: it encrypts your keys on this disk. Nobody can recover it for you.", st.Text)
		} else {
			wrap("Unlock profile \""+profile+"\".", st.Text)
		}
		lines = append(lines, "", u.in.View())
		if u.err != nil {
			lines = append(lines, "")
			wrap(u.err.Error(), st.Error)
		}
		lines = append(lines, "", st.Help.Render("Enter continues · Esc clears · Ctrl+C quits"))
	}
	box := st.Dialog.Render(strings.Join(lines, "\n"))
	body := lipgloss.Place(max(u.w, 1), max(u.h-1, 1), lipgloss.Center, lipgloss.Center, box)
	return body + "\n" + common.Fit(status, u.w)
}
