package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Peer is a known peer.
type Peer struct {
	// ID is the peer id (libp2p's binary form).
	ID []byte
	// Name is the name the user knows the peer by ("" if none).
	Name      string
	FirstSeen time.Time
	LastSeen  time.Time
	// Addrs are the peer's known addresses, most recently seen first.
	Addrs []PeerAddr
	// VerifiedKey is the identity key the user verified for this peer (by safety
	// number), nil if not verified. A front end shows the peer as verified only
	// if this equals the key the peer presents now.
	VerifiedKey []byte
}

// PeerAddr is one known address of a peer.
type PeerAddr struct {
	Addr     string
	LastSeen time.Time
}

func verifiedAAD(peerID []byte) []byte { return aad("peers", "verified", peerID) }

// PutPeer records a peer, or updates its name and last-seen time. The first-seen
// time, addresses and verified flag of a known peer are kept.
func (tx *Tx) PutPeer(id []byte, name string, seen time.Time) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	if len(id) == 0 {
		return errors.New("store: empty peer id")
	}
	if seen.IsZero() {
		seen = time.Now()
	}
	t := unixNano(seen)
	_, err := tx.exec("put peer", `INSERT INTO peers (peer_id, name, first_seen, last_seen) VALUES (?, ?, ?, ?)
		ON CONFLICT (peer_id) DO UPDATE SET name = excluded.name, last_seen = max(last_seen, excluded.last_seen)`,
		id, name, t, t)
	return err
}

// ensurePeer records a peer if it is unknown, leaving a known one as it is.
func (tx *Tx) ensurePeer(id []byte, seen int64) error {
	_, err := tx.exec("put peer", "INSERT INTO peers (peer_id, first_seen, last_seen) VALUES (?, ?, ?) ON CONFLICT (peer_id) DO NOTHING", id, seen, seen)
	return err
}

// AddPeerAddrs records addresses seen for a peer (recording the peer if new).
func (tx *Tx) AddPeerAddrs(id []byte, addrs []string, seen time.Time) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	if len(id) == 0 {
		return errors.New("store: empty peer id")
	}
	if seen.IsZero() {
		seen = time.Now()
	}
	t := unixNano(seen)
	if err := tx.ensurePeer(id, t); err != nil {
		return err
	}
	for _, a := range addrs {
		if _, err := tx.exec("add peer address", `INSERT INTO peer_addrs (peer_id, addr, last_seen) VALUES (?, ?, ?)
			ON CONFLICT (peer_id, addr) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`, id, a, t); err != nil {
			return err
		}
	}
	_, err := tx.exec("add peer address", "UPDATE peers SET last_seen = max(last_seen, ?) WHERE peer_id = ?", t, id)
	return err
}

// RemovePeerAddr forgets one address of a peer.
func (tx *Tx) RemovePeerAddr(id []byte, addr string) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	_, err := tx.exec("remove peer address", "DELETE FROM peer_addrs WHERE peer_id = ? AND addr = ?", id, addr)
	return err
}

// SetVerified marks the peer as verified with identityKey (the key whose safety
// number the user compared), or clears the mark if identityKey is nil. An unknown
// peer is recorded.
func (tx *Tx) SetVerified(id []byte, identityKey []byte) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	if len(id) == 0 {
		return errors.New("store: empty peer id")
	}
	if err := tx.ensurePeer(id, time.Now().UnixNano()); err != nil {
		return err
	}
	var sealed []byte
	if identityKey != nil {
		if len(identityKey) == 0 {
			return errors.New("store: empty identity key")
		}
		var err error
		if sealed, err = tx.s.seal.seal(identityKey, verifiedAAD(id)); err != nil {
			return err
		}
	}
	_, err := tx.exec("set verified", "UPDATE peers SET verified = ? WHERE peer_id = ?", sealed, id)
	return err
}

// Verified returns the identity key the user verified for the peer, or nil if
// the peer is not verified (or unknown).
func (tx *Tx) Verified(id []byte) ([]byte, error) {
	var sealed []byte
	err := tx.tx.QueryRowContext(tx.ctx, "SELECT verified FROM peers WHERE peer_id = ?", id).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && sealed == nil) {
		return nil, nil
	}
	if err != nil {
		return nil, dbError("load verified", err)
	}
	return tx.s.seal.open(sealed, verifiedAAD(id))
}

