package mls_test

import (
	"bytes"
	"testing"

	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/layersbench"
	"github.com/tchat-p2p/tchat/layers/mls"
)

// FuzzOpen feeds arbitrary bytes to the mls layer's Open. Open stages and never commits
// here, so the receiver's state is the same for every input: nothing may panic, and only
// the genuine sealed messages may open.
func FuzzOpen(f *testing.F) {
	c, err := layersbench.NewConversation(layers.PolicyLarge, 2, cs)
	if err != nil {
		f.Fatal(err)
	}
	sender := mls.New(c.Members[0].Group, nil)
	receiver := mls.New(c.Members[1].Group, nil)
	var genuine [][]byte
	for _, m := range []string{"", "hello", string(make([]byte, 300))} {
		sealed, err := sender.Seal(&layers.Context{Group: c.GroupID}, []byte(m))
		if err != nil {
			f.Fatal(err)
		}
		genuine = append(genuine, sealed)
		f.Add(sealed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := receiver.Open(&layers.Context{Group: c.GroupID}, data); err != nil {
			return
		}
		for _, g := range genuine {
			if bytes.Equal(g, data) {
				return
			}
		}
		t.Fatalf("forged message opened: %x", data)
	})
}
