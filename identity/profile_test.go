package identity

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// testWork keeps scrypt cheap in tests (2^10 instead of 2^18).
const testWork = 10

func newTestProfile(t *testing.T, dir, pass string) *Profile {
	t.Helper()
	p, err := Create(dir, CreateOptions{Passphrase: pass, NoPassphrase: pass == "", ScryptWorkFactor: testWork})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sameFiles(t *testing.T, a, b map[string][]byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("files %d -> %d", len(a), len(b))
	}
	for n, v := range a {
		if !bytes.Equal(v, b[n]) {
			t.Errorf("%s changed", n)
		}
	}
}

func TestCreateOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", "alice")
	p := newTestProfile(t, dir, "correct horse")
	pub, dbKey := p.Identity.PublicKey(), p.DatabaseKey()
	if !p.Encrypted || p.Name != "alice" || dbKey == [32]byte{} {
		t.Fatalf("profile %+v", p)
	}
	if _, err := Open(dir, "correct horse"); !errors.Is(err, ErrProfileInUse) {
		t.Errorf("second open in the same process: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Identity != nil || p.DatabaseKey() != [32]byte{} {
		t.Error("Close left keys behind")
	}
	for name, mode := range map[string]os.FileMode{"": 0o700, keystoreFile: 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%q mode %v %v", name, st.Mode(), err)
		}
	}
	before := files(t, dir)
	if _, err := Open(dir, "wrong horse"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	} else if strings.Contains(err.Error(), "horse") {
		t.Error("passphrase in the error")
	}
	if _, err := Open(dir, ""); err == nil {
		t.Error("empty passphrase opened an encrypted keystore")
	}
	sameFiles(t, before, files(t, dir))

	q, err := Open(dir, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Identity.PublicKey() != pub || q.DatabaseKey() != dbKey {
		t.Error("reopened profile has other keys")
	}
	sameFiles(t, before, files(t, dir))
}

func TestCreateRefusesExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	newTestProfile(t, dir, "pw").Close()
	before := files(t, dir)
	if _, err := Create(dir, CreateOptions{Passphrase: "other", ScryptWorkFactor: testWork}); !errors.Is(err, ErrProfileExists) {
		t.Errorf("create over a profile: %v", err)
	}
	sameFiles(t, before, files(t, dir))
	if _, err := Create(filepath.Join(t.TempDir(), "q"), CreateOptions{ScryptWorkFactor: testWork}); err == nil {
		t.Error("empty passphrase without the explicit option")
	}
	if _, err := Create(filepath.Join(t.TempDir(), "q"), CreateOptions{Passphrase: "x", NoPassphrase: true}); err == nil {
		t.Error("passphrase together with no-passphrase")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none"), "pw"); !errors.Is(err, ErrNoProfile) {
		t.Errorf("open of a missing profile: %v", err)
	}
	empty := t.TempDir()
	if _, err := Open(empty, "pw"); !errors.Is(err, ErrNoProfile) {
		t.Errorf("open of an empty directory: %v", err)
	}
}

func TestUnencryptedProfile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bot")
	p := newTestProfile(t, dir, "")
	pub := p.Identity.PublicKey()
	if p.Encrypted {
		t.Error("encrypted without a passphrase")
	}
	p.Close()
	if _, err := os.Stat(filepath.Join(dir, plainKeystoreFile)); err != nil {
		t.Fatal(err)
	}
	q, err := Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Encrypted || q.Identity.PublicKey() != pub {
		t.Error("reopened unencrypted profile differs")
	}
}

func TestKeystoreOpensWithAge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	p := newTestProfile(t, dir, "pass phrase")
	seed := p.Identity.Seed()
	p.Close()
	f, err := os.Open(filepath.Join(dir, keystoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// What `age -d keystore.age` does.
	id, _ := age.NewScryptIdentity("pass phrase")
	r, err := age.Decrypt(f, id)
	if err != nil {
		t.Fatal(err)
	}
	pt, _ := io.ReadAll(r)
	ks, err := parseKeystore(pt)
	if err != nil || !bytes.Equal(ks.seed[:], seed) {
		t.Fatalf("keystore via age: %v", err)
	}
	if !bytes.Contains(pt, []byte(`"format": "tchat-keystore"`)) || !bytes.Contains(pt, []byte(`"version": 1`)) {
		t.Errorf("plaintext:\n%s", pt)
	}
}

func TestParseKeystore(t *testing.T) {
	good := (&keystore{seed: [32]byte{1}, dbKey: [32]byte{2}, created: time.Unix(0, 0)}).marshal()
	if _, err := parseKeystore(good); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]string{
		"empty":         "",
		"not json":      "hello",
		"other format":  strings.Replace(string(good), "tchat-keystore", "tchat-other", 1),
		"unknown field": strings.Replace(string(good), `"version"`, `"extra": 1, "version"`, 1),
		"short seed":    strings.Replace(string(good), `"identity_seed": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`, `"identity_seed": "AQ=="`, 1),
		"trailing":      string(good) + "{}",
		"newer version": strings.Replace(string(good), `"version": 1`, `"version": 2`, 1),
		"missing dbkey": strings.Replace(string(good), `"database_key"`, `"database_kez"`, 1),
	} {
		if _, err := parseKeystore([]byte(b)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "identity: ") {
			t.Errorf("%s: error %q", name, err)
		}
	}
	if _, err := parseKeystore([]byte(strings.Replace(string(good), `"version": 1`, `"version": 2`, 1))); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("newer version error: %v", err)
	}
}

