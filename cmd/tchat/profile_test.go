package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tchat-p2p/tchat/identity"
	"github.com/tchat-p2p/tchat/internal/store"
)

func init() {
	// Cheap scrypt, and no terminal, for every test of this package.
	scryptWorkFactor = 10
	stdinIsTerminal = func() bool { return false }
}

var peerLine = regexp.MustCompile(`(?m)^peer id +(12D3KooW[1-9A-HJ-NP-Za-km-z]+)$`)

// profileEnv gives a test its own profile home and passphrase file.
func profileEnv(t *testing.T) (home, passFile string) {
	t.Helper()
	home = filepath.Join(t.TempDir(), "home")
	passFile = filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(passFile, []byte("a good passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TCHAT_HOME", "")
	t.Setenv("TCHAT_PASSPHRASE", "")
	t.Setenv("XDG_DATA_HOME", filepath.Join(t.TempDir(), "xdg-unused"))
	return home, passFile
}

func peerOf(t *testing.T, out string) string {
	t.Helper()
	m := peerLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no peer id in:\n%s", out)
	}
	return m[1]
}

func TestDatabaseFileNamesAgree(t *testing.T) {
	if identity.DatabaseFile != store.FileName {
		t.Fatalf("identity.DatabaseFile %q != store.FileName %q", identity.DatabaseFile, store.FileName)
	}
}

func TestIDCreatesThenReopens(t *testing.T) {
	home, pass := profileEnv(t)
	out, errOut, code := runCLI("id", "--home", home, "--passphrase-file", pass)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	id := peerOf(t, out)
	if !strings.Contains(errOut, `created profile "default"`) {
		t.Errorf("stderr: %s", errOut)
	}
	for _, want := range []string{"fingerprint  ", "/ip4/0.0.0.0/tcp/0", "not active", filepath.Join(home, "default")} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	for _, f := range []string{"keystore.age", "tchat.db"} {
		if _, err := os.Stat(filepath.Join(home, "default", f)); err != nil {
			t.Errorf("profile lacks %s: %v", f, err)
		}
	}
	// Again, with the passphrase from the environment and flags after nothing.
	t.Setenv("TCHAT_PASSPHRASE", "a good passphrase")
	out, errOut, code = runCLI("id", "--home", home)
	if code != 0 || peerOf(t, out) != id || errOut != "" {
		t.Fatalf("reopen: exit %d, %s\n%s", code, errOut, out)
	}
	// TCHAT_HOME works like --home.
	t.Setenv("TCHAT_HOME", home)
	if out, _, code := runCLI("id"); code != 0 || peerOf(t, out) != id {
		t.Fatalf("TCHAT_HOME: exit %d", code)
	}

	before, _ := os.ReadFile(filepath.Join(home, "default", "keystore.age"))
	t.Setenv("TCHAT_PASSPHRASE", "not-the-right-one")
	_, errOut, code = runCLI("id", "--home", home)
	if code != 1 || !strings.Contains(errOut, "tchat: identity: wrong passphrase") || strings.Contains(errOut, "not-the-right-one") {
		t.Errorf("wrong passphrase: exit %d, %q", code, errOut)
	}
	after, _ := os.ReadFile(filepath.Join(home, "default", "keystore.age"))
	if !bytes.Equal(before, after) {
		t.Error("keystore changed after a wrong passphrase")
	}
	_, errOut, code = runCLI("id", "--home", home, "--no-passphrase")
	if code != 1 || !strings.Contains(errOut, "only applies when creating") {
		t.Errorf("--no-passphrase on an encrypted profile: exit %d, %q", code, errOut)
	}
}

