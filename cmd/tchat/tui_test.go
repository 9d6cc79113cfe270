package main

import (
	"strings"
	"testing"
)

// TestTUIFlagsInHelp checks that tchat help and tchat --help name the chat's flags
// before the commands.
func TestTUIFlagsInHelp(t *testing.T) {
	for _, arg := range []string{"help", "--help"} {
		out, _, code := runCLI(arg)
		if code != 0 {
			t.Fatalf("%s: exit %d", arg, code)
		}
		flags, cmds, ok := strings.Cut(out, "Commands:")
		if !ok {
			t.Fatalf("%s: no commands in:\n%s", arg, out)
		}
		for _, want := range []string{"tchat [flags]", "--config FILE", "--home DIR", "--profile NAME", "--nick NAME", "--listen ADDR", "--no-mdns", "--mouse", "--theme dark|light", "TCHAT_PASSPHRASE"} {
			if !strings.Contains(flags, want) {
				t.Errorf("%s: the flags lack %q:\n%s", arg, want, flags)
			}
		}
		if !strings.Contains(cmds, "vectors") || !strings.Contains(cmds, "help") {
			t.Errorf("%s: commands:\n%s", arg, cmds)
		}
	}
}
