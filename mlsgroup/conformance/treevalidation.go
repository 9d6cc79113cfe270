package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/ratchettree"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

func init() { register("tree-validation", runTreeValidation) }

// runTreeValidation checks the tree hash and the resolution of every node of a tree, then
// validates the tree as a joiner does: parent hashes and every leaf node, signatures
// included, with the vector's group id (test-vectors.md, "Tree Validation").
func runTreeValidation(raw json.RawMessage) error {
	var v struct {
		CipherSuite uint16     `json:"cipher_suite"`
		Tree        hexBytes   `json:"tree"`
		GroupID     hexBytes   `json:"group_id"`
		Resolutions [][]uint32 `json:"resolutions"`
		TreeHashes  []hexBytes `json:"tree_hashes"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	cs, err := lookupSuite(v.CipherSuite)
	if err != nil {
		return err
	}
	rt, err := wire.DecodeRatchetTree(v.Tree)
	if err != nil {
		return err
	}
	tree, err := ratchettree.FromWire(cs, rt)
	if err != nil {
		return err
	}
	w := int(tree.Width())
	if len(v.TreeHashes) != w || len(v.Resolutions) != w {
		return fmt.Errorf("%d tree hashes and %d resolutions for %d nodes", len(v.TreeHashes), len(v.Resolutions), w)
	}
	for i := range w {
		x := ratchettree.NodeIndex(i)
		if got := tree.NodeHash(x); !bytes.Equal(got, v.TreeHashes[i]) {
			return mismatch(fmt.Sprintf("tree hash of node %d", i), got, v.TreeHashes[i])
		}
		got := tree.Resolution(x)
		want := make([]ratchettree.NodeIndex, len(v.Resolutions[i]))
		for j, y := range v.Resolutions[i] {
			want[j] = ratchettree.NodeIndex(y)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("resolution of node %d: got %v, want %v", i, got, want)
		}
	}
	if err := tree.VerifyParentHashes(); err != nil {
		return err
	}
	root := v.TreeHashes[tree.Root()]
	return tree.Validate(root, &ratchettree.LeafNodeOptions{GroupID: v.GroupID})
}
