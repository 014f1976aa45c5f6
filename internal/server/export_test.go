package server

import "time"

// SetCloseGrace sets closeGrace for a test, and puts it back when done.
func SetCloseGrace(d time.Duration) (restore func()) {
	old := closeGrace
	closeGrace = d
	return func() { closeGrace = old }
}
