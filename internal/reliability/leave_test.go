package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/history"
	"github.com/courierhq/courier/internal/pgtest"
)

// TestClientsLeaveTheirLongPolls runs consumers that mostly wait on a
// nearly empty queue, half of whose receives give up within 1-50 ms, so
// that sends keep handing messages to long-polls whose clients are leaving.
// The server hands back what a wait brought to a client that left (and
// leaves a lease it had already answered to expire): the history must show
// nothing lost, no lease handed to one consumer while another may hold it,
// and every redelivery with a cause. It checks safety only: a lease left to
// expire is legal too, so that the server does hand messages back is
// internal/httpapi's TestReceiveClientLeft to show. It runs on the
// embedded store, and on a node over PostgreSQL, whose leases of
// concurrent receives are combined and whose shares of a receive that gave
// up are released apart.
func TestClientsLeaveTheirLongPolls(t *testing.T) {
	t.Run("pebble", func(t *testing.T) {
		clientsLeave(t, newHarness(t, seed(t)), "leave")
	})
	t.Run("postgres", func(t *testing.T) {
		// synchronous_commit on: a 2xx is a durable commit, as in production.
		dsn := pgtest.Database(t, map[string]string{"synchronous_commit": "on"})
		clientsLeave(t, newHarnessLaunch(t, seed(t), nil, func() (*server, error) { return startNode(t, dsn) }), "pgleave")
	})
}

// clientsLeave runs the test on h's servers; name names its summary.
func clientsLeave(t *testing.T, h *harness, name string) {
	const vis = 2 * time.Second
	h.setupQueue("leave", vis)
	// One producer, one or two messages every 4 ms, for four consumers: the
	// queue is empty most of the time, so receives wait.
	w := &workload{h: h, queue: "leave", vis: vis, producers: 1, consumers: 4,
		interval: 4 * time.Millisecond, maxBatch: 2, leave: 50}
	w.run()
	timer := time.NewTimer(6 * time.Second)
	<-timer.C
	w.halt()

	left := leftEarly(h.log.Events())
	r := h.conclude(w, time.Minute, name, "faults", fmt.Sprintf(" receives-left-early=%d", left))
	if r.SendsOK == 0 || r.Deliveries == 0 || left == 0 {
		t.Errorf("the test did not exercise the server: %d receives left early; %v", left, r)
	}
}

// leftEarly counts the receives that ended because their client gave up.
func leftEarly(events []history.Event) int {
	n := 0
	for _, e := range events {
		if e.Op == history.OpReceive && e.Outcome == history.Unknown &&
			strings.Contains(e.Detail, context.DeadlineExceeded.Error()) {
			n++
		}
	}
	return n
}
