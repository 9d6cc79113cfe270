package wire

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

func TestIsGREASE(t *testing.T) {
	n := 0
	for v := 0; v <= 0xffff; v++ {
		if IsGREASE(uint16(v)) {
			n++
			if hi, lo := v>>8, v&0xff; hi != lo || lo&0x0f != 0x0a {
				t.Errorf("%#04x reported as GREASE", v)
			}
		}
	}
	if n != 15 || !IsGREASE(0x0a0a) || !IsGREASE(0xeaea) || IsGREASE(0xfafa) {
		t.Errorf("%d GREASE values", n)
	}
}

// TestGREASERoundTrip checks that GREASE and unknown values in lists and extensions are
// kept as read.
func TestGREASERoundTrip(t *testing.T) {
	leaf := LeafNode{
		EncryptionKey: HPKEPublicKey{1},
		SignatureKey:  SignaturePublicKey{2},
		Credential:    NewBasicCredential([]byte("alice")),
		Capabilities: Capabilities{
			Versions:     []ProtocolVersion{ProtocolVersionMLS10, 0x0a0a},
			CipherSuites: []CipherSuite{0x0001, 0x1a1a, 0xf001},
			Extensions:   []ExtensionType{0x2a2a},
			Proposals:    []ProposalType{0x3a3a},
			Credentials:  []CredentialType{CredentialTypeBasic, 0x4a4a},
		},
		LeafNodeSource: LeafNodeSourceKeyPackage,
		Lifetime:       Lifetime{NotBefore: 1, NotAfter: 1 << 40},
		Extensions:     Extensions{{ExtensionType: 0x2a2a, ExtensionData: []byte("grease")}},
		Signature:      []byte{3},
	}
	kp := KeyPackage{
		Version:     ProtocolVersionMLS10,
		CipherSuite: 0x5a5a,
		InitKey:     HPKEPublicKey{4},
		LeafNode:    leaf,
		Extensions:  Extensions{{ExtensionType: 0xeaea, ExtensionData: []byte{}}},
		Signature:   []byte{5},
	}
	enc := codec.MustMarshal(NewKeyPackageMLS(&kp))
	m, err := DecodeMLSMessageAs(enc, WireFormatKeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.KeyPackage.LeafNode.Capabilities.CipherSuites; len(got) != 3 || got[1] != 0x1a1a || got[2] != 0xf001 {
		t.Errorf("cipher suites %v", got)
	}
	if e := m.KeyPackage.Extensions.Find(0xeaea); e == nil {
		t.Error("GREASE extension lost")
	}
	if !bytes.Equal(codec.MustMarshal(m), enc) {
		t.Error("round trip differs")
	}
	if _, err := DecodeMLSMessageAs(enc, WireFormatWelcome); err == nil {
		t.Error("key package accepted as a welcome")
	}
}

func TestExtensionAccessors(t *testing.T) {
	cred := NewBasicCredential([]byte("ds"))
	senders := ExternalSenders{{SignatureKey: SignaturePublicKey{7}, Credential: cred}}
	e, err := NewExternalSendersExtension(senders)
	if err != nil {
		t.Fatal(err)
	}
	// `ExternalSender external_senders<V>`: a vector around one sender.
	if want := "07" + "0107" + "0001" + "026473"; hex.EncodeToString(e.ExtensionData) != want {
		t.Fatalf("external_senders data %x, want %s", e.ExtensionData, want)
	}
	got, err := e.ExternalSenders()
	if err != nil || len(got) != 1 || string(got[0].Credential.Identity) != "ds" {
		t.Fatalf("external senders %+v, %v", got, err)
	}
	if _, err := e.RatchetTree(); err == nil {
		t.Error("external_senders decoded as a ratchet tree")
	}

	rc := &RequiredCapabilities{ProposalTypes: []ProposalType{ProposalTypeAdd}}
	e, err = NewRequiredCapabilitiesExtension(rc)
	if err != nil || hex.EncodeToString(e.ExtensionData) != "0002000100" {
		t.Fatalf("required_capabilities %x, %v", e.ExtensionData, err)
	}
	if r, err := e.RequiredCapabilities(); err != nil || len(r.ProposalTypes) != 1 {
		t.Fatalf("required capabilities %+v, %v", r, err)
	}

	e, err = NewExternalPubExtension(HPKEPublicKey{1, 2})
	if err != nil || hex.EncodeToString(e.ExtensionData) != "020102" {
		t.Fatalf("external_pub %x, %v", e.ExtensionData, err)
	}
	if p, err := e.ExternalPub(); err != nil || !bytes.Equal(p.ExternalPub, []byte{1, 2}) {
		t.Fatalf("external pub %+v, %v", p, err)
	}

	e, err = NewApplicationIDExtension([]byte("app"))
	if err != nil || hex.EncodeToString(e.ExtensionData) != "03617070" {
		t.Fatalf("application_id %x, %v", e.ExtensionData, err)
	}
	if id, err := e.ApplicationID(); err != nil || string(id) != "app" {
		t.Fatalf("application id %q, %v", id, err)
	}

	tree := RatchetTree{{NodeType: NodeTypeParent, ParentNode: &ParentNode{EncryptionKey: HPKEPublicKey{9}, UnmergedLeaves: []uint32{1, 3}}}, nil}
	e, err = NewRatchetTreeExtension(tree)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0f" + "01" + "02" + "0109" + "00" + "08" + "00000001" + "00000003" + "00"; hex.EncodeToString(e.ExtensionData) != want {
		t.Fatalf("ratchet_tree %x, want %s", e.ExtensionData, want)
	}
	rt, err := e.RatchetTree()
	if err != nil || len(rt) != 2 || rt[1] != nil || rt[0].ParentNode.UnmergedLeaves[1] != 3 {
		t.Fatalf("ratchet tree %+v, %v", rt, err)
	}
	// Trailing bytes inside an extension body are malformed.
	e.ExtensionData = append(e.ExtensionData, 0)
	if _, err := e.RatchetTree(); err == nil {
		t.Error("ratchet_tree with a trailing byte accepted")
	}
	exts := Extensions{{ExtensionType: 0x0a0a}, e}
	if exts.Find(ExtensionTypeRatchetTree) == nil || exts.Find(ExtensionTypeExternalPub) != nil {
		t.Error("Find")
	}
}

