// Package store is tchat's persistence: one SQLite database per profile
// (modernc.org/sqlite, pure Go) holding MLS group states, layer sessions, message
// history, the outbox of messages not yet final, known peers and their
// addresses, verified flags, issued invites, and each group's wire log (the
// recent messages as sent on the wire, to answer sync requests).
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: every commit syncs the log
// before it returns. WAL's default (NORMAL) survives a process crash but may lose
// the last commits on power loss or an OS crash, and losing a commit here is not
// harmless: a ratchet step or a secret-tree generation that was used to send a
// message, then rolled back, would be used again for the next message (key and
// nonce reuse). The rule for callers is: commit the state change first, with
// [Store.Update], then let the message leave; a state change and the message that
// depends on it go in the same transaction. Batching many changes in one
// transaction amortizes the sync. Writes that can be had again if lost (received
// messages) may skip the sync with [Store.UpdateUnsynced].
//
// # Secrets
//
// Secret columns (group states, sessions, message contents, outbox payloads,
// invite tokens, verified flags) are sealed with the 32-byte database key, which
// lives in the profile's age keystore; see seal.go for the format. Identifiers,
// timestamps, epochs and flags are stored in the clear so they can be indexed.
// The wire log holds messages as they were sent, already encrypted under the
// group's layers, so they are not sealed again.
// The sealing key derived from the database key is zeroed once the cipher holds
// it; plaintexts passed in and returned belong to the caller. Zeroing in Go is a
// best effort only (the runtime may copy memory behind our back).
//
// # Safety checks
//
// [Open] refuses, without writing anything: a file that is not an SQLite
// database or is truncated ([ErrCorrupt]), a database from a newer tchat
// ([ErrNewerSchema]), and a database key that does not match ([ErrWrongKey]).
// [Store.Check] runs SQLite's integrity check. Only one process may have a profile
// open; that lock is taken by package identity, on the profile directory.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the name of the database file in the store's directory.
const FileName = "tchat.db"

var (
	// ErrNotFound is returned when a requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrCorrupt is returned for a database file that is damaged or not a database.
	ErrCorrupt = errors.New("store: database is corrupt")
	// ErrNewerSchema is returned for a database written by a newer tchat.
	ErrNewerSchema = errors.New("store: database was written by a newer tchat")
	// ErrWrongKey is returned when the database key does not open the database.
	ErrWrongKey = errors.New("store: the database key does not match this database")
	// ErrNotTchat is returned for an SQLite database that is not tchat's.
	ErrNotTchat = errors.New("store: not a tchat database")
	// ErrClosed is returned after [Store.Close].
	ErrClosed = errors.New("store: closed")
	// ErrReadOnly is returned by a write inside [Store.View].
	ErrReadOnly = errors.New("store: write in a read-only transaction")
)

const keyCheckValue = "tchat store key check"

// Store is an open database. It is safe for concurrent use: writes are serialized
// on one connection, reads run on a small pool of their own and see the last
// committed state.
type Store struct {
	path   string
	w      *sql.DB // one connection, BEGIN IMMEDIATE transactions
	r      *sql.DB // read-only pool
	seal   *sealer
	closed atomic.Bool
	// hot holds the statements every message writes, prepared once on the
	// writer (see hotQueries).
	hot map[string]*sql.Stmt
}

// Open opens the database in dir (file [FileName]), creating dir and the
// database if they do not exist, and migrating an older schema. dbKey seals the
// secret columns and must be the key the database was created with.
func Open(dir string, dbKey [32]byte) (*Store, error) {
	return open(context.Background(), dir, dbKey)
}

func open(ctx context.Context, dir string, dbKey [32]byte) (_ *Store, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	exists, err := checkDatabaseFile(path)
	if err != nil {
		return nil, err
	}
	if !exists {
		// Create the file private to the user; SQLite gives its -wal and -shm
		// files the same mode. An empty file is a new database to SQLite.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		f.Close()
	}
	sl, err := newSealer(dbKey)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, seal: sl}
	s.w, err = sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	defer func() {
		if err != nil {
			s.w.Close()
			if s.r != nil {
				s.r.Close()
			}
		}
	}()
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	s.prepareHot(ctx)
	s.r, err = sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	return s, nil
}

