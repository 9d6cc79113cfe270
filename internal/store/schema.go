package store

// SchemaVersion is the schema version this build writes: len(migrations). A
// database with a higher version is refused with [ErrNewerSchema] and left
// untouched.
const SchemaVersion = 3

// applicationID marks the database file as tchat's (PRAGMA application_id,
// "tcht" in ASCII), so that `file` and sqlite3 tell it apart from other databases.
const applicationID = 0x74636874

// migrations[i] takes the schema from version i to version i+1, in the same
// transaction that records the new version. A migration is never edited once
// released; changes come as new entries.
//
// Columns marked "sealed" hold values sealed with the database key (seal.go).
// Times are Unix nanoseconds (0 for none). Identifiers (group ids, message ids,
// peer ids, invite ids) are opaque bytes chosen by the callers.
var migrations = []string{
	// 0 -> 1: the first schema.
	`
CREATE TABLE schema_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);

-- Small store-wide values; "key_check" is a sealed known value that tells a wrong
-- database key from a tampered row.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
);

-- One MLS group state per group (mlsgroup's serialized state, which keeps the
-- last few epochs itself).
CREATE TABLE group_states (
	group_id   BLOB PRIMARY KEY,
	epoch      INTEGER NOT NULL CHECK (epoch >= 0),
	state      BLOB NOT NULL,              -- sealed; AAD: group_id, epoch
	updated_at INTEGER NOT NULL
);

-- Per-layer session state: pairwise ratchets, sender keys, ... keyed by group,
-- peer and kind (the layer's own name for the state, e.g. "signal/ratchet").
CREATE TABLE sessions (
	group_id   BLOB NOT NULL,
	peer_id    BLOB NOT NULL,
	kind       TEXT NOT NULL,
	state      BLOB NOT NULL,              -- sealed; AAD: group_id, peer_id, kind
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (group_id, peer_id, kind)
);

-- Message history. seq is the local arrival order and the history cursor;
-- AUTOINCREMENT so a seq is never reused, even after deletions.
CREATE TABLE messages (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	group_id    BLOB NOT NULL,
	msg_id      BLOB NOT NULL,
	epoch       INTEGER NOT NULL CHECK (epoch >= 0),
	sender      BLOB NOT NULL,
	sent_at     INTEGER NOT NULL,
	received_at INTEGER NOT NULL,
	flags       INTEGER NOT NULL DEFAULT 0,
	content     BLOB NOT NULL,             -- sealed; AAD: group_id, msg_id, epoch, sender, sent_at
	UNIQUE (group_id, msg_id)
);
CREATE INDEX messages_by_group ON messages (group_id, seq);

-- Own messages not yet final (their epoch may still lose a commit race).
CREATE TABLE outbox (
	group_id   BLOB NOT NULL,
	msg_id     BLOB NOT NULL,
	epoch      INTEGER NOT NULL CHECK (epoch >= 0),
	created_at INTEGER NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	payload    BLOB NOT NULL,              -- sealed; AAD: group_id, msg_id
	PRIMARY KEY (group_id, msg_id)
);

-- Known peers. verified is NULL, or the sealed identity key that the user
-- verified (AAD: peer_id), so the flag cannot be set by editing the file.
CREATE TABLE peers (
	peer_id    BLOB PRIMARY KEY,
	name       TEXT NOT NULL DEFAULT '',
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	verified   BLOB
);
CREATE TABLE peer_addrs (
	peer_id   BLOB NOT NULL REFERENCES peers (peer_id) ON DELETE CASCADE,
	addr      TEXT NOT NULL,
	last_seen INTEGER NOT NULL,
	PRIMARY KEY (peer_id, addr)
);

-- Invites this profile issued, and who used them.
CREATE TABLE invites (
	invite_id  BLOB PRIMARY KEY,
	group_id   BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	max_uses   INTEGER NOT NULL CHECK (max_uses >= 0),
	uses       INTEGER NOT NULL DEFAULT 0,
	revoked    INTEGER NOT NULL DEFAULT 0,
	token      BLOB NOT NULL               -- sealed; AAD: invite_id, group_id
);
CREATE INDEX invites_by_group ON invites (group_id);
CREATE TABLE invite_uses (
	invite_id BLOB NOT NULL REFERENCES invites (invite_id) ON DELETE CASCADE,
	peer_id   BLOB NOT NULL,
	used_at   INTEGER NOT NULL,
	PRIMARY KEY (invite_id, peer_id)
);
`,
	// 1 -> 2: the wire log.
	`
-- The recent wire messages of each group, as sent on the wire (already
-- encrypted, so not sealed again), to answer /tchat/sync/1 for members that
-- missed commits and messages. kind 1: a commit, the one that left epoch;
-- kind 2: an application message sent in epoch. seq is the local arrival
-- order; AUTOINCREMENT so a seq is never reused.
CREATE TABLE wire_log (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	group_id BLOB NOT NULL,
	epoch    INTEGER NOT NULL CHECK (epoch >= 0),
	kind     INTEGER NOT NULL,
	data     BLOB NOT NULL
);
CREATE INDEX wire_log_by_group ON wire_log (group_id, epoch, seq);
`,
	// 2 -> 3: the senders of logged application messages.
	`
-- sender: the credential identity of an application message's sender, so that
-- a sync request can ask for one member's messages; NULL for commits,
-- proposals and items logged before version 3.
ALTER TABLE wire_log ADD COLUMN sender BLOB;
`,
}
