package identity

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The backup format is described in the package documentation.
const (
	backupFormat      = "tchat-backup"
	backupVersion     = 1
	manifestName      = "manifest.json"
	maxManifestSize   = 64 << 10
	maxBackupTrailing = 1 << 20
)

type backupManifest struct {
	Format  string       `json:"format"`
	Version int          `json:"version"`
	Profile string       `json:"profile"`
	Created time.Time    `json:"created"`
	Files   []backupFile `json:"files"`
}

type backupFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ExportBackup writes an age-encrypted backup of the profile to w: its keystore
// file as stored and the database snapshot in the file dbSnapshot (made by the
// store while the profile is open). For an encrypted profile, passphrase must be
// the profile's own, so that the backup opens with one passphrase; for a profile
// without one it is the passphrase of the backup. workFactor is the scrypt work
// factor (0 for [DefaultScryptWorkFactor]).
func (p *Profile) ExportBackup(w io.Writer, passphrase, dbSnapshot string, workFactor int) error {
	ksPath, err := keystorePath(p.Dir)
	if err != nil {
		return err
	}
	ks, err := os.ReadFile(ksPath)
	if err != nil {
		return fmt.Errorf("identity: backup: %w", err)
	}
	defer clear(ks)
	db, err := os.Open(dbSnapshot)
	if err != nil {
		return fmt.Errorf("identity: backup: %w", err)
	}
	defer db.Close()
	dbSum, dbSize, err := hashFile(db)
	if err != nil {
		return fmt.Errorf("identity: backup: %w", err)
	}
	ksSum := sha256.Sum256(ks)
	m := backupManifest{
		Format:  backupFormat,
		Version: backupVersion,
		Profile: p.Name,
		Created: time.Now().UTC().Truncate(time.Second),
		Files: []backupFile{
			{Name: filepath.Base(ksPath), Size: int64(len(ks)), SHA256: hex.EncodeToString(ksSum[:])},
			{Name: DatabaseFile, Size: dbSize, SHA256: hex.EncodeToString(dbSum)},
		},
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("identity: backup: %w", err)
	}
	return ageEncrypt(w, passphrase, workFactor, func(aw io.Writer) error {
		tw := tar.NewWriter(aw)
		mod := m.Created
		put := func(name string, size int64, r io.Reader) error {
			hdr := &tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: mod, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			n, err := io.Copy(tw, r)
			if err == nil && n != size {
				err = fmt.Errorf("%s changed while being backed up", name)
			}
			return err
		}
		if err := put(manifestName, int64(len(mj)), bytes.NewReader(mj)); err != nil {
			return fmt.Errorf("identity: backup: %w", err)
		}
		if err := put(m.Files[0].Name, m.Files[0].Size, bytes.NewReader(ks)); err != nil {
			return fmt.Errorf("identity: backup: %w", err)
		}
		if _, err := db.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("identity: backup: %w", err)
		}
		if err := put(DatabaseFile, dbSize, db); err != nil {
			return fmt.Errorf("identity: backup: %w", err)
		}
		if err := tw.Close(); err != nil {
			return fmt.Errorf("identity: backup: %w", err)
		}
		return nil
	})
}

func hashFile(f *os.File) ([]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, f)
	return h.Sum(nil), n, err
}

// Import is a backup unpacked into a temporary directory beside its destination,
// not yet a profile. The caller checks the database (DatabaseDir, DatabaseKey),
// then calls Commit to make it the profile, or Abort.
type Import struct {
	// PublicKey is the identity key of the imported profile.
	PublicKey PublicKey
	// Encrypted is false when the backed-up keystore has no passphrase.
	Encrypted bool
	// SourceProfile is the name the profile had when it was exported.
	SourceProfile string
	// Created is when the backup was made.
	Created time.Time

	tmp, dst string
	dbKey    [32]byte
}

