package store

import (
	"bytes"
	"testing"
)

// FuzzOpenSealed feeds arbitrary bytes to the sealed-value parser: it must never
// panic, and must open only what it sealed.
func FuzzOpenSealed(f *testing.F) {
	sl, err := newSealer(testKey(3))
	if err != nil {
		f.Fatal(err)
	}
	ad := aad("messages", "content", []byte("g"), []byte("m"))
	good, err := sl.seal([]byte("hello"), ad)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{sealVersion})
	f.Add(bytes.Repeat([]byte{sealVersion}, sealOverhead))
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := sl.open(b, ad)
		// Only seals of "hello" under this key and AD exist (each fuzz worker
		// makes its own, with its own nonce).
		if err == nil && string(pt) != "hello" {
			t.Fatalf("opened a value that was never sealed: %x", b)
		}
		if err != nil && err != errOpen {
			t.Fatalf("error other than errOpen: %v", err)
		}
	})
}

// FuzzCheckHeader feeds arbitrary headers and sizes to the database file check.
func FuzzCheckHeader(f *testing.F) {
	hdr := make([]byte, sqliteHeaderSize)
	copy(hdr, sqliteMagic)
	hdr[16], hdr[17] = 0x10, 0x00 // 4096-byte pages
	hdr[31] = 2                   // two pages
	f.Add(hdr, int64(8192), false)
	f.Add(hdr[:20], int64(20), true)
	f.Add([]byte("not a database"), int64(14), false)
	f.Fuzz(func(t *testing.T, h []byte, size int64, wal bool) {
		err := checkHeader(h, size, wal)
		if err == nil && (len(h) < sqliteHeaderSize || !bytes.HasPrefix(h, sqliteMagic)) {
			t.Fatalf("accepted a short or foreign header")
		}
	})
}
