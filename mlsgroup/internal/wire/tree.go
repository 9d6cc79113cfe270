package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// ParentNode is an intermediate node of the ratchet tree. RFC 9420, Section 7.1.
type ParentNode struct {
	EncryptionKey  HPKEPublicKey
	ParentHash     []byte
	UnmergedLeaves []uint32
}

// Marshal writes p.
func (p *ParentNode) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, p.EncryptionKey)
	codec.AddOpaque(b, p.ParentHash)
	addUint32s(b, p.UnmergedLeaves)
}

// Unmarshal reads p.
func (p *ParentNode) Unmarshal(s *cryptobyte.String) bool {
	var v ParentNode
	if !readBytes(s, &v.EncryptionKey) || !codec.ReadOpaque(s, &v.ParentHash) ||
		!readUint32s(s, &v.UnmergedLeaves) {
		return false
	}
	*p = v
	return true
}

// Node is a non-blank node of the ratchet tree: LeafNode is set for node type leaf,
// ParentNode for node type parent. RFC 9420, Section 12.4.3.3.
type Node struct {
	NodeType   NodeType
	LeafNode   *LeafNode   // leaf
	ParentNode *ParentNode // parent
}

// Marshal writes n. A missing branch or an unknown node type sets an error on b.
func (n *Node) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(n.NodeType))
	switch n.NodeType {
	case NodeTypeLeaf:
		if n.LeafNode == nil {
			b.SetError(errMissingBranch)
			return
		}
		n.LeafNode.Marshal(b)
	case NodeTypeParent:
		if n.ParentNode == nil {
			b.SetError(errMissingBranch)
			return
		}
		n.ParentNode.Marshal(b)
	default:
		b.SetError(errUnknown("node type", n.NodeType))
	}
}

// Unmarshal reads n.
func (n *Node) Unmarshal(s *cryptobyte.String) bool {
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	v := Node{NodeType: NodeType(t)}
	switch v.NodeType {
	case NodeTypeLeaf:
		v.LeafNode = new(LeafNode)
		if !v.LeafNode.Unmarshal(s) {
			return false
		}
	case NodeTypeParent:
		v.ParentNode = new(ParentNode)
		if !v.ParentNode.Unmarshal(s) {
			return false
		}
	default:
		return false
	}
	*n = v
	return true
}

// RatchetTree is `optional<Node> ratchet_tree<V>`, the body of the ratchet_tree extension:
// the tree's nodes in array order, nil for a blank node. RFC 9420, Section 12.4.3.3.
type RatchetTree []*Node

// Marshal writes t.
func (t *RatchetTree) Marshal(b *cryptobyte.Builder) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, n := range *t {
			writeOptional(b, n)
		}
	})
}

// Unmarshal reads t.
func (t *RatchetTree) Unmarshal(s *cryptobyte.String) bool {
	nodes := RatchetTree{}
	ok := codec.ReadList(s, func(s *cryptobyte.String) bool {
		var n *Node
		if !readOptional(s, &n) {
			return false
		}
		nodes = append(nodes, n)
		return true
	})
	if ok {
		*t = nodes
	}
	return ok
}

// DecodeRatchetTree decodes `optional<Node> ratchet_tree<V>`.
func DecodeRatchetTree(data []byte) (RatchetTree, error) {
	var t RatchetTree
	if err := codec.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	return t, nil
}

// HPKECiphertext is the output of EncryptWithLabel. RFC 9420, Section 7.6.
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// Marshal writes c.
func (c *HPKECiphertext) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, c.KEMOutput)
	codec.AddOpaque(b, c.Ciphertext)
}

// Unmarshal reads c.
func (c *HPKECiphertext) Unmarshal(s *cryptobyte.String) bool {
	var v HPKECiphertext
	if !codec.ReadOpaque(s, &v.KEMOutput) || !codec.ReadOpaque(s, &v.Ciphertext) {
		return false
	}
	*c = v
	return true
}

// UpdatePathNode is one node of an UpdatePath: its new public key and the path secret
// encrypted to each node of the copath node's resolution. RFC 9420, Section 7.6.
type UpdatePathNode struct {
	EncryptionKey       HPKEPublicKey
	EncryptedPathSecret []HPKECiphertext
}

// Marshal writes n.
func (n *UpdatePathNode) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, n.EncryptionKey)
	codec.AddStructs(b, n.EncryptedPathSecret)
}

// Unmarshal reads n.
func (n *UpdatePathNode) Unmarshal(s *cryptobyte.String) bool {
	var v UpdatePathNode
	if !readBytes(s, &v.EncryptionKey) || !codec.ReadStructs(s, &v.EncryptedPathSecret) {
		return false
	}
	*n = v
	return true
}

// UpdatePath is the committer's new leaf and the new keys along its filtered direct path.
// RFC 9420, Section 7.6.
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// Marshal writes p.
func (p *UpdatePath) Marshal(b *cryptobyte.Builder) {
	p.LeafNode.Marshal(b)
	codec.AddStructs(b, p.Nodes)
}

