package signal

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

const (
	// pqxdhInfo is PQXDH's info string (PQXDH, Section 2.1: protocol name,
	// curve, hash and KEM).
	pqxdhInfo      = "tchat_PQXDH_CURVE25519_SHA-256_ML-KEM-768_v1"
	sessionADLabel = "tchat signal session v1"
	sessionIDLabel = "tchat signal session id v1"
	sessionIDSize  = 8
	// prekeyHeaderSize is the size of an encoded prekeyHeader.
	prekeyHeaderSize = 32 + 4 + 4 + 4 + mlkem.CiphertextSize768
)

var errNoPrekey = errors.New("signal: prekey not found")

// prekeyHeader is what the initiator puts in front of its messages until the
// responder answers (PQXDH, Section 3.3, the initial message): its ephemeral
// key, which prekeys it used, and the ML-KEM ciphertext. The initiator's
// identity key is not repeated: the responder has its bundle.
//
//	ephemeral key   32 bytes (EK_A)
//	prekey id       4 bytes
//	pq prekey id    4 bytes
//	one-time id     4 bytes, 0 if none
//	kem ct          1088 bytes (CT)
type prekeyHeader struct {
	ek    [32]byte
	spkID uint32
	pqID  uint32
	otkID uint32
	ct    []byte
}

func (h *prekeyHeader) append(dst []byte) []byte {
	dst = append(dst, h.ek[:]...)
	dst = appendUint32(dst, h.spkID)
	dst = appendUint32(dst, h.pqID)
	dst = appendUint32(dst, h.otkID)
	return append(dst, h.ct...)
}

func readPrekeyHeader(s *cryptobyte.String, h *prekeyHeader) bool {
	var ek []byte
	if !s.ReadBytes(&ek, 32) || !s.ReadUint32(&h.spkID) || !s.ReadUint32(&h.pqID) ||
		!s.ReadUint32(&h.otkID) || !s.ReadBytes(&h.ct, mlkem.CiphertextSize768) {
		return false
	}
	copy(h.ek[:], ek)
	return true
}

// pqxdhKDF is PQXDH's KDF (Section 2.2): HKDF-SHA256 over 32 0xFF bytes and
// the concatenated secrets, with a zero salt.
func pqxdhKDF(secrets ...[]byte) [keySize]byte {
	ikm := make([]byte, 32, 32*6)
	for i := range ikm {
		ikm[i] = 0xFF
	}
	for _, s := range secrets {
		ikm = append(ikm, s...)
	}
	okm, err := hkdf.Key(sha256.New, ikm, make([]byte, 32), pqxdhInfo, keySize)
	clear(ikm)
	if err != nil {
		panic("signal: internal error: " + err.Error())
	}
	var sk [keySize]byte
	copy(sk[:], okm)
	clear(okm)
	return sk
}

// sessionAD is the associated data of every message of a session (PQXDH,
// Section 3.3: AD = IK_A ‖ IK_B), here with both members' Ed25519 keys too.
func sessionAD(initiator, responder *Bundle) []byte {
	ad := make([]byte, 0, len(sessionADLabel)+128)
	ad = append(ad, sessionADLabel...)
	ad = append(ad, initiator.signPub...)
	ad = append(ad, initiator.ik.Bytes()...)
	ad = append(ad, responder.signPub...)
	return append(ad, responder.ik.Bytes()...)
}

// sessionID names a session on the wire: a hash of its handshake.
func sessionID(initiator, responder *Bundle, h *prekeyHeader) [sessionIDSize]byte {
	d := sha256.New()
	d.Write([]byte(sessionIDLabel))
	d.Write(initiator.ik.Bytes())
	d.Write(responder.ik.Bytes())
	d.Write(h.append(nil))
	var id [sessionIDSize]byte
	copy(id[:], d.Sum(nil))
	return id
}

// initiate runs the initiator's side of PQXDH (Section 3.3) against the
// responder's verified bundle.
func initiate(self *Identity, peer *Bundle) (sk [keySize]byte, h prekeyHeader, err error) {
	ek, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return sk, h, err
	}
	dh1, err := self.ik.ECDH(peer.spk)
	if err != nil {
		return sk, h, err
	}
	dh2, err := ek.ECDH(peer.ik)
	if err != nil {
		return sk, h, err
	}
	dh3, err := ek.ECDH(peer.spk)
	if err != nil {
		return sk, h, err
	}
	secrets := [][]byte{dh1, dh2, dh3}
	if peer.otk != nil {
		dh4, err := ek.ECDH(peer.otk)
		if err != nil {
			return sk, h, err
		}
		secrets = append(secrets, dh4)
		h.otkID = peer.otkID
	}
	ss, ct := peer.pq.Encapsulate()
	secrets = append(secrets, ss)
	sk = pqxdhKDF(secrets...)
	for _, s := range secrets {
		clear(s)
	}
	copy(h.ek[:], ek.PublicKey().Bytes())
	h.spkID, h.pqID, h.ct = peer.spkID, peer.pqID, ct
	return sk, h, nil
}

// respond runs the responder's side of PQXDH (Section 3.4) for an initiator
// whose bundle we hold. It returns the session key and the signed prekey
// used, which becomes the responder's first ratchet key. A one-time prekey
// named in h is used but not consumed here: the caller deletes it when it
// commits the session.
func respond(self *Identity, peer *Bundle, h *prekeyHeader) (sk [keySize]byte, spk *ecdh.PrivateKey, err error) {
	spk = self.signedPrekey(h.spkID)
	dk := self.pqPrekey(h.pqID)
	if spk == nil || dk == nil {
		return sk, nil, errNoPrekey
	}
	ek, err := ecdh.X25519().NewPublicKey(h.ek[:])
	if err != nil {
		return sk, nil, err
	}
	dh1, err := spk.ECDH(peer.ik)
	if err != nil {
		return sk, nil, err
	}
	dh2, err := self.ik.ECDH(ek)
	if err != nil {
		return sk, nil, err
	}
	dh3, err := spk.ECDH(ek)
	if err != nil {
		return sk, nil, err
	}
	secrets := [][]byte{dh1, dh2, dh3}
	if h.otkID != 0 {
		otk := self.oneTimePrekey(h.otkID)
		if otk == nil {
			return sk, nil, errNoPrekey
		}
		dh4, err := otk.ECDH(ek)
		if err != nil {
			return sk, nil, err
		}
		secrets = append(secrets, dh4)
	}
	ss, err := dk.Decapsulate(h.ct)
	if err != nil {
		return sk, nil, err
	}
	secrets = append(secrets, ss)
	sk = pqxdhKDF(secrets...)
	for _, s := range secrets {
		clear(s)
	}
	return sk, spk, nil
}
