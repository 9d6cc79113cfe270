package layers_test

import (
	"fmt"

	"github.com/tchat-p2p/tchat/layers"
	"github.com/tchat-p2p/tchat/layers/aes"
)

// The policy of a conversation travels in the MLS GroupContext as the body
// of an ExtensionPolicy extension.
func ExamplePolicy() {
	p, err := layers.ParsePolicy(layers.PolicyGroup)
	if err != nil {
		panic(err)
	}
	body, _ := p.MarshalBinary()
	fmt.Printf("extension 0x%04X: %x\n", layers.ExtensionPolicy, body)
	q, _ := layers.UnmarshalPolicy(body)
	fmt.Println(q, q == p)
	// Output:
	// extension 0xF7C1: 0103020304
	// signal,mls,aes true
}

// A cascade of one layer: each member builds the layers of the policy and
// seals and opens through them.
func ExampleCascade() {
	room := aes.GenerateKey() // from the invite
	policy := layers.MustParsePolicy("aes")
	alice, _ := layers.NewCascade(policy, aes.New(room, nil))
	bob, _ := layers.NewCascade(policy, aes.New(room, nil))

	msg, _ := alice.Seal(&layers.Context{Group: []byte("group id"), Sender: []byte("alice")}, []byte("hello"))
	ctx := &layers.Context{Group: []byte("group id"), Sender: []byte("alice")}
	pt, err := bob.Open(ctx, msg)
	fmt.Printf("%s %v\n", pt, err)
	_, err = bob.Open(ctx, msg)
	fmt.Println(err)
	// Output:
	// hello <nil>
	// layers: message authentication failed
}
