package mlsgroup

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

// ResumptionPSKs returns a PSK resolver that knows this group's resumption PSKs (of the
// current and the kept past epochs), chained before opts.
func (g *Group) ResumptionPSKs(opts PSKs) PSKs {
	inner := opts.Resumption
	opts.Resumption = func(groupID []byte, epoch uint64) ([]byte, bool) {
		if bytes.Equal(groupID, g.cur.ctx.GroupID) {
			psk, ok := g.resumption[epoch]
			return psk, ok
		}
		if inner != nil {
			return inner(groupID, epoch)
		}
		return nil, false
	}
	return opts
}

// successor creates a new group linked to g by a resumption PSK of the given usage, adds
// the clients of keyPackages in its first Commit and merges it (RFC 9420, Sections 11.2
// and 11.3).
func (g *Group) successor(key *SigningKey, identity, groupID []byte, usage wire.ResumptionPSKUsage, keyPackages [][]byte, opts Options) (*Group, *PendingCommit, error) {
	opts.PSKs = g.ResumptionPSKs(opts.PSKs)
	ng, err := Create(key, identity, groupID, opts)
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, ng.suite.Nh())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	pc, err := ng.Commit(CommitOptions{
		Add:                  keyPackages,
		Path:                 true,
		RatchetTreeInWelcome: true,
		resumption: &wire.PreSharedKeyID{
			PSKType: wire.PSKTypeResumption, Usage: usage,
			PSKGroupID: g.GroupID(), PSKEpoch: g.Epoch(), PSKNonce: nonce,
		},
	})
	if err != nil {
		return nil, nil, err
	}
	if err := ng.Merge(pc); err != nil {
		return nil, nil, err
	}
	return ng, pc, nil
}

// Reinitialize creates the successor of a group whose ReInit was committed (status
// ReInitPending): a new group with the ReInit's group id and cipher suite, linked by a
// reinit PSK, adding the clients of keyPackages (new KeyPackages of every other member, in
// the new suite). It returns the new group and the commit, whose Welcome goes to them.
func (g *Group) Reinitialize(key *SigningKey, identity []byte, keyPackages [][]byte, opts Options) (*Group, *PendingCommit, error) {
	if g.status != ReInitPending || g.reinit == nil {
		return nil, nil, errors.New("mls: no ReInit was committed in this group")
	}
	if key.suite != suite.ID(g.reinit.CipherSuite) {
		return nil, nil, fmt.Errorf("mls: the ReInit names suite 0x%04x", uint16(g.reinit.CipherSuite))
	}
	return g.successor(key, identity, g.reinit.GroupID, wire.ResumptionPSKUsageReInit, keyPackages, opts)
}

// Branch creates a subgroup of g with the same cipher suite (RFC 9420, Section 11.3),
// adding the clients of keyPackages (new KeyPackages of some members), linked to g by a
// branch PSK.
func (g *Group) Branch(key *SigningKey, identity, groupID []byte, keyPackages [][]byte, opts Options) (*Group, *PendingCommit, error) {
	if g.status != Active {
		return nil, nil, ErrNotActive
	}
	if key.suite != g.suite.ID() {
		return nil, nil, errors.New("mls: a branch keeps the cipher suite of its group")
	}
	return g.successor(key, identity, groupID, wire.ResumptionPSKUsageBranch, keyPackages, opts)
}

// JoinSuccessor joins the successor of g, a reinitialized group or a branch, from its
// Welcome, and checks the link (RFC 9420, Section 12.4.3.1): the Welcome's reinit or branch
// PSK must name g; a reinit must match g's committed ReInit and keep every member of g; a
// branch must keep g's suite and contain only members of g (by credential identity).
func (g *Group) JoinSuccessor(welcome []byte, bundle *KeyPackageBundle, ratchetTree []byte, opts Options) (*Group, error) {
	opts.PSKs = g.ResumptionPSKs(opts.PSKs)
	p, err := bundle.OpenWelcome(welcome, opts.PSKs)
	if err != nil {
		return nil, err
	}
	var link *wire.PreSharedKeyID
	for i := range p.secrets.PSKs {
		id := &p.secrets.PSKs[i]
		if id.PSKType == wire.PSKTypeResumption && (id.Usage == wire.ResumptionPSKUsageReInit || id.Usage == wire.ResumptionPSKUsageBranch) {
			link = id
		}
	}
	if link == nil || !bytes.Equal(link.PSKGroupID, g.cur.ctx.GroupID) {
		return nil, errors.New("mls: the welcome is not for a successor of this group")
	}
	ng, err := p.Join(ratchetTree, opts)
	if err != nil {
		return nil, err
	}
	ctx := &ng.cur.ctx
	if link.Usage == wire.ResumptionPSKUsageReInit {
		r := g.reinit
		if g.status != ReInitPending || r == nil || link.PSKEpoch != g.Epoch() {
			return nil, errors.New("mls: a reinit welcome, but this group's last commit was not a ReInit")
		}
		if !bytes.Equal(ctx.GroupID, r.GroupID) || ctx.CipherSuite != r.CipherSuite || ctx.Version != r.Version {
			return nil, errors.New("mls: the reinitialized group does not match the ReInit")
		}
		if !sameExtensions(ctx.Extensions, r.Extensions) {
			return nil, errors.New("mls: the reinitialized group's extensions do not match the ReInit")
		}
		if !subset(g.Members(), ng.Members()) {
			return nil, errors.New("mls: the reinitialized group leaves out members of the old group")
		}
	} else {
		if ctx.CipherSuite != g.cur.ctx.CipherSuite || ctx.Version != g.cur.ctx.Version {
			return nil, errors.New("mls: a branch must keep its group's version and cipher suite")
		}
		if !subset(ng.Members(), g.Members()) {
			return nil, errors.New("mls: the branch has members that are not in the group")
		}
	}
	return ng, nil
}

func sameExtensions(a, b wire.Extensions) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ExtensionType != b[i].ExtensionType || !bytes.Equal(a[i].ExtensionData, b[i].ExtensionData) {
			return false
		}
	}
	return true
}

// subset reports whether every member of a has a member of b with the same identity.
func subset(a, b []Member) bool {
	ids := map[string]bool{}
	for _, m := range b {
		ids[string(m.Identity)] = true
	}
	for _, m := range a {
		if !ids[string(m.Identity)] {
			return false
		}
	}
	return true
}
