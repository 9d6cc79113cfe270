// Command tchat is an end-to-end encrypted group chat for the terminal.
//
// Usage:
//
//	tchat [flags]         the chat: a terminal interface on the default profile
//	                      (--config FILE, --profile NAME, --nick, --listen, --dht, …;
//	                      config.example.toml documents every setting)
//	tchat vectors DIR...  run the MLS test vectors found under DIR
//	tchat version         print the version
//	tchat help            print this help
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// version is set at link time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

type command struct {
	name, args, summary string
	run                 func(args []string, stdout, stderr io.Writer) int
}

var commands []command

func init() {
	commands = []command{
		{"vectors", "DIR...", "run the MLS test vectors (IETF and ts-mls format) under each DIR", runVectors},
		{"id", "[--profile NAME]", "print the profile's peer id, fingerprint and listen addresses (creates the profile on first run)", runID},
		{"export", "FILE", "write an encrypted backup of the profile (keys and database) to FILE", runExport},
		{"import", "FILE", "restore a backup made by export into a new profile", runImport},
		{"bench", "mls|layers [flags] [--json]", "measure MLS group operations or the cascade's layers", runBench},
		{"swarm", "--peers N --messages M [--net loopback|sim] [--drop P] [--partition SPEC] [--churn N] [--json]", "run many peers in this process with load and faults, and print a report", runSwarm},
		{"bot", "[--profile NAME] [--socket PATH]", "run headless, serving JSON-RPC 2.0 on stdin/stdout for bots (docs/bot-protocol.md)", runBot},
		{"version", "", "print the version", func(_ []string, stdout, _ io.Writer) int {
			fmt.Fprintf(stdout, "tchat %s\n", version)
			return 0
		}},
		{"help", "", "print this help", func(_ []string, stdout, _ io.Writer) int {
			usage(stdout)
			return 0
		}},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (strings.HasPrefix(args[0], "-") && !slices.Contains([]string{"-h", "-help", "--help"}, args[0])) {
		// No command: the chat interface (flags only).
		return runTUI(args, stdout, stderr)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	errorf(stderr, "unknown command %q", args[0])
	fmt.Fprintln(stderr, "tchat: run 'tchat help' for the list of commands")
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tchat [flags]                  the chat, in a terminal interface")
	fmt.Fprintln(w, "       tchat <command> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags of the chat (they override the --config file):")
	tuiFlagsHelp(w)
	fmt.Fprintln(w, "  The passphrase can also come from $TCHAT_PASSPHRASE; else the chat asks for it.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-20s %s\n", c.name+" "+c.args, c.summary)
	}
}

func errorf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "tchat: "+format+"\n", args...)
}
