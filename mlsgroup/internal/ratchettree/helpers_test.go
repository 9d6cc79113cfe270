package ratchettree

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

var testGroupID = []byte("test group")

func mustSuite(tb testing.TB, id suite.ID) *suite.Suite {
	tb.Helper()
	cs, err := suite.Lookup(id)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

// identity is a client: a signature key and a basic credential.
type identity struct {
	name string
	sig  *suite.SigningKey
}

func newIdentity(tb testing.TB, cs *suite.Suite, name string) *identity {
	tb.Helper()
	sig, err := cs.GenerateSigningKey()
	if err != nil {
		tb.Fatal(err)
	}
	return &identity{name: name, sig: sig}
}

// leafNode builds and signs a leaf node of the given source for this identity, with a
// fresh encryption key.
func (id *identity) leafNode(tb testing.TB, cs *suite.Suite, source wire.LeafNodeSource, groupID []byte, l LeafIndex) (*wire.LeafNode, *suite.HPKEPrivateKey) {
	tb.Helper()
	priv, err := cs.GenerateHPKEKey()
	if err != nil {
		tb.Fatal(err)
	}
	ln := &wire.LeafNode{
		EncryptionKey: priv.PublicKey(),
		SignatureKey:  id.sig.PublicKey(),
		Credential:    wire.NewBasicCredential([]byte(id.name)),
		Capabilities: wire.Capabilities{
			Versions:     []wire.ProtocolVersion{wire.ProtocolVersionMLS10},
			CipherSuites: []wire.CipherSuite{wire.CipherSuite(cs.ID())},
			Extensions:   []wire.ExtensionType{},
			Proposals:    []wire.ProposalType{},
			Credentials:  []wire.CredentialType{wire.CredentialTypeBasic},
		},
		LeafNodeSource: source,
		Extensions:     wire.Extensions{},
	}
	if source == wire.LeafNodeSourceKeyPackage {
		ln.Lifetime = wire.Lifetime{NotBefore: 0, NotAfter: math.MaxUint64}
	}
	if source == wire.LeafNodeSourceCommit {
		ln.ParentHash = []byte{}
	}
	resign(tb, cs, id.sig, ln, groupID, l)
	return ln, priv
}

// resign signs ln again after a change.
func resign(tb testing.TB, cs *suite.Suite, sig *suite.SigningKey, ln *wire.LeafNode, groupID []byte, l LeafIndex) {
	tb.Helper()
	tbs, err := codec.Marshal(ln.TBS(groupID, uint32(l)))
	if err != nil {
		tb.Fatal(err)
	}
	if ln.Signature, err = cs.SignWithLabel(sig, "LeafNodeTBS", tbs); err != nil {
		tb.Fatal(err)
	}
}

// encoding returns the encoded truncated tree and its tree hash, to compare a tree before
// and after a failed operation.
func encoding(tb testing.TB, t *Tree) []byte {
	tb.Helper()
	rt := t.Wire()
	enc, err := codec.Marshal(&rt)
	if err != nil {
		tb.Fatal(err)
	}
	return append(enc, t.TreeHash()...)
}

// roundTrip encodes and decodes a tree, as a joiner receives it.
func roundTrip(tb testing.TB, t *Tree) *Tree {
	tb.Helper()
	rt := t.Wire()
	enc, err := codec.Marshal(&rt)
	if err != nil {
		tb.Fatal(err)
	}
	back, err := wire.DecodeRatchetTree(enc)
	if err != nil {
		tb.Fatal(err)
	}
	t2, err := FromWire(t.cs, back)
	if err != nil {
		tb.Fatal(err)
	}
	return t2
}

func groupContextBytes(tb testing.TB, cs *suite.Suite, epoch uint64, treeHash []byte) []byte {
	tb.Helper()
	gc, err := codec.Marshal(&wire.GroupContext{
		CipherSuite:             wire.CipherSuite(cs.ID()),
		GroupID:                 testGroupID,
		Epoch:                   epoch,
		TreeHash:                treeHash,
		ConfirmedTranscriptHash: []byte("cth"),
		Extensions:              wire.Extensions{},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return gc
}

// Test vectors, read from ../shared/testdata/mls-vectors (never copied into the repo).
var (
	vectorsOnce sync.Once
	vectorsPath string
	vectorsErr  error
)

func vectorFile(tb testing.TB, name string) []byte {
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
		tb.Skipf("test vectors not available: %v", vectorsErr)
	}
	data, err := os.ReadFile(filepath.Join(vectorsPath, name))
	if err != nil {
		tb.Skipf("test vectors not available: %v", err)
	}
	return data
}

// validationTree is one tree-validation vector.
type validationTree struct {
	Suite   suite.ID
	Tree    []byte
	GroupID []byte
}

func validationTrees(tb testing.TB) []validationTree {
	tb.Helper()
	var raw []struct {
		CipherSuite uint16 `json:"cipher_suite"`
		Tree        string `json:"tree"`
		GroupID     string `json:"group_id"`
	}
	if err := json.Unmarshal(vectorFile(tb, "tree-validation.json"), &raw); err != nil {
		tb.Fatal(err)
	}
	out := make([]validationTree, len(raw))
	for i, r := range raw {
		tree, err1 := hex.DecodeString(r.Tree)
		gid, err2 := hex.DecodeString(r.GroupID)
		if err1 != nil || err2 != nil {
			tb.Fatal("bad hex in tree-validation.json")
		}
		out[i] = validationTree{Suite: suite.ID(r.CipherSuite), Tree: tree, GroupID: gid}
	}
	return out
}

func loadTree(tb testing.TB, v validationTree) *Tree {
	tb.Helper()
	rt, err := wire.DecodeRatchetTree(v.Tree)
	if err != nil {
		tb.Fatal(err)
	}
	t, err := FromWire(mustSuite(tb, v.Suite), rt)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// --- A simulated group: every member keeps its own view and must agree. -----------------

type simMember struct {
	id   *identity
	priv *PrivateKeys
}

type simGroup struct {
	tb      testing.TB
	cs      *suite.Suite
	epoch   uint64
	tree    *Tree
	members map[LeafIndex]*simMember
	n       int // identities created
}

func newSimGroup(tb testing.TB, cs *suite.Suite) *simGroup {
	tb.Helper()
	g := &simGroup{tb: tb, cs: cs, members: map[LeafIndex]*simMember{}}
	id := g.newIdentity()
	ln, priv := id.leafNode(tb, cs, wire.LeafNodeSourceKeyPackage, nil, 0)
	tree, err := New(cs, ln)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := NewPrivateKeys(tree, 0, priv)
	if err != nil {
		tb.Fatal(err)
	}
	g.tree = tree
	g.members[0] = &simMember{id: id, priv: p}
	return g
}

func (g *simGroup) newIdentity() *identity {
	g.n++
	return newIdentity(g.tb, g.cs, "member "+string(rune('A'+g.n%26))+string(rune('0'+g.n/26)))
}

func (g *simGroup) opts() *LeafNodeOptions { return &LeafNodeOptions{GroupID: testGroupID} }

// proposals is the content of one Commit.
type proposals struct {
	updates map[LeafIndex]*wire.LeafNode
	newKeys map[LeafIndex]*suite.HPKEPrivateKey // private keys of the updated leaves
	removes []LeafIndex
	adds    []*wire.LeafNode
	addKeys []*suite.HPKEPrivateKey
	addIDs  []*identity
}

// propose builds proposals: updates by the given members, removals, and n new members.
func (g *simGroup) propose(updaters []LeafIndex, removes []LeafIndex, adds int) *proposals {
	tb := g.tb
	tb.Helper()
	p := &proposals{updates: map[LeafIndex]*wire.LeafNode{}, newKeys: map[LeafIndex]*suite.HPKEPrivateKey{}, removes: removes}
	for _, u := range updaters {
		ln, priv := g.members[u].id.leafNode(tb, g.cs, wire.LeafNodeSourceUpdate, testGroupID, u)
		if err := g.tree.ValidateLeafNode(ln, u, wire.LeafNodeSourceUpdate, g.opts()); err != nil {
			tb.Fatalf("update of leaf %d: %v", u, err)
		}
		p.updates[u], p.newKeys[u] = ln, priv
	}
	for range adds {
		id := g.newIdentity()
		ln, priv := id.leafNode(tb, g.cs, wire.LeafNodeSourceKeyPackage, nil, 0)
		if err := g.tree.ValidateLeafNode(ln, g.tree.LeftmostBlankLeaf(), wire.LeafNodeSourceKeyPackage, g.opts()); err != nil {
			tb.Fatalf("key package: %v", err)
		}
		p.adds, p.addKeys, p.addIDs = append(p.adds, ln), append(p.addKeys, priv), append(p.addIDs, id)
	}
	return p
}

// apply applies the proposals to t in the order of RFC 9420, Section 12.3.
func (g *simGroup) apply(t *Tree, p *proposals) []LeafIndex {
	tb := g.tb
	tb.Helper()
	for u, ln := range p.updates {
		if err := t.Update(u, ln); err != nil {
			tb.Fatalf("update %d: %v", u, err)
		}
	}
	for _, r := range p.removes {
		if err := t.Remove(r); err != nil {
			tb.Fatalf("remove %d: %v", r, err)
		}
	}
	var added []LeafIndex
	for _, ln := range p.adds {
		l, err := t.AddLeaf(ln)
		if err != nil {
			tb.Fatalf("add: %v", err)
		}
		added = append(added, l)
	}
	return added
}

// commit has committer commit p, with or without a path, and has every member process it.
func (g *simGroup) commit(committer LeafIndex, p *proposals, withPath bool) {
	tb := g.tb
	tb.Helper()
	cs := g.cs
	cm := g.members[committer]
	mine := g.tree.Clone()
	added := g.apply(mine, p)
	newEpoch := g.epoch + 1

	var path *wire.UpdatePath
	var pending *PendingPath
	var gc []byte
	if withPath {
		var err error
		pending, err = mine.GenerateUpdatePath(committer, nil, cm.id.sig, testGroupID)
		if err != nil {
			tb.Fatalf("epoch %d: generate: %v", newEpoch, err)
		}
		gc = groupContextBytes(tb, cs, newEpoch, mine.TreeHash())
		if path, err = pending.Encrypt(gc, added); err != nil {
			tb.Fatalf("epoch %d: encrypt: %v", newEpoch, err)
		}
	}
	if err := mine.Validate(mine.TreeHash(), g.opts()); err != nil {
		tb.Fatalf("epoch %d: tree after commit by %d: %v", newEpoch, committer, err)
	}

	removed := map[LeafIndex]bool{}
	for _, r := range p.removes {
		removed[r] = true
	}
	// Every other remaining member processes the commit on its own copy.
	for l, m := range g.members {
		if l == committer || removed[l] {
			continue
		}
		theirs := g.tree.Clone()
		if got := g.apply(theirs, p); len(got) != len(added) {
			tb.Fatalf("added leaves differ")
		}
		priv := m.priv.Clone()
		if k, ok := p.newKeys[l]; ok {
			if err := priv.SetLeafKey(theirs, k); err != nil {
				tb.Fatalf("epoch %d: leaf %d: %v", newEpoch, l, err)
			}
		}
		if withPath {
			if err := theirs.ApplyUpdatePath(committer, path, g.opts()); err != nil {
				tb.Fatalf("epoch %d: leaf %d: apply path of %d: %v", newEpoch, l, committer, err)
			}
			if !bytes.Equal(groupContextBytes(tb, cs, newEpoch, theirs.TreeHash()), gc) {
				tb.Fatalf("epoch %d: leaf %d: group context differs", newEpoch, l)
			}
			d, err := priv.DecryptUpdatePath(theirs, committer, path, gc, added)
			if err != nil {
				tb.Fatalf("epoch %d: leaf %d: decrypt path of %d: %v", newEpoch, l, committer, err)
			}
			if !bytes.Equal(d.CommitSecret, pending.CommitSecret()) {
				tb.Fatalf("epoch %d: leaf %d: commit secret differs", newEpoch, l)
			}
		} else {
			priv.Prune(theirs)
		}
		if !bytes.Equal(theirs.TreeHash(), mine.TreeHash()) {
			tb.Fatalf("epoch %d: leaf %d: tree hash differs", newEpoch, l)
		}
		if err := priv.Check(theirs); err != nil {
			tb.Fatalf("epoch %d: leaf %d: %v", newEpoch, l, err)
		}
		m.priv = priv
	}
	for _, r := range p.removes {
		delete(g.members, r)
	}
	if withPath {
		cm.priv = pending.PrivateKeys()
	} else {
		if k, ok := p.newKeys[committer]; ok {
			tb.Fatalf("an update of the committer needs a path")
			_ = k
		}
		cm.priv.Prune(mine)
	}
	if err := cm.priv.Check(mine); err != nil {
		tb.Fatalf("epoch %d: committer: %v", newEpoch, err)
	}
	// New members join from the encoded tree.
	for i, l := range added {
		joined := roundTrip(tb, mine)
		if err := joined.Validate(mine.TreeHash(), g.opts()); err != nil {
			tb.Fatalf("epoch %d: joiner %d: %v", newEpoch, l, err)
		}
		at, ok := joined.FindLeaf(p.adds[i])
		if !ok || at != l {
			tb.Fatalf("epoch %d: joiner finds its leaf at %d (%v), want %d", newEpoch, at, ok, l)
		}
		priv, err := NewPrivateKeys(joined, l, p.addKeys[i])
		if err != nil {
			tb.Fatal(err)
		}
		if withPath {
			secret, err := pending.PathSecret(l)
			if err != nil {
				tb.Fatal(err)
			}
			lca, _ := treemath.CommonAncestor(NodeIndex(2*l), NodeIndex(2*committer), joined.LeafCount())
			if err := priv.InstallPathSecret(joined, lca, secret); err != nil {
				tb.Fatalf("epoch %d: joiner %d: %v", newEpoch, l, err)
			}
		}
		if err := priv.Check(joined); err != nil {
			tb.Fatal(err)
		}
		g.members[l] = &simMember{id: p.addIDs[i], priv: priv}
	}
	if len(g.members) != mine.MemberCount() {
		tb.Fatalf("epoch %d: %d members, tree has %d", newEpoch, len(g.members), mine.MemberCount())
	}
	g.tree = mine
	g.epoch = newEpoch
}

func timeAt(sec int64) time.Time { return time.Unix(sec, 0) }
