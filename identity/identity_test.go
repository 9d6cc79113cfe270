package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func seeded(t testing.TB, b byte) *Identity {
	t.Helper()
	id, err := FromSeed(bytes.Repeat([]byte{b}, SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Pinned values for the identities made from the seeds 01…01 and 02…02. They were
// computed by this package and must never change: a change would alter peer ids,
// fingerprints and safety numbers that users have already compared.
const (
	pubA    = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	peerA   = "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
	fpA     = "evov nuue cbkh yx53 3dge nshc bac5 dxtw"
	peerB   = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
	fpB     = "luil 64qy ik3m lpvn p3k2 itob sltp w7xt"
	safetyA = "517585453582899484146321634538"
	safetyB = "977879141533976317082040585591"
	safeAB  = "51758 54535 82899 48414 63216 34538 97787 91415 33976 31708 20405 85591"
)

func TestPinnedIdentity(t *testing.T) {
	a, b := seeded(t, 1), seeded(t, 2)
	if got := fmt.Sprintf("%x", a.PublicKey()); got != pubA {
		t.Errorf("public key %s", got)
	}
	if a.PeerID().String() != peerA || b.PeerID().String() != peerB {
		t.Errorf("peer ids %s %s", a.PeerID(), b.PeerID())
	}
	if a.Fingerprint() != fpA || b.Fingerprint() != fpB {
		t.Errorf("fingerprints %q %q", a.Fingerprint(), b.Fingerprint())
	}
}

func TestSeedIsTheMLSKey(t *testing.T) {
	a := seeded(t, 1)
	seed := a.Seed()
	if len(seed) != SeedSize {
		t.Fatalf("seed of %d bytes", len(seed))
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if !bytes.Equal(pub, a.PublicKey().Bytes()) {
		t.Error("seed does not give the identity key")
	}
	seed[0] ^= 1 // the caller's copy; the identity is unaffected
	if !bytes.Equal(a.Seed(), bytes.Repeat([]byte{1}, SeedSize)) {
		t.Error("Seed returned the internal buffer")
	}
	if _, err := FromSeed(seed[:31]); err == nil {
		t.Error("short seed accepted")
	}
}

func TestLibp2pKey(t *testing.T) {
	a := seeded(t, 1)
	k, err := a.Libp2pKey()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(k)
	if err != nil || pid != a.PeerID() {
		t.Fatalf("peer id from libp2p key %s, %v", pid, err)
	}
	raw, _ := k.GetPublic().Raw()
	if !bytes.Equal(raw, a.PublicKey().Bytes()) {
		t.Error("libp2p public key differs")
	}
	// libp2p signs with the same key.
	sig, err := k.Sign([]byte("libp2p message"))
	if err != nil || !ed25519.Verify(a.PublicKey().Bytes(), []byte("libp2p message"), sig) {
		t.Error("libp2p signature does not verify with the identity key")
	}
	back, err := PublicKeyFromPeerID(a.PeerID())
	if err != nil || back != a.PublicKey() {
		t.Errorf("key from peer id: %v", err)
	}
	lp, err := a.PublicKey().Libp2pKey()
	if err != nil || !lp.Equals(k.GetPublic()) {
		t.Errorf("public libp2p key: %v", err)
	}
	// Peer ids of other key types are refused.
	_, sk, _ := crypto.GenerateSecp256k1Key(nil)
	if other, err := peer.IDFromPublicKey(sk); err == nil {
		if _, err := PublicKeyFromPeerID(other); err == nil || !strings.HasPrefix(err.Error(), "identity: ") {
			t.Errorf("secp256k1 peer id accepted: %v", err)
		}
	}
}

func TestSignIsDomainSeparated(t *testing.T) {
	a, b := seeded(t, 1), seeded(t, 2)
	msg := []byte("invite token body")
	sig, err := a.Sign("invite", msg)
	if err != nil {
		t.Fatal(err)
	}
	pa := a.PublicKey()
	if !pa.Verify("invite", msg, sig) {
		t.Fatal("signature does not verify")
	}
	if pa.Verify("invitf", msg, sig) || pa.Verify("invite", append(msg, 0), sig) || b.PublicKey().Verify("invite", msg, sig) {
		t.Error("signature verifies for another label, message or key")
	}
	// Not a raw signature of msg, nor of anything MLS signs ("MLS 1.0 " label).
	if ed25519.Verify(pa.Bytes(), msg, sig) {
		t.Error("Sign made a raw signature")
	}
	// Label and message cannot be shifted into each other.
	sig2, _ := a.Sign("ab", []byte("c"))
	if pa.Verify("a", []byte("bc"), sig2) {
		t.Error("label boundary is ambiguous")
	}
	if _, err := a.Sign("", msg); err == nil {
		t.Error("empty label accepted")
	}
	if _, err := a.Sign(strings.Repeat("x", MaxLabelLen+1), msg); err == nil {
		t.Error("long label accepted")
	}
}

func TestWipe(t *testing.T) {
	a := seeded(t, 1)
	priv := a.priv
	a.Wipe()
	if !bytes.Equal(priv, make([]byte, len(priv))) {
		t.Error("key not zeroed")
	}
	defer func() {
		if recover() == nil {
			t.Error("use after Wipe did not panic")
		}
	}()
	a.Seed()
}

var safetyFormat = regexp.MustCompile(`^([0-9]{5} ){11}[0-9]{5}$`)

func TestSafetyNumber(t *testing.T) {
	a, b := seeded(t, 1).PublicKey(), seeded(t, 2).PublicKey()
	if f := identityFingerprint(a); f != safetyA {
		t.Errorf("fingerprint of a: %s", f)
	}
	if f := identityFingerprint(b); f != safetyB {
		t.Errorf("fingerprint of b: %s", f)
	}
	ab, ba := SafetyNumber(a, b), SafetyNumber(b, a)
	if ab != safeAB || ba != safeAB {
		t.Errorf("safety number %q / %q", ab, ba)
	}
	if !safetyFormat.MatchString(ab) {
		t.Errorf("format %q", ab)
	}
	c := seeded(t, 3).PublicKey()
	if SafetyNumber(a, c) == ab || SafetyNumber(c, b) == ab {
		t.Error("a third key gives the same number")
	}
	if !SafetyNumberMatches(b, a, strings.ReplaceAll(ab, " ", "")) || !SafetyNumberMatches(a, b, ab+"\n") {
		t.Error("the number does not match itself")
	}
	if SafetyNumberMatches(a, c, ab) || SafetyNumberMatches(a, b, ab[:len(ab)-1]) || SafetyNumberMatches(a, b, "x"+ab) {
		t.Error("a wrong number matches")
	}
	// Every identity also has a number with itself (a note-to-self conversation).
	if !safetyFormat.MatchString(SafetyNumber(a, a)) {
		t.Error("self safety number")
	}
}

// TestNumericFingerprintEncoding checks the digit encoding against an
// independent computation with math/big.
func TestNumericFingerprintEncoding(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	id := []byte("stable id")
	in := append(append(append([]byte{0, 0}, key...), id...), key...)
	h := sha512.Sum512(in)
	h = sha512.Sum512(append(h[:], key...))
	var want strings.Builder
	for i := 0; i < 30; i += 5 {
		n := new(big.Int).SetBytes(h[i : i+5])
		fmt.Fprintf(&want, "%05d", n.Mod(n, big.NewInt(100000)).Int64())
	}
	if got := numericFingerprint(0, key, id, 2); got != want.String() {
		t.Errorf("got %s want %s", got, want.String())
	}
}

func BenchmarkSafetyNumber(b *testing.B) {
	x, y := seeded(b, 1).PublicKey(), seeded(b, 2).PublicKey()
	for b.Loop() {
		SafetyNumber(x, y)
	}
}
