package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// WireKind says what a wire log item is.
type WireKind uint8

const (
	// WireCommit is a commit: the one that left the item's epoch.
	WireCommit WireKind = 1
	// WireMessage is an application message sent in the item's epoch.
	WireMessage WireKind = 2
)

func (k WireKind) valid() bool { return k == WireCommit || k == WireMessage }

func (k WireKind) String() string {
	switch k {
	case WireCommit:
		return "commit"
	case WireMessage:
		return "message"
	}
	return fmt.Sprintf("WireKind(%d)", uint8(k))
}

// DefaultWireLimit is the number of items [Tx.WireRead] and [Tx.WireSince]
// return at most when given no limit.
const DefaultWireLimit = 1000

// WireItem is one message of a group's wire log: a commit or an application
// message exactly as it was sent on the wire, kept to answer members that
// missed it (/tchat/sync/1). Data is already encrypted (the group's layers,
// the room secret's outermost), so it is stored as it is, not sealed again.
type WireItem struct {
	// Seq is the item's place in the local log, assigned by the store when it
	// is appended (increasing, never reused).
	Seq int64
	// Epoch is the epoch a WireCommit left, or the one a WireMessage was sent in.
	Epoch uint64
	Kind  WireKind
	Data  []byte
	// Sender is the credential identity of an application message's sender;
	// nil when it is not known (proposals, items logged by an older tchat) or
	// the item is not a message.
	Sender []byte
}

// Cursor returns the item's position in the log, to read on after it with
// [WireQuery.After].
func (it *WireItem) Cursor() WireCursor { return WireCursor{Epoch: it.Epoch, Seq: it.Seq} }

// WireCursor is a position in a group's wire log: items are ordered by epoch,
// then Seq. The zero value is before every item (Seq starts at 1).
type WireCursor struct {
	Epoch uint64
	Seq   int64
}

// WireQuery selects wire log items for [Tx.WireRead].
type WireQuery struct {
	Commits      bool // include WireCommit items with Epoch >= CommitsFrom
	CommitsFrom  uint64
	Messages     bool // include WireMessage items with Epoch >= MessagesFrom
	MessagesFrom uint64
	// Sender, if not empty, keeps only the messages whose sender is Sender or
	// is not recorded (NULL: proposals, items logged before schema 3), since
	// those may be Sender's. Commits are never filtered by sender.
	Sender []byte
	// After keeps only the items strictly after this position; the zero value
	// means from the start. To read on after a page, pass the Cursor of its
	// last item.
	After WireCursor
	Limit int // at most this many items (DefaultWireLimit if <= 0)
}

// nullIfEmpty gives SQL NULL for an empty or nil byte slice, which the driver
// could otherwise bind as an empty blob.
func nullIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

const insertWire = "INSERT INTO wire_log (group_id, epoch, kind, data, sender) VALUES (?, ?, ?, ?, ?)"

// AppendWire adds items to a group's wire log, in order. The Seq of each item
// is set (the values hold only if the transaction commits). Items are not
// deduplicated: append what was accepted, once.
func (tx *Tx) AppendWire(groupID []byte, items []WireItem) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	if len(groupID) == 0 {
		return errors.New("store: empty group id")
	}
	if len(items) == 0 {
		return nil
	}
	stmt, err := tx.prepared("append wire log", insertWire)
	if err != nil {
		return err
	}
	for i := range items {
		it := &items[i]
		it.Seq = 0
		if !it.Kind.valid() {
			return fmt.Errorf("store: wire log: unknown kind %d", it.Kind)
		}
		if len(it.Data) == 0 {
			return errors.New("store: wire log: empty item")
		}
		e, err := epochValue(it.Epoch)
		if err != nil {
			return err
		}
		res, err := stmt.ExecContext(tx.ctx, groupID, e, int64(it.Kind), it.Data, nullIfEmpty(it.Sender))
		if err != nil {
			return dbError("append wire log", err)
		}
		if it.Seq, err = res.LastInsertId(); err != nil {
			return dbError("append wire log", err)
		}
	}
	return nil
}

