package signal

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/cryptobyte"
)

// MaxOneTimePrekeys bounds the one-time prekeys an Identity keeps
// outstanding; handing out more forgets the oldest.
const MaxOneTimePrekeys = 100

// Identity is a member's long-term signal keys: the identity DH key
// (X25519), the signed prekey (X25519), the signed post-quantum prekey
// (ML-KEM-768) and one-time prekeys, with the previous generation of the
// signed prekeys kept after a rotation so that late handshakes still
// complete. The Ed25519 signer, the member's identity key, signs the
// prekeys. One Identity serves all of a profile's conversations; it is safe
// for concurrent use.
type Identity struct {
	signer  crypto.Signer     // set at creation
	signPub ed25519.PublicKey // set at creation
	ik      *ecdh.PrivateKey  // set at creation

	mu     sync.Mutex
	spk    [2]xPrekey                  // current, previous; guarded by mu
	pq     [2]pqPrekey                 // current, previous; guarded by mu
	otks   map[uint32]*ecdh.PrivateKey // guarded by mu
	otkIDs []uint32                    // oldest first; guarded by mu
	bundle *Bundle                     // signed, for the current prekeys; guarded by mu
}

type xPrekey struct {
	id   uint32 // 0: none
	priv *ecdh.PrivateKey
}

type pqPrekey struct {
	id uint32 // 0: none
	dk *mlkem.DecapsulationKey768
}

// NewIdentity makes a member's signal keys. signer must be an Ed25519 key
// (its Public method returns an ed25519.PublicKey); ed25519.PrivateKey is one.
func NewIdentity(signer crypto.Signer) (*Identity, error) {
	ik, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signal: %w", err)
	}
	id, err := newIdentity(signer, ik)
	if err != nil {
		return nil, err
	}
	if err := id.RotatePrekeys(); err != nil {
		return nil, err
	}
	return id, nil
}

func newIdentity(signer crypto.Signer, ik *ecdh.PrivateKey) (*Identity, error) {
	pub, ok := signer.Public().(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("signal: identity signer is not an Ed25519 key")
	}
	return &Identity{signer: signer, signPub: pub, ik: ik, otks: make(map[uint32]*ecdh.PrivateKey)}, nil
}

func randomID() uint32 {
	var b [4]byte
	for {
		rand.Read(b[:])
		if id := binary.BigEndian.Uint32(b[:]); id != 0 {
			return id
		}
	}
}

// RotatePrekeys makes new signed prekeys (X25519 and ML-KEM-768) and signs
// a new bundle. The previous prekeys still answer handshakes until the next
// rotation. Publish the new Bundle (an MLS LeafNode update).
func (id *Identity) RotatePrekeys() error {
	spk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	old := id.bundle
	id.spk[1], id.pq[1] = id.spk[0], id.pq[0]
	id.spk[0] = xPrekey{randomID(), spk}
	id.pq[0] = pqPrekey{randomID(), dk}
	if err := id.signLocked(); err != nil {
		id.spk[0], id.pq[0] = id.spk[1], id.pq[1]
		id.bundle = old
		return err
	}
	return nil
}

