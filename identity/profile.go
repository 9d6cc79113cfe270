package identity

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// The profile layout is described in the package documentation.
const (
	// DefaultProfile is the profile used when none is named.
	DefaultProfile = "default"
	// DatabaseFile is the name of the store's database file in a profile directory;
	// internal/store uses the same name.
	DatabaseFile = "tchat.db"

	keystoreFile      = "keystore.age"
	plainKeystoreFile = "keystore.json"
	lockFile          = "lock"
	maxProfileName    = 64
)

// DefaultListenAddrs are the libp2p addresses a profile listens on unless its
// configuration says otherwise: every interface, IPv4 and IPv6, TCP and QUIC, on a
// port chosen by the system at start.
var DefaultListenAddrs = []string{
	"/ip4/0.0.0.0/tcp/0",
	"/ip4/0.0.0.0/udp/0/quic-v1",
	"/ip6/::/tcp/0",
	"/ip6/::/udp/0/quic-v1",
}

var (
	// ErrProfileInUse is returned when another process has the profile open.
	ErrProfileInUse = errors.New("identity: profile in use by another tchat process")
	// ErrNoProfile is returned when opening a profile that does not exist.
	ErrNoProfile = errors.New("identity: profile does not exist")
	// ErrProfileExists is returned when creating or importing over an existing profile.
	ErrProfileExists = errors.New("identity: profile already exists")
)

// Home returns the directory that holds the profiles: flagHome if not empty, else
// $TCHAT_HOME, else $XDG_DATA_HOME/tchat, else ~/.local/share/tchat (the XDG
// default). The result is absolute.
func Home(flagHome string) (string, error) {
	dir := flagHome
	if dir == "" {
		dir = os.Getenv("TCHAT_HOME")
	}
	if dir == "" {
		// The XDG spec says a relative XDG_DATA_HOME is invalid and to be ignored.
		if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
			dir = filepath.Join(x, "tchat")
		}
	}
	if dir == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("identity: no home directory: set --home, TCHAT_HOME or XDG_DATA_HOME")
		}
		dir = filepath.Join(h, ".local", "share", "tchat")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("identity: home directory: %w", err)
	}
	return abs, nil
}

// ValidateName checks a profile name: 1 to 64 characters, no path separator, no
// leading dot, no control or space characters.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("identity: empty profile name")
	case len(name) > maxProfileName:
		return fmt.Errorf("identity: profile name longer than %d bytes", maxProfileName)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("identity: profile name %q starts with a dot", name)
	case strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, filepath.Separator):
		return fmt.Errorf("identity: profile name %q contains a path separator", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("identity: profile name %q contains a space or control character", name)
		}
	}
	return nil
}

// ProfileDir returns the directory of the profile name under home, after
// validating the name.
func ProfileDir(home, name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	return filepath.Join(home, name), nil
}

// Exists reports whether dir holds a profile (a keystore).
func Exists(dir string) bool {
	_, err := keystorePath(dir)
	return err == nil
}

// Encrypted reports whether the profile in dir keeps its keystore encrypted with
// a passphrase, so a front end knows whether to ask for one before [Open]. It
// returns [ErrNoProfile] if there is no profile in dir.
func Encrypted(dir string) (bool, error) {
	p, err := keystorePath(dir)
	if err != nil {
		return false, err
	}
	return filepath.Base(p) == keystoreFile, nil
}

// Profile is an open profile: its identity and database key, with the profile lock
// held until [Profile.Close].
type Profile struct {
	// Name is the profile's name (the directory's base name).
	Name string
	// Dir is the profile directory.
	Dir string
	// Identity is the long-term identity key.
	Identity *Identity
	// Encrypted is false for a profile whose keystore is stored without a
	// passphrase; front ends warn about it.
	Encrypted bool

	dbKey [32]byte
	lock  *os.File
}

// DatabaseKey returns the key that seals the store's secret columns.
func (p *Profile) DatabaseKey() [32]byte { return p.dbKey }

// Close releases the profile lock and zeroes the keys (best effort).
func (p *Profile) Close() error {
	if p.Identity != nil {
		p.Identity.Wipe()
		p.Identity = nil
	}
	clear(p.dbKey[:])
	if p.lock == nil {
		return nil
	}
	err := unlock(p.lock)
	p.lock = nil
	return err
}

// CreateOptions are the choices made when creating a profile.
type CreateOptions struct {
	// Passphrase encrypts the keystore. It must not be empty unless NoPassphrase.
	Passphrase string
	// NoPassphrase stores the keystore unencrypted. Front ends must warn.
	NoPassphrase bool
	// ScryptWorkFactor is log2 of scrypt's N; 0 means [DefaultScryptWorkFactor].
	// Tests lower it to stay fast.
	ScryptWorkFactor int
}

// Create makes a new profile in dir with a fresh identity key and database key,
// and returns it open (locked). It refuses a directory that already holds a
// keystore. Parent directories are created as needed.
func Create(dir string, opts CreateOptions) (*Profile, error) {
	if opts.NoPassphrase && opts.Passphrase != "" {
		return nil, errors.New("identity: a passphrase was given together with the no-passphrase option")
	}
	if !opts.NoPassphrase && opts.Passphrase == "" {
		return nil, errors.New("identity: empty passphrase (an unencrypted keystore needs the explicit no-passphrase option)")
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("identity: %w", err)
	}
	lk, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	p, err := create(dir, lk, opts)
	if err != nil {
		unlock(lk)
		return nil, err
	}
	return p, nil
}

