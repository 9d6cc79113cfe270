package chat

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/identity"
)

// A group's topic carries frames: one kind byte, then the body.
//
//	'm' application message   the cascade envelope of the group's policy
//	'p' proposal              u64 epoch, the handshake envelope (mls,aes)
//	'q' proposals             u64 epoch, two or more opaque32 handshake envelopes
//	'c' commit                u64 epoch, opaque32 handshake envelope, opaque32 Welcome
//	'h' heartbeat             see heartbeat
//
// The epoch of proposals and commits is in clear (it is in the MLS header too, under the
// aes layer) so that a member can tell a commit of a past epoch, a competing one, from a
// future one without opening it.
const (
	frameApp       = 'm'
	frameProposal  = 'p'
	frameProposals = 'q'
	frameCommit    = 'c'
	frameHeartbeat = 'h'
)

var errFrame = errors.New("chat: malformed frame")

type commitFrame struct {
	epoch   uint64
	hs      []byte // the handshake envelope
	welcome []byte // nil if the commit adds nobody
}

func (f *commitFrame) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(frameCommit)
	b.AddUint64(f.epoch)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.hs) })
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.welcome) })
	return b.BytesOrPanic()
}

func parseCommitFrame(data []byte) (*commitFrame, error) {
	s := cryptobyte.String(data)
	var kind uint8
	var f commitFrame
	var hs, w cryptobyte.String
	if !s.ReadUint8(&kind) || kind != frameCommit || !s.ReadUint64(&f.epoch) ||
		!readOpaque32(&s, &hs) || !readOpaque32(&s, &w) || !s.Empty() || len(hs) == 0 {
		return nil, errFrame
	}
	f.hs = []byte(hs)
	if len(w) > 0 {
		f.welcome = []byte(w)
	}
	return &f, nil
}

// proposalFrame is one member's proposals for an epoch: one ('p') or several ('q'),
// which a member sends together so that the committer takes them in one commit.
type proposalFrame struct {
	epoch uint64
	hs    [][]byte // the handshake envelopes, at least one
}

// maxFrameProposals is the most proposals one frame carries (about 3 KB each with a
// post-quantum KeyPackage); a member with more sends several frames.
const maxFrameProposals = 32

func (f *proposalFrame) marshal() []byte {
	if len(f.hs) == 1 {
		b := make([]byte, 0, 9+len(f.hs[0]))
		b = append(b, frameProposal)
		b = appendUint64(b, f.epoch)
		return append(b, f.hs[0]...)
	}
	var b cryptobyte.Builder
	b.AddUint8(frameProposals)
	b.AddUint64(f.epoch)
	for _, hs := range f.hs {
		b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(hs) })
	}
	return b.BytesOrPanic()
}

func parseProposalFrame(data []byte) (*proposalFrame, error) {
	s := cryptobyte.String(data)
	var kind uint8
	var f proposalFrame
	if !s.ReadUint8(&kind) || (kind != frameProposal && kind != frameProposals) || !s.ReadUint64(&f.epoch) || s.Empty() {
		return nil, errFrame
	}
	if kind == frameProposal {
		f.hs = [][]byte{[]byte(s)}
		return &f, nil
	}
	for !s.Empty() {
		var hs cryptobyte.String
		if !readOpaque32(&s, &hs) || len(hs) == 0 || len(f.hs) == maxFrameProposals {
			return nil, errFrame
		}
		f.hs = append(f.hs, []byte(hs))
	}
	if len(f.hs) < 2 {
		return nil, errFrame // one goes as 'p'
	}
	return &f, nil
}

func readOpaque32(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint32
	if !s.ReadUint32(&n) || uint64(n) > uint64(len(*s)) {
		return false
	}
	var b []byte
	if !s.ReadBytes(&b, int(n)) {
		return false
	}
	*out = b
	return true
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appFrame(envelope []byte) []byte {
	return append([]byte{frameApp}, envelope...)
}

// heartbeat is what each member says of itself every beat (Config.Heartbeat, less often
// in large groups), signed with its identity key: the epoch it is in and a prefix of that
// epoch's authenticator (two members with the same epoch and different authenticators
// are on different branches), and how many application messages it sent in each recent
// epoch (a member that received fewer asks for the rest over /tchat/sync/1), and how
// many it holds of senders that no longer say so themselves (see relayCounts).
type heartbeat struct {
	group    []byte
	identity []byte // 32 bytes
	epoch    uint64
	auth     []byte // authPrefix bytes
	timeMs   uint64
	nick     string
	counts   []epochCount
	relayed  []relayCount
	sig      []byte
}

type epochCount struct {
	epoch uint64
	count uint32
}

// relayCount is how many messages of sender, sealed in epoch, a member holds.
type relayCount struct {
	sender []byte // 32 bytes
	epoch  uint64
	count  uint32
}

const (
	heartbeatLabel = "tchat heartbeat v2"
	authPrefix     = 8
	maxCounts      = 32
	maxRelayed     = 16
)

func (h *heartbeat) signed() []byte {
	var b cryptobyte.Builder
	b.AddUint8(frameHeartbeat)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.group) })
	b.AddBytes(h.identity)
	b.AddUint64(h.epoch)
	b.AddBytes(h.auth)
	b.AddUint64(h.timeMs)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.nick)) })
	b.AddUint8(uint8(len(h.counts)))
	for _, c := range h.counts {
		b.AddUint64(c.epoch)
		b.AddUint32(c.count)
	}
	b.AddUint8(uint8(len(h.relayed)))
	for _, c := range h.relayed {
		b.AddBytes(c.sender)
		b.AddUint64(c.epoch)
		b.AddUint32(c.count)
	}
	return b.BytesOrPanic()
}

