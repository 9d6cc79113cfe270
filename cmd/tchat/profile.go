package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
)

// The profile subcommands: id, export, import. They share the profile flags:
//
//	--home DIR             directory holding the profiles (default $TCHAT_HOME,
//	                       else $XDG_DATA_HOME/tchat, else ~/.local/share/tchat)
//	--profile NAME         profile to use (default "default")
//	--passphrase-file FILE read the passphrase from the first line of FILE
//	--no-passphrase        create the profile with an unencrypted keystore
//
// The passphrase comes from --passphrase-file, else $TCHAT_PASSPHRASE, else a
// prompt without echo when standard input is a terminal.

// scryptWorkFactor is the scrypt work factor for new keystores and backups; 0
// means identity's default. Tests lower it.
var scryptWorkFactor = 0

// Terminal access, replaceable in tests.
var (
	stdinIsTerminal = func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }
	readPassword    = func() ([]byte, error) { return term.ReadPassword(int(os.Stdin.Fd())) }
)

type profileFlags struct {
	fs             *flag.FlagSet
	home, name     string
	passphraseFile string
	noPassphrase   bool
}

func newProfileFlags(cmd string, stderr io.Writer, usage string) *profileFlags {
	pf := &profileFlags{fs: flag.NewFlagSet(cmd, flag.ContinueOnError)}
	pf.fs.SetOutput(stderr)
	pf.fs.StringVar(&pf.home, "home", "", "directory holding the profiles (default $TCHAT_HOME, else $XDG_DATA_HOME/tchat)")
	pf.fs.StringVar(&pf.name, "profile", identity.DefaultProfile, "profile `name`")
	pf.fs.StringVar(&pf.passphraseFile, "passphrase-file", "", "read the passphrase from the first line of `file`")
	pf.fs.BoolVar(&pf.noPassphrase, "no-passphrase", false, "create the profile with an unencrypted keystore (not recommended)")
	pf.fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: tchat %s\n", usage)
		pf.fs.PrintDefaults()
	}
	return pf
}

