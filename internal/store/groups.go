package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// GroupInfo describes a stored group state without its contents.
type GroupInfo struct {
	GroupID   []byte
	Epoch     uint64
	UpdatedAt time.Time
}

// SaveGroupState stores the serialized MLS state of a group at epoch, replacing
// the previous one.
func (tx *Tx) SaveGroupState(groupID []byte, epoch uint64, state []byte) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	if len(groupID) == 0 {
		return errors.New("store: empty group id")
	}
	e, err := epochValue(epoch)
	if err != nil {
		return err
	}
	return tx.s.seal.withSealed(state, aad("group_states", "state", groupID, u64(epoch)), func(sealed []byte) error {
		_, err := tx.exec("save group state", saveGroupState, groupID, e, sealed, time.Now().UnixNano())
		return err
	})
}

// GroupState returns the stored state of a group and its epoch, or [ErrNotFound].
func (tx *Tx) GroupState(groupID []byte) (epoch uint64, state []byte, err error) {
	var e int64
	var sealed []byte
	err = tx.tx.QueryRowContext(tx.ctx, "SELECT epoch, state FROM group_states WHERE group_id = ?", groupID).Scan(&e, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, ErrNotFound
	}
	if err != nil {
		return 0, nil, dbError("load group state", err)
	}
	state, err = tx.s.seal.open(sealed, aad("group_states", "state", groupID, u64(uint64(e))))
	if err != nil {
		return 0, nil, err
	}
	return uint64(e), state, nil
}

// Groups lists the groups with a stored state, by group id.
func (tx *Tx) Groups() ([]GroupInfo, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, "SELECT group_id, epoch, updated_at FROM group_states ORDER BY group_id")
	if err != nil {
		return nil, dbError("list groups", err)
	}
	defer rows.Close()
	var out []GroupInfo
	for rows.Next() {
		var g GroupInfo
		var e, u int64
		if err := rows.Scan(&g.GroupID, &e, &u); err != nil {
			return nil, dbError("list groups", err)
		}
		g.Epoch, g.UpdatedAt = uint64(e), fromUnixNano(u)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list groups", err)
	}
	return out, nil
}

// DeleteGroup removes everything stored for a group: its state, sessions,
// outbox, history, invites and wire log.
func (tx *Tx) DeleteGroup(groupID []byte) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	for _, q := range []string{
		"DELETE FROM group_states WHERE group_id = ?",
		"DELETE FROM sessions WHERE group_id = ?",
		"DELETE FROM outbox WHERE group_id = ?",
		"DELETE FROM messages WHERE group_id = ?",
		"DELETE FROM invites WHERE group_id = ?",
		"DELETE FROM wire_log WHERE group_id = ?",
	} {
		if _, err := tx.exec("delete group", q, groupID); err != nil {
			return err
		}
	}
	return nil
}

// SaveGroupState stores a group state in its own transaction; see
// [Tx.SaveGroupState]. To commit a state together with the messages that depend
// on it, use [Store.Update].
func (s *Store) SaveGroupState(ctx context.Context, groupID []byte, epoch uint64, state []byte) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.SaveGroupState(groupID, epoch, state) })
}

// GroupState returns a group's stored state; see [Tx.GroupState].
func (s *Store) GroupState(ctx context.Context, groupID []byte) (epoch uint64, state []byte, err error) {
	err = s.View(ctx, func(tx *Tx) error {
		epoch, state, err = tx.GroupState(groupID)
		return err
	})
	return epoch, state, err
}

// Groups lists the stored groups; see [Tx.Groups].
func (s *Store) Groups(ctx context.Context) ([]GroupInfo, error) {
	return view(ctx, s, (*Tx).Groups)
}

// SessionKey names one layer session.
type SessionKey struct {
	GroupID []byte
	PeerID  []byte
	// Kind is the layer's name for the state, such as "signal/ratchet" or
	// "signal/sender-key".
	Kind string
}

func (k SessionKey) aad() []byte {
	return aad("sessions", "state", k.GroupID, k.PeerID, []byte(k.Kind))
}

// SaveSession stores a layer session's state, replacing the previous one.
func (tx *Tx) SaveSession(k SessionKey, state []byte) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	if len(k.GroupID) == 0 || k.Kind == "" {
		return errors.New("store: a session needs a group id and a kind")
	}
	return tx.s.seal.withSealed(state, k.aad(), func(sealed []byte) error {
		_, err := tx.exec("save session", saveSession,
			k.GroupID, nonNil(k.PeerID), k.Kind, sealed, time.Now().UnixNano())
		return err
	})
}

// Session returns a layer session's state, or [ErrNotFound].
func (tx *Tx) Session(k SessionKey) ([]byte, error) {
	var sealed []byte
	err := tx.tx.QueryRowContext(tx.ctx, "SELECT state FROM sessions WHERE group_id = ? AND peer_id = ? AND kind = ?",
		k.GroupID, nonNil(k.PeerID), k.Kind).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, dbError("load session", err)
	}
	return tx.s.seal.open(sealed, k.aad())
}

// Sessions lists the session keys stored for a group.
func (tx *Tx) Sessions(groupID []byte) ([]SessionKey, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, "SELECT peer_id, kind FROM sessions WHERE group_id = ? ORDER BY peer_id, kind", groupID)
	if err != nil {
		return nil, dbError("list sessions", err)
	}
	defer rows.Close()
	var out []SessionKey
	for rows.Next() {
		k := SessionKey{GroupID: append([]byte(nil), groupID...)}
		if err := rows.Scan(&k.PeerID, &k.Kind); err != nil {
			return nil, dbError("list sessions", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list sessions", err)
	}
	return out, nil
}

// DeleteSession removes a layer session; deleting a missing one is not an error.
func (tx *Tx) DeleteSession(k SessionKey) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	_, err := tx.exec("delete session", "DELETE FROM sessions WHERE group_id = ? AND peer_id = ? AND kind = ?", k.GroupID, nonNil(k.PeerID), k.Kind)
	return err
}

// SaveSession stores a session in its own transaction; see [Tx.SaveSession].
func (s *Store) SaveSession(ctx context.Context, k SessionKey, state []byte) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.SaveSession(k, state) })
}

// Session returns a session's state; see [Tx.Session].
func (s *Store) Session(ctx context.Context, k SessionKey) ([]byte, error) {
	return view(ctx, s, func(tx *Tx) ([]byte, error) { return tx.Session(k) })
}

// nonNil makes an empty byte slice non-nil, so SQLite stores an empty blob
// rather than NULL in NOT NULL columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

const (
	saveGroupState = `INSERT INTO group_states (group_id, epoch, state, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (group_id) DO UPDATE SET epoch = excluded.epoch, state = excluded.state, updated_at = excluded.updated_at`
	saveSession = `INSERT INTO sessions (group_id, peer_id, kind, state, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (group_id, peer_id, kind) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`
)
