package signal

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

const (
	// maxSenderKeysPerPeer is how many of a member's sender keys are kept,
	// so that messages sealed before its rekeys still open when they come
	// late. A member rekeys whenever a commit removes someone and whenever
	// its branch loses to another; in a group with churn and partitions that
	// is several times within the epochs a late message may still come from
	// (the chat core keeps 16), and a message under a key dropped meanwhile
	// never opens. Four was too few: a 20-peer swarm with a partition and
	// three removals lost messages that way.
	maxSenderKeysPerPeer = 16
	distributionVersion  = 1
	// distributionSize is the size of an encoded distribution message.
	distributionSize = 1 + 4 + 4 + keySize + ed25519.PublicKeySize
	senderSigLabel   = "tchat signal sender key signature v1"
)

var (
	errDistribution = errors.New("signal: malformed sender key distribution")
	errKeyConflict  = errors.New("signal: sender key distribution conflicts with the key of its id")
)

// ownSenderKey is our sending chain and signature key in one group.
type ownSenderKey struct {
	keyID     uint32
	sign      ed25519.PrivateKey
	ck        [keySize]byte // chain key for message number iteration
	iteration uint32
	sentTo    map[string]bool // members a distribution was sealed for
}

func newOwnSenderKey() *ownSenderKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("signal: internal error: " + err.Error())
	}
	k := &ownSenderKey{keyID: randomID(), sign: priv, sentTo: make(map[string]bool)}
	rand.Read(k.ck[:])
	return k
}

// distribution encodes the sender key distribution message: the key id, the
// current iteration and chain key, and the public signature key. A member
// who gets it can open this and later messages, none before.
//
//	version    1 byte (1)
//	key id     4 bytes
//	iteration  4 bytes
//	chain key  32 bytes
//	signing    32 bytes, Ed25519 public key
func (k *ownSenderKey) distribution() []byte {
	b := make([]byte, 0, distributionSize)
	b = append(b, distributionVersion)
	b = appendUint32(b, k.keyID)
	b = appendUint32(b, k.iteration)
	b = append(b, k.ck[:]...)
	return append(b, k.sign.Public().(ed25519.PublicKey)...)
}

// next returns the iteration and message key of the next message and moves
// the chain on.
func (k *ownSenderKey) next() (uint32, [keySize]byte, error) {
	if k.iteration == ^uint32(0) {
		return 0, [keySize]byte{}, errTooMany
	}
	next, mk := kdfCK(&k.ck)
	k.ck = next
	it := k.iteration
	k.iteration++
	return it, mk, nil
}

func (k *ownSenderKey) destroy() {
	clear(k.ck[:])
	clear(k.sign)
}

// senderKey is a member's sender key as we received it.
type senderKey struct {
	keyID     uint32
	verify    ed25519.PublicKey
	ck        [keySize]byte // chain key for message number iteration
	iteration uint32
	// base is the first message number the key could ever open: the
	// iteration of the distribution it was installed from, or of an
	// earlier one merged in since (see stageMerge). No message before base
	// ever opened; of those from base to iteration, the ones opened have
	// their keys deleted and the others have them in skipped. A merge only
	// adds keys before base, so an opened message never opens again.
	base    uint32
	skipped []skippedSenderKey // by message number, oldest first, all in [base, iteration), at most MaxSkippedKeys
}

type skippedSenderKey struct {
	n  uint32
	mk [keySize]byte
}

func parseDistribution(b []byte) (*senderKey, error) {
	s := cryptobyte.String(b)
	k := new(senderKey)
	var v uint8
	var verify []byte
	if !s.ReadUint8(&v) || v != distributionVersion || !s.ReadUint32(&k.keyID) ||
		!s.ReadUint32(&k.iteration) || !readArray(&s, k.ck[:]) ||
		!s.ReadBytes(&verify, ed25519.PublicKeySize) || !s.Empty() {
		return nil, errDistribution
	}
	k.verify = ed25519.PublicKey(slices.Clone(verify))
	k.base = k.iteration
	return k, nil
}

