package bench

import "context"

// spec describes a workload: its names, what its figures count, its
// defaults and the parameters it uses.
type spec struct {
	alias   string
	title   string
	unit    string // what count and per_second count
	latency string // what each latency sample measures
	// latencyOpen replaces latency when the run is open loop (a rate
	// given to a workload that is otherwise closed loop).
	latencyOpen string
	// latencyWorker replaces latency when an SDK Worker consumes (w3 --worker).
	latencyWorker string
	uses          string // parameters it uses beyond count, size, windows, queue
	// Defaults of its own.
	count       int64
	concurrency int
	rate        float64
	run         func(context.Context, *runner) (outcome, error)
}

var specs = map[Workload]spec{
	W1: {alias: "roundtrip", title: "durable round trip", unit: "messages",
		latency: "send→ack: from the start of the send request that carried the message to the 2xx of the ack that settled it",
		uses:    "producers consumers batch carry-acks", count: 100_000, run: runRoundTrip},
	W2: {alias: "burndown", title: "job burn-down", unit: "jobs",
		latency: "enqueue: the send (or, with --tasks, submit) request that stored the job, start to 2xx",
		uses:    "producers batch concurrency tasks", count: 100_000, concurrency: 100, run: runBurnDown},
	W3: {alias: "latency", title: "latency at a fixed rate (open loop)", unit: "messages",
		latency:       "scheduled send→receive: from the moment the send was due on the fixed-rate schedule (late sends are charged) to the return of the receive that took the message",
		latencyWorker: "scheduled send→handler: from the moment the send was due on the fixed-rate schedule (late sends are charged) to the start of the SDK Worker's handler that took the message",
		uses:          "consumers batch rate carry-acks worker", count: 10_000, rate: DefaultRate, run: runLatency},
	W4: {alias: "backlog", title: "backlog", unit: "messages",
		latency: "receive+ack round: the receive request that took the message, start to the 2xx of its ack, while draining the full backlog",
		uses:    "producers consumers batch baseline carry-acks", count: 1_000_000, run: runBacklog},
	W5: {alias: "churn", title: "churn", unit: "cycles",
		latency: "send→ack: from the start of the send request that carried the message to the 2xx of the ack that settled it",
		uses:    "producers consumers batch backlog carry-acks", count: 1_000_000, run: runChurn},
	W6: {alias: "tasks", title: "task round trip (Await)", unit: "tasks",
		latency:     "submit→Await: from the start of Submit to the return of Await with the finished task (closed loop)",
		latencyOpen: "scheduled submit→Await: from the moment the submit was due on the fixed-rate schedule (late submits are charged) to the return of Await with the finished task",
		uses:        "batch concurrency rate", count: 10_000, concurrency: 32, run: runTasks},
}