// WireSince returns a group's wire log items, commits and messages, with an
// epoch of at least fromEpoch, ordered by epoch then arrival (Seq), at most
// limit of them ([DefaultWireLimit] if limit <= 0). more reports that there
// are further items.
//
// A page may end inside an epoch, and asking again from the last epoch
// returned gives that epoch's items from its start again. To read on where a
// page ended, use [Tx.WireRead] with the last item's Cursor as
// [WireQuery.After].
func (tx *Tx) WireSince(groupID []byte, fromEpoch uint64, limit int) (items []WireItem, more bool, err error) {
	return tx.WireRead(groupID, WireQuery{
		Commits: true, CommitsFrom: fromEpoch,
		Messages: true, MessagesFrom: fromEpoch,
		Limit: limit,
	})
}

// wireReadQuery is the one query behind WireRead. It walks the index
// wire_log_by_group (group_id, epoch, seq) from the lowest epoch that can
// match, in the order wanted, so LIMIT stops the walk; the other conditions
// filter the rows walked. Rows of an unknown kind are selected too, to be
// reported as corrupt rather than skipped.
const wireReadQuery = `SELECT seq, epoch, kind, data, sender FROM wire_log
	WHERE group_id = :group AND epoch >= :low
	AND (epoch > :after_epoch OR (epoch = :after_epoch AND seq > :after_seq))
	AND ((kind = 1 AND :commits AND epoch >= :commits_from)
		OR (kind = 2 AND :messages AND epoch >= :messages_from
			AND (:sender IS NULL OR sender IS NULL OR sender = :sender))
		OR kind NOT IN (1, 2))
	ORDER BY epoch, seq LIMIT :limit`

// WireRead returns the items of a group's wire log that q selects, ordered by
// epoch then arrival (Seq), at most q.Limit of them. more reports that further
// items match: read them with the last item's Cursor as q.After.
//
// Paging with After returns every matching item exactly once, as long as no
// item is appended to an epoch the pages have already passed (a late message
// of an old epoch, logged between two pages, is not seen by the later ones).
// A row of an unknown kind in the range read is reported as [ErrCorrupt].
func (tx *Tx) WireRead(groupID []byte, q WireQuery) (items []WireItem, more bool, err error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultWireLimit
	}
	commitsFrom, err := epochValue(q.CommitsFrom)
	if err != nil {
		return nil, false, err
	}
	messagesFrom, err := epochValue(q.MessagesFrom)
	if err != nil {
		return nil, false, err
	}
	afterEpoch, err := epochValue(q.After.Epoch)
	if err != nil {
		return nil, false, err
	}
	// The lowest epoch any selected item can have.
	var low int64
	switch {
	case q.Commits && q.Messages:
		low = min(commitsFrom, messagesFrom)
	case q.Commits:
		low = commitsFrom
	case q.Messages:
		low = messagesFrom
	default:
		return nil, false, nil
	}
	low = max(low, afterEpoch)
	rows, err := tx.tx.QueryContext(tx.ctx, wireReadQuery,
		sql.Named("group", groupID),
		sql.Named("low", low),
		sql.Named("after_epoch", afterEpoch),
		sql.Named("after_seq", q.After.Seq),
		sql.Named("commits", q.Commits),
		sql.Named("commits_from", commitsFrom),
		sql.Named("messages", q.Messages),
		sql.Named("messages_from", messagesFrom),
		sql.Named("sender", nullIfEmpty(q.Sender)),
		sql.Named("limit", int64(limit)+1))
	if err != nil {
		return nil, false, dbError("read wire log", err)
	}
	defer rows.Close()
	for rows.Next() {
		if len(items) == limit {
			more = true
			break
		}
		var it WireItem
		var e, kind int64
		if err := rows.Scan(&it.Seq, &e, &kind, &it.Data, &it.Sender); err != nil {
			return nil, false, dbError("read wire log", err)
		}
		if e < 0 || (kind != int64(WireCommit) && kind != int64(WireMessage)) {
			return nil, false, fmt.Errorf("%w: wire log item %d", ErrCorrupt, it.Seq)
		}
		it.Epoch, it.Kind = uint64(e), WireKind(kind)
		if len(it.Sender) == 0 {
			it.Sender = nil
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, false, dbError("read wire log", err)
	}
	return items, more, nil
}