// ImportBackup decrypts the backup read from r with passphrase and unpacks it
// beside dir, which must not exist yet (or be empty): [ErrProfileExists] otherwise.
// Nothing is written to dir until [Import.Commit].
func ImportBackup(r io.Reader, passphrase, dir string) (*Import, error) {
	if err := checkNewProfileDir(dir); err != nil {
		return nil, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	// A leading dot keeps the temporary directory from being taken for a profile.
	tmp, err := os.MkdirTemp(parent, ".import-*")
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	imp, err := importInto(r, passphrase, tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	imp.tmp, imp.dst = tmp, dir
	return imp, nil
}

func importInto(r io.Reader, passphrase, tmp string) (*Import, error) {
	pr, err := ageDecrypt(r, passphrase)
	if err != nil {
		return nil, err
	}
	m, err := readBackupArchive(pr, tmp)
	if err != nil {
		return nil, err
	}
	ksPath, err := keystorePath(tmp)
	if err != nil {
		return nil, err
	}
	ks, encrypted, err := readKeystoreFile(ksPath, passphrase)
	if errors.Is(err, ErrWrongPassphrase) {
		return nil, errors.New("identity: the keystore in the backup does not open with the backup's passphrase")
	}
	if err != nil {
		return nil, err
	}
	defer ks.wipe()
	id, err := FromSeed(ks.seed[:])
	if err != nil {
		return nil, err
	}
	defer id.Wipe()
	return &Import{
		PublicKey:     id.PublicKey(),
		Encrypted:     encrypted,
		SourceProfile: m.Profile,
		Created:       m.Created,
		dbKey:         ks.dbKey,
	}, nil
}

// DatabaseDir is the temporary directory holding the unpacked database file
// ([DatabaseFile]), for the caller to open and check before [Import.Commit].
func (im *Import) DatabaseDir() string { return im.tmp }

// DatabaseKey is the database key from the backed-up keystore.
func (im *Import) DatabaseKey() [32]byte { return im.dbKey }

// Commit moves the unpacked profile to its destination. It fails with
// [ErrProfileExists] if a profile appeared there meanwhile, and then removes the
// temporary directory.
func (im *Import) Commit() error {
	defer clear(im.dbKey[:])
	if err := checkNewProfileDir(im.dst); err != nil {
		im.Abort()
		return err
	}
	if err := syncDir(im.tmp); err != nil {
		im.Abort()
		return err
	}
	// rename(2) replaces an empty directory and fails on a non-empty one.
	if err := os.Rename(im.tmp, im.dst); err != nil {
		im.Abort()
		if checkNewProfileDir(im.dst) == ErrProfileExists {
			return ErrProfileExists
		}
		return fmt.Errorf("identity: %w", err)
	}
	return syncDir(filepath.Dir(im.dst))
}

// Abort removes the unpacked files.
func (im *Import) Abort() {
	clear(im.dbKey[:])
	if im.tmp != "" {
		os.RemoveAll(im.tmp)
	}
}

// checkNewProfileDir fails unless dir is absent or an empty directory.
func checkNewProfileDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("identity: %w", err)
	case len(ents) > 0:
		return ErrProfileExists
	}
	return nil
}

var errBadBackup = errors.New("identity: not a valid tchat backup")

func badBackup(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadBackup}, args...)...)
}

// readBackupArchive reads the tar plaintext of a backup from r and writes its
// files into the empty directory dir. It checks everything listed in the format
// description above and reads r to its end (so that age authenticates all of it).
func readBackupArchive(r io.Reader, dir string) (*backupManifest, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, badBackup("no manifest")
	}
	if hdr.Name != manifestName || hdr.Typeflag != tar.TypeReg || hdr.Size <= 0 || hdr.Size > maxManifestSize {
		return nil, badBackup("the first entry is not the manifest")
	}
	mb, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
	if err != nil || int64(len(mb)) != hdr.Size {
		return nil, badBackup("truncated manifest")
	}
	m, err := parseManifest(mb)
	if err != nil {
		return nil, err
	}
	want := make(map[string]backupFile, len(m.Files))
	for _, f := range m.Files {
		want[f.Name] = f
	}
	for range m.Files {
		hdr, err := tr.Next()
		if err != nil {
			return nil, badBackup("missing files")
		}
		f, ok := want[hdr.Name]
		if !ok {
			return nil, badBackup("unexpected or repeated entry %q", hdr.Name)
		}
		delete(want, hdr.Name)
		if hdr.Typeflag != tar.TypeReg || hdr.Size != f.Size {
			return nil, badBackup("entry %q differs from the manifest", hdr.Name)
		}
		if err := extractFile(tr, filepath.Join(dir, f.Name), f); err != nil {
			return nil, err
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		return nil, badBackup("data after the last file")
	}
	// Read to the end: age authenticates the last chunk only when it is reached.
	n, err := io.Copy(io.Discard, io.LimitReader(r, maxBackupTrailing+1))
	if err != nil {
		return nil, fmt.Errorf("identity: backup: %v", err)
	}
	if n > maxBackupTrailing {
		return nil, badBackup("data after the archive")
	}
	return m, nil
}

func parseManifest(b []byte) (*backupManifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m backupManifest
	if err := dec.Decode(&m); err != nil {
		return nil, badBackup("unreadable manifest")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badBackup("unreadable manifest")
	}
	if m.Format != backupFormat {
		return nil, badBackup("unknown format %q", m.Format)
	}
	if m.Version != backupVersion {
		return nil, fmt.Errorf("identity: backup version %d is not supported by this tchat (it reads version %d)", m.Version, backupVersion)
	}
	if len(m.Files) != 2 {
		return nil, badBackup("the manifest lists %d files, want 2", len(m.Files))
	}
	keystores, dbs := 0, 0
	for _, f := range m.Files {
		switch f.Name {
		case keystoreFile, plainKeystoreFile:
			keystores++
			if f.Size <= 0 || f.Size > maxKeystoreSize {
				return nil, badBackup("bad keystore size")
			}
		case DatabaseFile:
			dbs++
			if f.Size < 0 {
				return nil, badBackup("bad database size")
			}
		default:
			return nil, badBackup("unexpected file %q", f.Name)
		}
		if d, err := hex.DecodeString(f.SHA256); err != nil || len(d) != sha256.Size {
			return nil, badBackup("bad digest for %q", f.Name)
		}
	}
	if keystores != 1 || dbs != 1 {
		return nil, badBackup("the manifest must list one keystore and one database")
	}
	return &m, nil
}

// extractFile copies exactly f.Size bytes from r to a new file at path and checks
// the digest.
func extractFile(r io.Reader, path string, f backupFile) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(r, f.Size))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if n != f.Size {
		return badBackup("truncated entry %q", f.Name)
	}
	if !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), f.SHA256) {
		return badBackup("entry %q does not match its digest", f.Name)
	}
	return nil
}
