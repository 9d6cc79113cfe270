package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/identity"
)

// TokenPrefix starts every invite token; the digit is the token format version.
const TokenPrefix = "tchat1"

const (
	inviteLabel   = "tchat invite v1"
	proofLabel    = "tchat join proof v1"
	inviteIDSize  = 16
	roomSize      = 32
	tokenVersion  = 1
	signatureSize = 64
)

// Errors about invite tokens.
var (
	// ErrInvalidInvite: the token is mistyped, truncated, forged or not a tchat token.
	ErrInvalidInvite = errors.New("chat: invalid invite token")
	// ErrInviteExpired: the token's expiry has passed.
	ErrInviteExpired = errors.New("chat: invite token expired")
)

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Invite is the content of an invite token.
type Invite struct {
	GroupID    []byte
	Name       string
	RoomSecret []byte
	Inviter    peer.ID
	Addrs      []ma.Multiaddr
	ID         []byte // invite id, 16 bytes
	Expires    time.Time
	MaxUses    uint32 // 0: no limit
}

func (inv *Invite) body() ([]byte, error) {
	pub, err := identity.PublicKeyFromPeerID(inv.Inviter)
	if err != nil {
		return nil, err
	}
	if len(inv.RoomSecret) != roomSize || len(inv.ID) != inviteIDSize || len(inv.GroupID) == 0 || len(inv.GroupID) > 255 || len(inv.Name) > 255 {
		return nil, ErrInvalidInvite
	}
	var b cryptobyte.Builder
	b.AddUint8(tokenVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(inv.GroupID) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(inv.Name)) })
	b.AddBytes(inv.RoomSecret)
	b.AddBytes(pub.Bytes())
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, a := range inv.Addrs {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(a.Bytes()) })
		}
	})
	b.AddBytes(inv.ID)
	b.AddUint64(uint64(inv.Expires.Unix()))
	b.AddUint32(inv.MaxUses)
	return b.Bytes()
}

// encodeInvite signs inv with the inviter's identity and returns the token.
func encodeInvite(inv *Invite, id *identity.Identity) (string, error) {
	if id.PeerID() != inv.Inviter {
		return "", errors.New("chat: the inviter must sign its own invite")
	}
	body, err := inv.body()
	if err != nil {
		return "", err
	}
	sig, err := id.Sign(inviteLabel, body)
	if err != nil {
		return "", err
	}
	return TokenPrefix + strings.ToLower(tokenEncoding.EncodeToString(append(body, sig...))), nil
}

// ParseInvite decodes a token and verifies the inviter's signature. It does not check the
// expiry (see Invite.Check).
func ParseInvite(token string) (*Invite, error) {
	token = strings.Join(strings.Fields(token), "")
	if len(token) < len(TokenPrefix) || !strings.EqualFold(token[:len(TokenPrefix)], TokenPrefix) {
		return nil, fmt.Errorf("%w: it does not start with %q", ErrInvalidInvite, TokenPrefix)
	}
	raw, err := tokenEncoding.DecodeString(strings.ToUpper(token[len(TokenPrefix):]))
	if err != nil || len(raw) < signatureSize+1 {
		return nil, fmt.Errorf("%w: mistyped or truncated", ErrInvalidInvite)
	}
	body, sig := raw[:len(raw)-signatureSize], raw[len(raw)-signatureSize:]
	s := cryptobyte.String(body)
	var (
		version           uint8
		gid, name, addrs  cryptobyte.String
		room, pubb, invID []byte
		expires           uint64
		maxUses           uint32
	)
	if !s.ReadUint8(&version) || version != tokenVersion {
		return nil, fmt.Errorf("%w: unknown token version", ErrInvalidInvite)
	}
	if !s.ReadUint8LengthPrefixed(&gid) || len(gid) == 0 || !s.ReadUint8LengthPrefixed(&name) ||
		!s.ReadBytes(&room, roomSize) || !s.ReadBytes(&pubb, identity.PublicKeySize) ||
		!s.ReadUint16LengthPrefixed(&addrs) || !s.ReadBytes(&invID, inviteIDSize) ||
		!s.ReadUint64(&expires) || !s.ReadUint32(&maxUses) || !s.Empty() {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidInvite)
	}
	pub, err := identity.ParsePublicKey(pubb)
	if err != nil {
		return nil, fmt.Errorf("%w: bad inviter key", ErrInvalidInvite)
	}
	if !pub.Verify(inviteLabel, body, sig) {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalidInvite)
	}
	inviter, err := pub.PeerID()
	if err != nil {
		return nil, fmt.Errorf("%w: bad inviter key", ErrInvalidInvite)
	}
	inv := &Invite{
		GroupID:    append([]byte(nil), gid...),
		Name:       string(name),
		RoomSecret: append([]byte(nil), room...),
		Inviter:    inviter,
		ID:         append([]byte(nil), invID...),
		Expires:    time.Unix(int64(expires), 0),
		MaxUses:    maxUses,
	}
	for !addrs.Empty() {
		var a cryptobyte.String
		if !addrs.ReadUint16LengthPrefixed(&a) {
			return nil, fmt.Errorf("%w: malformed addresses", ErrInvalidInvite)
		}
		m, err := ma.NewMultiaddrBytes(a)
		if err != nil {
			return nil, fmt.Errorf("%w: malformed address", ErrInvalidInvite)
		}
		inv.Addrs = append(inv.Addrs, m)
	}
	return inv, nil
}

// Check reports whether the invite can still be used at now.
func (inv *Invite) Check(now time.Time) error {
	if !inv.Expires.IsZero() && inv.Expires.Unix() != 0 && !now.Before(inv.Expires) {
		return fmt.Errorf("%w: it expired at %s; ask for a new invite", ErrInviteExpired, inv.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// joinProof proves to the inviter that the joiner holds the token: a MAC under the room
// secret binding the invite id, the joiner's peer id and its KeyPackage.
func joinProof(room, inviteID []byte, joiner peer.ID, keyPackage []byte) []byte {
	kp := sha256.Sum256(keyPackage)
	m := hmac.New(sha256.New, room)
	m.Write([]byte(proofLabel))
	m.Write(inviteID)
	m.Write([]byte(joiner))
	m.Write(kp[:])
	return append(append([]byte(nil), inviteID...), m.Sum(nil)...)
}

// checkJoinProof verifies a proof and returns the invite id it names.
func checkJoinProof(room []byte, proof []byte, joiner peer.ID, keyPackage []byte) ([]byte, bool) {
	if len(proof) != inviteIDSize+sha256.Size {
		return nil, false
	}
	want := joinProof(room, proof[:inviteIDSize], joiner, keyPackage)
	return proof[:inviteIDSize], hmac.Equal(want, proof)
}