func (h *heartbeat) sign(id *identity.Identity) ([]byte, error) {
	if len(h.counts) > maxCounts {
		h.counts = h.counts[len(h.counts)-maxCounts:]
	}
	if len(h.relayed) > maxRelayed {
		h.relayed = h.relayed[:maxRelayed]
	}
	for _, c := range h.relayed {
		if len(c.sender) != 32 {
			return nil, errors.New("chat: heartbeat: relayed sender is not an identity")
		}
	}
	msg := h.signed()
	sig, err := id.Sign(heartbeatLabel, msg)
	if err != nil {
		return nil, err
	}
	return append(msg, sig...), nil
}

// parseHeartbeat parses a heartbeat frame and checks its signature.
func parseHeartbeat(data []byte) (*heartbeat, error) {
	h, err := decodeHeartbeat(data)
	if err != nil {
		return nil, err
	}
	pub, err := identity.ParsePublicKey(h.identity)
	if err != nil {
		return nil, errFrame
	}
	if !pub.Verify(heartbeatLabel, data[:len(data)-signatureSize], h.sig) {
		return nil, errors.New("chat: heartbeat signature does not verify")
	}
	return h, nil
}

// decodeHeartbeat parses a heartbeat frame without checking its signature: for frames
// that passed the topic validator, which did.
func decodeHeartbeat(data []byte) (*heartbeat, error) {
	if len(data) < signatureSize {
		return nil, errFrame
	}
	msg, sig := data[:len(data)-signatureSize], data[len(data)-signatureSize:]
	s := cryptobyte.String(msg)
	var h heartbeat
	var kind, n uint8
	var group, nick cryptobyte.String
	if !s.ReadUint8(&kind) || kind != frameHeartbeat || !s.ReadUint8LengthPrefixed(&group) ||
		!s.ReadBytes(&h.identity, 32) || !s.ReadUint64(&h.epoch) || !s.ReadBytes(&h.auth, authPrefix) ||
		!s.ReadUint64(&h.timeMs) || !s.ReadUint8LengthPrefixed(&nick) || !s.ReadUint8(&n) || n > maxCounts {
		return nil, errFrame
	}
	for range n {
		var c epochCount
		if !s.ReadUint64(&c.epoch) || !s.ReadUint32(&c.count) {
			return nil, errFrame
		}
		h.counts = append(h.counts, c)
	}
	if !s.ReadUint8(&n) || n > maxRelayed {
		return nil, errFrame
	}
	for range n {
		var c relayCount
		if !s.ReadBytes(&c.sender, 32) || !s.ReadUint64(&c.epoch) || !s.ReadUint32(&c.count) {
			return nil, errFrame
		}
		c.sender = append([]byte(nil), c.sender...)
		h.relayed = append(h.relayed, c)
	}
	if !s.Empty() || checkName("nickname", string(nick)) != nil {
		return nil, errFrame
	}
	h.group, h.nick, h.sig = []byte(group), string(nick), sig
	h.identity = append([]byte(nil), h.identity...)
	h.auth = append([]byte(nil), h.auth...)
	return &h, nil
}

// syncItem is one item of a /tchat/sync/1 answer: u64 epoch, then the frame.
func syncItem(epoch uint64, frame []byte) []byte {
	return append(appendUint64(make([]byte, 0, 8+len(frame)), epoch), frame...)
}

func parseSyncItem(b []byte) (uint64, []byte, bool) {
	s := cryptobyte.String(b)
	var e uint64
	if !s.ReadUint64(&e) || s.Empty() {
		return 0, nil, false
	}
	return e, []byte(s), true
}
