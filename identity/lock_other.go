//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package identity

import "os"

// flock is a no-op where flock(2) is not available: there, nothing stops two
// processes from opening one profile. SQLite's own locking still keeps the
// database consistent.
func flock(*os.File) error { return nil }