func testGroupContext() *GroupContext {
	return &GroupContext{
		CipherSuite:             MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
		GroupID:                 []byte("g"),
		Epoch:                   2,
		TreeHash:                []byte{0xaa},
		ConfirmedTranscriptHash: []byte{0xbb},
	}
}

// TestSenderDependentFields checks the fields that exist only for some senders or content
// types: the GroupContext in FramedContentTBS, the membership tag of PublicMessage and the
// confirmation tag of FramedContentAuthData.
func TestSenderDependentFields(t *testing.T) {
	ctx := testGroupContext()
	ctxEnc := codec.MustMarshal(ctx)
	if want := "0001" + "0001" + "0167" + "0000000000000002" + "01aa" + "01bb" + "00"; hex.EncodeToString(ctxEnc) != want {
		t.Fatalf("group context %x, want %s", ctxEnc, want)
	}
	for _, c := range []struct {
		sender     Sender
		senderEnc  string
		hasContext bool
		hasTag     bool
	}{
		{Sender{SenderType: SenderTypeMember, LeafIndex: 5}, "0100000005", true, true},
		{Sender{SenderType: SenderTypeExternal, SenderIndex: 6}, "0200000006", false, false},
		{Sender{SenderType: SenderTypeNewMemberProposal}, "03", false, false},
		{Sender{SenderType: SenderTypeNewMemberCommit}, "04", true, false},
	} {
		for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit} {
			content := FramedContent{
				GroupID:     []byte("g"),
				Epoch:       2,
				Sender:      c.sender,
				ContentType: ct,
			}
			switch ct {
			case ContentTypeApplication:
				content.ApplicationData = []byte("hi")
			case ContentTypeProposal:
				content.Proposal = &Proposal{ProposalType: ProposalTypeRemove, Remove: &Remove{Removed: 1}}
			case ContentTypeCommit:
				content.Commit = &Commit{}
			}
			auth := FramedContentAuthData{Signature: []byte{0x51}, ConfirmationTag: MAC{0xc0}}
			ac := &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: content, Auth: auth}

			contentEnc := codec.MustMarshal(&content)
			if want := "0167" + "0000000000000002" + c.senderEnc + "00"; hex.EncodeToString(contentEnc[:len(want)/2]) != want {
				t.Fatalf("%v/%v: framed content %x", c.sender.SenderType, ct, contentEnc)
			}

			tbs := codec.MustMarshal(ac.TBS(ctx))
			want := append([]byte{0, 1, 0, 1}, contentEnc...)
			if c.hasContext {
				want = append(want, ctxEnc...)
			}
			if !bytes.Equal(tbs, want) {
				t.Errorf("%v/%v: FramedContentTBS %x, want %x", c.sender.SenderType, ct, tbs, want)
			}
			var back FramedContentTBS
			if err := codec.Unmarshal(tbs, &back); err != nil || (back.Context != nil) != c.hasContext {
				t.Errorf("%v/%v: FramedContentTBS decode: %v", c.sender.SenderType, ct, err)
			}

			authEnc := []byte{1, 0x51}
			if ct == ContentTypeCommit {
				authEnc = append(authEnc, 1, 0xc0)
			}
			pm := &PublicMessage{Content: content, Auth: auth, MembershipTag: MAC{0xdd}}
			pmEnc := codec.MustMarshal(pm)
			want = append(bytes.Clone(contentEnc), authEnc...)
			if c.hasTag {
				want = append(want, 1, 0xdd)
			}
			if !bytes.Equal(pmEnc, want) {
				t.Errorf("%v/%v: PublicMessage %x, want %x", c.sender.SenderType, ct, pmEnc, want)
			}
			var pm2 PublicMessage
			if err := codec.Unmarshal(pmEnc, &pm2); err != nil {
				t.Fatalf("%v/%v: %v", c.sender.SenderType, ct, err)
			}
			if (pm2.MembershipTag != nil) != c.hasTag || (pm2.Auth.ConfirmationTag != nil) != (ct == ContentTypeCommit) {
				t.Errorf("%v/%v: decoded tags %x %x", c.sender.SenderType, ct, pm2.MembershipTag, pm2.Auth.ConfirmationTag)
			}

			acEnc := codec.MustMarshal(ac)
			if want := append(append([]byte{0, 1}, contentEnc...), authEnc...); !bytes.Equal(acEnc, want) {
				t.Errorf("%v/%v: AuthenticatedContent %x, want %x", c.sender.SenderType, ct, acEnc, want)
			}
			tbm := &AuthenticatedContentTBM{ContentTBS: *ac.TBS(ctx), Auth: auth}
			if got := codec.MustMarshal(tbm); !bytes.Equal(got, append(bytes.Clone(tbs), authEnc...)) {
				t.Errorf("%v/%v: AuthenticatedContentTBM %x", c.sender.SenderType, ct, got)
			}
			roundTripValue(t, tbm, new(AuthenticatedContentTBM))
			if ct == ContentTypeCommit {
				cth := codec.MustMarshal(ac.ConfirmedTranscriptHashInput())
				if want := append(append([]byte{0, 1}, contentEnc...), 1, 0x51); !bytes.Equal(cth, want) {
					t.Errorf("%v: ConfirmedTranscriptHashInput %x, want %x", c.sender.SenderType, cth, want)
				}
			}
		}
	}
}

