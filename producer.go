package courier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ProducerOptions configure a Producer. The zero value of each field (or a
// negative one) means its default.
type ProducerOptions struct {
	// MaxBatch is the most messages one send request carries. Default 1000,
	// the server's limit.
	MaxBatch int
	// MaxBatchBytes is about the most bytes of bodies and headers one send
	// request carries; a message larger than that goes alone. Default 4 MiB
	// (the server takes requests of up to 32 MiB by default).
	MaxBatchBytes int
	// Linger is how long a batch that is not full waits for more messages
	// before it is sent. Default 5ms.
	Linger time.Duration
	// BufferSize is the most messages the producer holds: given to Send and
	// not yet answered by the server. Default 10,000.
	BufferSize int
	// Concurrency is how many send requests may be in flight at once.
	// Default 4.
	Concurrency int
	// NonBlocking makes Send fail with ErrBufferFull when the buffer is
	// full, instead of waiting for room.
	NonBlocking bool
}

// Defaults of ProducerOptions.
const (
	DefaultProducerMaxBatch      = 1000
	DefaultProducerMaxBatchBytes = 4 << 20
	DefaultProducerLinger        = 5 * time.Millisecond
	DefaultProducerBufferSize    = 10_000
	DefaultProducerConcurrency   = 4
)

// WithDefaults returns o with its unset fields set to their defaults.
func (o ProducerOptions) WithDefaults() ProducerOptions {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultProducerMaxBatch
	}
	o.MaxBatch = min(o.MaxBatch, maxReceive)
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultProducerMaxBatchBytes
	}
	if o.Linger <= 0 {
		o.Linger = DefaultProducerLinger
	}
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultProducerBufferSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultProducerConcurrency
	}
	return o
}

// Errors of a Producer's Send.
var (
	ErrBufferFull     = errors.New("courier: producer buffer full")
	ErrProducerClosed = errors.New("courier: producer closed")
)

// A Producer sends messages (Send) and submits tasks (Submit)
// asynchronously, gathering those for each queue into batch requests: Send
// returns at once, and the message's id (or error) comes later, from its
// PendingSend. This is how a Go program sends many thousands of messages a
// second: one request, and one fsync on the server, carries up to MaxBatch
// of them.
//
// A batch is sent when it is full (MaxBatch, MaxBatchBytes) or has waited
// Linger, by one of Concurrency senders. A batch is stored all or none;
// when the server refuses one for a message in it (invalid or too large),
// the producer splits it to find the culprits, so that only they fail.
//
// Nothing is retried: a send whose answer was lost may have been stored, and
// sending again would store it twice. Give messages a DedupKey to make a
// resend safe. With Concurrency above 1, batches of one queue may be stored
// out of order.
//
// A Producer is safe for concurrent use. Close it when done.
type Producer struct {
	c     *Client
	opts  ProducerOptions
	space chan struct{} // a token per message held; capacity BufferSize

	ctx     context.Context    // of send requests; cancelled by a Close out of time
	cancel  context.CancelFunc //
	closing chan struct{}      // closed when Close begins
	senders sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	wake     *sync.Cond // on mu: a batch is ready, or the producer closed
	closed   bool
	open     map[batchKey]*batch // the batch gathering for each queue and kind
	ready    []*batch            // batches to send, oldest first
	inflight map[*batch]bool     // ready or being sent
	closeErr error
	done     chan struct{} // closed when Close has finished
}

// batchKey tells batches apart: sends and submits to one queue go in
// different requests.
type batchKey struct {
	queue string
	tasks bool
}

// batch is messages, or tasks, for one queue, sent in one request.
type batch struct {
	key     batchKey
	msgs    []NewMessage // when !key.tasks
	tasks   []SubmitTask // when key.tasks
	pending []*PendingSend
	bytes   int
	timer   *time.Timer   // the linger; stopped when the batch is dispatched
	done    chan struct{} // closed when every message has its outcome
}

// NewProducer returns a Producer that sends through c.
func NewProducer(c *Client, opts ProducerOptions) *Producer {
	opts = opts.WithDefaults()
	// Background: the requests live as long as the producer, whose end is
	// Close, not any one call's context.
	ctx, cancel := context.WithCancel(context.Background())
	p := &Producer{
		c: c, opts: opts, space: make(chan struct{}, opts.BufferSize),
		ctx: ctx, cancel: cancel, closing: make(chan struct{}),
		open: make(map[batchKey]*batch), inflight: make(map[*batch]bool), done: make(chan struct{}),
	}
	p.wake = sync.NewCond(&p.mu)
	for range opts.Concurrency {
		p.senders.Add(1)
		go p.sendLoop()
	}
	return p
}

