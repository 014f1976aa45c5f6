package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// W1 on JetStream: a work-queue stream (a message is removed when acked,
// as a courier queue's is) with one durable pull consumer that every
// consumer goroutine shares, as courier's consumers share one queue.
//
//   - per-message (batch 1): every publish waits for its PubAck
//     (js.Publish); every receive is one pull request for one message
//     (Fetch(1)); every ack waits for the server's reply (DoubleAck).
//   - batched (batch B): producers publish asynchronously with at most B
//     PubAcks outstanding each (a sliding window, which never waits for a
//     whole batch as courier's request does: if anything it favours NATS);
//     consumers pull B messages per request (Fetch(B)), then ack them: B-1
//     plain acks and a DoubleAck for the last. The server works through
//     one consumer's acks in order (one queue per consumer), so the reply
//     to the last ack means the whole batch was processed: one confirmed
//     round trip per batch, like courier's one ack request.
//
// Every producer and consumer has its own connection, as courier's
// clients each have their own.

const (
	w1Stream   = "W1"
	w1Subject  = "w1"
	w1Consumer = "w1"
)

// runNATSW1 measures W1 of count messages with the given batch against
// the server at url.
func runNATSW1(ctx context.Context, url string, p Params, batch, count int, system, mode string) Figure {
	d, err := natsW1(ctx, url, p, batch, count)
	if err != nil {
		return failed(system, "w1", mode, err)
	}
	return measured(system, "w1", mode, count, d)
}

func natsW1(ctx context.Context, url string, p Params, batch, count int) (time.Duration, error) {
	admin, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		return 0, err
	}
	_ = js.DeleteStream(ctx, w1Stream) // a fresh stream per run
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: w1Stream, Subjects: []string{w1Subject},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy, Replicas: 1,
	})
	if err != nil {
		return 0, fmt.Errorf("create stream: %w", err)
	}
	_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: w1Consumer, AckPolicy: jetstream.AckExplicitPolicy,
		// Unlimited: the default (1000) would throttle C consumers
		// fetching B each, which courier does not.
		MaxAckPending: -1,
		AckWait:       time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("create consumer: %w", err)
	}

	// Connections are made before the clock starts, as courier's clients
	// are.
	var conns []*nats.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	connect := func() (*nats.Conn, error) {
		c, err := nats.Connect(url)
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	var producers, consumers []*nats.Conn
	for range p.Producers {
		c, err := connect()
		if err != nil {
			return 0, err
		}
		producers = append(producers, c)
	}
	for range p.Consumers {
		c, err := connect()
		if err != nil {
			return 0, err
		}
		consumers = append(consumers, c)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var toSend, toReceive atomic.Int64
	toSend.Store(int64(count))
	toReceive.Store(int64(count))
	payload := p.payload()
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range producers {
		wg.Go(func() {
			if err := natsProduce(ctx, c, &toSend, batch, payload); err != nil {
				cancel(fmt.Errorf("produce: %w", err))
			}
		})
	}
	for _, c := range consumers {
		wg.Go(func() {
			if err := natsConsume(ctx, c, &toReceive, batch); err != nil {
				cancel(fmt.Errorf("consume: %w", err))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	// Every message was acked, so the work-queue stream is empty.
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs != 0 {
		return 0, fmt.Errorf("%d messages left in the stream after the run", info.State.Msgs)
	}
	return elapsed, nil
}

// claim takes up to want items from n, returning how many (0: none left).
func claim(n *atomic.Int64, want int) int {
	for {
		cur := n.Load()
		if cur <= 0 {
			return 0
		}
		k := min(cur, int64(want))
		if n.CompareAndSwap(cur, cur-k) {
			return int(k)
		}
	}
}

// natsProduce publishes until toSend is exhausted.
func natsProduce(ctx context.Context, c *nats.Conn, toSend *atomic.Int64, batch int, payload []byte) error {
	if batch == 1 {
		js, err := jetstream.New(c)
		if err != nil {
			return err
		}
		for claim(toSend, 1) > 0 {
			if _, err := js.Publish(ctx, w1Subject, payload); err != nil {
				return err
			}
		}
		return nil
	}
	var asyncErr atomic.Pointer[error]
	js, err := jetstream.New(c, jetstream.WithPublishAsyncMaxPending(batch),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			asyncErr.CompareAndSwap(nil, &err)
		}))
	if err != nil {
		return err
	}
	for claim(toSend, 1) > 0 {
		// The stall wait is how long PublishAsync may block on a full
		// window; with fsync per message a window can take a while.
		if _, err := js.PublishAsync(w1Subject, payload, jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
		if e := asyncErr.Load(); e != nil {
			return *e
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	if e := asyncErr.Load(); e != nil {
		return *e
	}
	return nil
}

// natsConsume receives and acks until toReceive is exhausted. A consumer
// claims the messages it will fetch before asking, so that no request
// waits at the end of the run for messages that will never come.
func natsConsume(ctx context.Context, c *nats.Conn, toReceive *atomic.Int64, batch int) error {
	js, err := jetstream.New(c)
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, w1Stream, w1Consumer)
	if err != nil {
		return err
	}
	msgs := make([]jetstream.Msg, 0, batch)
	for {
		k := claim(toReceive, batch)
		if k == 0 {
			return nil
		}
		mb, err := cons.Fetch(k, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			return err
		}
		msgs = msgs[:0]
		for m := range mb.Messages() {
			msgs = append(msgs, m)
		}
		if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		if short := k - len(msgs); short > 0 {
			toReceive.Add(int64(short)) // expired before k arrived: ask again
		}
		for i, m := range msgs {
			if i < len(msgs)-1 {
				err = m.Ack()
			} else {
				err = m.DoubleAck(ctx)
			}
			if err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