// DeleteWireFrom deletes a group's wire log items of one kind with an epoch of
// at least fromEpoch, and returns how many it deleted. A member that switches
// to another branch of the group's history uses it to drop its commits from
// the fork on, which are dead.
func (tx *Tx) DeleteWireFrom(groupID []byte, kind WireKind, fromEpoch uint64) (int64, error) {
	if err := tx.mustWrite(); err != nil {
		return 0, err
	}
	if !kind.valid() {
		return 0, fmt.Errorf("store: wire log: unknown kind %d", kind)
	}
	from, err := epochValue(fromEpoch)
	if err != nil {
		return 0, err
	}
	res, err := tx.exec("delete from wire log", "DELETE FROM wire_log WHERE group_id = ? AND kind = ? AND epoch >= ?",
		groupID, int64(kind), from)
	if err != nil {
		return 0, err
	}
	return rowsAffected("delete from wire log", res)
}

// PruneWire deletes a group's wire log items with an epoch below belowEpoch,
// and returns how many it deleted.
func (tx *Tx) PruneWire(groupID []byte, belowEpoch uint64) (int64, error) {
	if err := tx.mustWrite(); err != nil {
		return 0, err
	}
	below, err := epochValue(belowEpoch)
	if err != nil {
		return 0, err
	}
	res, err := tx.exec("prune wire log", "DELETE FROM wire_log WHERE group_id = ? AND epoch < ?", groupID, below)
	if err != nil {
		return 0, err
	}
	return rowsAffected("prune wire log", res)
}

func rowsAffected(what string, res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, dbError(what, err)
	}
	return n, nil
}

// AppendWire appends to a group's wire log in its own transaction; see
// [Tx.AppendWire]. To log a commit together with the group state it leads to,
// use [Store.Update].
func (s *Store) AppendWire(ctx context.Context, groupID []byte, items []WireItem) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.AppendWire(groupID, items) })
}

// WireRead reads a page of a group's wire log; see [Tx.WireRead].
func (s *Store) WireRead(ctx context.Context, groupID []byte, q WireQuery) (items []WireItem, more bool, err error) {
	err = s.View(ctx, func(tx *Tx) error {
		items, more, err = tx.WireRead(groupID, q)
		return err
	})
	return items, more, err
}

// WireSince reads a page of a group's wire log; see [Tx.WireSince].
func (s *Store) WireSince(ctx context.Context, groupID []byte, fromEpoch uint64, limit int) (items []WireItem, more bool, err error) {
	err = s.View(ctx, func(tx *Tx) error {
		items, more, err = tx.WireSince(groupID, fromEpoch, limit)
		return err
	})
	return items, more, err
}

// DeleteWireFrom deletes wire log items of one kind from an epoch on; see
// [Tx.DeleteWireFrom].
func (s *Store) DeleteWireFrom(ctx context.Context, groupID []byte, kind WireKind, fromEpoch uint64) (int64, error) {
	return update(ctx, s, func(tx *Tx) (int64, error) { return tx.DeleteWireFrom(groupID, kind, fromEpoch) })
}

// PruneWire deletes wire log items below an epoch; see [Tx.PruneWire].
func (s *Store) PruneWire(ctx context.Context, groupID []byte, belowEpoch uint64) (int64, error) {
	return update(ctx, s, func(tx *Tx) (int64, error) { return tx.PruneWire(groupID, belowEpoch) })
}