// stageMerge stages taking d, a distribution of k's key id that arrives
// after k was installed (the same member's key, sent again), into k. It
// returns nil when d adds nothing: when it starts at k.base or later (the
// keys it gives are those k had: taking them would open again the messages
// already opened), or more than MaxSkip before k.base (too many keys to
// make). Otherwise it returns a new senderKey, k with the message keys from
// d's iteration up to k.base added to skipped (those of the lowest numbers
// dropped beyond MaxSkippedKeys, as apply does) and its base lowered to d's
// iteration: keys of messages that never opened under k, which could not
// have made them. k is unchanged. A d with another signature key than k's
// is no copy of k but a conflicting key under the same id: errKeyConflict.
func (k *senderKey) stageMerge(d *senderKey) (*senderKey, error) {
	if !k.verify.Equal(d.verify) {
		return nil, errKeyConflict
	}
	if d.iteration >= k.base || k.base-d.iteration > MaxSkip {
		return nil, nil
	}
	n := int(k.base - d.iteration)
	drop := max(0, n+len(k.skipped)-MaxSkippedKeys) // at most n, as len(k.skipped) <= MaxSkippedKeys
	m := &senderKey{keyID: k.keyID, verify: k.verify, ck: k.ck, iteration: k.iteration, base: d.iteration}
	m.skipped = make([]skippedSenderKey, 0, n-drop+len(k.skipped))
	ck := d.ck
	for it := d.iteration; it < k.base; it++ {
		next, mk := kdfCK(&ck)
		if it-d.iteration >= uint32(drop) {
			m.skipped = append(m.skipped, skippedSenderKey{it, mk})
		}
		clear(mk[:])
		ck = next
		clear(next[:])
	}
	clear(ck[:])
	m.skipped = append(m.skipped, k.skipped...)
	return m, nil
}

// skUpdate is what opening one message changes in a sender key.
type skUpdate struct {
	ck        [keySize]byte
	iteration uint32
	used      int // index in skipped, or -1
	add       []skippedSenderKey
}

// stage finds the message key for iteration n, opens the message with it,
// and returns the change to apply, having changed nothing.
func (k *senderKey) stage(n uint32, open func(mk *[keySize]byte) ([]byte, error)) ([]byte, *skUpdate, error) {
	if n < k.iteration {
		for i := range k.skipped {
			if k.skipped[i].n == n {
				pt, err := open(&k.skipped[i].mk)
				if err != nil {
					return nil, nil, err
				}
				return pt, &skUpdate{ck: k.ck, iteration: k.iteration, used: i}, nil
			}
		}
		return nil, nil, errUsedKey
	}
	if uint64(n)-uint64(k.iteration) > MaxSkip || n == ^uint32(0) {
		return nil, nil, errTooMany
	}
	u := &skUpdate{ck: k.ck, iteration: k.iteration, used: -1}
	for u.iteration < n {
		next, mk := kdfCK(&u.ck)
		u.add = append(u.add, skippedSenderKey{u.iteration, mk})
		u.ck = next
		u.iteration++
	}
	next, mk := kdfCK(&u.ck)
	u.ck = next
	u.iteration++
	pt, err := open(&mk)
	clear(mk[:])
	if err != nil {
		for i := range u.add {
			clear(u.add[i].mk[:])
		}
		return nil, nil, err
	}
	return pt, u, nil
}

func (k *senderKey) apply(u *skUpdate) {
	if u.used >= 0 {
		clear(k.skipped[u.used].mk[:])
		k.skipped = slices.Delete(k.skipped, u.used, u.used+1)
	}
	k.skipped = append(k.skipped, u.add...)
	if over := len(k.skipped) - MaxSkippedKeys; over > 0 {
		for i := range over {
			clear(k.skipped[i].mk[:])
		}
		k.skipped = slices.Clone(k.skipped[over:])
	}
	k.ck, k.iteration = u.ck, u.iteration
}

func (k *senderKey) destroy() {
	clear(k.ck[:])
	for i := range k.skipped {
		clear(k.skipped[i].mk[:])
	}
}

// signedDigest returns what a group message's signature signs: a SHA-256
// digest, so a large message is hashed once rather than copied and hashed
// twice by Ed25519.
func signedDigest(ad, sender, msg []byte) []byte {
	h := sha256.New()
	h.Write([]byte(senderSigLabel))
	h.Write([]byte{byte(len(ad) >> 8), byte(len(ad))})
	h.Write(ad)
	h.Write([]byte{byte(len(sender))})
	h.Write(sender)
	h.Write(msg)
	return h.Sum(nil)
}
