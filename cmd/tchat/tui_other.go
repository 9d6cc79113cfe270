//go:build !unix

package main

import (
	"os"

	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// redirectStderr sends Go's writes to os.Stderr to f (not those of C code).
func redirectStderr(f *os.File) func() {
	saved := os.Stderr
	os.Stderr = f
	return func() { os.Stderr = saved }
}
