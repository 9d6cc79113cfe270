package schedule

// Persistence of the secret tree and of the epoch secrets.
//
// RFC 9420 defines no encoding for a member's local state; these are our own, written in the
// TLS presentation language of Section 2.1 (MLS variable-length vectors, Section 2.1.2)
// with golang.org/x/crypto/cryptobyte. They exist so that a group survives a restart, and
// the secret tree must then resume exactly where it stopped: a generation handed out before
// the restart must be refused after it, or the same key and nonce would protect two
// messages (Section 6.3.1, "MUST NOT be used more than once"; Section 9.2, deletion
// schedule).
//
// SECURITY: both encodings carry live secrets (node secrets, ratchet secrets, message keys,
// init_secret, exporter_secret...). They must only be written to storage encrypted: the
// store seals them before writing. Callers should clear the returned slice once it is
// sealed.
//
// Decoding is strict. The encodings are canonical (vectors sorted by index, minimal
// variable-length integers, exact secret lengths), every length is checked against the
// input before anything is allocated, the decoders never panic, and a decoded value
// re-encodes to the same bytes.

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/suite"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/treemath"
)

// Headers of the encodings: a tag octet that tells the two apart, then a version octet.
const (
	secretTreeTag     = 'T'
	secretTreeVersion = 1
	epochTag          = 'E'
	epochVersion      = 1
)

// exhausted is ratchet.next once generation 2^32-1 has been used.
const exhausted = math.MaxUint32 + 1

// malformed returns a decoding error; it wraps codec.ErrDecode.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", codec.ErrDecode, fmt.Sprintf(format, args...))
}

// varintLen is the length of the variable-length integer encoding of v (RFC 9420, Section
// 2.1.2). Values over codec.MaxVarint make codec.AddVarint fail; they count 4 here.
func varintLen(v int) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	}
	return 4
}

// opaqueLen is the encoded length of `opaque v<V>` holding n bytes.
func opaqueLen(n int) int { return varintLen(n) + n }

// MarshalBinary encodes the current state of the secret tree (RFC 9420, Section 9): the
// node secrets it still stores, and for every leaf whose ratchets were derived, the two
// hash ratchets (Section 9.1) with their next generation, current secret and the keys of
// skipped generations kept for out-of-order delivery (Section 9.2). Options and the leaf
// count are included; the cipher suite is not, the caller passes it to
// UnmarshalSecretTree.
//
// The encoding is, in the presentation language of RFC 9420, Section 2.1:
//
//	struct {
//	    uint8 tag = 'T';
//	    uint8 version = 1;
//	    uint32 leaf_count;
//	    uint32 max_forward_distance;
//	    uint32 out_of_order_tolerance;
//	    NodeSecret node_secrets<V>;   // ascending node index
//	    LeafRatchets leaves<V>;       // ascending leaf index
//	} SecretTreeState;
//
//	struct { uint32 node; opaque secret<V>; } NodeSecret;                 // KDF.Nh
//	struct { uint32 leaf; Ratchet handshake; Ratchet application; } LeafRatchets;
//	struct {
//	    uint64 next;                 // at most 2^32, which marks an exhausted ratchet
//	    uint32 low;                  // no skipped key below it
//	    optional<opaque secret<V>>;  // ratchet_secret_[N]_[next], KDF.Nh; absent iff exhausted
//	    SkippedKey skipped<V>;       // ascending generation
//	} Ratchet;
//	struct { uint32 generation; opaque key<V>; opaque nonce<V>; } SkippedKey; // AEAD.Nk, AEAD.Nn
//
// The result holds secrets: store it only encrypted (see the package documentation), and
// save it after every key taken from the tree and before the message protected by that
// key is sent, since a tree restored from an older encoding hands the same generations out
// again (or see MarshalBinaryAhead). A zeroed tree cannot be encoded.
func (t *SecretTree) MarshalBinary() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.marshal(nil)
}

// ahead is one ratchet encoded further on than it stands (see MarshalBinaryAhead).
type ahead struct {
	leaf   treemath.LeafIndex
	typ    RatchetType
	next   uint64
	secret []byte // ratchet_secret_[leaf]_[next]
}

