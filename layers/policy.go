package layers

import (
	"fmt"
	"strings"
)

// MLS extension types in the private-use range 0xF000–0xFFFF (RFC 9420,
// Section 17.3), kept here in one place.
const (
	// ExtensionPolicy carries the conversation's Policy in the MLS
	// GroupContext, so every member agrees on it and it is authenticated by
	// the key schedule. Body: Policy.MarshalBinary.
	ExtensionPolicy uint16 = 0xF7C1
	// ExtensionSignalPrekeys carries a member's signal prekey bundle in its
	// LeafNode. Body: signal.Bundle.MarshalBinary.
	ExtensionSignalPrekeys uint16 = 0xF7C2
	// ExtensionMLKEMKey carries a member's mlkem layer public key in its
	// LeafNode. Body: mlkem.PublicKey.Bytes.
	ExtensionMLKEMKey uint16 = 0xF7C3
)

// ID is a layer's number on the wire. The numbers follow the canonical order,
// inner to outer.
type ID uint8

// The layers, inner to outer.
const (
	MLKEM  ID = 1
	Signal ID = 2
	MLS    ID = 3
	AES    ID = 4
)

const maxLayers = 4

var idNames = [...]string{MLKEM: "mlkem", Signal: "signal", MLS: "mls", AES: "aes"}

// String returns the layer's policy name.
func (id ID) String() string {
	if id < MLKEM || id > AES {
		return fmt.Sprintf("layer(%d)", uint8(id))
	}
	return idNames[id]
}

// ParseID returns the ID of a layer name.
func ParseID(name string) (ID, error) {
	for id := MLKEM; id <= AES; id++ {
		if idNames[id] == name {
			return id, nil
		}
	}
	return 0, fmt.Errorf("layers: unknown layer %q", name)
}

// Default policies (../shared/DESIGN.md, "The cascading cipher").
const (
	// PolicyPair is for two-member conversations.
	PolicyPair = "mlkem,signal,mls,aes"
	// PolicyGroup is for groups of more than two.
	PolicyGroup = "signal,mls,aes"
	// PolicyLarge may be chosen for large groups, where sender-key upkeep
	// grows with membership.
	PolicyLarge = "mls,aes"
	// PolicyHandshake is for MLS handshake messages (commits, proposals).
	PolicyHandshake = "mls,aes"
)

// A Policy is a conversation's list of layers, inner to outer. It is valid
// by construction: one to four known layers, no duplicates, canonical order.
// The zero Policy is empty and seals nothing. Policies compare with ==.
type Policy struct {
	ids [maxLayers]ID
	n   uint8
}

// NewPolicy makes a Policy from layer IDs, inner to outer.
func NewPolicy(ids ...ID) (Policy, error) {
	var p Policy
	if len(ids) == 0 || len(ids) > maxLayers {
		return Policy{}, fmt.Errorf("layers: policy of %d layers, want 1 to %d", len(ids), maxLayers)
	}
	for i, id := range ids {
		if id < MLKEM || id > AES {
			return Policy{}, fmt.Errorf("layers: unknown layer %d in policy", uint8(id))
		}
		if i > 0 && id <= ids[i-1] {
			if id == ids[i-1] {
				return Policy{}, fmt.Errorf("layers: layer %s twice in policy", id)
			}
			return Policy{}, fmt.Errorf("layers: policy not in canonical order (mlkem,signal,mls,aes): %s after %s", id, ids[i-1])
		}
		p.ids[i] = id
	}
	p.n = uint8(len(ids))
	return p, nil
}

// ParsePolicy parses a comma-separated policy such as "signal,mls,aes".
func ParsePolicy(s string) (Policy, error) {
	names := strings.Split(s, ",")
	if len(names) > maxLayers {
		return Policy{}, fmt.Errorf("layers: policy of %d layers, want 1 to %d", len(names), maxLayers)
	}
	ids := make([]ID, len(names))
	for i, name := range names {
		id, err := ParseID(strings.TrimSpace(name))
		if err != nil {
			return Policy{}, err
		}
		ids[i] = id
	}
	return NewPolicy(ids...)
}

// MustParsePolicy is ParsePolicy for the constants above; it panics on error.
func MustParsePolicy(s string) Policy {
	p, err := ParsePolicy(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the policy as ParsePolicy reads it.
func (p Policy) String() string {
	names := make([]string, p.n)
	for i := range names {
		names[i] = p.ids[i].String()
	}
	return strings.Join(names, ",")
}

// Layers returns the layer IDs, inner to outer.
func (p Policy) Layers() []ID { return append([]ID(nil), p.ids[:p.n]...) }

// Len returns the number of layers.
func (p Policy) Len() int { return int(p.n) }

// Has reports whether the policy includes layer id.
func (p Policy) Has(id ID) bool {
	for _, x := range p.ids[:p.n] {
		if x == id {
			return true
		}
	}
	return false
}

const policyVersion = 1

// MarshalBinary encodes the policy as the body of an ExtensionPolicy MLS
// extension: a version byte (1), a count byte and one ID byte per layer,
// inner to outer.
func (p Policy) MarshalBinary() ([]byte, error) {
	if p.n == 0 {
		return nil, fmt.Errorf("layers: empty policy")
	}
	b := []byte{policyVersion, p.n}
	for _, id := range p.ids[:p.n] {
		b = append(b, byte(id))
	}
	return b, nil
}

// UnmarshalPolicy decodes and validates an ExtensionPolicy body. Exactly
// the canonical encoding is accepted.
func UnmarshalPolicy(b []byte) (Policy, error) {
	if len(b) < 2 || b[0] != policyVersion || int(b[1]) != len(b)-2 {
		return Policy{}, fmt.Errorf("layers: malformed policy extension")
	}
	ids := make([]ID, len(b)-2)
	for i, x := range b[2:] {
		ids[i] = ID(x)
	}
	return NewPolicy(ids...)
}
