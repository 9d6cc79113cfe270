package proto

import (
	"errors"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// The messages of the direct protocols. They are written in the TLS
// presentation language (RFC 8446, Section 3), as MLS is:
//
//	struct {
//	    opaque group_id<0..255>;
//	    opaque key_package<0..2^32-1>;
//	    opaque invite_proof<0..2^32-1>;
//	} JoinRequest;
//
//	struct {
//	    opaque welcome<0..2^32-1>;
//	    opaque ratchet_tree<0..2^32-1>; /* optional<Node> ratchet_tree<V> of the new epoch; */
//	} JoinResponse;                     /*   empty: the Welcome carries it */
//
//	struct {
//	    opaque group_id<0..255>;
//	    uint64 since_epoch;       /* commits (and messages, see recent_since) from this epoch */
//	    uint8  want;              /* bit 0 commits, bit 1 recent, bit 2 group_info */
//	    uint32 max_items;
//	    uint64 recent_since;      /* messages from this epoch; 0: since_epoch */
//	    opaque sender<0..255>;    /* only this member's messages (its credential identity); empty: all */
//	    uint64 after_epoch;       /* resume strictly after the responder's cursor (after_epoch, after_seq); */
//	    uint64 after_seq;         /*   both 0: from the start */
//	} SyncRequest;
//
//	struct {
//	    uint8  more;              /* 0 or 1 */
//	    Blob   commits<0..2^32-1>;
//	    Blob   recent<0..2^32-1>;
//	    opaque group_info<0..2^32-1>;
//	    uint64 next_epoch;        /* with more: pass as after_epoch/after_seq to get the rest */
//	    uint64 next_seq;
//	} SyncResponse;               /* struct { opaque data<0..2^32-1>; } Blob; */
//
//	struct {
//	    opaque group_id<0..255>;
//	    uint16 cipher_suite;
//	} KeyPackageRequest;
//
//	struct { opaque key_package<0..2^32-1>; } KeyPackageResponse;
//
//	struct {
//	    opaque group_id<1..255>;
//	    opaque welcome<1..2^32-1>;
//	    opaque room_secret<1..64>;
//	    opaque name<0..255>;      /* UTF-8 */
//	    opaque ratchet_tree<0..2^32-1>; /* as in JoinResponse */
//	} WelcomeRequest;
//
//	struct {} WelcomeResponse;    /* empty: an acknowledgement */
//
//	struct {
//	    opaque group_id<1..255>;
//	    opaque key<1..2^16-1>;    /* the signal layer's sender key, sealed pairwise */
//	} SenderKeyRequest;
//
//	struct {} SenderKeyResponse;  /* empty: the key was installed */
//
// Every response frame starts with a status byte: 0 and the response, or a
// Code and opaque reason<0..255> (UTF-8, for people, never parsed).
// Decoders accept exactly one encoding of each value: no trailing bytes, no
// "more" other than 0 or 1, no unknown want bits, no length outside the range
// its vector declares, no name that is not UTF-8.

// ErrMalformed is returned for a message that does not parse.
var ErrMalformed = errors.New("proto: malformed message")

// MaxGroupID is the longest group id the protocols carry.
const MaxGroupID = 255

// MaxSender is the longest sender identity a SyncRequest carries.
const MaxSender = 255

// MaxReason is the longest reason text an error response carries; longer
// reasons are cut.
const MaxReason = 255

// MaxRoomSecret is the longest room secret a WelcomeRequest carries.
const MaxRoomSecret = 64

// MaxGroupName is the longest group name, in bytes, a WelcomeRequest carries.
const MaxGroupName = 255

// Want says which parts of a group's recent past a SyncRequest asks for.
type Want uint8

const (
	// WantCommits asks for the handshake messages (commits) since SinceEpoch.
	WantCommits Want = 1 << iota
	// WantRecent asks for recent application ciphertexts.
	WantRecent
	// WantGroupInfo asks for a GroupInfo, for an external commit (RFC 9420, Section 12.4.3.2).
	WantGroupInfo
	// WantSenderKey tells the responder, when it is the member named in Sender, that
	// the requester lacks its signal sender key: its messages do not open there though
	// they came. The responder hands the key over again, on a fresh session, and sends
	// its messages since SinceEpoch again.
	WantSenderKey

	wantAll = WantCommits | WantRecent | WantGroupInfo | WantSenderKey
)

// JoinRequest is sent on /tchat/join/2 by a peer that wants to be added to a
// group: its KeyPackage (RFC 9420, Section 10) and a proof that it holds an
// invite. Both are opaque here; the chat core checks them.
type JoinRequest struct {
	GroupID     []byte
	KeyPackage  []byte
	InviteProof []byte
}

// JoinResponse carries the Welcome (RFC 9420, Section 12.4.3.1) for the joiner,
// and the ratchet tree of the epoch it joins when the Welcome does not carry it.
// (The Welcome also travels with its commit on the group's topic, to every member:
// the tree, about 1.4 KB per member with post-quantum keys, goes only to the joiner.)
type JoinResponse struct {
	Welcome     []byte
	RatchetTree []byte
}

// SyncRequest asks on /tchat/sync/1 for what a member missed of a group.
type SyncRequest struct {
	GroupID []byte
	// SinceEpoch is the first epoch whose commit is asked for, and the first
	// epoch whose messages are, unless RecentSince says otherwise.
	SinceEpoch uint64
	Want       Want
	// MaxItems bounds the number of commits plus recent messages in the
	// answer; 0 lets the responder choose.
	MaxItems uint32
	// RecentSince is the first epoch whose messages are asked for; 0 means
	// SinceEpoch (see RecentFrom).
	RecentSince uint64
	// Sender, if not empty, asks only for the messages of this member (its
	// credential identity, at most MaxSender bytes). A responder that does
	// not know the sender of a message sends it anyway; commits are not
	// filtered.
	Sender []byte
	// After resumes a paged answer strictly after the responder's position
	// given as SyncResponse.Next; the zero value asks from the start.
	After SyncCursor
}

// RecentFrom returns the first epoch whose messages the request asks for:
// RecentSince, or SinceEpoch if RecentSince is 0.
func (m *SyncRequest) RecentFrom() uint64 {
	if m.RecentSince == 0 {
		return m.SinceEpoch
	}
	return m.RecentSince
}

// SyncCursor is a position in the responder's log of a group: an epoch and the
// responder's own sequence number of an item within it. It means nothing to
// another member; a requester only passes it back to the responder that gave
// it.
type SyncCursor struct {
	Epoch, Seq uint64
}

// SyncResponse answers a SyncRequest. More says the responder has more than it
// sent; to get the rest, send the same request again with After set to Next.
type SyncResponse struct {
	Commits   [][]byte
	Recent    [][]byte
	GroupInfo []byte
	More      bool
	// Next is the responder's position of the last item it sent (the rest
	// starts strictly after it); meaningful with More.
	Next SyncCursor
}

// KeyPackageRequest asks on /tchat/kp/1 for one of a peer's KeyPackages, to add
// it to a group. GroupID (optional) tells the peer which group it is for.
type KeyPackageRequest struct {
	GroupID     []byte
	CipherSuite uint16
}

// KeyPackageResponse carries a KeyPackage (RFC 9420, Section 10).
type KeyPackageResponse struct {
	KeyPackage []byte
}

// WelcomeRequest is sent on /tchat/welcome/2 by a member that added the
// receiving peer to a group directly (with a KeyPackage fetched over
// /tchat/kp/1): the Welcome (RFC 9420, Section 12.4.3.1), the group's room
// secret and its name, which the peer could not otherwise learn since it
// holds no invite. GroupID, Welcome and RoomSecret are required. Welcome is
// bounded only by the request frame limit (Limits.MaxWelcome).
type WelcomeRequest struct {
	GroupID    []byte
	Welcome    []byte
	RoomSecret []byte
	// Name is the group's name (UTF-8, at most MaxGroupName bytes; may be empty).
	Name string
	// RatchetTree is the tree of the epoch the Welcome is for, when the Welcome does
	// not carry it (see JoinResponse).
	RatchetTree []byte
}

// WelcomeResponse acknowledges a WelcomeRequest: the peer took the Welcome.
// A peer that does not want it refuses with an error code instead.
type WelcomeResponse struct{}

func addOpaque8(b *cryptobyte.Builder, v []byte) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func addOpaque32(b *cryptobyte.Builder, v []byte) {
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func addBlobs(b *cryptobyte.Builder, vs [][]byte) {
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, v := range vs {
			addOpaque32(b, v)
		}
	})
}

