package mlsgroup

import (
	"bytes"
	"testing"
)

// KeyPackageLeafExtension finds an extension of the KeyPackage's leaf node, in a bare
// KeyPackage and in one wrapped in an MLSMessage, gives nil for one it lacks, and an
// error for bytes that are not a KeyPackage.
func TestKeyPackageLeafExtension(t *testing.T) {
	bob := newMember(t, X25519_AES128GCM_SHA256_Ed25519, "bob")
	const typ = 0xff01
	data := []byte("bob's prekeys")
	bundle, err := NewKeyPackage(bob.key, []byte("bob"), KeyPackageOptions{Extensions: map[uint16][]byte{typ: data}})
	if err != nil {
		t.Fatal(err)
	}
	kp := bundle.KeyPackage()
	got, err := KeyPackageLeafExtension(kp, typ)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("extension %q, %v; want %q", got, err, data)
	}
	got[0] ^= 1 // a copy: the caller may keep it
	if again, _ := KeyPackageLeafExtension(kp, typ); !bytes.Equal(again, data) {
		t.Fatal("the extension returned aliases the KeyPackage")
	}
	if got, err := KeyPackageLeafExtension(kp, typ+1); err != nil || got != nil {
		t.Fatalf("missing extension: %q, %v; want nil, nil", got, err)
	}
	for _, bad := range [][]byte{nil, {0}, kp[:len(kp)/2], append(bytes.Clone(kp), 0)} {
		if _, err := KeyPackageLeafExtension(bad, typ); err == nil {
			t.Errorf("%d bytes of junk: no error", len(bad))
		}
	}
}

// FuzzKeyPackage: a KeyPackage from the network (a join request, a /tchat/kp answer)
// never panics the functions that read one before it is committed.
func FuzzKeyPackage(f *testing.F) {
	bob := newMember(f, X25519_AES128GCM_SHA256_Ed25519, "bob")
	bundle, err := NewKeyPackage(bob.key, []byte("bob"), KeyPackageOptions{Extensions: map[uint16][]byte{0xff01: []byte("x")}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bundle.KeyPackage())
	f.Fuzz(func(t *testing.T, kp []byte) {
		_, _, _ = KeyPackageIdentity(kp)
		_, _ = KeyPackageLeafExtension(kp, 0xff01)
	})
}