func TestIDNeedsAPassphraseOrTheFlag(t *testing.T) {
	home, _ := profileEnv(t)
	_, errOut, code := runCLI("id", "--home", home)
	if code != 1 || !strings.Contains(errOut, "--passphrase-file") || !strings.Contains(errOut, "--no-passphrase") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	if identity.Exists(filepath.Join(home, "default")) {
		t.Error("profile created without a passphrase")
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, errOut, code := runCLI("id", "--home", home, "--passphrase-file", empty); code != 1 || !strings.Contains(errOut, "empty") {
		t.Errorf("empty passphrase file: exit %d, %q", code, errOut)
	}

	out, errOut, code := runCLI("id", "--home", home, "--profile", "bot", "--no-passphrase")
	if code != 0 || !strings.Contains(errOut, "warning") || !strings.Contains(errOut, "unencrypted") {
		t.Fatalf("no passphrase: exit %d, %q", code, errOut)
	}
	id := peerOf(t, out)
	out, errOut, code = runCLI("id", "--home", home, "--profile", "bot")
	if code != 0 || peerOf(t, out) != id || !strings.Contains(errOut, "warning") {
		t.Errorf("reopen unencrypted: exit %d, %q", code, errOut)
	}
}

func TestProfileFlagsAreChecked(t *testing.T) {
	home, pass := profileEnv(t)
	for _, name := range []string{"../escape", ".hidden", "a/b"} {
		_, errOut, code := runCLI("id", "--home", home, "--profile", name, "--passphrase-file", pass)
		if code != 1 || !strings.Contains(errOut, "profile name") {
			t.Errorf("%q: exit %d, %q", name, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(home), "escape")); err == nil {
		t.Error("a profile escaped the home")
	}
	if _, _, code := runCLI("id", "--bogus"); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
	if _, _, code := runCLI("id", "extra"); code != 2 {
		t.Errorf("extra argument: exit %d", code)
	}
	if _, _, code := runCLI("export"); code != 2 {
		t.Errorf("export without FILE: exit %d", code)
	}
	if _, _, code := runCLI("import", "a", "b"); code != 2 {
		t.Errorf("import with two files: exit %d", code)
	}
}

func TestProfileInUse(t *testing.T) {
	home, pass := profileEnv(t)
	if _, errOut, code := runCLI("id", "--home", home, "--passphrase-file", pass); code != 0 {
		t.Fatal(errOut)
	}
	p, err := identity.Open(filepath.Join(home, "default"), "a good passphrase")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, errOut, code := runCLI("id", "--home", home, "--passphrase-file", pass)
	if code != 1 || !strings.Contains(errOut, "profile in use") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}

func TestExportImport(t *testing.T) {
	home, pass := profileEnv(t)
	out, errOut, code := runCLI("id", "--home", home, "--passphrase-file", pass)
	if code != 0 {
		t.Fatal(errOut)
	}
	id := peerOf(t, out)

	// Put something in the database.
	p, err := identity.Open(filepath.Join(home, "default"), "a good passphrase")
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(p.Dir, p.DatabaseKey())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.AppendMessages(ctx, []store.Message{{GroupID: []byte("g"), MsgID: []byte("m1"), Content: []byte("remember me")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVerified(ctx, []byte("peer"), []byte("key")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	p.Close()

	backup := filepath.Join(t.TempDir(), "backup.age")
	// Flags after the file name work too.
	if out, errOut, code := runCLI("export", backup, "--home", home, "--passphrase-file", pass); code != 0 || !strings.Contains(out, "exported") {
		t.Fatalf("export: exit %d, %s", code, errOut)
	}
	if ents, _ := os.ReadDir(filepath.Join(home, "default")); len(ents) != 3 {
		t.Errorf("export left files in the profile: %v", ents)
	}
	if _, errOut, code := runCLI("export", backup, "--home", home, "--passphrase-file", pass); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("export over a file: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI("export", filepath.Join(t.TempDir(), "x"), "--home", home, "--profile", "nobody", "--passphrase-file", pass); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("export of a missing profile: exit %d, %q", code, errOut)
	}

	// Import refuses the existing profile and a wrong passphrase.
	before, _ := os.ReadFile(filepath.Join(home, "default", "keystore.age"))
	if _, errOut, code := runCLI("import", backup, "--home", home, "--passphrase-file", pass); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("import over a profile: exit %d, %q", code, errOut)
	}
	after, _ := os.ReadFile(filepath.Join(home, "default", "keystore.age"))
	if !bytes.Equal(before, after) {
		t.Error("import touched the existing profile")
	}
	t.Setenv("TCHAT_PASSPHRASE", "wrong")
	if _, errOut, code := runCLI("import", backup, "--home", home, "--profile", "copy"); code != 1 || !strings.Contains(errOut, "wrong passphrase") {
		t.Errorf("import with a wrong passphrase: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(home, "copy")); err == nil {
		t.Error("a failed import left a profile")
	}

	out, errOut, code = runCLI("import", "--home", home, "--profile", "copy", "--passphrase-file", pass, backup)
	if code != 0 || !strings.Contains(out, id) {
		t.Fatalf("import: exit %d, %s\n%s", code, errOut, out)
	}
	t.Setenv("TCHAT_PASSPHRASE", "a good passphrase")
	out, _, code = runCLI("id", "--home", home, "--profile", "copy")
	if code != 0 || peerOf(t, out) != id {
		t.Fatalf("restored id: exit %d\n%s", code, out)
	}
	q, err := identity.Open(filepath.Join(home, "copy"), "a good passphrase")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	s, err = store.Open(q.Dir, q.DatabaseKey())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Message(ctx, []byte("g"), []byte("m1"))
	if err != nil || string(m.Content) != "remember me" {
		t.Errorf("restored message: %q %v", m.Content, err)
	}
	if k, err := s.Verified(ctx, []byte("peer")); err != nil || string(k) != "key" {
		t.Errorf("restored verified flag: %q %v", k, err)
	}

	// A corrupt backup is refused.
	junk := filepath.Join(t.TempDir(), "junk.age")
	os.WriteFile(junk, []byte("not a backup"), 0o600)
	if _, errOut, code := runCLI("import", junk, "--home", home, "--profile", "junk"); code != 1 || !strings.Contains(errOut, "not an age-encrypted file") {
		t.Errorf("junk: exit %d, %q", code, errOut)
	}
}

func TestExportUnencryptedProfileNeedsABackupPassphrase(t *testing.T) {
	home, pass := profileEnv(t)
	if _, errOut, code := runCLI("id", "--home", home, "--no-passphrase"); code != 0 {
		t.Fatal(errOut)
	}
	backup := filepath.Join(t.TempDir(), "b.age")
	if _, errOut, code := runCLI("export", backup, "--home", home); code != 1 || !strings.Contains(errOut, "passphrase") {
		t.Errorf("no backup passphrase: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI("export", backup, "--home", home, "--passphrase-file", pass); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	_, errOut, code := runCLI("import", backup, "--home", home, "--profile", "copy", "--passphrase-file", pass)
	if code != 0 || !strings.Contains(errOut, "unencrypted") {
		t.Errorf("import: exit %d, %q", code, errOut)
	}
	if enc, err := identity.Encrypted(filepath.Join(home, "copy")); err != nil || enc {
		t.Errorf("restored keystore encrypted %v, %v", enc, err)
	}
}