func (id *Identity) signLocked() error {
	b := &Bundle{
		signPub: id.signPub,
		ik:      id.ik.PublicKey(),
		spkID:   id.spk[0].id,
		spk:     id.spk[0].priv.PublicKey(),
		pqID:    id.pq[0].id,
		pq:      id.pq[0].dk.EncapsulationKey(),
	}
	tbs := b.appendSigned(nil)
	sig, err := id.signer.Sign(rand.Reader, tbs, crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("signal: signing prekeys: %w", err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(id.signPub, tbs, sig) {
		return errors.New("signal: identity signer made a bad signature")
	}
	copy(b.sig[:], sig)
	id.bundle = b
	return nil
}

// Bundle returns the signed bundle of the current prekeys, without a
// one-time prekey: the one to publish in the MLS LeafNode.
func (id *Identity) Bundle() *Bundle {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.bundle
}

// OneTimeBundle returns the bundle with a fresh one-time prekey, for a peer
// that fetches a bundle directly. Each call hands out another key.
func (id *Identity) OneTimeBundle() (*Bundle, error) {
	otk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signal: %w", err)
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	kid := randomID()
	for id.otks[kid] != nil {
		kid = randomID()
	}
	id.otks[kid] = otk
	id.otkIDs = append(id.otkIDs, kid)
	if len(id.otkIDs) > MaxOneTimePrekeys {
		delete(id.otks, id.otkIDs[0])
		id.otkIDs = id.otkIDs[1:]
	}
	b := *id.bundle
	b.otkID, b.otk = kid, otk.PublicKey()
	return &b, nil
}

// signedPrekey returns the private signed prekey with this id, or nil.
func (id *Identity) signedPrekey(kid uint32) *ecdh.PrivateKey {
	id.mu.Lock()
	defer id.mu.Unlock()
	for _, k := range id.spk {
		if k.id != 0 && k.id == kid {
			return k.priv
		}
	}
	return nil
}

// pqPrekey returns the ML-KEM decapsulation key with this id, or nil.
func (id *Identity) pqPrekey(kid uint32) *mlkem.DecapsulationKey768 {
	id.mu.Lock()
	defer id.mu.Unlock()
	for _, k := range id.pq {
		if k.id != 0 && k.id == kid {
			return k.dk
		}
	}
	return nil
}

// oneTimePrekey returns the one-time prekey with this id, or nil.
func (id *Identity) oneTimePrekey(kid uint32) *ecdh.PrivateKey {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.otks[kid]
}

// consumeOneTimePrekey deletes a one-time prekey and reports whether it was
// still there.
func (id *Identity) consumeOneTimePrekey(kid uint32) bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.otks[kid] == nil {
		return false
	}
	delete(id.otks, kid)
	for i, x := range id.otkIDs {
		if x == kid {
			id.otkIDs = append(id.otkIDs[:i], id.otkIDs[i+1:]...)
			break
		}
	}
	return true
}

const identityVersion = 1

// MarshalBinary encodes the identity's private keys (not the signer, which
// the identity package keeps). The bytes are secret: store them encrypted.
func (id *Identity) MarshalBinary() ([]byte, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	var b cryptobyte.Builder
	b.AddUint8(identityVersion)
	b.AddBytes(id.ik.Bytes())
	for _, k := range id.spk {
		b.AddUint32(k.id)
		if k.id != 0 {
			b.AddBytes(k.priv.Bytes())
		}
	}
	for _, k := range id.pq {
		b.AddUint32(k.id)
		if k.id != 0 {
			b.AddBytes(k.dk.Bytes())
		}
	}
	b.AddUint16(uint16(len(id.otkIDs)))
	for _, kid := range id.otkIDs {
		b.AddUint32(kid)
		b.AddBytes(id.otks[kid].Bytes())
	}
	return b.Bytes()
}

var errIdentity = errors.New("signal: malformed identity")

// UnmarshalIdentity restores an identity saved with MarshalBinary, with the
// same signer it was made with.
func UnmarshalIdentity(data []byte, signer crypto.Signer) (*Identity, error) {
	s := cryptobyte.String(data)
	var v uint8
	var ikb []byte
	if !s.ReadUint8(&v) || v != identityVersion || !s.ReadBytes(&ikb, 32) {
		return nil, errIdentity
	}
	ik, err := ecdh.X25519().NewPrivateKey(ikb)
	if err != nil {
		return nil, errIdentity
	}
	id, err := newIdentity(signer, ik)
	if err != nil {
		return nil, err
	}
	for i := range id.spk {
		var kid uint32
		var kb []byte
		if !s.ReadUint32(&kid) {
			return nil, errIdentity
		}
		if kid == 0 {
			continue
		}
		if !s.ReadBytes(&kb, 32) {
			return nil, errIdentity
		}
		if id.spk[i].priv, err = ecdh.X25519().NewPrivateKey(kb); err != nil {
			return nil, errIdentity
		}
		id.spk[i].id = kid
	}
	for i := range id.pq {
		var kid uint32
		var kb []byte
		if !s.ReadUint32(&kid) {
			return nil, errIdentity
		}
		if kid == 0 {
			continue
		}
		if !s.ReadBytes(&kb, mlkem.SeedSize) {
			return nil, errIdentity
		}
		if id.pq[i].dk, err = mlkem.NewDecapsulationKey768(kb); err != nil {
			return nil, errIdentity
		}
		id.pq[i].id = kid
	}
	var n uint16
	if !s.ReadUint16(&n) || n > MaxOneTimePrekeys {
		return nil, errIdentity
	}
	for range n {
		var kid uint32
		var kb []byte
		if !s.ReadUint32(&kid) || kid == 0 || !s.ReadBytes(&kb, 32) || id.otks[kid] != nil {
			return nil, errIdentity
		}
		k, err := ecdh.X25519().NewPrivateKey(kb)
		if err != nil {
			return nil, errIdentity
		}
		id.otks[kid] = k
		id.otkIDs = append(id.otkIDs, kid)
	}
	if !s.Empty() || id.spk[0].id == 0 || id.pq[0].id == 0 {
		return nil, errIdentity
	}
	if err := id.signLocked(); err != nil {
		return nil, err
	}
	return id, nil
}

// String and GoString keep the keys out of logs: fmt would print unexported
// fields.
func (id *Identity) String() string   { return fmt.Sprintf("signal.Identity(%x)", []byte(id.signPub)) }
func (id *Identity) GoString() string { return id.String() }
