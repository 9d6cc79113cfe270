// Package signal is the Signal protocol layer of tchat's cascade: a
// PQXDH-style handshake, the Double Ratchet for two-member conversations and
// the pairwise sessions under Sender Keys for groups.
//
// It implements, in our own words and encodings, the algorithms of Signal's
// published specifications:
//
//   - "The PQXDH Key Agreement Protocol" (revision 3): a member's identity
//     key (X25519), signed prekey (X25519), signed post-quantum prekey
//     (ML-KEM-768, FIPS 203) and optional one-time prekey, published in a
//     [Bundle]; the initiator combines four or five DH outputs with an ML-KEM
//     shared secret into the session key SK. Prekeys are signed with the
//     member's Ed25519 identity key (a crypto.Signer from the identity
//     package) rather than XEdDSA; the signature also covers the X25519
//     identity key, which the Ed25519 key thereby vouches for.
//   - "The Double Ratchet Algorithm" (revision 4): the root chain, sending
//     and receiving chains, DH ratchet steps with X25519, a header of (DH
//     public key, previous chain length, message number) authenticated as
//     associated data, skipped message keys bounded by MaxSkip per step and
//     MaxSkippedKeys in all. Message keys are used once and then deleted.
//   - Sender Keys (as in Signal's group messaging): each member has a
//     symmetric sending chain and an Ed25519 signature key per group; it
//     sends both to every other member over their pairwise ratchet sessions
//     and signs every group message. When a member is removed, every
//     remaining member makes a fresh sender key (see Layer.RemovePeer and
//     Layer.Rekey), so a removed member reads nothing sent after. The
//     removed member's own sessions and sender keys are kept a while (until
//     Layer.ForgetRemoved), so that what it sent before still opens.
//
// The layer's wire formats, its staging of state changes (an Open changes
// nothing until the cascade commits it) and its encodings of sessions
// (MarshalBinary) are ours.
package signal
