package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courierhq/courier"
)

// receiveWait is the long-poll of a consumer's receive. It is answered as
// soon as a message is there, so its length costs no latency; it bounds how
// long an idle consumer takes to see that the count is complete and stop.
//
// Consumers are not stopped by canceling their long-polls: a receive the
// client abandons may still lease messages on the server (it notices the
// closed connection a moment later), and those stay invisible for the
// visibility timeout, 30s. The next phase of a workload (w4 fills the queue
// right after its baseline drain) would find them missing. So a consumer
// that is done lets its last long-poll end on its own.
const receiveWait = "250ms"

// sendAll sends n messages to the run's queue from producers goroutines,
// batch messages per request (a single send, not a batch of one, when
// batch is 1). With stamp, each message carries the moment its request
// started, for a latency measured at the consumer. gate, if not nil, is
// called before each request with its message count and may wait for
// room (w5 bounds the backlog with it). sent, if not nil, counts the
// messages stored; lat, if not nil, gets each message's send request,
// start to 2xx.
func (r *runner) sendAll(ctx context.Context, n int64, producers, batch int, stamp bool,
	gate func(context.Context, int) error, sent *meter, lat *Histogram) error {
	var next atomic.Int64 // the first message of the next request
	var mu sync.Mutex     // guards lat
	g, ctx := newGroup(ctx)
	for range producers {
		g.run(func() error {
			msgs := make([]courier.NewMessage, 0, batch)
			h := &Histogram{}
			defer func() {
				if lat != nil {
					mu.Lock()
					lat.Merge(h)
					mu.Unlock()
				}
			}()
			for {
				first := next.Add(int64(batch)) - int64(batch)
				if first >= n {
					return nil
				}
				k := int(min(n-first, int64(batch)))
				if gate != nil {
					if err := gate(ctx, k); err != nil {
						return err
					}
				}
				msgs = msgs[:0]
				due := r.bodies.now()
				for range k {
					if stamp {
						msgs = append(msgs, r.bodies.stamped(due))
					} else {
						msgs = append(msgs, r.bodies.message())
					}
				}
				var err error
				start := time.Now()
				if batch == 1 {
					_, err = r.c.Send(ctx, r.p.Queue, msgs[0])
				} else {
					_, err = r.c.SendBatch(ctx, r.p.Queue, msgs)
				}
				if err != nil {
					return fmt.Errorf("send: %w", err)
				}
				h.RecordN(time.Since(start), k)
				if sent != nil {
					sent.add(int64(k))
				}
			}
		})
	}
	return g.wait()
}

// latencyMode says what a consumer measures of each message.
type latencyMode int

const (
	noLatency       latencyMode = iota
	sendToAck                   // from the stamp to the ack's 2xx
	sendToReceive               // from the stamp to the receive's return
	receiveAckRound             // the receive request's start to its ack's 2xx
)

// receiveAll receives and acks the run's queue with consumers goroutines,
// batch messages per receive (long-poll) and ack request (a single ack
// when batch is 1), until done has counted n acked messages. settled, if
// not nil, is told how many each ack settled. It returns the latencies of
// mode, and how many acks were refused because their lease had expired (the
// message was or will be delivered again, and is counted when that
// delivery is acked).
func (r *runner) receiveAll(ctx context.Context, done *meter, n int64, consumers, batch int,
	mode latencyMode, settled func(int)) (*Histogram, int64, error) {
	var (
		mu       sync.Mutex // guards total
		total    = &Histogram{}
		refused  atomic.Int64
		g, gctx  = newGroup(ctx)
		complete = func() bool { return done.count() >= n }
	)
	for range consumers {
		g.run(func() error {
			h := &Histogram{}
			defer func() {
				mu.Lock()
				total.Merge(h)
				mu.Unlock()
			}()
			req := courier.ReceiveRequest{Max: batch, Wait: receiveWait}
			for !complete() {
				start := time.Now()
				msgs, err := r.c.Receive(gctx, r.p.Queue, req)
				if err != nil {
					return fmt.Errorf("receive: %w", err)
				}
				if len(msgs) == 0 {
					continue
				}
				if mode == sendToReceive {
					r.recordSince(h, msgs)
				}
				acked, err := r.ack(gctx, msgs, batch)
				if err != nil {
					return fmt.Errorf("ack: %w", err)
				}
				refused.Add(int64(len(msgs) - acked))
				switch mode {
				case sendToAck:
					r.recordSince(h, msgs)
				case receiveAckRound:
					h.RecordN(time.Since(start), acked)
				}
				if settled != nil {
					settled(acked)
				}
				done.add(int64(acked))
			}
			return nil
		})
	}
	err := g.wait()
	return total, refused.Load(), err
}

// recordSince records, for each stamped message, the time since its stamp.
func (r *runner) recordSince(h *Histogram, msgs []courier.Message) {
	for i := range msgs {
		if d, ok := r.bodies.since(&msgs[i]); ok {
			h.Record(d)
		}
	}
}

// ack acknowledges msgs, in one request, and says how many it settled. A
// lease that has expired is not an error: the message comes back.
func (r *runner) ack(ctx context.Context, msgs []courier.Message, batch int) (int, error) {
	if batch == 1 && len(msgs) == 1 {
		err := r.c.Ack(ctx, r.p.Queue, msgs[0].Lease)
		if errors.Is(err, courier.ErrLeaseExpired) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
	leases := make([]string, len(msgs))
	for i := range msgs {
		leases[i] = msgs[i].Lease
	}
	res, err := r.c.AckBatch(ctx, r.p.Queue, leases)
	if err != nil {
		return 0, err
	}
	for _, f := range res.Failed {
		if f.Code != courier.CodeLeaseExpired {
			return res.Acked, fmt.Errorf("lease %s: %s (%s)", f.Lease, f.Message, f.Code)
		}
	}
	return res.Acked, nil
}

// putQueue creates the run's queue (or keeps it, if it exists), so that
// the measured phase does not pay for its creation.
func (r *runner) putQueue(ctx context.Context) error {
	if _, err := r.c.PutQueue(ctx, r.p.Queue, courier.QueueSettings{}); err != nil {
		return fmt.Errorf("create queue %s: %w", r.p.Queue, err)
	}
	return nil
}
