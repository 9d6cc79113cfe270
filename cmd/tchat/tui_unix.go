//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// redirectStderr points file descriptor 2 at f, so that whatever a library prints to
// standard error goes to the log instead of the screen. It returns the undo.
func redirectStderr(f *os.File) func() {
	saved, err := unix.Dup(2)
	if err != nil {
		return func() {}
	}
	if err := unix.Dup2(int(f.Fd()), 2); err != nil {
		unix.Close(saved)
		return func() {}
	}
	return func() {
		unix.Dup2(saved, 2)
		unix.Close(saved)
	}
}