// parse parses flags that may come before or after the positional arguments and
// returns the positional ones. It reports a usage error (exit status 2) as false.
func (pf *profileFlags) parse(args []string) ([]string, bool) {
	var pos []string
	for {
		if err := pf.fs.Parse(args); err != nil {
			return nil, false
		}
		args = pf.fs.Args()
		if len(args) == 0 {
			return pos, true
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (pf *profileFlags) dir() (string, error) {
	home, err := identity.Home(pf.home)
	if err != nil {
		return "", err
	}
	return identity.ProfileDir(home, pf.name)
}

// passphrase returns the passphrase from the flag, the environment or a prompt.
// With confirm, a prompted passphrase is asked twice.
func (pf *profileFlags) passphrase(stderr io.Writer, prompt string, confirm bool) (string, error) {
	if pf.passphraseFile != "" {
		b, err := os.ReadFile(pf.passphraseFile)
		if err != nil {
			return "", fmt.Errorf("passphrase file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		clear(b)
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return "", fmt.Errorf("passphrase file %s: the first line is empty", pf.passphraseFile)
		}
		return line, nil
	}
	if p := os.Getenv("TCHAT_PASSPHRASE"); p != "" {
		return p, nil
	}
	if !stdinIsTerminal() {
		return "", errors.New("a passphrase is needed and standard input is not a terminal: use --passphrase-file FILE or TCHAT_PASSPHRASE")
	}
	p, err := promptOnce(stderr, prompt)
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errors.New("empty passphrase")
	}
	if confirm {
		again, err := promptOnce(stderr, "repeat the passphrase: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the passphrases differ")
		}
	}
	return p, nil
}

func promptOnce(stderr io.Writer, prompt string) (string, error) {
	fmt.Fprint(stderr, prompt)
	b, err := readPassword()
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read passphrase: %w", err)
	}
	s := string(b)
	clear(b)
	return s, nil
}

func warnUnencrypted(stderr io.Writer, name string) {
	fmt.Fprintf(stderr, "tchat: warning: profile %q keeps its keys unencrypted on disk (made with --no-passphrase); anyone who can read its directory can impersonate you\n", name)
}

// openOrCreateProfile opens the profile, creating it (and its database) on first
// use. It returns the passphrase that opened it ("" for an unencrypted one).
func openOrCreateProfile(pf *profileFlags, stderr io.Writer) (*identity.Profile, string, error) {
	dir, err := pf.dir()
	if err != nil {
		return nil, "", err
	}
	if !identity.Exists(dir) {
		opts := identity.CreateOptions{NoPassphrase: pf.noPassphrase, ScryptWorkFactor: scryptWorkFactor}
		if !pf.noPassphrase {
			fmt.Fprintf(stderr, "tchat: creating profile %q in %s\n", pf.name, dir)
			if opts.Passphrase, err = pf.passphrase(stderr, "new passphrase for the profile: ", true); err != nil {
				return nil, "", fmt.Errorf("%w (or --no-passphrase for an unencrypted keystore)", err)
			}
		}
		p, err := identity.Create(dir, opts)
		if err != nil {
			return nil, "", err
		}
		if pf.noPassphrase {
			warnUnencrypted(stderr, pf.name)
		}
		// Make the database now, so the profile is complete from the start.
		s, err := store.Open(p.Dir, p.DatabaseKey())
		if err != nil {
			p.Close()
			return nil, "", err
		}
		if err := s.Close(); err != nil {
			p.Close()
			return nil, "", err
		}
		fmt.Fprintf(stderr, "tchat: created profile %q\n", pf.name)
		return p, opts.Passphrase, nil
	}
	return openProfile(pf, stderr, dir)
}

func openProfile(pf *profileFlags, stderr io.Writer, dir string) (*identity.Profile, string, error) {
	enc, err := identity.Encrypted(dir)
	if errors.Is(err, identity.ErrNoProfile) {
		return nil, "", fmt.Errorf("profile %q does not exist (run 'tchat id --profile %s' to create it)", pf.name, pf.name)
	}
	if err != nil {
		return nil, "", err
	}
	pass := ""
	if enc {
		if pf.noPassphrase {
			return nil, "", fmt.Errorf("profile %q is protected by a passphrase; --no-passphrase only applies when creating a profile", pf.name)
		}
		if pass, err = pf.passphrase(stderr, fmt.Sprintf("passphrase for profile %q: ", pf.name), false); err != nil {
			return nil, "", err
		}
	}
	p, err := identity.Open(dir, pass)
	if err != nil {
		return nil, "", err
	}
	if !p.Encrypted {
		warnUnencrypted(stderr, pf.name)
	}
	return p, pass, nil
}

func runID(args []string, stdout, stderr io.Writer) int {
	pf := newProfileFlags("id", stderr, "id [--home DIR] [--profile NAME] [--passphrase-file FILE] [--no-passphrase]")
	pos, ok := pf.parse(args)
	if !ok {
		return 2
	}
	if len(pos) != 0 {
		pf.fs.Usage()
		return 2
	}
	p, _, err := openOrCreateProfile(pf, stderr)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	defer p.Close()
	fmt.Fprintf(stdout, "profile      %s (%s)\n", p.Name, p.Dir)
	fmt.Fprintf(stdout, "peer id      %s\n", p.Identity.PeerID())
	fmt.Fprintf(stdout, "fingerprint  %s\n", p.Identity.Fingerprint())
	for i, a := range identity.DefaultListenAddrs {
		label := ""
		if i == 0 {
			label = "listen"
		}
		fmt.Fprintf(stdout, "%-12s %s\n", label, a)
	}
	fmt.Fprintf(stdout, "%-12s (the default listen addresses, not active: tchat id does not start the network)\n", "")
	return 0
}

func runExport(args []string, stdout, stderr io.Writer) int {
	pf := newProfileFlags("export", stderr, "export [--home DIR] [--profile NAME] [--passphrase-file FILE] FILE")
	pos, ok := pf.parse(args)
	if !ok {
		return 2
	}
	if len(pos) != 1 {
		pf.fs.Usage()
		return 2
	}
	if err := export(pf, pos[0], stderr); err != nil {
		errorf(stderr, "export: %v", err)
		return 1
	}
	fmt.Fprintf(stdout, "exported profile %q to %s\n", pf.name, pos[0])
	return 0
}

func export(pf *profileFlags, out string, stderr io.Writer) error {
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s already exists; choose a new file name", out)
	}
	dir, err := pf.dir()
	if err != nil {
		return err
	}
	p, pass, err := openProfile(pf, stderr, dir)
	if err != nil {
		return err
	}
	defer p.Close()
	if !p.Encrypted {
		// The backup itself is always encrypted.
		if pass, err = pf.passphrase(stderr, "new passphrase for the backup: ", true); err != nil {
			return err
		}
	}
	s, err := store.Open(p.Dir, p.DatabaseKey())
	if err != nil {
		return err
	}
	defer s.Close()
	tmp, err := os.MkdirTemp(p.Dir, ".export-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	snap := filepath.Join(tmp, store.FileName)
	if err := s.Snapshot(context.Background(), snap); err != nil {
		return err
	}
	return writeNewFile(out, func(w io.Writer) error {
		return p.ExportBackup(w, pass, snap, scryptWorkFactor)
	})
}

// writeNewFile writes a new file (mode 0600) through a temporary file, never
// replacing an existing one.
func writeNewFile(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; choose a new file name", path)
		}
		return err
	}
	return nil
}

func runImport(args []string, stdout, stderr io.Writer) int {
	pf := newProfileFlags("import", stderr, "import [--home DIR] [--profile NAME] [--passphrase-file FILE] FILE")
	pos, ok := pf.parse(args)
	if !ok {
		return 2
	}
	if len(pos) != 1 {
		pf.fs.Usage()
		return 2
	}
	im, err := importBackup(pf, pos[0], stderr)
	if err != nil {
		errorf(stderr, "import: %v", err)
		return 1
	}
	pid, _ := im.PublicKey.PeerID()
	fmt.Fprintf(stdout, "imported profile %q (peer id %s) from %s\n", pf.name, pid, pos[0])
	if !im.Encrypted {
		warnUnencrypted(stderr, pf.name)
	}
	return 0
}

func importBackup(pf *profileFlags, in string, stderr io.Writer) (*identity.Import, error) {
	dir, err := pf.dir()
	if err != nil {
		return nil, err
	}
	if identity.Exists(dir) {
		return nil, fmt.Errorf("profile %q already exists; import into a new one with --profile NAME", pf.name)
	}
	f, err := os.Open(in)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pass, err := pf.passphrase(stderr, "passphrase of the backup: ", false)
	if err != nil {
		return nil, err
	}
	im, err := identity.ImportBackup(f, pass, dir)
	if errors.Is(err, identity.ErrProfileExists) {
		return nil, fmt.Errorf("profile %q already exists; import into a new one with --profile NAME", pf.name)
	}
	if err != nil {
		return nil, err
	}
	// Check the database before it becomes the profile's.
	s, err := store.Open(im.DatabaseDir(), im.DatabaseKey())
	if err == nil {
		err = s.Check(context.Background())
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		im.Abort()
		return nil, err
	}
	if err := im.Commit(); err != nil {
		return nil, err
	}
	return im, nil
}
