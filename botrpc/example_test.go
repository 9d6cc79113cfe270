package botrpc

import (
	"context"
	"os"
	"strings"
)

// A bot server over a chat client (here a fake one: a real program passes its *chat.Client), answering two requests and a
// malformed line read from a string, as `tchat bot` does from its standard input.
func ExampleServer_ServeConn() {
	s := New(exampleChat(), Options{Version: "1.0"})
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"version"}
{"jsonrpc":"2.0","id":2,"method":"send","params":{"groupId":"ab"}}
{oops
`)
	s.ServeConn(context.Background(), in, os.Stdout)
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":{"protocol":1,"version":"1.0"}}
	// {"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"invalid params: message is required"}}
	// {"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error: not valid JSON"}}
}
