package bench

import (
	"os"
	"syscall"
)

// datasync is fdatasync, as Pebble's WAL uses on Linux.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
