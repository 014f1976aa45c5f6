package broker

import (
	"time"

	"github.com/courierhq/courier/internal/store"
)

// Observer is told what the broker did, for metrics (internal/metrics
// implements it; the broker itself imports no metrics library). Its methods
// are called on the request's path: they must be quick and safe for
// concurrent use.
type Observer interface {
	// Delivered: a receive handed out msgs of queue at now (the broker's
	// clock). msgs is the answer's: read it, do not keep it.
	Delivered(queue string, now time.Time, msgs []store.Message)
	// GaveBack: a nack, release or terminate of one message of queue was
	// applied, with that outcome.
	GaveBack(queue string, outcome GiveBackOutcome)
	// QueueDeleted: queue and its messages are gone.
	QueueDeleted(queue string)
	// DueWork: time-driven work done, by a receive before it leased (for
	// its queue) or by a Tick (for every queue); NextDue means nothing here.
	DueWork(res store.TickResult)
}

// GiveBackOutcome is what became of a message given back.
type GiveBackOutcome uint8

// The outcomes of a nack, a release and a terminate.
const (
	Retried      GiveBackOutcome = iota // nacked: ready again after a delay
	Released                            // released: ready again, its attempt not counted
	DeadLettered                        // nacked at its last attempt, or terminated
	Cancelled                           // a task's whose cancel was requested: it ended cancelled
)

// String is the outcome's name, as metrics label it.
func (o GiveBackOutcome) String() string {
	switch o {
	case Retried:
		return "retried"
	case Released:
		return "released"
	case DeadLettered:
		return "dead_lettered"
	case Cancelled:
		return "cancelled"
	}
	return "unknown"
}

// outcomeOf names what a give-back did.
func outcomeOf(res store.NackResult, release bool) GiveBackOutcome {
	switch {
	case res.Cancelled:
		return Cancelled
	case res.DeadLettered:
		return DeadLettered
	case release:
		return Released
	}
	return Retried
}

// nopObserver observes nothing: the default.
type nopObserver struct{}

func (nopObserver) Delivered(string, time.Time, []store.Message) {}
func (nopObserver) GaveBack(string, GiveBackOutcome)             {}
func (nopObserver) QueueDeleted(string)                          {}
func (nopObserver) DueWork(store.TickResult)                     {}