func TestForeignFilesAreNotAWrongPassphrase(t *testing.T) {
	var x25519 bytes.Buffer
	idt, _ := age.GenerateX25519Identity()
	w, _ := age.Encrypt(&x25519, idt.Recipient())
	w.Write([]byte("x"))
	w.Close()
	for name, data := range map[string][]byte{
		"garbage":            []byte("garbage"),
		"x25519 recipient":   x25519.Bytes(),
		"armored":            []byte("-----BEGIN AGE ENCRYPTED FILE-----\n"),
		"truncated age file": x25519.Bytes()[:30],
	} {
		_, err := openKeystore(data, "pw")
		if err == nil || errors.Is(err, ErrWrongPassphrase) || !strings.HasPrefix(err.Error(), "identity: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNames(t *testing.T) {
	for _, n := range []string{"default", "alice", "bot-1", "Ünïcode", "a.b"} {
		if err := ValidateName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", ".hidden", "..", ".", "a/b", `a\b`, "a b", "tab\t", "nul\x00", strings.Repeat("x", 65)} {
		if err := ValidateName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
	if _, err := ProfileDir("/h", "../etc"); err == nil {
		t.Error("traversal accepted")
	}
	if d, err := ProfileDir("/h", "default"); err != nil || d != "/h/default" {
		t.Errorf("%q %v", d, err)
	}
}

func TestHome(t *testing.T) {
	t.Setenv("TCHAT_HOME", "")
	t.Setenv("XDG_DATA_HOME", "/xdg")
	t.Setenv("HOME", "/home/u")
	check := func(flag, want string) {
		t.Helper()
		if got, err := Home(flag); err != nil || got != want {
			t.Errorf("Home(%q) = %q, %v; want %q", flag, got, err, want)
		}
	}
	check("", "/xdg/tchat")
	check("/flag", "/flag")
	t.Setenv("XDG_DATA_HOME", "relative/ignored")
	check("", "/home/u/.local/share/tchat")
	t.Setenv("XDG_DATA_HOME", "")
	check("", "/home/u/.local/share/tchat")
	t.Setenv("TCHAT_HOME", "/env")
	check("", "/env")
	check("/flag", "/flag")
}

// The lock test runs a second process (this test binary again) that holds the
// profile open until its stdin closes.
const lockChildEnv = "TCHAT_IDENTITY_LOCK_CHILD_DIR"

func TestLockChild(t *testing.T) {
	dir := os.Getenv(lockChildEnv)
	if dir == "" {
		t.Skip("run by TestSecondProcessIsRefused")
	}
	p, err := Open(dir, "")
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(3)
	}
	os.Stdout.WriteString("locked\n")
	io.Copy(io.Discard, os.Stdin)
	p.Close()
	os.Exit(0)
}

func TestSecondProcessIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	newTestProfile(t, dir, "").Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("child: %q", line)
	}
	_, err := Open(dir, "")
	if !errors.Is(err, ErrProfileInUse) || err.Error() != "identity: profile in use by another tchat process" {
		t.Errorf("open while another process holds it: %v", err)
	}
	if _, err := Create(dir, CreateOptions{NoPassphrase: true}); !errors.Is(err, ErrProfileInUse) {
		t.Errorf("create while another process holds it: %v", err)
	}
	// A killed holder leaves no stale lock.
	cmd.Process.Kill()
	cmd.Wait()
	p, err := Open(dir, "")
	if err != nil {
		t.Fatalf("open after the holder died: %v", err)
	}
	p.Close()
}

// BenchmarkOpenProfile measures opening a profile with the default scrypt work
// factor: the deliberate cost of each passphrase guess, paid once per start.
func BenchmarkOpenProfile(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "p")
	p, err := Create(dir, CreateOptions{Passphrase: "benchmark passphrase"})
	if err != nil {
		b.Fatal(err)
	}
	p.Close()
	for b.Loop() {
		p, err := Open(dir, "benchmark passphrase")
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}
