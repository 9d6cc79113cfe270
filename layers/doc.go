// Package layers is tchat's cascading cipher: several independently keyed
// layers, so that one broken layer does not expose the plaintext
// (../shared/DESIGN.md, "The cascading cipher").
//
// A [Layer] seals and opens one level. A [Cascade] runs an ordered list of
// layers, the conversation's [Policy]: sealing inner to outer, opening outer to
// inner. Its output is an envelope that names the layers it carries; opening
// refuses, before any layer does work, a message whose layer list differs from
// the policy, so a layer can be neither stripped, reordered nor downgraded.
//
// The layers, inner to outer, are in sub-packages: layers/mlkem (ML-KEM-768
// KEM-DEM, FIPS 203), layers/signal (a PQXDH-style handshake, the Double
// Ratchet and Sender Keys), layers/mls (the MLS PrivateMessage of RFC 9420,
// through mlsgroup) and layers/aes (AES-256-GCM under the room secret).
//
// Every authentication failure is [ErrAuth] (or [ErrNoKey], which is also
// ErrAuth), and a failed open changes no state: [Layer.Open] stages its state
// change and the Cascade commits every layer's change only once all layers
// have opened.
//
// # Wiring a conversation
//
// The chat core builds, per conversation, one Cascade for application
// messages (the policy from the GroupContext's ExtensionPolicy extension)
// and one for MLS handshakes (PolicyHandshake), and routes an incoming
// envelope with PeekPolicy. The layers of one member are shared by both
// cascades; a layer's state is saved through Stateful after each Seal and
// Open. On every MLS membership change it updates the layers from the
// tree: signal.Layer.SetPeer with each member's bundle (the
// ExtensionSignalPrekeys LeafNode extension) and RemovePeer for a removed
// member; mlkem.Layer.SetPeer with the peer's ExtensionMLKEMKey.
//
// Overhead per message, measured by the benchmarks: the envelope header
// 4 + 2 bytes per layer; aes 48; mlkem 1120; signal 65 for a Double Ratchet
// message (1132 more until the peer has answered the first one) and 91 for
// a sender-key message (plus, after a rekey, 141 bytes and the member id per
// member, 1132 more for a member without a session yet); mls what RFC 9420's
// PrivateMessage adds.
//
// Secrets live in fixed-size arrays and are zeroed when dropped. In Go this is
// best effort: the garbage collector may have copied a value before it is
// cleared, and the standard library keeps its own copies (crypto/ecdh keys,
// AES key schedules) that we cannot reach.
package layers