// Peer returns a known peer with its addresses, or [ErrNotFound].
func (tx *Tx) Peer(id []byte) (Peer, error) {
	p := Peer{ID: append([]byte(nil), id...)}
	var first, last int64
	var sealed []byte
	err := tx.tx.QueryRowContext(tx.ctx, "SELECT name, first_seen, last_seen, verified FROM peers WHERE peer_id = ?", id).
		Scan(&p.Name, &first, &last, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return Peer{}, ErrNotFound
	}
	if err != nil {
		return Peer{}, dbError("load peer", err)
	}
	if err := tx.finishPeer(&p, first, last, sealed); err != nil {
		return Peer{}, err
	}
	return p, nil
}

// Peers lists the known peers, by peer id.
func (tx *Tx) Peers() ([]Peer, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, "SELECT peer_id, name, first_seen, last_seen, verified FROM peers ORDER BY peer_id")
	if err != nil {
		return nil, dbError("list peers", err)
	}
	type row struct {
		p           Peer
		first, last int64
		sealed      []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.p.ID, &r.p.Name, &r.first, &r.last, &r.sealed); err != nil {
			rows.Close()
			return nil, dbError("list peers", err)
		}
		rs = append(rs, r)
	}
	if err := rows.Close(); err != nil {
		return nil, dbError("list peers", err)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list peers", err)
	}
	out := make([]Peer, 0, len(rs))
	for _, r := range rs {
		if err := tx.finishPeer(&r.p, r.first, r.last, r.sealed); err != nil {
			return nil, err
		}
		out = append(out, r.p)
	}
	return out, nil
}

func (tx *Tx) finishPeer(p *Peer, first, last int64, sealed []byte) error {
	p.FirstSeen, p.LastSeen = fromUnixNano(first), fromUnixNano(last)
	if sealed != nil {
		k, err := tx.s.seal.open(sealed, verifiedAAD(p.ID))
		if err != nil {
			return err
		}
		p.VerifiedKey = k
	}
	rows, err := tx.tx.QueryContext(tx.ctx, "SELECT addr, last_seen FROM peer_addrs WHERE peer_id = ? ORDER BY last_seen DESC, addr", p.ID)
	if err != nil {
		return dbError("load peer addresses", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a PeerAddr
		var t int64
		if err := rows.Scan(&a.Addr, &t); err != nil {
			return dbError("load peer addresses", err)
		}
		a.LastSeen = fromUnixNano(t)
		p.Addrs = append(p.Addrs, a)
	}
	if err := rows.Err(); err != nil {
		return dbError("load peer addresses", err)
	}
	return nil
}

// DeletePeer forgets a peer, its addresses and its verified flag.
func (tx *Tx) DeletePeer(id []byte) error {
	if err := tx.mustWrite(); err != nil {
		return err
	}
	_, err := tx.exec("delete peer", "DELETE FROM peers WHERE peer_id = ?", id)
	return err
}

// PutPeer records a peer in its own transaction; see [Tx.PutPeer].
func (s *Store) PutPeer(ctx context.Context, id []byte, name string, seen time.Time) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.PutPeer(id, name, seen) })
}

// AddPeerAddrs records peer addresses; see [Tx.AddPeerAddrs].
func (s *Store) AddPeerAddrs(ctx context.Context, id []byte, addrs []string, seen time.Time) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.AddPeerAddrs(id, addrs, seen) })
}

// Peer returns a known peer; see [Tx.Peer].
func (s *Store) Peer(ctx context.Context, id []byte) (Peer, error) {
	return view(ctx, s, func(tx *Tx) (Peer, error) { return tx.Peer(id) })
}

// Peers lists the known peers; see [Tx.Peers].
func (s *Store) Peers(ctx context.Context) ([]Peer, error) {
	return view(ctx, s, (*Tx).Peers)
}

// SetVerified sets or clears a peer's verified flag; see [Tx.SetVerified].
func (s *Store) SetVerified(ctx context.Context, id, identityKey []byte) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.SetVerified(id, identityKey) })
}

// Verified returns the key verified for a peer; see [Tx.Verified].
func (s *Store) Verified(ctx context.Context, id []byte) ([]byte, error) {
	return view(ctx, s, func(tx *Tx) ([]byte, error) { return tx.Verified(id) })
}
