package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// benchContent is a typical chat line.
var benchContent = []byte("a typical chat message of about a hundred and twenty bytes, with some words in it, sealed at rest like every other one.")

func benchMessages(group string, from, n int) []Message {
	ms := make([]Message, n)
	now := time.Now()
	for i := range ms {
		id := from + i
		ms[i] = Message{
			GroupID: []byte(group),
			MsgID:   binary.BigEndian.AppendUint64(nil, uint64(id)),
			Epoch:   uint64(id / 1000),
			Sender:  []byte("12D3KooWBenchSenderPeerIdentifierXXXXXXXXXXXXXXX"),
			SentAt:  now,
			Content: benchContent,
		}
	}
	return ms
}

// BenchmarkAppendMessages appends sealed messages in transactions of 500 (each
// commit synced, synchronous=FULL) and reports messages per second.
func BenchmarkAppendMessages(b *testing.B) {
	for _, batch := range []int{100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openT(b, b.TempDir(), testKey(1))
			b.ResetTimer()
			n := 0
			for b.Loop() {
				if _, err := s.AppendMessages(ctx, benchMessages("g", n, batch)); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msg/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

var (
	bigStoreOnce sync.Once
	bigStoreDir  string
	bigStoreErr  error
)

// bigStore builds, once per test binary, a store holding 100,000 messages: 90,000
// in the group read by the benchmark and 10,000 spread over nine others.
func bigStore() (string, error) {
	bigStoreOnce.Do(func() {
		bigStoreDir, bigStoreErr = os.MkdirTemp("", "tchat-bench-*")
		if bigStoreErr != nil {
			return
		}
		s, err := Open(bigStoreDir, testKey(1))
		if err != nil {
			bigStoreErr = err
			return
		}
		defer s.Close()
		for i := 0; i < 100_000; i += 1000 {
			g := "main"
			if i >= 90_000 {
				g = fmt.Sprintf("other-%d", i/1000%9)
			}
			if _, err := s.AppendMessages(ctx, benchMessages(g, i, 1000)); err != nil {
				bigStoreErr = err
				return
			}
		}
		// The group read last must be the one with the newest messages.
		if _, err := s.AppendMessages(ctx, benchMessages("main", 100_000, 50)); err != nil {
			bigStoreErr = err
		}
	})
	return bigStoreDir, bigStoreErr
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigStoreDir != "" {
		os.RemoveAll(bigStoreDir)
	}
	os.Exit(code)
}

// BenchmarkOpenAndNewestPage opens a store of 100,000 messages and reads the
// newest page of 50, then closes it: what showing a conversation at start costs
// (the keystore's scrypt is not included; see package identity).
func BenchmarkOpenAndNewestPage(b *testing.B) {
	dir, err := bigStore()
	if err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, FileName))
	b.ResetTimer()
	for b.Loop() {
		s, err := Open(dir, testKey(1))
		if err != nil {
			b.Fatal(err)
		}
		page, _, err := s.History(ctx, []byte("main"), 0, 50)
		if err != nil || len(page) != 50 {
			b.Fatalf("%d messages, %v", len(page), err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Size())/(1<<20), "MiB-db")
}

// BenchmarkSaveReceived saves what a member writes for each message it receives
// in a busy group: the message and its wire frame, one of each per unsynced
// transaction (UpdateUnsynced), as the chat core does when messages come one at a
// time.
func BenchmarkSaveReceived(b *testing.B) {
	s := openT(b, b.TempDir(), testKey(1))
	frame := make([]byte, 1100)
	n := 0
	for b.Loop() {
		msgs := benchMessages("g", n, 1)
		err := s.UpdateUnsynced(ctx, func(tx *Tx) error {
			if err := tx.AppendWire([]byte("g"), []WireItem{{Epoch: msgs[0].Epoch, Kind: WireMessage, Data: frame}}); err != nil {
				return err
			}
			_, err := tx.AppendMessages(msgs)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
}
