package signal

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"

	"github.com/tchat-p2p/tchat/internal/hkdf256"
)

const (
	keySize   = 32
	nonceSize = 12
	tagSize   = 16

	rootLabel      = "tchat signal root chain v1"
	messageLabel   = "tchat signal message key v1"
	senderKeyLabel = "tchat signal sender key message v1"
	// keyMessageLabel separates a sender key message (SealSenderKey) from
	// every other pairwise message: it derives the message's AEAD key and
	// nonce in place of messageLabel, and prefixes the associated data.
	keyMessageLabel = "tchat signal sender key v1"
)

var errOpen = errors.New("signal: decryption failed")

// kdfRK is the Double Ratchet's KDF_RK (Double Ratchet, Section 5.2):
// HKDF-SHA256 with the root key as salt and the DH output as input key
// material, giving a new root key and a chain key.
func kdfRK(rk *[keySize]byte, dhOut []byte) (newRK, ck [keySize]byte) {
	var okm [2 * keySize]byte
	hkdf256.Key(okm[:0], dhOut, rk[:], rootLabel, len(okm))
	copy(newRK[:], okm[:])
	copy(ck[:], okm[keySize:])
	clear(okm[:])
	return newRK, ck
}

// kdfCK is KDF_CK (Double Ratchet, Section 5.2), also the sender-key chain
// step: HMAC-SHA256 of the chain key over the byte 0x01 for the message key
// and over 0x02 for the next chain key.
func kdfCK(ck *[keySize]byte) (next, mk [keySize]byte) {
	return hkdf256.HMAC(ck[:], []byte{2}), hkdf256.HMAC(ck[:], []byte{1})
}

// messageAEAD derives the AEAD key and nonce for one message key
// (Double Ratchet, Section 5.2, ENCRYPT, with AES-256-GCM in place of
// AES-CBC plus HMAC). Each message key encrypts one message, so the derived
// nonce never repeats under its key.
func messageAEAD(mk *[keySize]byte, label string) (cipher.AEAD, []byte) {
	okm := hkdf256.Key(make([]byte, 0, keySize+nonceSize), mk[:], nil, label, keySize+nonceSize)
	defer clear(okm[:keySize])
	block, err := aes.NewCipher(okm[:keySize])
	if err != nil {
		panic("signal: internal error: " + err.Error())
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic("signal: internal error: " + err.Error())
	}
	return gcm, okm[keySize:]
}

// sealMK appends the encryption of pt under mk to dst.
func sealMK(dst []byte, mk *[keySize]byte, label string, pt, ad []byte) []byte {
	gcm, nonce := messageAEAD(mk, label)
	return gcm.Seal(dst, nonce, pt, ad)
}

// openMK decrypts ct under mk into a new slice.
func openMK(mk *[keySize]byte, label string, ct, ad []byte) ([]byte, error) {
	if len(ct) < tagSize {
		return nil, errOpen
	}
	gcm, nonce := messageAEAD(mk, label)
	pt, err := gcm.Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}