// dsn builds the connection string. Every connection gets busy_timeout,
// synchronous=FULL (see the package documentation), foreign keys, untrusted
// schema and cell size checks (to notice corruption early); readers also get
// query_only. journal_mode is set once by prepare, after the checks.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "trusted_schema(0)")
	q.Add("_pragma", "cell_size_check(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// prepare checks the database and brings its schema up to date. Nothing is
// written before the checks pass.
func (s *Store) prepare(ctx context.Context) error {
	var appID int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return dbError("read header", err)
	}
	var tables []string
	rows, err := s.w.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		return dbError("read schema", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return dbError("read schema", err)
		}
		tables = append(tables, n)
	}
	if err := rows.Close(); err != nil {
		return dbError("read schema", err)
	}
	if err := rows.Err(); err != nil {
		return dbError("read schema", err)
	}

	version := 0
	switch {
	case len(tables) == 0 && (appID == 0 || appID == applicationID):
		// A new database (or one whose creation was cut short before the first
		// migration committed): build it.
	case appID != applicationID:
		return ErrNotTchat
	default:
		if err := s.w.QueryRowContext(ctx, "SELECT version FROM schema_version WHERE id = 1").Scan(&version); err != nil {
			if strings.Contains(err.Error(), "no such table") || errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: no schema version", ErrCorrupt)
			}
			return dbError("read schema version", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("%w (schema version %d; this build reads up to %d): upgrade tchat", ErrNewerSchema, version, len(migrations))
		}
		if version < 1 {
			return fmt.Errorf("%w: bad schema version %d", ErrCorrupt, version)
		}
	}

	// Existing databases must prove the key before anything is written.
	if version > 0 {
		if err := s.checkKey(ctx); err != nil {
			return err
		}
	}

	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return dbError("set WAL mode", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("store: the database refused WAL mode (journal mode %q)", mode)
	}
	if version == len(migrations) {
		return nil
	}
	return s.migrate(ctx, version)
}

// migrate runs the migrations from version on, in one transaction.
func (s *Store) migrate(ctx context.Context, from int) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbError("begin migration", err)
	}
	defer tx.Rollback()
	for v := from; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return dbError(fmt.Sprintf("migrate to schema %d", v+1), err)
		}
	}
	if from == 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return dbError("set application id", err)
		}
		kc, err := s.seal.seal([]byte(keyCheckValue), aad("meta", "value", []byte("key_check")))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('key_check', ?)", kc); err != nil {
			return dbError("write key check", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_version (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version", len(migrations)); err != nil {
		return dbError("record schema version", err)
	}
	if err := tx.Commit(); err != nil {
		return dbError("commit migration", err)
	}
	return nil
}

func (s *Store) checkKey(ctx context.Context) error {
	var kc []byte
	err := s.w.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'key_check'").Scan(&kc)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: no key check", ErrCorrupt)
	}
	if err != nil {
		return dbError("read key check", err)
	}
	pt, err := s.seal.open(kc, aad("meta", "value", []byte("key_check")))
	if err != nil || string(pt) != keyCheckValue {
		return ErrWrongKey
	}
	return nil
}

// Close closes the database. The last connection to close checkpoints the WAL
// into the main file.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	errR := s.r.Close()
	for _, st := range s.hot {
		st.Close()
	}
	errW := s.w.Close()
	if err := errors.Join(errR, errW); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Path returns the path of the database file.
func (s *Store) Path() string { return s.path }