// MarshalBinaryAhead is MarshalBinary with the ratchet typ of leaf encoded as if it had
// been stepped on to generation next, if it is not there already; the tree itself does
// not change. It returns the ratchet's next generation in the encoding. A sender that
// saves the tree this way may then take the generations below that one without saving it
// again: a tree restored from the encoding hands none of them out. Receivers skip over
// the ones never sent, within their forward distance. next is capped at 2^32-1.
func (t *SecretTree) MarshalBinaryAhead(leaf treemath.LeafIndex, typ RatchetType, next uint64) ([]byte, uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cs == nil || !treemath.ValidLeafCount(t.n) {
		return nil, 0, errors.New("mls: cannot encode a zeroed secret tree")
	}
	r, err := t.ratchet(leaf, typ)
	if err != nil {
		return nil, 0, err
	}
	next = min(next, math.MaxUint32)
	if r.secret == nil || next <= r.next {
		out, err := t.marshal(nil)
		return out, r.next, err
	}
	a := &ahead{leaf: leaf, typ: typ, next: next, secret: slices.Clone(r.secret)}
	defer func() { zero(a.secret) }()
	nh := t.cs.Nh()
	for g := r.next; g < next; g++ {
		s, err := t.cs.DeriveTreeSecret(a.secret, "secret", uint32(g), nh)
		if err != nil {
			return nil, 0, err
		}
		zero(a.secret)
		a.secret = s
	}
	out, err := t.marshal(a)
	return out, next, err
}

// Generation returns the next generation the ratchet typ of leaf hands out (2^32 once it
// is exhausted).
func (t *SecretTree) Generation(leaf treemath.LeafIndex, typ RatchetType) (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet(leaf, typ)
	if err != nil {
		return 0, err
	}
	return r.next, nil
}

// marshal encodes the tree, with the ratchet a (if not nil) in place of the one stored.
// t.mu is held.
func (t *SecretTree) marshal(a *ahead) ([]byte, error) {
	if t.cs == nil || !treemath.ValidLeafCount(t.n) {
		return nil, errors.New("mls: cannot encode a zeroed secret tree")
	}
	nodes := slices.Sorted(maps.Keys(t.nodes))
	leaves := slices.Sorted(maps.Keys(t.leaves))
	gens := make([][2][]uint32, len(leaves)) // sorted skipped generations of each ratchet

	// The exact size is computed first so that one buffer of that size receives the
	// secrets: a growing buffer would leave copies behind in memory.
	nodesLen := 0
	for _, x := range nodes {
		nodesLen += 4 + opaqueLen(len(t.nodes[x]))
	}
	ratchetLen := func(r *ratchet, gens []uint32) (total, skipped int) {
		for _, g := range gens {
			kn := r.skipped[g]
			skipped += 4 + opaqueLen(len(kn.Key)) + opaqueLen(len(kn.Nonce))
		}
		total = 8 + 4 + 1 + varintLen(skipped) + skipped
		if r.secret != nil {
			total += opaqueLen(len(r.secret))
		}
		return total, skipped
	}
	skippedLens := make([][2]int, len(leaves))
	leavesLen := 0
	for i, l := range leaves {
		rs := t.leaves[l]
		leavesLen += 4
		for j := range rs {
			gens[i][j] = slices.Sorted(maps.Keys(rs[j].skipped))
			n, s := ratchetLen(&rs[j], gens[i][j])
			leavesLen += n
			skippedLens[i][j] = s
		}
	}
	total := 2 + 3*4 + varintLen(nodesLen) + nodesLen + varintLen(leavesLen) + leavesLen

	buf := make([]byte, 0, total)
	b := cryptobyte.NewFixedBuilder(buf)
	b.AddUint8(secretTreeTag)
	b.AddUint8(secretTreeVersion)
	b.AddUint32(t.n)
	b.AddUint32(t.opts.MaxForwardDistance)
	b.AddUint32(t.opts.OutOfOrderTolerance)
	codec.AddVarint(b, uint64(nodesLen))
	for _, x := range nodes {
		b.AddUint32(uint32(x))
		codec.AddOpaque(b, t.nodes[x])
	}
	codec.AddVarint(b, uint64(leavesLen))
	for i, l := range leaves {
		b.AddUint32(uint32(l))
		for j := range t.leaves[l] {
			r := &t.leaves[l][j]
			if a != nil && a.leaf == l && a.typ == RatchetType(j) {
				r = &ratchet{next: a.next, secret: a.secret, skipped: r.skipped, low: r.low}
			}
			if r.next > exhausted || r.low > math.MaxUint32 || (r.secret == nil) != (r.next == exhausted) {
				b.SetError(fmt.Errorf("mls: internal error: inconsistent ratchet of leaf %d", l))
			}
			b.AddUint64(r.next)
			b.AddUint32(uint32(r.low))
			codec.AddOptional(b, r.secret != nil)
			if r.secret != nil {
				codec.AddOpaque(b, r.secret)
			}
			codec.AddVarint(b, uint64(skippedLens[i][j]))
			for _, g := range gens[i][j] {
				kn := r.skipped[g]
				b.AddUint32(g)
				codec.AddOpaque(b, kn.Key)
				codec.AddOpaque(b, kn.Nonce)
			}
		}
	}
	out, err := b.Bytes()
	if err == nil && len(out) != total {
		err = fmt.Errorf("mls: internal error: secret tree encoding is %d bytes, expected %d", len(out), total)
	}
	if err != nil {
		zero(buf[:cap(buf)])
		return nil, err
	}
	return out, nil
}