func readOpaque8(s *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&v) {
		return false
	}
	*out = nilIfEmpty(v)
	return true
}

// readPrefixed32 reads a uint32 length and that many bytes. The length is
// checked against what is left before anything is taken; nothing is allocated.
func readPrefixed32(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint32
	if !s.ReadUint32(&n) || uint64(n) > uint64(len(*s)) {
		return false
	}
	return s.ReadBytes((*[]byte)(out), int(n))
}

func readOpaque32(s *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !readPrefixed32(s, &v) {
		return false
	}
	*out = nilIfEmpty(v)
	return true
}

// readBlobs reads a vector of opaque values. The slice header array grows with
// what was actually read, never with a count the peer claims.
func readBlobs(s *cryptobyte.String, out *[][]byte) bool {
	var v cryptobyte.String
	if !readPrefixed32(s, &v) {
		return false
	}
	var items [][]byte
	for !v.Empty() {
		var item []byte
		if !readOpaque32(&v, &item) {
			return false
		}
		if item == nil {
			item = []byte{}
		}
		items = append(items, item)
	}
	*out = items
	return true
}

// nilIfEmpty keeps decoded empty fields nil, so decode(encode(x)) == x for
// values whose empty fields are nil.
func nilIfEmpty(v []byte) []byte {
	if len(v) == 0 {
		return nil
	}
	return v
}

