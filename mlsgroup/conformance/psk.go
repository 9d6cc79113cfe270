package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

func init() { register("psk_secret", runPSKSecret) }

// runPSKSecret computes psk_secret from external PSKs (test-vectors.md, "Pre-Shared Keys").
func runPSKSecret(raw json.RawMessage) error {
	var v struct {
		CipherSuite uint16 `json:"cipher_suite"`
		PSKs        []struct {
			PSKID    hexBytes `json:"psk_id"`
			PSK      hexBytes `json:"psk"`
			PSKNonce hexBytes `json:"psk_nonce"`
		} `json:"psks"`
		PSKSecret hexBytes `json:"psk_secret"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	cs, err := lookupSuite(v.CipherSuite)
	if err != nil {
		return err
	}
	psks := make([]schedule.PSK, len(v.PSKs))
	for i, p := range v.PSKs {
		id := wire.PreSharedKeyID{PSKType: wire.PSKTypeExternal, PSKID: p.PSKID, PSKNonce: p.PSKNonce}
		enc, err := codec.Marshal(&id)
		if err != nil {
			return fmt.Errorf("psk %d: %w", i, err)
		}
		psks[i] = schedule.PSK{ID: enc, Secret: p.PSK}
	}
	got, err := schedule.PSKSecret(cs, psks)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, v.PSKSecret) {
		return mismatch("psk_secret", got, v.PSKSecret)
	}
	return nil
}
