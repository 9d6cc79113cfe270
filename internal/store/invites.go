package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

var (
	// ErrInviteExpired is returned by [Tx.UseInvite] for an invite past its expiry.
	ErrInviteExpired = errors.New("store: invite expired")
	// ErrInviteUsedUp is returned by [Tx.UseInvite] when the invite has no use left.
	ErrInviteUsedUp = errors.New("store: invite already used up")
	// ErrInviteRevoked is returned by [Tx.UseInvite] for a revoked invite.
	ErrInviteRevoked = errors.New("store: invite revoked")
)

// Invite is an invite this profile issued.
type Invite struct {
	ID        []byte
	GroupID   []byte
	CreatedAt time.Time
	// ExpiresAt is the expiry; the zero time means none.
	ExpiresAt time.Time
	// MaxUses is how many different peers may use the invite; 0 means no limit.
	MaxUses int
	// Uses counts the peers who used it (set by the store).
	Uses    int
	Revoked bool
	// Token is the invite token as handed out (it carries the room secret),
	// sealed at rest.
	Token []byte
}

func inviteAAD(id, groupID []byte) []byte { return aad("invites", "token", id, groupID) }

// PutInvite records a newly issued invite. Its ID must be new.
func (tx *Tx) PutInvite(inv Invite) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	if len(inv.ID) == 0 || len(inv.GroupID) == 0 || inv.MaxUses < 0 {
		return errors.New("store: an invite needs an id, a group id and a use count >= 0")
	}
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = time.Now()
	}
	sealed, err := tx.s.seal.seal(inv.Token, inviteAAD(inv.ID, inv.GroupID))
	if err != nil {
		return err
	}
	_, err = tx.exec("put invite", "INSERT INTO invites (invite_id, group_id, created_at, expires_at, max_uses, token) VALUES (?, ?, ?, ?, ?, ?)",
		inv.ID, inv.GroupID, unixNano(inv.CreatedAt), unixNano(inv.ExpiresAt), inv.MaxUses, sealed)
	return err
}

// Invite returns an issued invite, or [ErrNotFound].
func (tx *Tx) Invite(id []byte) (Invite, error) {
	row := tx.tx.QueryRowContext(tx.ctx, "SELECT invite_id, group_id, created_at, expires_at, max_uses, uses, revoked, token FROM invites WHERE invite_id = ?", id)
	inv, err := tx.scanInvite(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Invite{}, ErrNotFound
	}
	return inv, err
}

func (tx *Tx) scanInvite(sc interface{ Scan(...any) error }) (Invite, error) {
	var inv Invite
	var created, expires int64
	var sealed []byte
	if err := sc.Scan(&inv.ID, &inv.GroupID, &created, &expires, &inv.MaxUses, &inv.Uses, &inv.Revoked, &sealed); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return inv, err
		}
		return inv, dbError("load invite", err)
	}
	tok, err := tx.s.seal.open(sealed, inviteAAD(inv.ID, inv.GroupID))
	if err != nil {
		return Invite{}, err
	}
	inv.Token, inv.CreatedAt, inv.ExpiresAt = tok, fromUnixNano(created), fromUnixNano(expires)
	return inv, nil
}

// Invites lists the invites issued for a group, oldest first.
func (tx *Tx) Invites(groupID []byte) ([]Invite, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, "SELECT invite_id, group_id, created_at, expires_at, max_uses, uses, revoked, token FROM invites WHERE group_id = ? ORDER BY created_at, rowid", groupID)
	if err != nil {
		return nil, dbError("list invites", err)
	}
	defer rows.Close()
	var out []Invite
	for rows.Next() {
		inv, err := tx.scanInvite(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list invites", err)
	}
	return out, nil
}

// UseInvite records that peer used the invite at time now, after checking that
// it is not revoked, expired or used up. A peer that already used the invite
// (a retried join) is accepted again without counting a new use. It returns the
// invite as updated.
func (tx *Tx) UseInvite(id, peer []byte, now time.Time) (Invite, error) {
	if err := tx.mustWrite(); err != nil {
		return Invite{}, err
	}
	inv, err := tx.Invite(id)
	if err != nil {
		return Invite{}, err
	}
	var one int
	err = tx.tx.QueryRowContext(tx.ctx, "SELECT 1 FROM invite_uses WHERE invite_id = ? AND peer_id = ?", id, peer).Scan(&one)
	if err == nil {
		return inv, nil // this peer already used it
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Invite{}, dbError("use invite", err)
	}
	switch {
	case inv.Revoked:
		return Invite{}, ErrInviteRevoked
	case !inv.ExpiresAt.IsZero() && !now.Before(inv.ExpiresAt):
		return Invite{}, ErrInviteExpired
	case inv.MaxUses > 0 && inv.Uses >= inv.MaxUses:
		return Invite{}, ErrInviteUsedUp
	}
	if _, err := tx.exec("use invite", "INSERT INTO invite_uses (invite_id, peer_id, used_at) VALUES (?, ?, ?)", id, nonNil(peer), unixNano(now)); err != nil {
		return Invite{}, err
	}
	if _, err := tx.exec("use invite", "UPDATE invites SET uses = uses + 1 WHERE invite_id = ?", id); err != nil {
		return Invite{}, err
	}
	inv.Uses++
	return inv, nil
}

// RevokeInvite revokes an issued invite, or returns [ErrNotFound].
func (tx *Tx) RevokeInvite(id []byte) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	res, err := tx.exec("revoke invite", "UPDATE invites SET revoked = 1 WHERE invite_id = ?", id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// PutInvite records an issued invite; see [Tx.PutInvite].
func (s *Store) PutInvite(ctx context.Context, inv Invite) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.PutInvite(inv) })
}

// UseInvite checks and records one use of an invite; see [Tx.UseInvite].
func (s *Store) UseInvite(ctx context.Context, id, peer []byte, now time.Time) (Invite, error) {
	return update(ctx, s, func(tx *Tx) (Invite, error) { return tx.UseInvite(id, peer, now) })
}

// Invites lists a group's invites; see [Tx.Invites].
func (s *Store) Invites(ctx context.Context, groupID []byte) ([]Invite, error) {
	return view(ctx, s, func(tx *Tx) ([]Invite, error) { return tx.Invites(groupID) })
}
