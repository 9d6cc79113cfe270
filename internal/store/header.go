package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// sqliteHeaderSize is the size of the database header at the start of page 1
// (https://www.sqlite.org/fileformat.html, section 1.3).
const sqliteHeaderSize = 100

var sqliteMagic = []byte("SQLite format 3\x00")

// checkDatabaseFile looks at the database file before SQLite does, so that a file
// that is not a database, or is visibly truncated, is reported as such and never
// touched (SQLite would otherwise be asked to set WAL mode on it, or to recover
// it). It returns false if the file does not exist or is empty (a new database).
func checkDatabaseFile(path string) (bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	if !st.Mode().IsRegular() {
		return false, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, path)
	}
	if st.Size() == 0 {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	hdr := make([]byte, sqliteHeaderSize)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false, fmt.Errorf("store: %w", err)
	}
	return true, checkHeader(hdr[:n], st.Size(), walInUse(path))
}

// walInUse reports whether the database has a write-ahead log with frames in it,
// in which case the main file may legitimately lag behind its own header (a
// checkpoint cut short by a crash is finished from the log on the next open).
func walInUse(path string) bool {
	st, err := os.Stat(path + "-wal")
	return err == nil && st.Size() > 32 // 32 bytes: the WAL header alone
}

// checkHeader checks an SQLite database header against the file's size.
func checkHeader(hdr []byte, size int64, wal bool) error {
	if len(hdr) < len(sqliteMagic) || !bytes.Equal(hdr[:len(sqliteMagic)], sqliteMagic) {
		return fmt.Errorf("%w: not an SQLite database (bad header)", ErrCorrupt)
	}
	if len(hdr) < sqliteHeaderSize || size < sqliteHeaderSize {
		return fmt.Errorf("%w: the file is truncated", ErrCorrupt)
	}
	pageSize := int64(binary.BigEndian.Uint16(hdr[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("%w: bad page size in the header", ErrCorrupt)
	}
	if size%pageSize != 0 {
		return fmt.Errorf("%w: the file is truncated (%d bytes is not a whole number of %d-byte pages)", ErrCorrupt, size, pageSize)
	}
	changeCounter := binary.BigEndian.Uint32(hdr[24:28])
	pages := int64(binary.BigEndian.Uint32(hdr[28:32]))
	validFor := binary.BigEndian.Uint32(hdr[92:96])
	// The page count in the header is valid only when the two counters agree.
	if !wal && pages > 0 && changeCounter == validFor && size < pages*pageSize {
		return fmt.Errorf("%w: the file is truncated (%d of %d pages)", ErrCorrupt, size/pageSize, pages)
	}
	return nil
}
