package schedule

import (
	"bytes"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
)

func TestEpochInputs(t *testing.T) {
	cs := testSuite(t)
	gc := []byte("group context")
	initSecret := testSecret(cs, 1)
	for _, c := range []struct {
		name                  string
		init, commit, psk, gc []byte
	}{
		{"short init_secret", initSecret[1:], nil, nil, gc},
		{"nil init_secret", nil, nil, nil, gc},
		{"long commit_secret", initSecret, append(initSecret, 0), nil, gc},
		{"short psk_secret", initSecret, nil, []byte{1}, gc},
		{"empty GroupContext", initSecret, nil, nil, nil},
	} {
		if _, err := NewEpoch(cs, c.init, c.commit, c.psk, c.gc); err == nil {
			t.Errorf("%s accepted", c.name)
		}
	}
	if _, err := NewEpoch(nil, initSecret, nil, nil, gc); err == nil {
		t.Error("nil suite accepted")
	}
	if _, err := NewEpochFromJoiner(cs, initSecret[:3], nil, gc); err == nil {
		t.Error("short joiner_secret accepted")
	}

	// nil commit_secret and psk_secret are the all-zero vector.
	a, err := NewEpoch(cs, initSecret, nil, nil, gc)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, cs.Nh())
	b, err := NewEpoch(cs, initSecret, zeros, zeros, gc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.EpochAuthenticator, b.EpochAuthenticator) || !bytes.Equal(a.JoinerSecret, b.JoinerSecret) {
		t.Fatal("nil and zero secrets differ")
	}
	// Inputs are not modified.
	if !bytes.Equal(initSecret, testSecret(cs, 1)) || !bytes.Equal(zeros, make([]byte, cs.Nh())) {
		t.Fatal("inputs modified")
	}

	// The joiner path gives the same epoch and Welcome key.
	j, err := NewEpochFromJoiner(cs, a.JoinerSecret, nil, gc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(j.InitSecret, a.InitSecret) || j.JoinerSecret != nil || j.WelcomeSecret != nil {
		t.Fatal("joiner epoch differs")
	}
	ws, err := WelcomeSecret(cs, a.JoinerSecret, nil)
	if err != nil || !bytes.Equal(ws, a.WelcomeSecret) {
		t.Fatalf("WelcomeSecret: %v", err)
	}
	k1, n1, err := a.WelcomeKeyNonce()
	if err != nil {
		t.Fatal(err)
	}
	k2, n2, err := WelcomeKeyNonce(cs, ws)
	if err != nil || !bytes.Equal(k1, k2) || !bytes.Equal(n1, n2) || len(k1) != cs.KeySize() || len(n1) != cs.NonceSize() {
		t.Fatalf("WelcomeKeyNonce: %v", err)
	}
	a.ForgetJoiner()
	if _, _, err := a.WelcomeKeyNonce(); err == nil {
		t.Fatal("Welcome key after ForgetJoiner")
	}

	// Exporter bounds.
	if _, err := a.Export("x", nil, 255*cs.Nh()+1); err == nil {
		t.Error("over-long export accepted")
	}
	if _, err := a.Export("x", nil, -1); err == nil {
		t.Error("negative export accepted")
	}
	out, err := a.Export("x", nil, 100)
	if err != nil || len(out) != 100 {
		t.Fatalf("Export: %v", err)
	}

	next := a.TakeInitSecret()
	a.Zero()
	if a.ExporterSecret != nil || a.InitSecret != nil || next == nil || bytes.Equal(next, zeros) {
		t.Fatal("Zero / TakeInitSecret")
	}
	if _, err := a.Export("x", nil, 1); err == nil {
		t.Fatal("export from a zeroed epoch")
	}
	if _, err := a.ExternalPub(); err == nil {
		t.Fatal("external_pub from a zeroed epoch")
	}
}