func build(f func(b *cryptobyte.Builder)) ([]byte, error) {
	var b cryptobyte.Builder
	f(&b)
	return b.Bytes()
}

// MarshalBinary encodes the request.
func (m *JoinRequest) MarshalBinary() ([]byte, error) {
	if len(m.GroupID) > MaxGroupID {
		return nil, errGroupIDTooLong
	}
	return build(func(b *cryptobyte.Builder) {
		addOpaque8(b, m.GroupID)
		addOpaque32(b, m.KeyPackage)
		addOpaque32(b, m.InviteProof)
	})
}

// UnmarshalBinary decodes a request. The fields alias data.
func (m *JoinRequest) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var v JoinRequest
	if !readOpaque8(&s, &v.GroupID) || !readOpaque32(&s, &v.KeyPackage) ||
		!readOpaque32(&s, &v.InviteProof) || !s.Empty() {
		return ErrMalformed
	}
	*m = v
	return nil
}

// MarshalBinary encodes the response.
func (m *JoinResponse) MarshalBinary() ([]byte, error) {
	return build(func(b *cryptobyte.Builder) {
		addOpaque32(b, m.Welcome)
		addOpaque32(b, m.RatchetTree)
	})
}

// UnmarshalBinary decodes a response. The fields alias data.
func (m *JoinResponse) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var v JoinResponse
	if !readOpaque32(&s, &v.Welcome) || !readOpaque32(&s, &v.RatchetTree) || !s.Empty() {
		return ErrMalformed
	}
	*m = v
	return nil
}

// MarshalBinary encodes the request.
func (m *SyncRequest) MarshalBinary() ([]byte, error) {
	if len(m.GroupID) > MaxGroupID {
		return nil, errGroupIDTooLong
	}
	if m.Want&^wantAll != 0 {
		return nil, errors.New("proto: unknown want bits")
	}
	if len(m.Sender) > MaxSender {
		return nil, errors.New("proto: sender longer than 255 bytes")
	}
	return build(func(b *cryptobyte.Builder) {
		addOpaque8(b, m.GroupID)
		b.AddUint64(m.SinceEpoch)
		b.AddUint8(uint8(m.Want))
		b.AddUint32(m.MaxItems)
		b.AddUint64(m.RecentSince)
		addOpaque8(b, m.Sender)
		b.AddUint64(m.After.Epoch)
		b.AddUint64(m.After.Seq)
	})
}

