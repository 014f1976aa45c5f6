//go:build !unix

package bench

import "time"

// cpuTime is unknown here.
func cpuTime() (time.Duration, bool) { return 0, false }

// maxRSS is unknown here.
func maxRSS() int64 { return 0 }
