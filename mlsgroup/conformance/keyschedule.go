package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tchat-p2p/tchat/mlsgroup/internal/codec"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/schedule"
	"github.com/tchat-p2p/tchat/mlsgroup/internal/wire"
)

func init() { register("key-schedule", runKeySchedule) }

// runKeySchedule runs the key schedule through the epochs of a vector, checking the
// GroupContext, every secret, external_pub and an exporter output of each epoch
// (test-vectors.md, "Key Schedule").
func runKeySchedule(raw json.RawMessage) error {
	type epoch struct {
		TreeHash                hexBytes `json:"tree_hash"`
		CommitSecret            hexBytes `json:"commit_secret"`
		PSKSecret               hexBytes `json:"psk_secret"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`

		GroupContext hexBytes `json:"group_context"`

		JoinerSecret  hexBytes `json:"joiner_secret"`
		WelcomeSecret hexBytes `json:"welcome_secret"`
		InitSecret    hexBytes `json:"init_secret"`

		SenderDataSecret   hexBytes `json:"sender_data_secret"`
		EncryptionSecret   hexBytes `json:"encryption_secret"`
		ExporterSecret     hexBytes `json:"exporter_secret"`
		EpochAuthenticator hexBytes `json:"epoch_authenticator"`
		ExternalSecret     hexBytes `json:"external_secret"`
		ConfirmationKey    hexBytes `json:"confirmation_key"`
		MembershipKey      hexBytes `json:"membership_key"`
		ResumptionPSK      hexBytes `json:"resumption_psk"`

		ExternalPub hexBytes `json:"external_pub"`
		Exporter    struct {
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  int      `json:"length"`
			Secret  hexBytes `json:"secret"`
		} `json:"exporter"`
	}
	var v struct {
		CipherSuite       uint16   `json:"cipher_suite"`
		GroupID           hexBytes `json:"group_id"`
		InitialInitSecret hexBytes `json:"initial_init_secret"`
		Epochs            []epoch  `json:"epochs"`
	}
	if err := decode(raw, &v); err != nil {
		return err
	}
	cs, err := lookupSuite(v.CipherSuite)
	if err != nil {
		return err
	}

	initSecret := []byte(v.InitialInitSecret)
	for i, ep := range v.Epochs {
		fail := func(err error) error { return fmt.Errorf("epoch %d: %w", i, err) }
		gc := wire.GroupContext{
			CipherSuite:             wire.CipherSuite(v.CipherSuite),
			GroupID:                 v.GroupID,
			Epoch:                   uint64(i),
			TreeHash:                ep.TreeHash,
			ConfirmedTranscriptHash: ep.ConfirmedTranscriptHash,
			Extensions:              wire.Extensions{},
		}
		gcBytes, err := codec.Marshal(&gc)
		if err != nil {
			return fail(err)
		}
		if !bytes.Equal(gcBytes, ep.GroupContext) {
			return fail(mismatch("group_context", gcBytes, ep.GroupContext))
		}

		e, err := schedule.NewEpoch(cs, initSecret, ep.CommitSecret, ep.PSKSecret, gcBytes)
		if err != nil {
			return fail(err)
		}
		for _, c := range []struct {
			name      string
			got, want []byte
		}{
			{"joiner_secret", e.JoinerSecret, ep.JoinerSecret},
			{"welcome_secret", e.WelcomeSecret, ep.WelcomeSecret},
			{"init_secret", e.InitSecret, ep.InitSecret},
			{"sender_data_secret", e.SenderDataSecret, ep.SenderDataSecret},
			{"encryption_secret", e.EncryptionSecret, ep.EncryptionSecret},
			{"exporter_secret", e.ExporterSecret, ep.ExporterSecret},
			{"epoch_authenticator", e.EpochAuthenticator, ep.EpochAuthenticator},
			{"external_secret", e.ExternalSecret, ep.ExternalSecret},
			{"confirmation_key", e.ConfirmationKey, ep.ConfirmationKey},
			{"membership_key", e.MembershipKey, ep.MembershipKey},
			{"resumption_psk", e.ResumptionPSK, ep.ResumptionPSK},
		} {
			if !bytes.Equal(c.got, c.want) {
				return fail(mismatch(c.name, c.got, c.want))
			}
		}

		pub, err := e.ExternalPub()
		if err != nil {
			return fail(fmt.Errorf("external_pub: %w", err))
		}
		if !bytes.Equal(pub, ep.ExternalPub) {
			return fail(mismatch("external_pub", pub, ep.ExternalPub))
		}

		x := ep.Exporter
		exp, err := e.Export(x.Label, x.Context, x.Length)
		if err != nil {
			return fail(fmt.Errorf("exporter: %w", err))
		}
		if !bytes.Equal(exp, x.Secret) {
			return fail(mismatch("exporter.secret", exp, x.Secret))
		}

		// A joiner gets the same epoch from joiner_secret and psk_secret alone.
		ws, err := schedule.WelcomeSecret(cs, ep.JoinerSecret, ep.PSKSecret)
		if err != nil {
			return fail(err)
		}
		if !bytes.Equal(ws, ep.WelcomeSecret) {
			return fail(mismatch("welcome_secret from joiner_secret", ws, ep.WelcomeSecret))
		}
		j, err := schedule.NewEpochFromJoiner(cs, ep.JoinerSecret, ep.PSKSecret, gcBytes)
		if err != nil {
			return fail(err)
		}
		if !bytes.Equal(j.EpochAuthenticator, ep.EpochAuthenticator) || !bytes.Equal(j.InitSecret, ep.InitSecret) {
			return fail(fmt.Errorf("epoch from joiner_secret differs"))
		}
		j.Zero()

		initSecret = e.TakeInitSecret()
		e.Zero()
	}
	return nil
}