// A PendingSend is the outcome of a message given to a Producer, to come.
type PendingSend struct {
	done chan struct{}
	id   string
	err  error
}

func failedSend(err error) *PendingSend {
	ps := &PendingSend{done: make(chan struct{}), err: err}
	close(ps.done)
	return ps
}

// Done is closed when the outcome is known.
func (ps *PendingSend) Done() <-chan struct{} { return ps.done }

// Wait waits for the outcome: the message's id, or why it was not stored.
// Its ctx bounds only the waiting: the message is sent either way.
func (ps *PendingSend) Wait(ctx context.Context) (string, error) {
	select {
	case <-ps.done:
		return ps.id, ps.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Send gives m to the producer to be sent to queue, and returns at once
// with its PendingSend, unless the buffer is full: then it waits for room
// until ctx ends (or, with NonBlocking, fails with ErrBufferFull). ctx
// bounds only that wait; a message taken in is sent even if ctx ends later.
// A message refused here has its error in the PendingSend, already done.
func (p *Producer) Send(ctx context.Context, queue string, m NewMessage) *PendingSend {
	return p.add(ctx, batchKey{queue: queue}, messageSize(&m), func(b *batch) { b.msgs = append(b.msgs, m) })
}

// Submit gives a task to the producer, to be submitted to queue in a batch
// with others (one request stores up to MaxBatch tasks); otherwise it is
// like Send. The PendingSend's id is the task's: Client.AwaitTask(ctx, id)
// awaits its outcome, or give the tasks a ReplyTo queue and receive the
// outcomes from it in batches, which is how a program hears back from
// thousands of tasks a second.
func (p *Producer) Submit(ctx context.Context, queue string, t SubmitTask) *PendingSend {
	size := messageSize(&t.NewMessage) + len(t.ReplyTo) + len(t.ResultTTL)
	if t.Notify != nil {
		size += len(t.Notify.URL) + len(t.Notify.Secret)
	}
	return p.add(ctx, batchKey{queue: queue, tasks: true}, size, func(b *batch) { b.tasks = append(b.tasks, t) })
}

// add waits for room in the buffer, then appends an item of size bytes to
// the batch gathering for key (by put), dispatching batches that are full.
func (p *Producer) add(ctx context.Context, key batchKey, size int, put func(*batch)) *PendingSend {
	if _, err := queuePath(key.queue); err != nil {
		return failedSend(err)
	}
	if p.opts.NonBlocking {
		select {
		case p.space <- struct{}{}:
		default:
			return failedSend(ErrBufferFull)
		}
	} else {
		select {
		case p.space <- struct{}{}:
		case <-ctx.Done():
			return failedSend(fmt.Errorf("courier: producer send: %w", ctx.Err()))
		case <-p.closing:
			return failedSend(ErrProducerClosed)
		}
	}
	ps := &PendingSend{done: make(chan struct{})}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		<-p.space
		return failedSend(ErrProducerClosed)
	}
	b := p.open[key]
	if b != nil && b.bytes+size > p.opts.MaxBatchBytes {
		p.dispatch(b)
		b = nil
	}
	if b == nil {
		b = &batch{key: key, done: make(chan struct{})}
		p.open[key] = b
		b.timer = time.AfterFunc(p.opts.Linger, func() { p.linger(b) })
	}
	put(b)
	b.pending = append(b.pending, ps)
	b.bytes += size
	if len(b.pending) >= p.opts.MaxBatch || b.bytes >= p.opts.MaxBatchBytes {
		p.dispatch(b)
	}
	return ps
}

// messageSize is about how many bytes m takes in a request.
func messageSize(m *NewMessage) int {
	n := 64 + len(m.Body) + len(m.DedupKey) + len(m.Group)
	if m.BodyBase64 != nil {
		n += len(*m.BodyBase64)
	}
	for k, v := range m.Headers {
		n += len(k) + len(v) + 6
	}
	return n
}

// linger dispatches b when its linger has passed, if it is still open.
func (p *Producer) linger(b *batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open[b.key] == b {
		p.dispatch(b)
	}
}

// dispatch moves b from gathering to the senders' line. p.mu is held.
func (p *Producer) dispatch(b *batch) {
	if p.open[b.key] == b {
		delete(p.open, b.key)
	}
	b.timer.Stop()
	p.ready = append(p.ready, b)
	p.inflight[b] = true
	p.wake.Signal()
}

// sendLoop sends ready batches until the producer is closed and none is left.
func (p *Producer) sendLoop() {
	defer p.senders.Done()
	for {
		p.mu.Lock()
		for len(p.ready) == 0 && !p.closed {
			p.wake.Wait()
		}
		if len(p.ready) == 0 {
			p.mu.Unlock()
			return
		}
		b := p.ready[0]
		p.ready[0] = nil
		p.ready = p.ready[1:]
		p.mu.Unlock()

		p.send(b)

		p.mu.Lock()
		delete(p.inflight, b)
		p.mu.Unlock()
		close(b.done)
	}
}

// send sends b in one request and completes its pending sends. A refusal
// that one item can cause (invalid, too large) splits the batch in halves,
// recursively, so that only the items at fault fail.
func (p *Producer) send(b *batch) {
	var (
		ids []string
		err error
	)
	if p.ctx.Err() != nil {
		err = fmt.Errorf("%w before the message was sent", ErrProducerClosed)
	} else {
		ids, err = p.request(b)
		if err != nil && p.ctx.Err() != nil {
			err = fmt.Errorf("%w while sending: the message may or may not be stored: %w", ErrProducerClosed, err)
		}
	}
	if n := len(b.pending); err != nil && n > 1 && (errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrTooLarge)) {
		p.send(b.slice(0, n/2))
		p.send(b.slice(n/2, n))
		return
	}
	if err == nil && len(ids) != len(b.pending) {
		err = fmt.Errorf("courier: producer: the server answered %d ids for %d items", len(ids), len(b.pending))
	}
	for i, ps := range b.pending {
		if err != nil {
			ps.err = err
		} else {
			ps.id = ids[i]
		}
		close(ps.done)
		<-p.space
	}
}

