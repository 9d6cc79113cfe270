package layersbench

import (
	"testing"

	"github.com/tchat-p2p/tchat/mlsgroup"
)

func TestRun(t *testing.T) {
	res, err := Run(mlsgroup.X25519_AES128GCM_SHA256_Ed25519, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 9 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		if r.SealUs <= 0 || r.OpenUs <= 0 || r.OverheadBytes <= 0 {
			t.Errorf("implausible %+v", r)
		}
		t.Logf("%+v", r)
	}
}
