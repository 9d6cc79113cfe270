//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package identity

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// flock takes an exclusive, non-blocking advisory lock on f. The kernel releases
// it when the descriptor is closed or the process dies, even by SIGKILL, so a
// crashed tchat never leaves a stale lock.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return ErrProfileInUse
		default:
			return fmt.Errorf("identity: lock profile: %w", err)
		}
	}
}
