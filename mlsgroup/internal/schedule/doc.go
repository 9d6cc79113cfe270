// Package schedule is the MLS key schedule (RFC 9420, Section 8), the pre-shared key secret
// (Section 8.4), the exporter (Section 8.5), the transcript hashes and confirmation tag
// (Section 8.2, Section 6.1), the secret tree and its hash ratchets (Section 9), the sender
// data key (Section 6.3.2) and the Welcome key (Section 12.4.3.1).
//
// The package works on encoded structures (GroupContext, PreSharedKeyID,
// ConfirmedTranscriptHashInput) so that it does not depend on the wire package.
//
// # Deletion
//
// Section 9.2 asks that every consumed secret be deleted. The package overwrites with zeros
// every intermediate secret it derives (the extracted member secret, epoch_secret, node
// secrets once their children are derived, ratchet secrets once stepped past, keys and
// nonces once used) and offers Zero methods for what it hands out. This is best effort: Go
// gives no guarantee that the runtime, the garbage collector or the hash implementations
// did not leave copies elsewhere in memory.
//
// # Persistence
//
// SecretTree.MarshalBinary and Epoch.MarshalBinary encode the state of an epoch so that a
// group survives a restart; UnmarshalSecretTree and UnmarshalEpoch restore it. The secret
// tree resumes exactly where it stopped, so no generation is handed out twice (Section
// 6.3.1, Section 9.2). The encodings carry secrets and must only be stored encrypted.
//
// Errors are returned, never panics, for malformed input; every error message starts with
// "mls: ".
package schedule

// zero overwrites b with zeros (best effort, see the package documentation).
func zero(bs ...[]byte) {
	for _, b := range bs {
		clear(b)
	}
}