// Check runs SQLite's full integrity check and returns [ErrCorrupt] with its
// first findings if the database is damaged.
func (s *Store) Check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	rows, err := s.r.QueryContext(ctx, "PRAGMA integrity_check(20)")
	if err != nil {
		return dbError("integrity check", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return dbError("integrity check", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return dbError("integrity check", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

// Snapshot writes a consistent copy of the database to the file path, which must
// not exist (SQLite's VACUUM INTO). The copy has the same sealed columns, so it is
// as safe as the database itself; it is meant for backups.
func (s *Store) Snapshot(ctx context.Context, path string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("store: snapshot: %s already exists", path)
	}
	if _, err := s.w.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return dbError("snapshot", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	return nil
}

// Tx is a transaction, given to the function passed to [Store.Update] or
// [Store.View]. It must not be used after that function returns.
type Tx struct {
	s     *Store
	tx    *sql.Tx
	ctx   context.Context
	write bool
}

// Update runs fn in one write transaction (BEGIN IMMEDIATE) and commits it if fn
// returns nil; it rolls back if fn returns an error or panics. Everything fn
// writes is durable once Update returns nil, and nothing of it is if Update
// fails. Writes are serialized: one Update runs at a time.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	return s.run(ctx, s.w, true, fn)
}

// UpdateUnsynced is [Store.Update] for writes whose loss in a power failure or an
// OS crash is harmless because they can be had again, such as received messages a
// member can fetch from its group again: the commit is not synced to disk before
// UpdateUnsynced returns (synchronous=NORMAL for this transaction only). It survives
// a crash of the process, the database stays consistent in every case, and the
// writes become durable with the next synced commit or checkpoint. Never use it for
// a state change a message that leaves depends on (see Durability).
func (s *Store) UpdateUnsynced(ctx context.Context, fn func(tx *Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	conn, err := s.w.Conn(ctx) // the one writer connection
	if err != nil {
		return dbError("begin", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
		return dbError("begin", err)
	}
	defer func() {
		if _, err := conn.ExecContext(context.Background(), "PRAGMA synchronous = FULL"); err != nil {
			// The connection must not serve another transaction unsynced: drop it
			// (a new one gets synchronous=FULL from the DSN).
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return s.run(ctx, conn, true, fn)
}

// View runs fn in a read-only transaction, which sees one consistent state.
func (s *Store) View(ctx context.Context, fn func(tx *Tx) error) error {
	return s.run(ctx, s.r, false, fn)
}

// beginner is a *sql.DB or a *sql.Conn.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

func (s *Store) run(ctx context.Context, db beginner, write bool, fn func(*Tx) error) (err error) {
	if s.closed.Load() {
		return ErrClosed
	}
	opts := &sql.TxOptions{ReadOnly: !write}
	if write {
		opts = nil
	}
	sqlTx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return dbError("begin", err)
	}
	committed := false
	defer func() {
		if !committed {
			sqlTx.Rollback()
		}
	}()
	if err := fn(&Tx{s: s, tx: sqlTx, ctx: ctx, write: write}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return dbError("commit", err)
	}
	committed = true
	return nil
}

func (tx *Tx) mustWrite() error {
	if !tx.write {
		return ErrReadOnly
	}
	return nil
}

func (tx *Tx) exec(what, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	var err error
	if st := tx.stmt(query); st != nil {
		res, err = st.ExecContext(tx.ctx, args...)
	} else {
		res, err = tx.tx.ExecContext(tx.ctx, query, args...)
	}
	if err != nil {
		return nil, dbError(what, err)
	}
	return res, nil
}

// hotQueries are the statements written for every message received or sent.
// Preparing one costs SQLite about as much as running it, so they are prepared
// once, when the store opens, and reused by every write transaction.
var hotQueries = []string{
	insertMessage, insertWire, saveGroupState, saveSession,
}

// prepareHot prepares hotQueries on the writer. It runs before any
// transaction: preparing on the writer's one connection while a transaction
// holds it would wait forever. A query that does not prepare (a schema older
// than this build's, in tests) is left out and run as it comes, where its error
// is reported.
func (s *Store) prepareHot(ctx context.Context) {
	s.hot = make(map[string]*sql.Stmt, len(hotQueries))
	for _, q := range hotQueries {
		if st, err := s.w.PrepareContext(ctx, q); err == nil {
			s.hot[q] = st
		}
	}
}

// prepared returns query prepared for this write transaction: the statement of
// hotQueries, or one prepared now. Either is closed with the transaction.
func (tx *Tx) prepared(what, query string) (*sql.Stmt, error) {
	if st := tx.stmt(query); st != nil {
		return st, nil
	}
	st, err := tx.tx.PrepareContext(tx.ctx, query)
	if err != nil {
		return nil, dbError(what, err)
	}
	return st, nil
}

// stmt returns query prepared for this write transaction if it is one of
// hotQueries (the statement prepared on the writer, reused), else nil.
func (tx *Tx) stmt(query string) *sql.Stmt {
	if !tx.write {
		return nil
	}
	st, ok := tx.s.hot[query]
	if !ok {
		return nil
	}
	return tx.tx.StmtContext(tx.ctx, st)
}

// view and update are the one-transaction helpers behind the Store methods.
func view[T any](ctx context.Context, s *Store, fn func(*Tx) (T, error)) (T, error) {
	var out T
	err := s.View(ctx, func(tx *Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}

func update[T any](ctx context.Context, s *Store, fn func(*Tx) (T, error)) (T, error) {
	var out T
	err := s.Update(ctx, func(tx *Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}

// dbError wraps an SQLite error, mapping corruption to [ErrCorrupt]. SQLite's
// messages name tables and constraints, never bound values, so no secret leaks.
func dbError(what string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w (%s: %v)", ErrCorrupt, what, err)
		}
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// Times are stored as Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// epochValue checks that an epoch fits SQLite's signed 64-bit integers.
func epochValue(e uint64) (int64, error) {
	if e > 1<<63-1 {
		return 0, fmt.Errorf("store: epoch %d out of range", e)
	}
	return int64(e), nil
}
