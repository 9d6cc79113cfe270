package conformance

import (
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
)

func init() { register("tree-math", runTreeMath) }

// runTreeMath checks node_width, root, left, right, parent and sibling of every node of a
// tree (test-vectors.md, "Tree Math"). A null entry means the node has no such relative.
func runTreeMath(raw json.RawMessage) error {
	var v struct {
		NLeaves uint32    `json:"n_leaves"`
		NNodes  uint32    `json:"n_nodes"`
		Root    uint32    `json:"root"`
		Left    []*uint32 `json:"left"`
		Right   []*uint32 `json:"right"`
		Parent  []*uint32 `json:"parent"`
		Sibling []*uint32 `json:"sibling"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	n := v.NLeaves
	w, ok := treemath.NodeWidth(n)
	if !ok || w != v.NNodes {
		return fmt.Errorf("n_nodes: got %d (ok=%v), want %d", w, ok, v.NNodes)
	}
	r, ok := treemath.Root(n)
	if !ok || uint32(r) != v.Root {
		return fmt.Errorf("root: got %d (ok=%v), want %d", r, ok, v.Root)
	}
	for name, list := range map[string][]*uint32{"left": v.Left, "right": v.Right, "parent": v.Parent, "sibling": v.Sibling} {
		if uint32(len(list)) != w {
			return fmt.Errorf("%s: %d entries for %d nodes", name, len(list), w)
		}
	}
	check := func(what string, x uint32, got treemath.NodeIndex, ok bool, want *uint32) error {
		switch {
		case want == nil && ok:
			return fmt.Errorf("%s[%d]: got %d, want none", what, x, got)
		case want != nil && !ok:
			return fmt.Errorf("%s[%d]: got none, want %d", what, x, *want)
		case want != nil && uint32(got) != *want:
			return fmt.Errorf("%s[%d]: got %d, want %d", what, x, got, *want)
		}
		return nil
	}
	for i := range w {
		x := treemath.NodeIndex(i)
		l, lok := treemath.Left(x)
		rt, rok := treemath.Right(x)
		p, pok := treemath.Parent(x, n)
		s, sok := treemath.Sibling(x, n)
		for _, err := range []error{
			check("left", i, l, lok, v.Left[i]),
			check("right", i, rt, rok, v.Right[i]),
			check("parent", i, p, pok, v.Parent[i]),
			check("sibling", i, s, sok, v.Sibling[i]),
		} {
			if err != nil {
				return err
			}
		}
	}
	return nil
}