// UnmarshalBinary decodes a request. The fields alias data.
func (m *SyncRequest) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var v SyncRequest
	var want uint8
	if !readOpaque8(&s, &v.GroupID) || !s.ReadUint64(&v.SinceEpoch) ||
		!s.ReadUint8(&want) || !s.ReadUint32(&v.MaxItems) ||
		!s.ReadUint64(&v.RecentSince) || !readOpaque8(&s, &v.Sender) ||
		!s.ReadUint64(&v.After.Epoch) || !s.ReadUint64(&v.After.Seq) || !s.Empty() ||
		Want(want)&^wantAll != 0 {
		return ErrMalformed
	}
	v.Want = Want(want)
	*m = v
	return nil
}

// MarshalBinary encodes the response.
func (m *SyncResponse) MarshalBinary() ([]byte, error) {
	return build(func(b *cryptobyte.Builder) {
		var more uint8
		if m.More {
			more = 1
		}
		b.AddUint8(more)
		addBlobs(b, m.Commits)
		addBlobs(b, m.Recent)
		addOpaque32(b, m.GroupInfo)
		b.AddUint64(m.Next.Epoch)
		b.AddUint64(m.Next.Seq)
	})
}

// UnmarshalBinary decodes a response. The fields alias data.
func (m *SyncResponse) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var v SyncResponse
	var more uint8
	if !s.ReadUint8(&more) || more > 1 || !readBlobs(&s, &v.Commits) ||
		!readBlobs(&s, &v.Recent) || !readOpaque32(&s, &v.GroupInfo) ||
		!s.ReadUint64(&v.Next.Epoch) || !s.ReadUint64(&v.Next.Seq) || !s.Empty() {
		return ErrMalformed
	}
	v.More = more == 1
	*m = v
	return nil
}

// MarshalBinary encodes the request.
func (m *KeyPackageRequest) MarshalBinary() ([]byte, error) {
	if len(m.GroupID) > MaxGroupID {
		return nil, errGroupIDTooLong
	}
	return build(func(b *cryptobyte.Builder) {
		addOpaque8(b, m.GroupID)
		b.AddUint16(m.CipherSuite)
	})
}

// UnmarshalBinary decodes a request. The fields alias data.
func (m *KeyPackageRequest) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var v KeyPackageRequest
	if !readOpaque8(&s, &v.GroupID) || !s.ReadUint16(&v.CipherSuite) || !s.Empty() {
		return ErrMalformed
	}
	*m = v
	return nil
}

// MarshalBinary encodes the response.
func (m *KeyPackageResponse) MarshalBinary() ([]byte, error) {
	return build(func(b *cryptobyte.Builder) { addOpaque32(b, m.KeyPackage) })
}

// UnmarshalBinary decodes a response. The fields alias data.
func (m *KeyPackageResponse) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var v KeyPackageResponse
	if !readOpaque32(&s, &v.KeyPackage) || !s.Empty() {
		return ErrMalformed
	}
	*m = v
	return nil
}

// check reports what makes the request invalid, for MarshalBinary and
// UnmarshalBinary alike.
func (m *WelcomeRequest) check() error {
	switch {
	case len(m.GroupID) == 0:
		return errors.New("proto: welcome request without a group id")
	case len(m.GroupID) > MaxGroupID:
		return errGroupIDTooLong
	case len(m.Welcome) == 0:
		return errors.New("proto: welcome request without a Welcome")
	case len(m.RoomSecret) == 0:
		return errors.New("proto: welcome request without a room secret")
	case len(m.RoomSecret) > MaxRoomSecret:
		return errors.New("proto: room secret longer than 64 bytes")
	case len(m.Name) > MaxGroupName:
		return errors.New("proto: group name longer than 255 bytes")
	case !utf8.ValidString(m.Name):
		return errors.New("proto: group name is not UTF-8")
	}
	return nil
}

// MarshalBinary encodes the request.
func (m *WelcomeRequest) MarshalBinary() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return build(func(b *cryptobyte.Builder) {
		addOpaque8(b, m.GroupID)
		addOpaque32(b, m.Welcome)
		addOpaque8(b, m.RoomSecret)
		addOpaque8(b, []byte(m.Name))
		addOpaque32(b, m.RatchetTree)
	})
}