func create(dir string, lk *os.File, opts CreateOptions) (*Profile, error) {
	if Exists(dir) {
		return nil, ErrProfileExists
	}
	ks := &keystore{created: time.Now()}
	defer ks.wipe()
	if _, err := rand.Read(ks.seed[:]); err != nil {
		return nil, fmt.Errorf("identity: random source: %w", err)
	}
	if _, err := rand.Read(ks.dbKey[:]); err != nil {
		return nil, fmt.Errorf("identity: random source: %w", err)
	}
	var data []byte
	name := keystoreFile
	if opts.NoPassphrase {
		data, name = ks.marshal(), plainKeystoreFile
	} else {
		var err error
		if data, err = sealKeystore(ks, opts.Passphrase, opts.ScryptWorkFactor); err != nil {
			return nil, err
		}
	}
	err := writeFileAtomic(dir, name, data, 0o600)
	clear(data)
	if err != nil {
		return nil, err
	}
	return newProfile(dir, lk, ks, !opts.NoPassphrase)
}

// Open opens the existing profile in dir: it takes the profile lock (failing with
// [ErrProfileInUse] if another process holds it) and decrypts the keystore with
// passphrase ([ErrWrongPassphrase] if it does not match). An unencrypted keystore
// needs no passphrase; the returned profile then has Encrypted false. Open never
// writes to the keystore or the database.
func Open(dir, passphrase string) (*Profile, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoProfile
	}
	lk, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	p, err := open(dir, lk, passphrase)
	if err != nil {
		unlock(lk)
		return nil, err
	}
	return p, nil
}

func open(dir string, lk *os.File, passphrase string) (*Profile, error) {
	path, err := keystorePath(dir)
	if err != nil {
		return nil, err
	}
	ks, encrypted, err := readKeystoreFile(path, passphrase)
	if err != nil {
		return nil, err
	}
	defer ks.wipe()
	return newProfile(dir, lk, ks, encrypted)
}

// readKeystoreFile reads and opens keystore.age or keystore.json.
func readKeystoreFile(path, passphrase string) (*keystore, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("identity: keystore: %w", err)
	}
	defer f.Close()
	data := make([]byte, maxKeystoreSize+1)
	n, err := readFull(f, data)
	data = data[:n]
	defer clear(data)
	if err != nil {
		return nil, false, fmt.Errorf("identity: keystore: %w", err)
	}
	if n > maxKeystoreSize {
		return nil, false, ErrCorruptKeystore
	}
	if filepath.Base(path) == plainKeystoreFile {
		ks, err := parseKeystore(data)
		return ks, false, err
	}
	ks, err := openKeystore(data, passphrase)
	return ks, true, err
}

func newProfile(dir string, lk *os.File, ks *keystore, encrypted bool) (*Profile, error) {
	id, err := FromSeed(ks.seed[:])
	if err != nil {
		return nil, err
	}
	return &Profile{
		Name:      filepath.Base(dir),
		Dir:       dir,
		Identity:  id,
		Encrypted: encrypted,
		dbKey:     ks.dbKey,
		lock:      lk,
	}, nil
}

// keystorePath returns the path of the profile's keystore, failing with
// [ErrNoProfile] if there is none and with an error if there are two.
func keystorePath(dir string) (string, error) {
	enc := filepath.Join(dir, keystoreFile)
	plain := filepath.Join(dir, plainKeystoreFile)
	_, errEnc := os.Lstat(enc)
	_, errPlain := os.Lstat(plain)
	switch {
	case errEnc == nil && errPlain == nil:
		return "", fmt.Errorf("identity: profile %s has both %s and %s; remove the one not in use", dir, keystoreFile, plainKeystoreFile)
	case errEnc == nil:
		return enc, nil
	case errPlain == nil:
		return plain, nil
	case errors.Is(errEnc, fs.ErrNotExist) && errors.Is(errPlain, fs.ErrNotExist):
		return "", ErrNoProfile
	case !errors.Is(errEnc, fs.ErrNotExist):
		return "", fmt.Errorf("identity: keystore: %w", errEnc)
	default:
		return "", fmt.Errorf("identity: keystore: %w", errPlain)
	}
}

// lockDir takes the profile lock, creating the lock file if needed.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNoProfile
		}
		return nil, fmt.Errorf("identity: lock file: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, err
	}
	// Record who holds the lock, for a curious user; nothing reads it.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return f, nil
}

func unlock(f *os.File) error {
	// Closing the descriptor releases the flock.
	if err := f.Close(); err != nil {
		return fmt.Errorf("identity: unlock: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to dir/name through a temporary file, fsync and
// rename, then syncs the directory, so a crash leaves either no file or the whole
// file. It refuses to replace an existing file.
func writeFileAtomic(dir, name string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	dst := filepath.Join(dir, name)
	// Link, not rename, so an existing file is never replaced.
	if err := os.Link(tmp, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("identity: %s already exists", dst)
		}
		// A file system without hard links: check, then rename.
		if _, serr := os.Lstat(dst); serr == nil {
			return fmt.Errorf("identity: %s already exists", dst)
		}
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
	}
	ok = true
	os.Remove(tmp)
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("identity: sync %s: %w", dir, err)
	}
	return nil
}

// readFull reads into b until it is full or the reader ends.
func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
	return n, nil
}
