package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier"
)

// workload is producers and consumers calling the harness's current server
// until stopped, recording every call.
type workload struct {
	h         *harness
	queue     string
	vis       time.Duration // of every receive
	producers int
	consumers int
	interval  time.Duration // between two sends of one producer
	maxBatch  int           // largest batch a producer sends
	leave     int           // percent of receives whose client gives up within 1-50 ms

	stop     chan struct{} // closed: finish the call in progress, then return
	stopOnce sync.Once
	wg       sync.WaitGroup
	next     atomic.Int64 // numbers the bodies
}

// run starts the workers; each draws from its own random stream of seed.
// They run until halt, which also happens when the test ends.
func (w *workload) run() {
	w.stop = make(chan struct{})
	w.h.t.Cleanup(w.halt)
	for i := range w.producers {
		rng := rand.New(rand.NewPCG(w.h.seed, uint64(100+i)))
		w.wg.Go(func() { w.produce(rng) })
	}
	for i := range w.consumers {
		rng := rand.New(rand.NewPCG(w.h.seed, uint64(200+i)))
		w.wg.Go(func() { w.consume(rng) })
	}
}

// halt stops the workers and waits for them. It may be called again.
func (w *workload) halt() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

func (w *workload) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// produce sends single messages and batches, paced by a ticker.
func (w *workload) produce(rng *rand.Rand) {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		n := 1
		if rng.IntN(2) == 0 {
			n = 2 + rng.IntN(w.maxBatch-1)
		}
		bodies := make([]string, n)
		for i := range bodies {
			bodies[i] = string(jsonBody(fmt.Sprintf("%s-%d", w.queue, w.next.Add(1))))
		}
		w.send(rng, bodies)
	}
}

// send sends bodies until a call is answered, giving up on a retry now and
// then: a producer that resends after an unknown outcome may store a message
// twice, and one that gives up may or may not have stored it. Both are
// legitimate, and the checker must tell them apart from losses.
func (w *workload) send(rng *rand.Rand, bodies []string) {
	for try := 0; ; try++ {
		c, gen := w.h.current()
		sc := w.h.log.Send(bodies...)
		ctx, cancel := context.WithTimeout(w.h.t.Context(), callTimeout)
		var ids []string
		var err error
		if len(bodies) == 1 {
			var id string
			id, err = c.Send(ctx, w.queue, courier.NewMessage{Body: []byte(bodies[0])})
			ids = []string{id}
		} else {
			msgs := make([]courier.NewMessage, len(bodies))
			for i, b := range bodies {
				msgs[i] = courier.NewMessage{Body: []byte(b)}
			}
			ids, err = c.SendBatch(ctx, w.queue, msgs)
		}
		cancel()
		if err == nil {
			sc.OK(ids...)
			return
		}
		w.h.fail(sc, gen, "send", err)
		if try == 2 || rng.IntN(3) == 0 || !w.h.awaitNewer(w.stop, gen) {
			return
		}
	}
}

// held is a delivery a consumer acks late, when its lease may have expired.
type held struct {
	lease string
	due   int // the consumer's iteration to ack it in
}

// consume receives and, per message, acks (mostly in batches), nacks,
// releases, acks late, or drops it to let its lease expire.
func (w *workload) consume(rng *rand.Rand) {
	visibility := w.vis.String()
	var late []held
	for iter := 0; !w.stopped(); iter++ {
		// Some receives give up early, as a client that stops waiting
		// would: what the server took for them must go back (or stay
		// leased until it expires), never reach another consumer while
		// they may still hold it.
		timeout, expected := callTimeout, []error(nil)
		if rng.IntN(100) < w.leave {
			timeout, expected = between(rng, time.Millisecond, 50*time.Millisecond), []error{context.DeadlineExceeded}
		}
		c, gen := w.h.current()
		rc := w.h.log.Receive(w.vis)
		ctx, cancel := context.WithTimeout(w.h.t.Context(), timeout)
		msgs, err := c.Receive(ctx, w.queue, courier.ReceiveRequest{Max: 1 + rng.IntN(10), Wait: "1s",
			Visibility: visibility})
		cancel()
		if err != nil {
			w.h.fail(rc, gen, "receive", err, expected...)
			if expected == nil || !errors.Is(err, context.DeadlineExceeded) {
				w.h.awaitNewer(w.stop, gen) // a fault: wait for the next server
			}
			continue
		}
		rc.OK(deliveries(msgs)...)
		var acks []string
		for _, m := range msgs {
			switch r := rng.Float64(); {
			case r < 0.55:
				acks = append(acks, m.Lease)
			case r < 0.67:
				w.nack(rng, m.Lease)
			case r < 0.75:
				w.release(rng, m.Lease)
			case r < 0.85:
				late = append(late, held{lease: m.Lease, due: iter + 2 + rng.IntN(8)})
			default: // dropped: the lease expires
			}
		}
		keep := late[:0]
		for _, l := range late {
			if l.due <= iter {
				acks = append(acks, l.lease)
			} else {
				keep = append(keep, l)
			}
		}
		late = keep
		if len(acks) > 0 {
			// The current server: leases outlive restarts.
			c, gen := w.h.current()
			_ = w.h.ack(c, gen, w.queue, acks, "ack", courier.ErrLeaseExpired)
		}
	}
}

// nack hands a message back: at once, after a short delay, or after the
// queue's backoff.
func (w *workload) nack(rng *rand.Rand, lease string) {
	delay := [...]string{"0s", "20ms", ""}[rng.IntN(3)]
	c, gen := w.h.current()
	nc := w.h.log.Nack(lease)
	ctx, cancel := context.WithTimeout(w.h.t.Context(), callTimeout)
	res, err := c.Nack(ctx, w.queue, courier.NackRequest{Lease: lease, Delay: delay, Error: "test nack"})
	cancel()
	if err != nil {
		w.h.fail(nc, gen, "nack", err, courier.ErrLeaseExpired)
		return
	}
	nc.OK(res.DeadLettered)
	if res.DeadLettered {
		w.h.t.Errorf("nack dead-lettered a message of a queue with unlimited attempts (lease %s)", lease)
	}
}

// release hands a message back unprocessed (its attempt not counted): at
// once or after a short delay.
func (w *workload) release(rng *rand.Rand, lease string) {
	delay := [...]string{"", "20ms"}[rng.IntN(2)]
	c, gen := w.h.current()
	rc := w.h.log.Release(lease)
	ctx, cancel := context.WithTimeout(w.h.t.Context(), callTimeout)
	res, err := c.Nack(ctx, w.queue, courier.NackRequest{Lease: lease, Delay: delay, Release: true})
	cancel()
	if err != nil {
		w.h.fail(rc, gen, "release", err, courier.ErrLeaseExpired)
		return
	}
	rc.OK()
	if res.DeadLettered {
		w.h.t.Errorf("a release dead-lettered a message (lease %s)", lease)
	}
}
