package pebblestore

import (
	"sync/atomic"
	"time"
)

// ackGrace decides whether an ack may wait a moment for another write's
// fsync instead of asking for its own.
type ackGraceT struct {
	d        time.Duration
	epoch    time.Time
	lastSend atomic.Int64 // ns since epoch
}

func (g *ackGraceT) noteSend() {
	if g.d > 0 {
		g.lastSend.Store(int64(time.Since(g.epoch)))
	}
}

func (g *ackGraceT) now() time.Duration {
	if g.d <= 0 {
		return 0
	}
	if time.Since(g.epoch)-time.Duration(g.lastSend.Load()) > 2*g.d {
		return 0
	}
	return g.d
}
