//go:build unix

package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// listenUnix listens on a Unix socket that only this user can use: whoever connects
// speaks for the profile. A stale socket left by a crashed bot is replaced; a live one
// is an error.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if nc, err := net.Dial("unix", path); err == nil {
			nc.Close()
			return nil, fmt.Errorf("%s: another bot is serving on this socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	old := syscall.Umask(0o077)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
