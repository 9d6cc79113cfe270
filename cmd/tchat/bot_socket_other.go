//go:build !unix

package main

import (
	"fmt"
	"net"
	"os"
)

// listenUnix listens on a Unix socket; see bot_socket_unix.go. Here the socket's
// permissions are the directory's: put it in a directory only this user can enter.
func listenUnix(path string) (net.Listener, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s exists; remove it first", path)
	}
	return net.Listen("unix", path)
}
