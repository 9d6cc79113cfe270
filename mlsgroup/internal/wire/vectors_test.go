package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// wireValue is any structure of this package.
type wireValue interface {
	codec.Marshaler
	codec.Unmarshaler
}

var (
	vectorsOnce sync.Once
	vectorsPath string
	vectorsErr  error
)

// vectorsDir returns the mls-vectors directory, ../shared/testdata/mls-vectors relative to
// the repository root (the directory of `go env GOMOD`).
func vectorsDir(tb testing.TB) string {
	tb.Helper()
	vectorsOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			vectorsErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		vectorsPath = filepath.Join(root, "..", "shared", "testdata", "mls-vectors")
		_, vectorsErr = os.Stat(vectorsPath)
	})
	if vectorsErr != nil {
		tb.Fatalf("locating the test vectors: %v", vectorsErr)
	}
	return vectorsPath
}

// readJSON reads a vector file into v.
func readJSON(tb testing.TB, name string, v any) {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(vectorsDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
}

// messagesEntries returns messages.json, each entry's fields hex-decoded.
func messagesEntries(tb testing.TB) []map[string][]byte {
	tb.Helper()
	var raw []map[string]string
	readJSON(tb, "messages.json", &raw)
	out := make([]map[string][]byte, len(raw))
	for i, e := range raw {
		out[i] = map[string][]byte{}
		for k, v := range e {
			b, err := hex.DecodeString(v)
			if err != nil {
				tb.Fatalf("messages.json[%d].%s: %v", i, k, err)
			}
			out[i][k] = b
		}
	}
	return out
}

// messagesTypes maps each field of messages.json to the structure it holds.
var messagesTypes = map[string]func() wireValue{
	"mls_welcome":                       func() wireValue { return new(MLSMessage) },
	"mls_group_info":                    func() wireValue { return new(MLSMessage) },
	"mls_key_package":                   func() wireValue { return new(MLSMessage) },
	"ratchet_tree":                      func() wireValue { return new(RatchetTree) },
	"group_secrets":                     func() wireValue { return new(GroupSecrets) },
	"add_proposal":                      func() wireValue { return new(Add) },
	"update_proposal":                   func() wireValue { return new(Update) },
	"remove_proposal":                   func() wireValue { return new(Remove) },
	"pre_shared_key_proposal":           func() wireValue { return new(PreSharedKey) },
	"re_init_proposal":                  func() wireValue { return new(ReInit) },
	"external_init_proposal":            func() wireValue { return new(ExternalInit) },
	"group_context_extensions_proposal": func() wireValue { return new(GroupContextExtensions) },
	"commit":                            func() wireValue { return new(Commit) },
	"public_message_application":        func() wireValue { return new(MLSMessage) },
	"public_message_proposal":           func() wireValue { return new(MLSMessage) },
	"public_message_commit":             func() wireValue { return new(MLSMessage) },
	"private_message":                   func() wireValue { return new(MLSMessage) },
}

// roundTrip decodes data as v and checks that it encodes back to data.
func roundTrip(t *testing.T, what string, data []byte, v wireValue) {
	t.Helper()
	if err := codec.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	got, err := codec.Marshal(v)
	if err != nil {
		t.Fatalf("%s: re-encoding: %v", what, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: re-encoding differs\n got %x\nwant %x", what, got, data)
	}
}

// mustEncode encodes v or fails the test.
func mustEncode(t *testing.T, what string, v codec.Marshaler) []byte {
	t.Helper()
	out, err := codec.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return out
}

func TestMessagesRoundTrip(t *testing.T) {
	entries := messagesEntries(t)
	if len(entries) != 300 {
		t.Fatalf("messages.json has %d entries, want 300", len(entries))
	}
	for i, e := range entries {
		if len(e) != len(messagesTypes) {
			t.Errorf("entry %d has %d fields, want %d", i, len(e), len(messagesTypes))
		}
		for field, data := range e {
			newV, ok := messagesTypes[field]
			if !ok {
				t.Fatalf("entry %d: unknown field %s", i, field)
			}
			v := newV()
			roundTrip(t, field, data, v)
			checkDeep(t, field, data, v)
		}
	}
}

// checkDeep checks the derived encodings (TBS, AuthenticatedContent) against the bytes they
// must match, and the typed extension accessors, inside a decoded value.
func checkDeep(t *testing.T, what string, data []byte, v wireValue) {
	t.Helper()
	switch v := v.(type) {
	case *MLSMessage:
		body := data[4:]
		switch v.WireFormat {
		case WireFormatKeyPackage:
			checkKeyPackage(t, what, body, v.KeyPackage)
		case WireFormatGroupInfo:
			g := v.GroupInfo
			tbs := mustEncode(t, what+": GroupInfoTBS", g.TBS())
			if !bytes.HasPrefix(body, tbs) || len(body)-len(tbs) != opaqueLen(g.Signature) {
				t.Fatalf("%s: GroupInfoTBS is not the GroupInfo without its signature", what)
			}
			checkExtensions(t, what+": group_info.extensions", g.Extensions)
			checkExtensions(t, what+": group_context.extensions", g.GroupContext.Extensions)
		case WireFormatPublicMessage:
			p := v.PublicMessage
			ac := mustEncode(t, what+": AuthenticatedContent", p.AuthenticatedContent())
			end := len(data)
			if p.Content.Sender.SenderType == SenderTypeMember {
				end -= opaqueLen(p.MembershipTag)
			}
			if !bytes.Equal(ac, data[2:end]) {
				t.Fatalf("%s: AuthenticatedContent is not the message without version and membership tag", what)
			}
			checkContent(t, what, p.Content.Proposal, p.Content.Commit)
		}
	case *RatchetTree:
		for _, n := range *v {
			if n != nil && n.NodeType == NodeTypeLeaf {
				checkLeafNode(t, what, n.LeafNode)
			}
		}
	case *Add:
		checkKeyPackage(t, what, data, &v.KeyPackage)
	case *Update:
		checkLeafNode(t, what, &v.LeafNode)
	case *ReInit:
		checkExtensions(t, what, v.Extensions)
	case *GroupContextExtensions:
		checkExtensions(t, what, v.Extensions)
	case *Commit:
		checkContent(t, what, nil, v)
	}
}

func opaqueLen(b []byte) int {
	var bld cryptobyte.Builder
	codec.AddOpaque(&bld, b)
	out, _ := bld.Bytes()
	return len(out)
}

func checkKeyPackage(t *testing.T, what string, data []byte, k *KeyPackage) {
	t.Helper()
	tbs := mustEncode(t, what+": KeyPackageTBS", k.TBS())
	if !bytes.HasPrefix(data, tbs) || len(data)-len(tbs) != opaqueLen(k.Signature) {
		t.Fatalf("%s: KeyPackageTBS is not the KeyPackage without its signature", what)
	}
	checkExtensions(t, what+": key_package.extensions", k.Extensions)
	checkLeafNode(t, what, &k.LeafNode)
}

func checkLeafNode(t *testing.T, what string, n *LeafNode) {
	t.Helper()
	enc := mustEncode(t, what+": LeafNode", n)
	tbs := mustEncode(t, what+": LeafNodeTBS", n.TBS([]byte("group"), 7))
	body := enc[:len(enc)-opaqueLen(n.Signature)]
	switch n.LeafNodeSource {
	case LeafNodeSourceKeyPackage:
		if !bytes.Equal(tbs, body) {
			t.Fatalf("%s: LeafNodeTBS (key_package) is not the LeafNode without signature", what)
		}
	default:
		suffix := []byte{5, 'g', 'r', 'o', 'u', 'p', 0, 0, 0, 7}
		if !bytes.Equal(tbs, append(body[:len(body):len(body)], suffix...)) {
			t.Fatalf("%s: LeafNodeTBS (%d) lacks group_id and leaf_index", what, n.LeafNodeSource)
		}
	}
	checkExtensions(t, what+": leaf_node.extensions", n.Extensions)
}

func checkContent(t *testing.T, what string, p *Proposal, c *Commit) {
	t.Helper()
	var props []*Proposal
	if p != nil {
		props = append(props, p)
	}
	if c != nil {
		for _, r := range c.Proposals {
			if r.Proposal != nil {
				props = append(props, r.Proposal)
			}
		}
		if c.Path != nil {
			checkLeafNode(t, what+": path", &c.Path.LeafNode)
		}
	}
	for _, p := range props {
		switch {
		case p.Add != nil:
			checkKeyPackage(t, what+": add", mustEncode(t, what, &p.Add.KeyPackage), &p.Add.KeyPackage)
		case p.Update != nil:
			checkLeafNode(t, what+": update", &p.Update.LeafNode)
		case p.ReInit != nil:
			checkExtensions(t, what+": reinit", p.ReInit.Extensions)
		case p.GroupContextExtensions != nil:
			checkExtensions(t, what+": gce", p.GroupContextExtensions.Extensions)
		}
	}
}

// typedExtensionsSeen counts the extensions checkExtensions decoded, by type.
var typedExtensionsSeen = map[ExtensionType]int{}

// checkExtensions decodes every extension of a known type with its typed accessor and
// checks that the typed body re-encodes to the extension data.
func checkExtensions(t *testing.T, what string, exts Extensions) {
	t.Helper()
	for _, e := range exts {
		var v codec.Marshaler
		var err error
		switch e.ExtensionType {
		case ExtensionTypeApplicationID:
			var x ApplicationID
			x, err = e.ApplicationID()
			v = &x
		case ExtensionTypeRatchetTree:
			var x RatchetTree
			x, err = e.RatchetTree()
			v = &x
		case ExtensionTypeRequiredCapabilities:
			v, err = e.RequiredCapabilities()
		case ExtensionTypeExternalPub:
			v, err = e.ExternalPub()
		case ExtensionTypeExternalSenders:
			var x ExternalSenders
			x, err = e.ExternalSenders()
			v = &x
		default:
			continue
		}
		if err != nil {
			t.Fatalf("%s: extension %d: %v", what, e.ExtensionType, err)
		}
		typedExtensionsSeen[e.ExtensionType]++
		if got := mustEncode(t, what, v); !bytes.Equal(got, e.ExtensionData) {
			t.Fatalf("%s: extension %d re-encodes differently", what, e.ExtensionType)
		}
	}
}

// corpusFields lists, per vector file, where wire structures sit in each entry.
var corpusFields = []struct {
	files []string
	path  string
	typ   func() wireValue
}{
	{passiveFiles, "key_package", func() wireValue { return new(MLSMessage) }},
	{passiveFiles, "welcome", func() wireValue { return new(MLSMessage) }},
	{passiveFiles, "ratchet_tree", func() wireValue { return new(RatchetTree) }},
	{passiveFiles, "epochs[].commit", func() wireValue { return new(MLSMessage) }},
	{passiveFiles, "epochs[].proposals[]", func() wireValue { return new(MLSMessage) }},
	{[]string{"welcome.json"}, "key_package", func() wireValue { return new(MLSMessage) }},
	{[]string{"welcome.json"}, "welcome", func() wireValue { return new(MLSMessage) }},
	{[]string{"message-protection.json"}, "proposal", func() wireValue { return new(Proposal) }},
	{[]string{"message-protection.json"}, "commit", func() wireValue { return new(Commit) }},
	{[]string{"message-protection.json"}, "proposal_pub", func() wireValue { return new(MLSMessage) }},
	{[]string{"message-protection.json"}, "proposal_priv", func() wireValue { return new(MLSMessage) }},
	{[]string{"message-protection.json"}, "commit_pub", func() wireValue { return new(MLSMessage) }},
	{[]string{"message-protection.json"}, "commit_priv", func() wireValue { return new(MLSMessage) }},
	{[]string{"message-protection.json"}, "application_priv", func() wireValue { return new(MLSMessage) }},
	{[]string{"transcript-hashes.json"}, "authenticated_content", func() wireValue { return new(AuthenticatedContent) }},
	{[]string{"key-schedule.json"}, "epochs[].group_context", func() wireValue { return new(GroupContext) }},
	{[]string{"tree-operations.json"}, "tree_before", func() wireValue { return new(RatchetTree) }},
	{[]string{"tree-operations.json"}, "tree_after", func() wireValue { return new(RatchetTree) }},
	{[]string{"tree-operations.json"}, "proposal", func() wireValue { return new(Proposal) }},
	{[]string{"tree-validation.json"}, "tree", func() wireValue { return new(RatchetTree) }},
	{[]string{"treekem.json"}, "ratchet_tree", func() wireValue { return new(RatchetTree) }},
	{[]string{"treekem.json"}, "update_paths[].update_path", func() wireValue { return new(UpdatePath) }},
}

var passiveFiles = []string{
	"passive-client-handling-commit.json", "passive-client-random.json", "passive-client-welcome.json",
	"interop-passive/application.json", "interop-passive/branch.json", "interop-passive/commit.json",
	"interop-passive/external_join.json", "interop-passive/external_proposals.json",
	"interop-passive/reinit.json", "interop-passive/welcome_join.json",
}

// collectHex returns the hex strings at path ("a[].b" style) in v; null values are skipped.
func collectHex(v any, path string) []string {
	if path == "" {
		if s, ok := v.(string); ok {
			return []string{s}
		}
		return nil
	}
	seg, rest, _ := strings.Cut(path, ".")
	key, isList := strings.CutSuffix(seg, "[]")
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	child := m[key]
	if !isList {
		return collectHex(child, rest)
	}
	var out []string
	list, _ := child.([]any)
	for _, x := range list {
		out = append(out, collectHex(x, rest)...)
	}
	return out
}

// TestVectorCorpusRoundTrip round-trips every wire structure found in the other vector
// files (passive clients, welcome, message protection, transcripts, trees, TreeKEM).
func TestVectorCorpusRoundTrip(t *testing.T) {
	cache := map[string][]any{}
	for _, f := range corpusFields {
		n := 0
		for _, file := range f.files {
			entries, ok := cache[file]
			if !ok {
				readJSON(t, file, &entries)
				cache[file] = entries
			}
			for i, e := range entries {
				for _, h := range collectHex(e, f.path) {
					data, err := hex.DecodeString(h)
					if err != nil {
						t.Fatalf("%s[%d].%s: %v", file, i, f.path, err)
					}
					v := f.typ()
					what := file + "/" + f.path
					roundTrip(t, what, data, v)
					checkDeep(t, what, data, v)
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("%v: no %s found", f.files, f.path)
		}
		t.Logf("%v %s: %d round trips", f.files, f.path, n)
	}
	t.Logf("typed extensions decoded so far: %v", typedExtensionsSeen)
}
