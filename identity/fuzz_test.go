package identity

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParseKeystore feeds arbitrary plaintexts to the keystore parser: no panic,
// and what it accepts has keys of the right size and re-encodes to itself.
func FuzzParseKeystore(f *testing.F) {
	f.Add((&keystore{seed: [32]byte{1}, dbKey: [32]byte{2}, created: time.Unix(1e9, 0)}).marshal())
	f.Add([]byte(`{"format":"tchat-keystore","version":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := parseKeystore(b)
		if err != nil {
			return
		}
		again, err := parseKeystore(ks.marshal())
		if err != nil || again.seed != ks.seed || again.dbKey != ks.dbKey {
			t.Fatalf("accepted keystore does not round-trip: %v", err)
		}
	})
}

// FuzzReadBackupArchive feeds arbitrary archives (the plaintext inside the age
// layer) to the backup reader: no panic, nothing written outside the target
// directory, and only the listed files inside it.
func FuzzReadBackupArchive(f *testing.F) {
	ks := entry{name: keystoreFile, data: []byte("keystore bytes")}
	db := entry{name: DatabaseFile, data: []byte("db bytes")}
	man := entry{name: manifestName, data: manifestFor(ks, db)}
	f.Add(archive(man, ks, db))
	f.Add(archive(man, ks))
	f.Add(archive(entry{name: manifestName, data: manifestFor(ks, entry{name: "../x", data: db.data})}, ks))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "in")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := readBackupArchive(bytes.NewReader(b), dir)
		if ents, _ := os.ReadDir(parent); len(ents) != 1 {
			t.Fatalf("wrote outside the directory: %v", ents)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			switch e.Name() {
			case keystoreFile, plainKeystoreFile, DatabaseFile:
			default:
				t.Fatalf("wrote %q", e.Name())
			}
		}
		if err == nil && len(ents) != 2 {
			t.Fatalf("accepted with %d files", len(ents))
		}
	})
}

// FuzzAgeHeaderCheck feeds arbitrary files to the check that runs before age
// decrypts a keystore or backup: no panic, and only files with exactly one scrypt
// stanza get through.
func FuzzAgeHeaderCheck(f *testing.F) {
	f.Add([]byte("age-encryption.org/v1\n-> scrypt c2FsdA 10\nYm9keQ\n--- mac\n"))
	f.Add([]byte("age-encryption.org/v1\n-> X25519 abc\nYm9keQ\n--- mac\n"))
	f.Add([]byte("-----BEGIN AGE ENCRYPTED FILE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkScryptHeader(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && bytes.Count(b, []byte("\n-> scrypt ")) == 0 {
			t.Fatal("accepted a file without an scrypt stanza")
		}
	})
}