// Unmarshal reads p.
func (p *UpdatePath) Unmarshal(s *cryptobyte.String) bool {
	var v UpdatePath
	if !v.LeafNode.Unmarshal(s) || !codec.ReadStructs(s, &v.Nodes) {
		return false
	}
	*p = v
	return true
}

// TreeHashInput is the input to the tree hash of one node: LeafNode is set for node type
// leaf, ParentNode for node type parent. RFC 9420, Section 7.8.
type TreeHashInput struct {
	NodeType   NodeType
	LeafNode   *LeafNodeHashInput   // leaf
	ParentNode *ParentNodeHashInput // parent
}

// Marshal writes h.
func (h *TreeHashInput) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(h.NodeType))
	switch h.NodeType {
	case NodeTypeLeaf:
		if h.LeafNode == nil {
			b.SetError(errMissingBranch)
			return
		}
		h.LeafNode.Marshal(b)
	case NodeTypeParent:
		if h.ParentNode == nil {
			b.SetError(errMissingBranch)
			return
		}
		h.ParentNode.Marshal(b)
	default:
		b.SetError(errUnknown("node type", h.NodeType))
	}
}

// Unmarshal reads h.
func (h *TreeHashInput) Unmarshal(s *cryptobyte.String) bool {
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	v := TreeHashInput{NodeType: NodeType(t)}
	switch v.NodeType {
	case NodeTypeLeaf:
		v.LeafNode = new(LeafNodeHashInput)
		if !v.LeafNode.Unmarshal(s) {
			return false
		}
	case NodeTypeParent:
		v.ParentNode = new(ParentNodeHashInput)
		if !v.ParentNode.Unmarshal(s) {
			return false
		}
	default:
		return false
	}
	*h = v
	return true
}

// LeafNodeHashInput is the tree hash input of a leaf; LeafNode is nil for a blank leaf.
// RFC 9420, Section 7.8.
type LeafNodeHashInput struct {
	LeafIndex uint32
	LeafNode  *LeafNode
}

// Marshal writes h.
func (h *LeafNodeHashInput) Marshal(b *cryptobyte.Builder) {
	b.AddUint32(h.LeafIndex)
	writeOptional(b, h.LeafNode)
}

// Unmarshal reads h.
func (h *LeafNodeHashInput) Unmarshal(s *cryptobyte.String) bool {
	var v LeafNodeHashInput
	if !s.ReadUint32(&v.LeafIndex) || !readOptional(s, &v.LeafNode) {
		return false
	}
	*h = v
	return true
}

// ParentNodeHashInput is the tree hash input of a parent; ParentNode is nil for a blank
// node. RFC 9420, Section 7.8.
type ParentNodeHashInput struct {
	ParentNode *ParentNode
	LeftHash   []byte
	RightHash  []byte
}

// Marshal writes h.
func (h *ParentNodeHashInput) Marshal(b *cryptobyte.Builder) {
	writeOptional(b, h.ParentNode)
	codec.AddOpaque(b, h.LeftHash)
	codec.AddOpaque(b, h.RightHash)
}

// Unmarshal reads h.
func (h *ParentNodeHashInput) Unmarshal(s *cryptobyte.String) bool {
	var v ParentNodeHashInput
	if !readOptional(s, &v.ParentNode) || !codec.ReadOpaque(s, &v.LeftHash) ||
		!codec.ReadOpaque(s, &v.RightHash) {
		return false
	}
	*h = v
	return true
}

// ParentHashInput is the input to the parent hash of a node. RFC 9420, Section 7.9.
type ParentHashInput struct {
	EncryptionKey           HPKEPublicKey
	ParentHash              []byte
	OriginalSiblingTreeHash []byte
}

// Marshal writes h.
func (h *ParentHashInput) Marshal(b *cryptobyte.Builder) {
	codec.AddOpaque(b, h.EncryptionKey)
	codec.AddOpaque(b, h.ParentHash)
	codec.AddOpaque(b, h.OriginalSiblingTreeHash)
}

// Unmarshal reads h.
func (h *ParentHashInput) Unmarshal(s *cryptobyte.String) bool {
	var v ParentHashInput
	if !readBytes(s, &v.EncryptionKey) || !codec.ReadOpaque(s, &v.ParentHash) ||
		!codec.ReadOpaque(s, &v.OriginalSiblingTreeHash) {
		return false
	}
	*h = v
	return true
}

// optionalPtr is a pointer to a wire structure, used for `optional<T>`.
type optionalPtr[T any] interface {
	*T
	codec.Marshaler
	codec.Unmarshaler
}

// writeOptional writes `optional<T>`: absent when v is nil.
func writeOptional[T any, P optionalPtr[T]](b *cryptobyte.Builder, v P) {
	codec.AddOptional(b, v != nil)
	if v != nil {
		v.Marshal(b)
	}
}

// readOptional reads `optional<T>` into *out, nil when absent.
func readOptional[T any, P optionalPtr[T]](s *cryptobyte.String, out *P) bool {
	var present bool
	if !codec.ReadOptional(s, &present) {
		return false
	}
	if !present {
		*out = nil
		return true
	}
	v := P(new(T))
	if !v.Unmarshal(s) {
		return false
	}
	*out = v
	return true
}
