package mlsgroup_test

import (
	"fmt"
	"log"

	"github.com/tchat-p2p/tchat/mlsgroup"
)

// Example shows the life of a two-member group: create it, add a member from its
// KeyPackage, join from the Welcome, exchange messages and refresh the keys.
func Example() {
	cs := mlsgroup.DefaultCipherSuite

	// Alice creates the group.
	aliceKey, err := mlsgroup.GenerateSigningKey(cs)
	if err != nil {
		log.Fatal(err)
	}
	alice, err := mlsgroup.Create(aliceKey, []byte("alice"), nil, mlsgroup.Options{})
	if err != nil {
		log.Fatal(err)
	}

	// Bob publishes a KeyPackage; Alice adds him.
	bobKey, err := mlsgroup.GenerateSigningKey(cs)
	if err != nil {
		log.Fatal(err)
	}
	bobKP, err := mlsgroup.NewKeyPackage(bobKey, []byte("bob"), mlsgroup.KeyPackageOptions{})
	if err != nil {
		log.Fatal(err)
	}
	commit, err := alice.Commit(mlsgroup.CommitOptions{Add: [][]byte{bobKP.KeyPackage()}, RatchetTreeInWelcome: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := alice.Merge(commit); err != nil {
		log.Fatal(err)
	}

	// Bob joins from the Welcome.
	bob, err := mlsgroup.Join(commit.Welcome, bobKP, nil, mlsgroup.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("epoch", bob.Epoch(), "members", len(bob.Members()))

	// Application messages.
	msg, err := alice.Seal([]byte("hello, bob"), nil)
	if err != nil {
		log.Fatal(err)
	}
	got, err := bob.Process(msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob read %q from leaf %d\n", got.Data, got.Sender)

	// Bob refreshes his keys with an empty commit; Alice follows.
	update, err := bob.Commit(mlsgroup.CommitOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := alice.Process(update.Message); err != nil {
		log.Fatal(err)
	}
	if err := bob.Merge(update); err != nil {
		log.Fatal(err)
	}
	a, _ := alice.Export("example", nil, 16)
	b, _ := bob.Export("example", nil, 16)
	fmt.Println("epoch", alice.Epoch(), "same exported secret:", string(a) == string(b))

	// Output:
	// epoch 1 members 2
	// bob read "hello, bob" from leaf 0
	// epoch 2 same exported secret: true
}

// ExampleJoinExternal shows a client joining by itself from a published GroupInfo.
func ExampleJoinExternal() {
	cs := mlsgroup.X25519_AES128GCM_SHA256_Ed25519
	aliceKey, _ := mlsgroup.GenerateSigningKey(cs)
	alice, err := mlsgroup.Create(aliceKey, []byte("alice"), nil, mlsgroup.Options{})
	if err != nil {
		log.Fatal(err)
	}
	info, err := alice.GroupInfo(true)
	if err != nil {
		log.Fatal(err)
	}

	carolKey, _ := mlsgroup.GenerateSigningKey(cs)
	carol, commit, err := mlsgroup.JoinExternal(info, carolKey, []byte("carol"), nil, mlsgroup.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := alice.Process(commit); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(alice.Members()), alice.Epoch() == carol.Epoch())
	// Output: 2 true
}