// treeDecoder decodes a SecretTreeState; owned lists every secret it copied, to delete them
// if the encoding turns out to be invalid.
type treeDecoder struct {
	cs    *suite.Suite
	t     *SecretTree
	owned [][]byte
}

// secret copies a secret of the expected length out of the input; what names it in an
// error (a function, so that the common case formats nothing).
func (d *treeDecoder) secret(s *cryptobyte.String, want int, what func() string) ([]byte, error) {
	var body cryptobyte.String
	if !codec.ReadVector(s, &body) {
		return nil, malformed("secret tree: truncated %s", what())
	}
	if len(body) != want {
		return nil, malformed("secret tree: %s is %d bytes, want %d", what(), len(body), want)
	}
	c := append([]byte(nil), body...)
	d.owned = append(d.owned, c)
	return c, nil
}

// UnmarshalSecretTree decodes a secret tree encoded by SecretTree.MarshalBinary, for the
// cipher suite cs of its epoch. The decoded tree hands out the same keys as the encoded one
// for every generation it had not consumed, and refuses the same consumed ones.
//
// Every inconsistency is an error wrapping codec.ErrDecode: an unknown tag or version,
// truncated input or trailing bytes, a leaf count that is not a power of two, a secret, key
// or nonce of the wrong length for cs (KDF.Nh, AEAD.Nk, AEAD.Nn), a node or leaf outside
// the tree, entries out of order or repeated, node secrets and derived leaves that do not
// cover every leaf exactly once (a secret stored for a node and for one of its ancestors or
// descendants; Section 9.2 requires the ancestor's to have been deleted), a ratchet whose
// secret does not match its exhaustion, skipped keys at or beyond the newest used
// generation, below `low`, further behind than OutOfOrderTolerance, or more of them than it
// allows.
//
// The caller should compare LeafCount with the ratchet tree's and clear data afterwards.
func UnmarshalSecretTree(cs *suite.Suite, data []byte) (*SecretTree, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	d := treeDecoder{cs: cs}
	t, err := d.decode(cryptobyte.String(data))
	if err != nil {
		zero(d.owned...)
		return nil, err
	}
	return t, nil
}

