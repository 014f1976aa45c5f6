package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/history"
	"github.com/courierhq/courier/internal/pgtest"
)

// TestKill9PostgresNode runs two `courier serve` nodes over one PostgreSQL
// database. Producers and consumers work through one node; right before it
// is killed with SIGKILL, a consumer takes leases on it and never acks them.
// The workload moves to the other node, a fresh node is started as the next
// spare, and so on. After the load, the queue is drained through the last
// node and the history checked: every send answered 2xx was received and
// acked — the killed node's leases expired and their messages came back
// through another node — nothing acked came back, no two leases of a
// message overlapped, nothing came from nowhere.
func TestKill9PostgresNode(t *testing.T) {
	seed := seed(t)
	const (
		kills = 2
		vis   = time.Second // short, so the killed node's leases end soon
	)
	// synchronous_commit on: a 2xx is a durable commit, as in production.
	dsn := pgtest.Database(t, map[string]string{"synchronous_commit": "on"})
	h := newHarnessLaunch(t, seed, nil, func() (*server, error) { return startNode(t, dsn) })
	h.setupQueue("pgkill", vis)
	w := &workload{h: h, queue: "pgkill", vis: vis, producers: 2, consumers: 2,
		interval: 10 * time.Millisecond, maxBatch: 8, leave: 10}
	rng := rand.New(rand.NewPCG(seed, 1))

	w.run()
	held := 0
	for range kills {
		spare, err := h.launch()
		if err != nil {
			t.Fatalf("start a spare node: %v", err)
		}
		timer := time.NewTimer(between(rng, 100*time.Millisecond, time.Second))
		<-timer.C
		held += h.hold(w.queue, vis, 10)
		s := h.fault("kill -9")
		if err := s.kill(); err != nil {
			t.Fatal(err)
		}
		h.adopt(spare) // the workload goes on through the other node
		h.log.Restart(spare.url)
	}
	timer := time.NewTimer(vis)
	<-timer.C
	w.halt()

	r := h.conclude(w, time.Minute, "pgkill9", "kills", fmt.Sprintf(" held-at-kill=%d", held))
	if held == 0 || r.SendsOK == 0 || r.Crashes != kills || r.SameAttempt == 0 {
		t.Errorf("the test did not exercise the cluster: %d leases held at a kill; %v", held, r)
	}
	// Each lease held at a kill ended with its node, and its message came
	// back through another: a redelivery the checker puts down to the crash.
	if r.Explained[history.CauseCrash] < held {
		t.Errorf("%d redeliveries caused by a kill, want at least the %d leases held at one", r.Explained[history.CauseCrash], held)
	}
}

// hold receives up to max messages on the current server and never acks
// them: a consumer that dies with its node. It returns how many it got.
func (h *harness) hold(queue string, vis time.Duration, max int) int {
	c, gen := h.current()
	rc := h.log.Receive(vis)
	ctx, cancel := context.WithTimeout(h.t.Context(), callTimeout)
	defer cancel()
	msgs, err := c.Receive(ctx, queue, courier.ReceiveRequest{Max: max, Wait: "1s", Visibility: vis.String()})
	if err != nil {
		h.fail(rc, gen, "hold: receive", err)
		return 0
	}
	rc.OK(deliveries(msgs)...)
	return len(msgs)
}
