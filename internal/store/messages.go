package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// MessageFlags mark how a message was received or sent.
type MessageFlags uint32

const (
	// FlagOwn marks a message this profile sent.
	FlagOwn MessageFlags = 1 << iota
	// FlagLate marks a message that arrived for an epoch older than the group's
	// current one.
	FlagLate
	// FlagResent marks a message sent again after its first epoch lost.
	FlagResent
)

// Message is one message in a group's history.
type Message struct {
	// Seq is the message's place in the local history, assigned by the store
	// when it is appended (increasing, never reused). It is the history cursor.
	Seq int64
	// GroupID and MsgID identify the message; MsgID is unique within its group.
	GroupID []byte
	MsgID   []byte
	// Epoch is the MLS epoch the message was sent in.
	Epoch uint64
	// Sender is the sender's peer id.
	Sender []byte
	// SentAt is the sender's timestamp; ReceivedAt is when it was stored here.
	SentAt     time.Time
	ReceivedAt time.Time
	Flags      MessageFlags
	// Content is the plaintext, sealed at rest.
	Content []byte
}

func messageAAD(m *Message, epoch int64, sentAt int64) []byte {
	return aad("messages", "content", m.GroupID, m.MsgID, u64(uint64(epoch)), m.Sender, u64(uint64(sentAt)))
}

const insertMessage = `INSERT INTO messages (group_id, msg_id, epoch, sender, sent_at, received_at, flags, content)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (group_id, msg_id) DO NOTHING`

// AppendMessages adds messages to the history in this transaction. A message whose
// (GroupID, MsgID) is already stored is skipped (deliveries repeat). The Seq of
// each appended message is set; skipped ones keep Seq 0 (the Seq values hold only
// if the transaction commits). It returns how many were appended.
func (tx *Tx) AppendMessages(msgs []Message) (int, error) {
	if err := tx.mustWrite(); err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	stmt, err := tx.prepared("append messages", insertMessage)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	added := 0
	for i := range msgs {
		m := &msgs[i]
		m.Seq = 0
		if len(m.GroupID) == 0 || len(m.MsgID) == 0 {
			return 0, errors.New("store: a message needs a group id and a message id")
		}
		epoch, err := epochValue(m.Epoch)
		if err != nil {
			return 0, err
		}
		if m.ReceivedAt.IsZero() {
			m.ReceivedAt = now
		}
		sentAt := unixNano(m.SentAt)
		err = tx.s.seal.withSealed(m.Content, messageAAD(m, epoch, sentAt), func(sealed []byte) error {
			res, err := stmt.ExecContext(tx.ctx, m.GroupID, m.MsgID, epoch, nonNil(m.Sender), sentAt, unixNano(m.ReceivedAt), int64(m.Flags), sealed)
			if err != nil {
				return dbError("append messages", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				if m.Seq, err = res.LastInsertId(); err != nil {
					return dbError("append messages", err)
				}
				added++
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return added, nil
}

const messageColumns = "seq, msg_id, epoch, sender, sent_at, received_at, flags, content"

func (tx *Tx) scanMessage(groupID []byte, sc interface{ Scan(...any) error }) (Message, error) {
	m := Message{GroupID: groupID}
	var epoch, sentAt, recvAt, flags int64
	var sealed []byte
	if err := sc.Scan(&m.Seq, &m.MsgID, &epoch, &m.Sender, &sentAt, &recvAt, &flags, &sealed); err != nil {
		return m, err
	}
	content, err := tx.s.seal.open(sealed, messageAAD(&m, epoch, sentAt))
	if err != nil {
		return m, err
	}
	m.Epoch, m.SentAt, m.ReceivedAt, m.Flags, m.Content = uint64(epoch), fromUnixNano(sentAt), fromUnixNano(recvAt), MessageFlags(flags), content
	return m, nil
}

// History returns up to limit messages of a group older than the cursor before
// (a Seq; 0 for the newest), in history order (oldest first). next is the cursor
// for the page before this one, 0 when there is none.
func (tx *Tx) History(groupID []byte, before int64, limit int) (msgs []Message, next int64, err error) {
	if limit <= 0 {
		return nil, 0, fmt.Errorf("store: history limit %d", limit)
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := tx.tx.QueryContext(tx.ctx, "SELECT "+messageColumns+" FROM messages WHERE group_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
		groupID, before, limit+1)
	if err != nil {
		return nil, 0, dbError("history", err)
	}
	defer rows.Close()
	gid := append([]byte(nil), groupID...)
	for rows.Next() {
		if len(msgs) == limit {
			next = msgs[len(msgs)-1].Seq
			break
		}
		m, err := tx.scanMessage(gid, rows)
		if err != nil {
			if errors.Is(err, errOpen) {
				return nil, 0, err
			}
			return nil, 0, dbError("history", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, dbError("history", err)
	}
	slices.Reverse(msgs)
	return msgs, next, nil
}

// Message returns one message, or [ErrNotFound].
func (tx *Tx) Message(groupID, msgID []byte) (Message, error) {
	row := tx.tx.QueryRowContext(tx.ctx, "SELECT "+messageColumns+" FROM messages WHERE group_id = ? AND msg_id = ?", groupID, msgID)
	m, err := tx.scanMessage(append([]byte(nil), groupID...), row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Message{}, ErrNotFound
	case errors.Is(err, errOpen):
		return Message{}, err
	case err != nil:
		return Message{}, dbError("load message", err)
	}
	return m, nil
}

// CountMessages returns the number of messages stored for a group.
func (tx *Tx) CountMessages(groupID []byte) (int64, error) {
	var n int64
	if err := tx.tx.QueryRowContext(tx.ctx, "SELECT count(*) FROM messages WHERE group_id = ?", groupID).Scan(&n); err != nil {
		return 0, dbError("count messages", err)
	}
	return n, nil
}

// AppendMessages appends messages in one transaction; see [Tx.AppendMessages].
func (s *Store) AppendMessages(ctx context.Context, msgs []Message) (int, error) {
	return update(ctx, s, func(tx *Tx) (int, error) { return tx.AppendMessages(msgs) })
}

// History returns a page of a group's history; see [Tx.History].
func (s *Store) History(ctx context.Context, groupID []byte, before int64, limit int) (msgs []Message, next int64, err error) {
	err = s.View(ctx, func(tx *Tx) error {
		msgs, next, err = tx.History(groupID, before, limit)
		return err
	})
	return msgs, next, err
}

// Message returns one message; see [Tx.Message].
func (s *Store) Message(ctx context.Context, groupID, msgID []byte) (Message, error) {
	return view(ctx, s, func(tx *Tx) (Message, error) { return tx.Message(groupID, msgID) })
}