func (d *treeDecoder) decode(s cryptobyte.String) (*SecretTree, error) {
	var tag, version uint8
	if !s.ReadUint8(&tag) || !s.ReadUint8(&version) {
		return nil, malformed("secret tree: truncated header")
	}
	if tag != secretTreeTag {
		return nil, malformed("not a secret tree encoding (tag %#x)", tag)
	}
	if version != secretTreeVersion {
		return nil, malformed("secret tree: unsupported version %d", version)
	}
	t := &SecretTree{
		cs:     d.cs,
		nodes:  map[treemath.NodeIndex][]byte{},
		leaves: map[treemath.LeafIndex]*[2]ratchet{},
	}
	d.t = t
	if !s.ReadUint32(&t.n) || !s.ReadUint32(&t.opts.MaxForwardDistance) || !s.ReadUint32(&t.opts.OutOfOrderTolerance) {
		return nil, malformed("secret tree: truncated header")
	}
	if !treemath.ValidLeafCount(t.n) {
		return nil, malformed("secret tree: invalid size of %d leaves", t.n)
	}

	var body cryptobyte.String
	if !codec.ReadVector(&s, &body) {
		return nil, malformed("secret tree: truncated node secrets")
	}
	var nodes []treemath.NodeIndex // ascending
	for !body.Empty() {
		var x uint32
		if !body.ReadUint32(&x) {
			return nil, malformed("secret tree: truncated node secret")
		}
		if n := len(nodes); n > 0 && x <= uint32(nodes[n-1]) {
			return nil, malformed("secret tree: node %d repeated or out of order", x)
		}
		if !treemath.InTree(treemath.NodeIndex(x), t.n) {
			return nil, malformed("secret tree: node %d outside a tree of %d leaves", x, t.n)
		}
		sec, err := d.secret(&body, d.cs.Nh(), func() string { return fmt.Sprintf("secret of node %d", x) })
		if err != nil {
			return nil, err
		}
		t.nodes[treemath.NodeIndex(x)] = sec
		nodes = append(nodes, treemath.NodeIndex(x))
	}

	if !codec.ReadVector(&s, &body) {
		return nil, malformed("secret tree: truncated leaves")
	}
	var leaves []treemath.LeafIndex // ascending
	for !body.Empty() {
		var l uint32
		if !body.ReadUint32(&l) {
			return nil, malformed("secret tree: truncated leaf")
		}
		if n := len(leaves); n > 0 && l <= uint32(leaves[n-1]) {
			return nil, malformed("secret tree: leaf %d repeated or out of order", l)
		}
		if !treemath.LeafInTree(treemath.LeafIndex(l), t.n) {
			return nil, malformed("secret tree: leaf %d outside a tree of %d leaves", l, t.n)
		}
		rs := new([2]ratchet)
		for typ := range rs {
			what := func() string { return fmt.Sprintf("leaf %d %s ratchet", l, RatchetType(typ)) }
			if err := d.ratchet(&body, &rs[typ], what); err != nil {
				return nil, err
			}
		}
		t.leaves[treemath.LeafIndex(l)] = rs
		leaves = append(leaves, treemath.LeafIndex(l))
	}
	if !s.Empty() {
		return nil, malformed("secret tree: %d trailing bytes", len(s))
	}
	if err := checkCover(t.n, nodes, leaves); err != nil {
		return nil, err
	}
	return t, nil
}

// ratchet decodes one Ratchet.
func (d *treeDecoder) ratchet(s *cryptobyte.String, r *ratchet, what func() string) error {
	var next uint64
	var low uint32
	var present bool
	if !s.ReadUint64(&next) || !s.ReadUint32(&low) || !codec.ReadOptional(s, &present) {
		return malformed("secret tree: truncated %s", what())
	}
	if next > exhausted {
		return malformed("secret tree: %s: next generation %d beyond 2^32", what(), next)
	}
	if present != (next < exhausted) {
		return malformed("secret tree: %s: secret present %v with next generation %d", what(), present, next)
	}
	if uint64(low) > next {
		return malformed("secret tree: %s: low %d above next generation %d", what(), low, next)
	}
	r.next, r.low = next, uint64(low)
	if present {
		sec, err := d.secret(s, d.cs.Nh(), func() string { return what() + " secret" })
		if err != nil {
			return err
		}
		r.secret = sec
	}

	var body cryptobyte.String
	if !codec.ReadVector(s, &body) {
		return malformed("secret tree: truncated skipped keys of %s", what())
	}
	tol := uint64(d.t.opts.OutOfOrderTolerance)
	var prev uint64
	for first := true; !body.Empty(); first = false {
		var g uint32
		if !body.ReadUint32(&g) {
			return malformed("secret tree: truncated skipped key of %s", what())
		}
		g64 := uint64(g)
		switch {
		case !first && g64 <= prev:
			return malformed("secret tree: %s: skipped generation %d repeated or out of order", what(), g)
		case uint64(len(r.skipped)) >= tol:
			return malformed("secret tree: %s: more than %d skipped keys", what(), tol)
		case g64+1 >= next:
			// next-1 is the newest generation used: it was handed out, not skipped.
			return malformed("secret tree: %s: skipped generation %d not below the newest used (next %d)", what(), g, next)
		case next-1-g64 > tol:
			return malformed("secret tree: %s: skipped generation %d more than %d behind generation %d", what(), g, tol, next-1)
		case g64 < r.low:
			return malformed("secret tree: %s: skipped generation %d below low %d", what(), g, r.low)
		}
		prev = g64
		key, err := d.secret(&body, d.cs.KeySize(), func() string { return fmt.Sprintf("%s key %d", what(), g) })
		if err != nil {
			return err
		}
		nonce, err := d.secret(&body, d.cs.NonceSize(), func() string { return fmt.Sprintf("%s nonce %d", what(), g) })
		if err != nil {
			return err
		}
		if r.skipped == nil {
			r.skipped = map[uint32]KeyNonce{}
		}
		r.skipped[g] = KeyNonce{Generation: g, Key: key, Nonce: nonce}
	}
	return nil
}

