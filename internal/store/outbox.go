package store

import (
	"context"
	"errors"
	"time"
)

// OutboxItem is an own message that is not final yet: it stays in the outbox
// until its epoch is settled (then [Tx.AckOutbox]), and is sent again if its
// epoch loses a commit race.
type OutboxItem struct {
	GroupID []byte
	MsgID   []byte
	// Epoch is the epoch the message was last sent in.
	Epoch     uint64
	CreatedAt time.Time
	// Attempts counts the sends recorded with [Tx.MarkOutboxSent].
	Attempts int
	// Payload is what is needed to send the message again, sealed at rest.
	Payload []byte
}

func outboxAAD(groupID, msgID []byte) []byte {
	return aad("outbox", "payload", groupID, msgID)
}

// PutOutbox adds a message to the outbox, replacing one with the same ids.
func (tx *Tx) PutOutbox(it OutboxItem) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	if len(it.GroupID) == 0 || len(it.MsgID) == 0 {
		return errors.New("store: an outbox item needs a group id and a message id")
	}
	epoch, err := epochValue(it.Epoch)
	if err != nil {
		return err
	}
	if it.CreatedAt.IsZero() {
		it.CreatedAt = time.Now()
	}
	sealed, err := tx.s.seal.seal(it.Payload, outboxAAD(it.GroupID, it.MsgID))
	if err != nil {
		return err
	}
	_, err = tx.exec("put outbox", `INSERT INTO outbox (group_id, msg_id, epoch, created_at, attempts, payload) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (group_id, msg_id) DO UPDATE SET epoch = excluded.epoch, created_at = excluded.created_at,
		attempts = excluded.attempts, payload = excluded.payload`,
		it.GroupID, it.MsgID, epoch, unixNano(it.CreatedAt), it.Attempts, sealed)
	return err
}

// AckOutbox removes a message from the outbox once it is final. It returns
// [ErrNotFound] if the message was not there.
func (tx *Tx) AckOutbox(groupID, msgID []byte) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	res, err := tx.exec("ack outbox", "DELETE FROM outbox WHERE group_id = ? AND msg_id = ?", groupID, msgID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// MarkOutboxSent records that a message was sent (again) in epoch.
func (tx *Tx) MarkOutboxSent(groupID, msgID []byte, epoch uint64) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	e, err := epochValue(epoch)
	if err != nil {
		return err
	}
	res, err := tx.exec("mark outbox", "UPDATE outbox SET epoch = ?, attempts = attempts + 1 WHERE group_id = ? AND msg_id = ?", e, groupID, msgID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Outbox lists the outbox of a group (of all groups if groupID is nil), oldest
// first.
func (tx *Tx) Outbox(groupID []byte) ([]OutboxItem, error) {
	q := "SELECT group_id, msg_id, epoch, created_at, attempts, payload FROM outbox"
	var args []any
	if groupID != nil {
		q += " WHERE group_id = ?"
		args = append(args, groupID)
	}
	q += " ORDER BY created_at, rowid"
	rows, err := tx.tx.QueryContext(tx.ctx, q, args...)
	if err != nil {
		return nil, dbError("list outbox", err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		var epoch, created int64
		var sealed []byte
		if err := rows.Scan(&it.GroupID, &it.MsgID, &epoch, &created, &it.Attempts, &sealed); err != nil {
			return nil, dbError("list outbox", err)
		}
		if it.Payload, err = tx.s.seal.open(sealed, outboxAAD(it.GroupID, it.MsgID)); err != nil {
			return nil, err
		}
		it.Epoch, it.CreatedAt = uint64(epoch), fromUnixNano(created)
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list outbox", err)
	}
	return out, nil
}

// PutOutbox adds an outbox item in its own transaction; see [Tx.PutOutbox].
func (s *Store) PutOutbox(ctx context.Context, it OutboxItem) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.PutOutbox(it) })
}

// AckOutbox removes an outbox item; see [Tx.AckOutbox].
func (s *Store) AckOutbox(ctx context.Context, groupID, msgID []byte) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.AckOutbox(groupID, msgID) })
}

// Outbox lists outbox items; see [Tx.Outbox].
func (s *Store) Outbox(ctx context.Context, groupID []byte) ([]OutboxItem, error) {
	return view(ctx, s, func(tx *Tx) ([]OutboxItem, error) { return tx.Outbox(groupID) })
}
