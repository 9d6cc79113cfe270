package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
)

// Commit applies proposals to the group and optionally refreshes the committer's path
// (Path is nil when absent). RFC 9420, Section 12.4.
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

// Marshal writes c.
func (c *Commit) Marshal(b *cryptobyte.Builder) {
	codec.AddStructs(b, c.Proposals)
	writeOptional(b, c.Path)
}

// Unmarshal reads c.
func (c *Commit) Unmarshal(s *cryptobyte.String) bool {
	var v Commit
	if !codec.ReadStructs(s, &v.Proposals) || !readOptional(s, &v.Path) {
		return false
	}
	*c = v
	return true
}

// DecodeCommit decodes a bare Commit.
func DecodeCommit(data []byte) (*Commit, error) {
	var c Commit
	if err := codec.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	return &c, nil
}
