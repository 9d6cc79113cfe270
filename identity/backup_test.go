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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// exportT makes a profile with a fake database file and backs it up.
func exportT(t *testing.T, pass string) (p *Profile, backup []byte, db []byte) {
	t.Helper()
	home := t.TempDir()
	p = newTestProfile(t, filepath.Join(home, "src"), pass)
	t.Cleanup(func() { p.Close() })
	db = bytes.Repeat([]byte("database page "), 1000)
	snap := filepath.Join(home, "snapshot.db")
	if err := os.WriteFile(snap, db, 0o600); err != nil {
		t.Fatal(err)
	}
	bpass := pass
	if bpass == "" {
		bpass = "backup pass"
	}
	var buf bytes.Buffer
	if err := p.ExportBackup(&buf, bpass, snap, testWork); err != nil {
		t.Fatal(err)
	}
	return p, buf.Bytes(), db
}

func TestBackupRoundTrip(t *testing.T) {
	for _, pass := range []string{"profile pass", ""} {
		t.Run(fmt.Sprintf("passphrase=%q", pass), func(t *testing.T) {
			p, backup, db := exportT(t, pass)
			bpass := pass
			if bpass == "" {
				bpass = "backup pass"
			}
			dst := filepath.Join(t.TempDir(), "restored")
			if _, err := ImportBackup(bytes.NewReader(backup), "nope", dst); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("wrong passphrase: %v", err)
			}
			im, err := ImportBackup(bytes.NewReader(backup), bpass, dst)
			if err != nil {
				t.Fatal(err)
			}
			if im.PublicKey != p.Identity.PublicKey() || im.DatabaseKey() != p.DatabaseKey() || im.Encrypted != (pass != "") || im.SourceProfile != "src" {
				t.Fatalf("import %+v", im)
			}
			if _, err := os.Stat(dst); err == nil {
				t.Fatal("destination written before Commit")
			}
			got, err := os.ReadFile(filepath.Join(im.DatabaseDir(), DatabaseFile))
			if err != nil || !bytes.Equal(got, db) {
				t.Fatalf("database not restored: %v", err)
			}
			if err := im.Commit(); err != nil {
				t.Fatal(err)
			}
			q, err := Open(dst, pass)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			if q.Identity.PublicKey() != p.Identity.PublicKey() || q.DatabaseKey() != p.DatabaseKey() {
				t.Error("restored profile has other keys")
			}
			// Nothing but the profile is left in the parent.
			ents, _ := os.ReadDir(filepath.Dir(dst))
			if len(ents) != 1 {
				t.Errorf("left behind: %v", ents)
			}
		})
	}
}

func TestImportRefusesExistingProfile(t *testing.T) {
	_, backup, _ := exportT(t, "pw")
	dst := filepath.Join(t.TempDir(), "taken")
	newTestProfile(t, dst, "other").Close()
	before := files(t, dst)
	if _, err := ImportBackup(bytes.NewReader(backup), "pw", dst); !errors.Is(err, ErrProfileExists) {
		t.Errorf("import over a profile: %v", err)
	}
	sameFiles(t, before, files(t, dst))

	// A profile that appears between ImportBackup and Commit is not replaced.
	dst2 := filepath.Join(t.TempDir(), "late")
	im, err := ImportBackup(bytes.NewReader(backup), "pw", dst2)
	if err != nil {
		t.Fatal(err)
	}
	newTestProfile(t, dst2, "other").Close()
	before = files(t, dst2)
	if err := im.Commit(); !errors.Is(err, ErrProfileExists) {
		t.Errorf("commit over a profile: %v", err)
	}
	sameFiles(t, before, files(t, dst2))
	if ents, _ := os.ReadDir(filepath.Dir(dst2)); len(ents) != 1 {
		t.Errorf("temporary directory left: %v", ents)
	}
}

func TestBackupOpensWithAgeAndTar(t *testing.T) {
	_, backup, db := exportT(t, "pw")
	id, _ := age.NewScryptIdentity("pw")
	r, err := age.Decrypt(bytes.NewReader(backup), id)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(r)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == DatabaseFile {
			b, _ := io.ReadAll(tr)
			if !bytes.Equal(b, db) {
				t.Error("database differs")
			}
		}
	}
	if strings.Join(names, ",") != "manifest.json,keystore.age,tchat.db" {
		t.Errorf("entries %v", names)
	}
}

// archive builds a backup plaintext from entries, for the negative tests.
type entry struct {
	name string
	data []byte
	typ  byte
}

func archive(entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		tw.WriteHeader(&tar.Header{Name: e.name, Size: int64(len(e.data)), Mode: 0o600, Typeflag: typ})
		tw.Write(e.data)
	}
	tw.Close()
	return buf.Bytes()
}

func manifestFor(files ...entry) []byte {
	m := backupManifest{Format: backupFormat, Version: backupVersion, Profile: "p", Created: time.Unix(0, 0).UTC()}
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		m.Files = append(m.Files, backupFile{Name: f.name, Size: int64(len(f.data)), SHA256: hex.EncodeToString(sum[:])})
	}
	b, _ := json.Marshal(m)
	return b
}

func TestReadBackupArchiveRefusesBadArchives(t *testing.T) {
	ks := entry{name: keystoreFile, data: []byte("keystore bytes")}
	db := entry{name: DatabaseFile, data: []byte("db bytes")}
	man := entry{name: manifestName, data: manifestFor(ks, db)}
	if _, err := readBackupArchive(bytes.NewReader(archive(man, ks, db)), t.TempDir()); err != nil {
		t.Fatalf("good archive: %v", err)
	}
	bad := map[string][]byte{
		"empty":               nil,
		"no manifest first":   archive(ks, man, db),
		"missing file":        archive(man, ks),
		"extra file":          archive(man, ks, db, entry{name: "evil", data: []byte("x")}),
		"duplicate":           archive(man, ks, ks),
		"tampered db":         archive(man, ks, entry{name: DatabaseFile, data: []byte("db bytez")}),
		"size mismatch":       archive(man, ks, entry{name: DatabaseFile, data: []byte("db")}),
		"symlink":             archive(man, ks, entry{name: DatabaseFile, typ: tar.TypeSymlink}),
		"path traversal":      archive(entry{name: manifestName, data: manifestFor(ks, entry{name: "../x", data: db.data})}, ks, entry{name: "../x", data: db.data}),
		"two keystores":       archive(entry{name: manifestName, data: manifestFor(ks, entry{name: plainKeystoreFile, data: ks.data})}, ks, entry{name: plainKeystoreFile, data: ks.data}),
		"bad manifest":        archive(entry{name: manifestName, data: []byte("{")}, ks, db),
		"unknown field":       archive(entry{name: manifestName, data: bytes.Replace(man.data, []byte(`"format"`), []byte(`"x":1,"format"`), 1)}, ks, db),
		"newer version":       archive(entry{name: manifestName, data: bytes.Replace(man.data, []byte(`"version":1`), []byte(`"version":2`), 1)}, ks, db),
		"trailing junk":       append(archive(man, ks, db), bytes.Repeat([]byte{1}, 2<<20)...),
		"truncated":           archive(man, ks, db)[:1500],
		"manifest not a file": archive(entry{name: manifestName, typ: tar.TypeDir}, ks, db),
	}
	for name, b := range bad {
		dir := t.TempDir()
		if _, err := readBackupArchive(bytes.NewReader(b), dir); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "identity: ") {
			t.Errorf("%s: %v", name, err)
		}
		// Nothing is written outside dir.
		if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "x")); err == nil {
			t.Errorf("%s: wrote outside the directory", name)
		}
	}
}