// checkCover checks that the subtrees of the stored nodes and the derived leaves, both
// ascending, cover the n leaves exactly once. This is the invariant of the lazy derivation
// (RFC 9420, Section 9.2): a node's secret is deleted when its children's are derived, and
// a leaf's when its ratchets are, so each leaf's secrets come from exactly one place. A node
// stored with one of its ancestors or descendants, or with a derived leaf below it, would
// let the same ratchets be derived twice.
func checkCover(n uint32, nodes []treemath.NodeIndex, leaves []treemath.LeafIndex) error {
	covered := uint64(0) // leaves [0, covered) are accounted for
	i, j := 0, 0
	for i < len(nodes) || j < len(leaves) {
		var lo, hi uint64 // leaf range of the next entry, in node index order
		isNode := j == len(leaves) || (i < len(nodes) && uint64(nodes[i]) < 2*uint64(leaves[j]))
		var index uint64
		if isNode {
			x := uint64(nodes[i])
			index = x
			i++
			// A node at level k spans the node indices x-(2^k-1) .. x+(2^k-1) (Appendix C).
			span := uint64(1)<<treemath.Level(treemath.NodeIndex(x)) - 1
			lo, hi = (x-span)/2, (x+span)/2
		} else {
			lo = uint64(leaves[j])
			hi, index = lo, lo
			j++
		}
		if lo != covered {
			if lo < covered {
				if isNode {
					return malformed("secret tree: node %d overlaps another stored secret", index)
				}
				return malformed("secret tree: leaf %d overlaps another stored secret", index)
			}
			return malformed("secret tree: no secret for leaves %d to %d", covered, lo-1)
		}
		covered = hi + 1
	}
	if covered != uint64(n) {
		return malformed("secret tree: no secret for leaves %d to %d", covered, n-1)
	}
	return nil
}

// epochField is one secret of an Epoch in the order of its encoding.
type epochField struct {
	name     string
	p        *[]byte
	optional bool
}

func (e *Epoch) fields() []epochField {
	return []epochField{
		{"joiner_secret", &e.JoinerSecret, true},
		{"welcome_secret", &e.WelcomeSecret, true},
		{"sender_data_secret", &e.SenderDataSecret, false},
		{"encryption_secret", &e.EncryptionSecret, true},
		{"exporter_secret", &e.ExporterSecret, false},
		{"external_secret", &e.ExternalSecret, false},
		{"confirmation_key", &e.ConfirmationKey, false},
		{"membership_key", &e.MembershipKey, false},
		{"resumption_psk", &e.ResumptionPSK, false},
		{"epoch_authenticator", &e.EpochAuthenticator, false},
		{"init_secret", &e.InitSecret, true},
	}
}