func TestPSKSecret(t *testing.T) {
	cs := testSuite(t)
	s, err := PSKSecret(cs, nil)
	if err != nil || !bytes.Equal(s, make([]byte, cs.Nh())) {
		t.Fatalf("no PSKs: %x, %v", s, err)
	}
	a, err := PSKSecret(cs, []PSK{{ID: []byte{1, 1, 'a', 0}, Secret: []byte("k")}, {ID: []byte{1, 1, 'b', 0}, Secret: []byte("l")}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := PSKSecret(cs, []PSK{{ID: []byte{1, 1, 'b', 0}, Secret: []byte("l")}, {ID: []byte{1, 1, 'a', 0}, Secret: []byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("PSK order does not matter")
	}
	if _, err := PSKSecret(cs, []PSK{{Secret: []byte("k")}}); err == nil {
		t.Fatal("empty PreSharedKeyID accepted")
	}
	if _, err := PSKSecret(cs, make([]PSK, MaxPSKs+1)); err == nil {
		t.Fatal("too many PSKs accepted")
	}
}

func TestSenderDataSample(t *testing.T) {
	cs := testSuite(t)
	secret := testSecret(cs, 3)
	long := bytes.Repeat([]byte{0xaa}, 3*cs.Nh())
	k1, n1, err := SenderDataKeyNonce(cs, secret, long)
	if err != nil {
		t.Fatal(err)
	}
	// Only the first Nh bytes count.
	other := append(append([]byte(nil), long[:cs.Nh()]...), 1, 2, 3)
	k2, n2, _ := SenderDataKeyNonce(cs, secret, other)
	if !bytes.Equal(k1, k2) || !bytes.Equal(n1, n2) {
		t.Fatal("bytes past Nh changed the sender data key")
	}
	// A short ciphertext is used whole.
	k3, _, err := SenderDataKeyNonce(cs, secret, []byte{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := cs.ExpandWithLabel(secret, "key", []byte{1, 2}, cs.KeySize())
	if !bytes.Equal(k3, want) {
		t.Fatal("short ciphertext sample")
	}
	if _, _, err := SenderDataKeyNonce(cs, secret, nil); err != nil {
		t.Fatalf("empty ciphertext: %v", err)
	}
	if _, _, err := SenderDataKeyNonce(cs, secret[1:], long); err == nil {
		t.Fatal("short sender_data_secret accepted")
	}
}

func TestTranscriptHashes(t *testing.T) {
	cs := testSuite(t)
	input := []byte("ConfirmedTranscriptHashInput")
	confirmed := ConfirmedTranscriptHash(cs, nil, input)
	if !bytes.Equal(confirmed, cs.Hash(input)) {
		t.Fatal("confirmed hash of epoch 1")
	}
	key := testSecret(cs, 4)
	tag := ConfirmationTag(cs, key, confirmed)
	if !VerifyConfirmationTag(cs, key, confirmed, tag) {
		t.Fatal("own tag does not verify")
	}
	tag[0] ^= 1
	if VerifyConfirmationTag(cs, key, confirmed, tag) {
		t.Fatal("altered tag verifies")
	}
	tag[0] ^= 1
	interim, err := InterimTranscriptHash(cs, confirmed, tag)
	if err != nil {
		t.Fatal(err)
	}
	want := cs.Hash(append(append(append([]byte(nil), confirmed...), byte(len(tag))), tag...))
	if !bytes.Equal(interim, want) {
		t.Fatal("interim hash")
	}
}

// BenchmarkKeySchedule runs the key schedule of one epoch (init_secret, commit_secret and
// psk_secret to every epoch secret) and, separately, the external key pair and the secret
// tree set-up that go with a new epoch.
func BenchmarkKeySchedule(b *testing.B) {
	for _, id := range []suite.ID{suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521} {
		cs, err := suite.Lookup(id)
		if err != nil {
			b.Fatal(err)
		}
		gc := bytes.Repeat([]byte{7}, 120) // a GroupContext of typical size
		commit := testSecret(cs, 2)
		b.Run(cs.String()+"/epoch", func(b *testing.B) {
			initSecret := testSecret(cs, 1)
			b.ReportAllocs()
			for b.Loop() {
				e, err := NewEpoch(cs, initSecret, commit, nil, gc)
				if err != nil {
					b.Fatal(err)
				}
				initSecret = e.TakeInitSecret()
				e.Zero()
			}
		})
		b.Run(cs.String()+"/epoch+external_pub+secret_tree", func(b *testing.B) {
			initSecret := testSecret(cs, 1)
			b.ReportAllocs()
			for b.Loop() {
				e, err := NewEpoch(cs, initSecret, commit, nil, gc)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.ExternalPub(); err != nil {
					b.Fatal(err)
				}
				tree, err := e.SecretTree(1024, nil)
				if err != nil {
					b.Fatal(err)
				}
				tree.Zero()
				initSecret = e.TakeInitSecret()
				e.Zero()
			}
		})
	}
}
