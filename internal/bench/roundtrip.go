package bench

import (
	"context"
	"time"
)

// runRoundTrip is w1, the durable round trip: Producers goroutines send
// Count messages (Batch per request) while Consumers goroutines receive
// and ack them (Batch per request). It measures until the last ack; each
// message's latency runs from the start of the send request that carried
// it to the 2xx of the ack that settled it.
func runRoundTrip(ctx context.Context, r *runner) (outcome, error) {
	if err := r.putQueue(ctx); err != nil {
		return outcome{}, err
	}
	n := r.p.Count
	m := r.phase("sent, received and acked", n)
	g, gctx := newGroup(ctx)
	var (
		sendTook time.Duration
		lat      *Histogram
		refused  int64
	)
	g.run(func() error {
		err := r.sendAll(gctx, n, r.p.Producers, r.p.Batch, true, nil, nil, nil)
		sendTook = time.Since(m.start)
		return err
	})
	g.run(func() (err error) {
		lat, refused, err = r.receiveAll(gctx, m, n, r.p.Consumers, r.p.Batch, sendToAck, nil)
		return err
	})
	if err := g.wait(); err != nil {
		return outcome{}, err
	}
	r.extra["send_seconds"] = sendTook.Seconds()
	r.extra["acks_refused_lease_expired"] = refused
	return outcome{count: m.count(), elapsed: m.elapsed(), lat: lat, windows: m.windows()}, nil
}