// roundTripValue encodes v, decodes it into fresh and checks the re-encoding.
func roundTripValue(t *testing.T, v codec.Marshaler, fresh wireValue) []byte {
	t.Helper()
	enc, err := codec.Marshal(v)
	if err != nil {
		t.Fatalf("%T: %v", v, err)
	}
	if err := codec.Unmarshal(enc, fresh); err != nil {
		t.Fatalf("%T: %v", v, err)
	}
	if again := codec.MustMarshal(fresh); !bytes.Equal(again, enc) {
		t.Fatalf("%T: re-encoding %x, want %x", v, again, enc)
	}
	return enc
}

// TestSmallStructures pins the encodings of the structures no vector exercises directly.
func TestSmallStructures(t *testing.T) {
	psk := PreSharedKeyID{PSKType: PSKTypeResumption, Usage: ResumptionPSKUsageBranch, PSKGroupID: []byte{1}, PSKEpoch: 3, PSKNonce: []byte{2}}
	for _, c := range []struct {
		v     codec.Marshaler
		fresh wireValue
		want  string
	}{
		{NewKDFLabel("key", []byte{1}, 16), new(KDFLabel), "0010" + "0b" + hex.EncodeToString([]byte("MLS 1.0 key")) + "0101"},
		{NewSignContent("X", []byte{2}), new(SignContent), "09" + hex.EncodeToString([]byte("MLS 1.0 X")) + "0102"},
		{NewEncryptContext("Welcome", nil), new(EncryptContext), "0f" + hex.EncodeToString([]byte("MLS 1.0 Welcome")) + "00"},
		{&RefHashInput{Label: []byte(ProposalRefLabel), Value: []byte{3}}, new(RefHashInput), "1a" + hex.EncodeToString([]byte(ProposalRefLabel)) + "0103"},
		{&PSKLabel{ID: psk, Index: 1, Count: 2}, new(PSKLabel), "02" + "03" + "0101" + "0000000000000003" + "0102" + "0001" + "0002"},
		{&SenderData{LeafIndex: 1, Generation: 2, ReuseGuard: [4]byte{9, 8, 7, 6}}, new(SenderData), "00000001" + "00000002" + "09080706"},
		{&SenderDataAAD{GroupID: []byte{1}, Epoch: 4, ContentType: ContentTypeCommit}, new(SenderDataAAD), "0101" + "0000000000000004" + "03"},
		{&PrivateContentAAD{GroupID: []byte{1}, Epoch: 4, ContentType: ContentTypeProposal, AuthenticatedData: []byte{5}}, new(PrivateContentAAD), "0101" + "0000000000000004" + "02" + "0105"},
		{&InterimTranscriptHashInput{ConfirmationTag: MAC{1, 2}}, new(InterimTranscriptHashInput), "020102"},
		{&ParentHashInput{EncryptionKey: HPKEPublicKey{1}, OriginalSiblingTreeHash: []byte{2}}, new(ParentHashInput), "0101" + "00" + "0102"},
		{&TreeHashInput{NodeType: NodeTypeLeaf, LeafNode: &LeafNodeHashInput{LeafIndex: 3}}, new(TreeHashInput), "01" + "00000003" + "00"},
		{&TreeHashInput{NodeType: NodeTypeParent, ParentNode: &ParentNodeHashInput{ParentNode: &ParentNode{}, LeftHash: []byte{1}, RightHash: []byte{2}}}, new(TreeHashInput), "02" + "01" + "000000" + "0101" + "0102"},
		{&GroupSecrets{JoinerSecret: []byte{1}, PathSecret: &PathSecret{PathSecret: []byte{2}}, PSKs: []PreSharedKeyID{{PSKType: PSKTypeExternal, PSKID: []byte{3}, PSKNonce: []byte{4}}}}, new(GroupSecrets), "0101" + "01" + "0102" + "05" + "01" + "0103" + "0104"},
		{&Credential{CredentialType: CredentialTypeX509, Certificates: []Certificate{{CertData: []byte{1}}, {CertData: []byte{2, 3}}}}, new(Credential), "0002" + "05" + "0101" + "020203"},
		{&Commit{Proposals: []ProposalOrRef{{Type: ProposalOrRefTypeReference, Reference: ProposalRef{1}}}}, new(Commit), "03" + "02" + "0101" + "00"},
		{NewPrivateMessageMLS(&PrivateMessage{GroupID: []byte{1}, ContentType: ContentTypeApplication}), new(MLSMessage), "0001" + "0002" + "0101" + "0000000000000000" + "01" + "00" + "00" + "00"},
		{&GroupInfo{GroupContext: *testGroupContext(), Signer: 1}, new(GroupInfo), hex.EncodeToString(codec.MustMarshal(testGroupContext())) + "00" + "00" + "00000001" + "00"},
	} {
		enc := roundTripValue(t, c.v, c.fresh)
		if hex.EncodeToString(enc) != c.want {
			t.Errorf("%T: %x, want %s", c.v, enc, c.want)
		}
	}
	// LeafNodeTBS for the commit source carries group_id and leaf_index.
	ln := &LeafNode{
		Credential:     NewBasicCredential(nil),
		LeafNodeSource: LeafNodeSourceCommit,
		ParentHash:     []byte{0xee},
	}
	tbs := roundTripValue(t, ln.TBS([]byte{0x67}, 9), new(LeafNodeTBS))
	if want := "00" + "00" + "000100" + "0000000000" + "03" + "01ee" + "00" + "0167" + "00000009"; hex.EncodeToString(tbs) != want {
		t.Errorf("LeafNodeTBS %x, want %s", tbs, want)
	}
	kpLeaf := &LeafNode{Credential: NewBasicCredential(nil), LeafNodeSource: LeafNodeSourceKeyPackage}
	tbs = roundTripValue(t, kpLeaf.TBS([]byte{0x67}, 9), new(LeafNodeTBS))
	if want := "00" + "00" + "000100" + "0000000000" + "01" + "0000000000000000" + "0000000000000000" + "00"; hex.EncodeToString(tbs) != want {
		t.Errorf("LeafNodeTBS (key_package) %x, want %s", tbs, want)
	}
}
