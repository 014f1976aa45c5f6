package courier

import "time"

// SetAckHold sets how long w's acks wait for a receive to carry them
// (ackHold), and how long a receive waits for more free handlers
// (receiveLinger); before Run.
func SetAckHold(w *Worker, hold, linger time.Duration) { w.hold, w.linger = hold, linger }

// CarryWait is the long-poll of a worker's receive that carries acks.
const CarryWait = carryWait

// WorkerParked reports whether one of w's receive slots is parked.
func WorkerParked(w *Worker) bool { return w.parked.Load() != nil }

// PrefetchTrip is w's estimate of a receive's round trip (worker_prefetch.go).
func PrefetchTrip(w *Worker) time.Duration { return time.Duration(w.pre.trip.Load()) }

// PrefetchPending counts w's prefetched messages reserved or waiting.
func PrefetchPending(w *Worker) int64 { return w.pre.pending.Load() }