// MarshalBinary encodes the secrets of the epoch (RFC 9420, Section 8, "Epoch-Derived
// Secrets", with joiner_secret, welcome_secret and init_secret_[n]). The cipher suite is
// not encoded; the caller passes it to UnmarshalEpoch. The encoding is
//
//	struct {
//	    uint8 tag = 'E';
//	    uint8 version = 1;
//	    optional<opaque joiner_secret<V>>;
//	    optional<opaque welcome_secret<V>>;     // both absent once ForgetJoiner ran
//	    opaque sender_data_secret<V>;
//	    optional<opaque encryption_secret<V>>;  // absent once SecretTree took it
//	    opaque exporter_secret<V>;
//	    opaque external_secret<V>;
//	    opaque confirmation_key<V>;
//	    opaque membership_key<V>;
//	    opaque resumption_psk<V>;
//	    opaque epoch_authenticator<V>;
//	    optional<opaque init_secret<V>>;        // absent once TakeInitSecret ran
//	} EpochSecrets;
//
// with every secret KDF.Nh bytes. A zeroed Epoch cannot be encoded. The result holds
// secrets: store it only encrypted (see the package documentation).
func (e *Epoch) MarshalBinary() ([]byte, error) {
	if e.Suite == nil {
		return nil, errors.New("mls: epoch without a cipher suite")
	}
	nh := e.Suite.Nh()
	fields := e.fields()
	total := 2
	for _, f := range fields {
		s := *f.p
		switch {
		case s == nil && f.optional:
			total++
			continue
		case s == nil:
			return nil, fmt.Errorf("mls: cannot encode an epoch without %s", f.name)
		case len(s) != nh:
			return nil, fmt.Errorf("mls: %s is %d bytes, want %d", f.name, len(s), nh)
		}
		if f.optional {
			total++
		}
		total += opaqueLen(nh)
	}
	buf := make([]byte, 0, total)
	b := cryptobyte.NewFixedBuilder(buf)
	b.AddUint8(epochTag)
	b.AddUint8(epochVersion)
	for _, f := range fields {
		s := *f.p
		if f.optional {
			codec.AddOptional(b, s != nil)
		}
		if s != nil {
			codec.AddOpaque(b, s)
		}
	}
	out, err := b.Bytes()
	if err == nil && len(out) != total {
		err = fmt.Errorf("mls: internal error: epoch encoding is %d bytes, expected %d", len(out), total)
	}
	if err != nil {
		zero(buf[:cap(buf)])
		return nil, err
	}
	return out, nil
}

// UnmarshalEpoch decodes the secrets of an epoch encoded by Epoch.MarshalBinary, for the
// cipher suite cs. Every secret must be KDF.Nh bytes of cs; an unknown tag or version,
// truncated input, an invalid optional octet or trailing bytes are errors wrapping
// codec.ErrDecode. The caller should clear data afterwards.
func UnmarshalEpoch(cs *suite.Suite, data []byte) (*Epoch, error) {
	if cs == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	e := &Epoch{Suite: cs}
	if err := e.decode(cryptobyte.String(data)); err != nil {
		e.Zero()
		return nil, err
	}
	return e, nil
}

func (e *Epoch) decode(s cryptobyte.String) error {
	var tag, version uint8
	if !s.ReadUint8(&tag) || !s.ReadUint8(&version) {
		return malformed("epoch: truncated header")
	}
	if tag != epochTag {
		return malformed("not an epoch encoding (tag %#x)", tag)
	}
	if version != epochVersion {
		return malformed("epoch: unsupported version %d", version)
	}
	nh := e.Suite.Nh()
	for _, f := range e.fields() {
		present := true
		if f.optional && !codec.ReadOptional(&s, &present) {
			return malformed("epoch: truncated or invalid presence of %s", f.name)
		}
		if !present {
			continue
		}
		var body cryptobyte.String
		if !codec.ReadVector(&s, &body) {
			return malformed("epoch: truncated %s", f.name)
		}
		if len(body) != nh {
			return malformed("epoch: %s is %d bytes, want %d", f.name, len(body), nh)
		}
		*f.p = append([]byte(nil), body...)
	}
	if !s.Empty() {
		return malformed("epoch: %d trailing bytes", len(s))
	}
	return nil
}
