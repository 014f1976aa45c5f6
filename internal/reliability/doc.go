// Package reliability proves with the real courier binary that nothing
// acknowledged is lost: it runs `courier serve` as a child process, puts
// producers and consumers (the Go SDK) under load against it, injects
// faults — kill -9 at random moments, SIGTERM — restarts it on the same data
// directory, drains the queue, and checks the recorded history with
// internal/history: nothing sent with a 2xx is lost, nothing acked comes
// back, no two leases of a message overlap, every duplicate has a cause, and
// nothing is received that was never sent.
//
// The package holds tests only; this file exists for its documentation.
//
//	go test -race -count=1 ./internal/reliability/                          # the CI tier
//	COURIER_SEED=12345 go test -race -count=1 ./internal/reliability/       # replay a seed
//	COURIER_SOAK=1 COURIER_SOAK_DURATION=10m go test -race -count=1 -run Soak -timeout 30m ./internal/reliability/
//
// Every test prints its seed and a summary line (kills, messages sent, lost,
// duplicates by cause). A seed fixes every random choice the test makes —
// kill intervals, batch sizes, acks and nacks — but not the scheduling of
// goroutines and processes, so a replay is the same workload, not the same
// interleaving.
//
// The tests do not run in parallel with each other: each one loads a server
// as hard as two cores allow, and two at once would measure each other.
package reliability