// UnmarshalBinary decodes a request. The fields but Name alias data.
func (m *WelcomeRequest) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var v WelcomeRequest
	var name []byte
	if !readOpaque8(&s, &v.GroupID) || !readOpaque32(&s, &v.Welcome) ||
		!readOpaque8(&s, &v.RoomSecret) || !readOpaque8(&s, &name) || !readOpaque32(&s, &v.RatchetTree) || !s.Empty() {
		return ErrMalformed
	}
	v.Name = string(name)
	if v.check() != nil {
		return ErrMalformed
	}
	*m = v
	return nil
}

// MarshalBinary encodes the response: no bytes.
func (m *WelcomeResponse) MarshalBinary() ([]byte, error) {
	return []byte{}, nil
}

// UnmarshalBinary decodes a response, which must be empty.
func (m *WelcomeResponse) UnmarshalBinary(data []byte) error {
	if len(data) != 0 {
		return ErrMalformed
	}
	*m = WelcomeResponse{}
	return nil
}

// MaxSenderKey is the longest sealed sender key a SenderKeyRequest carries.
const MaxSenderKey = 1<<16 - 1

// SenderKeyRequest is sent on /tchat/senderkey/1 by a member of a group to
// another: its sender key for the group, sealed for the receiver alone by the
// signal layer, so that its group messages need not carry it. Both fields are
// required.
type SenderKeyRequest struct {
	GroupID []byte
	Key     []byte
}

// SenderKeyResponse acknowledges a SenderKeyRequest: the key was installed.
type SenderKeyResponse struct{}

func (m *SenderKeyRequest) check() error {
	switch {
	case len(m.GroupID) == 0:
		return errors.New("proto: sender key request without a group id")
	case len(m.GroupID) > MaxGroupID:
		return errGroupIDTooLong
	case len(m.Key) == 0:
		return errors.New("proto: sender key request without a key")
	case len(m.Key) > MaxSenderKey:
		return errors.New("proto: sender key longer than 65535 bytes")
	}
	return nil
}

// MarshalBinary encodes the request.
func (m *SenderKeyRequest) MarshalBinary() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return build(func(b *cryptobyte.Builder) {
		addOpaque8(b, m.GroupID)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.Key) })
	})
}

// UnmarshalBinary decodes a request. The fields alias data.
func (m *SenderKeyRequest) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var v SenderKeyRequest
	var key cryptobyte.String
	if !readOpaque8(&s, &v.GroupID) || !s.ReadUint16LengthPrefixed(&key) || !s.Empty() {
		return ErrMalformed
	}
	v.Key = key
	if v.check() != nil {
		return ErrMalformed
	}
	*m = v
	return nil
}

// MarshalBinary encodes the response: no bytes.
func (m *SenderKeyResponse) MarshalBinary() ([]byte, error) { return []byte{}, nil }

// UnmarshalBinary decodes a response, which must be empty.
func (m *SenderKeyResponse) UnmarshalBinary(data []byte) error {
	if len(data) != 0 {
		return ErrMalformed
	}
	return nil
}

var errGroupIDTooLong = errors.New("proto: group id longer than 255 bytes")

// encodeError encodes an error response: the code and the reason, cut to
// MaxReason bytes.
func encodeError(code Code, reason string) []byte {
	if len(reason) > MaxReason {
		reason = reason[:MaxReason]
	}
	out := make([]byte, 0, 2+len(reason))
	out = append(out, byte(code), byte(len(reason)))
	return append(out, reason...)
}

// decodeResponse splits a response frame into the body of a success or a
// *RemoteError.
func decodeResponse(frame []byte) ([]byte, error) {
	s := cryptobyte.String(frame)
	var status uint8
	if !s.ReadUint8(&status) {
		return nil, ErrMalformed
	}
	if Code(status) == codeOK {
		return []byte(s), nil
	}
	var reason []byte
	if !readOpaque8(&s, &reason) || !s.Empty() {
		return nil, ErrMalformed
	}
	return nil, &RemoteError{Code: Code(status), Reason: string(reason)}
}
