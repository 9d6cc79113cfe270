package layers

// The envelope is the Cascade's wire format:
//
//	magic      2 bytes  "tc"
//	version    1 byte   envelopeVersion
//	count      1 byte   number of layers, 1 to 4
//	layers     count × (ID byte, layer version byte), inner to outer
//	body       the outermost layer's output
//
// The header (everything before the body) is bound into every layer's
// authentication through Context.AD, together with the group id.

const (
	envelopeVersion = 1
	envelopeFixed   = 4 // magic, version, count
	// MaxHeader is the largest envelope header.
	MaxHeader = envelopeFixed + 2*maxLayers
)

var envelopeMagic = [2]byte{'t', 'c'}

type layerTag struct {
	id      ID
	version uint8
}

// envelope is a parsed envelope header.
type envelope struct {
	tags []layerTag
	hlen int // header length; the body follows
}

func appendHeader(b []byte, tags []layerTag) []byte {
	b = append(b, envelopeMagic[0], envelopeMagic[1], envelopeVersion, byte(len(tags)))
	for _, t := range tags {
		b = append(b, byte(t.id), t.version)
	}
	return b
}

// parseEnvelope parses the header of msg. It checks the structure only;
// whether the layers are the policy's is the caller's check.
func parseEnvelope(msg []byte) (envelope, bool) {
	if len(msg) < envelopeFixed || msg[0] != envelopeMagic[0] || msg[1] != envelopeMagic[1] ||
		msg[2] != envelopeVersion {
		return envelope{}, false
	}
	n := int(msg[3])
	if n == 0 || n > maxLayers {
		return envelope{}, false
	}
	hlen := envelopeFixed + 2*n
	if len(msg) <= hlen { // an empty body is never a sealed message
		return envelope{}, false
	}
	tags := make([]layerTag, n)
	for i := range tags {
		tags[i] = layerTag{ID(msg[envelopeFixed+2*i]), msg[envelopeFixed+2*i+1]}
	}
	return envelope{tags: tags, hlen: hlen}, true
}

// PeekPolicy returns the layer list that an envelope names, without opening
// it, so a caller can pick the cascade for it (a conversation has one for
// application messages and one, PolicyHandshake, for MLS handshakes). The
// answer is unauthenticated: the chosen Cascade's Open checks it again. A
// downgrade through this choice is refused by the mls layer, whose handshake
// cascade must accept only proposals and commits and whose application
// cascade only application messages.
func PeekPolicy(msg []byte) (Policy, error) {
	env, ok := parseEnvelope(msg)
	if !ok {
		return Policy{}, ErrAuth
	}
	ids := make([]ID, len(env.tags))
	for i, t := range env.tags {
		ids[i] = t.id
	}
	p, err := NewPolicy(ids...)
	if err != nil {
		return Policy{}, ErrAuth
	}
	return p, nil
}

// associatedData returns the AD every layer binds: the envelope header, then
// the group id with a length byte.
func associatedData(header, group []byte) []byte {
	ad := make([]byte, 0, len(header)+1+len(group))
	ad = append(ad, header...)
	ad = append(ad, byte(len(group)))
	return append(ad, group...)
}