// request makes b's one request: a batch send or a batch submit.
func (p *Producer) request(b *batch) ([]string, error) {
	if !b.key.tasks {
		return p.c.SendBatch(p.ctx, b.key.queue, b.msgs)
	}
	fs, err := p.c.SubmitBatch(p.ctx, b.key.queue, b.tasks)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID()
	}
	return ids, nil
}

// slice is the part [i, j) of b's items, for sending apart.
func (b *batch) slice(i, j int) *batch {
	out := &batch{key: b.key, pending: b.pending[i:j]}
	if b.key.tasks {
		out.tasks = b.tasks[i:j]
	} else {
		out.msgs = b.msgs[i:j]
	}
	return out
}

// Flush sends every message given to Send so far, without waiting for the
// linger, and waits until each has its outcome or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	for _, b := range p.open {
		p.dispatch(b)
	}
	wait := make([]*batch, 0, len(p.inflight))
	for b := range p.inflight {
		wait = append(wait, b)
	}
	p.mu.Unlock()
	for _, b := range wait {
		select {
		case <-b.done:
		case <-ctx.Done():
			return fmt.Errorf("courier: producer flush: %w", ctx.Err())
		}
	}
	return nil
}

// Close stops the producer: Send fails from now on with ErrProducerClosed,
// and the messages it holds are sent; Close waits for their outcomes until
// ctx ends. Then it abandons what is left: requests in flight are cancelled
// (their messages fail with ErrProducerClosed, and may or may not have been
// stored) and batches not yet sent fail. Close may be called more than once;
// every call returns when the first is done (or its own ctx ends).
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		select {
		case <-p.done:
			return p.closeErr
		case <-ctx.Done():
			return fmt.Errorf("courier: close producer: %w", ctx.Err())
		}
	}
	p.closed = true
	close(p.closing)
	for _, b := range p.open {
		p.dispatch(b)
	}
	p.wake.Broadcast()
	p.mu.Unlock()

	var err error
	if !waitGroup(ctx, &p.senders) {
		err = fmt.Errorf("courier: close producer: %w", ctx.Err())
	}
	p.cancel()
	p.senders.Wait() // at once now: what is left fails fast
	p.closeErr = err
	close(p.done)
	return err
}
