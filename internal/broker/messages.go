package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/courierhq/courier/internal/store"
)

// Message is a message to send, as a transport decoded it.
type Message struct {
	Body      []byte
	Kind      store.BodyKind
	Headers   map[string]string
	Delay     time.Duration // relative delay; or NotBefore; not both
	NotBefore time.Time
	Priority  int
	DedupKey  string
	Group     string
}

// Send stores messages in a queue (created on first send unless disabled),
// all or none, and returns their ids in order.
func (b *Broker) Send(ctx context.Context, queue string, msgs []Message) ([]store.SendResult, error) {
	return b.send(ctx, queue, msgs, nil)
}

// send stores messages; with task set, each is a task with that request.
// send stores msgs in queue, atomically. tasks, when not nil, holds one
// entry per message: tasks[i] makes msgs[i] a task.
func (b *Broker) send(ctx context.Context, queue string, msgs []Message, tasks []*store.NewTask) ([]store.SendResult, error) {
	if err := ValidName(queue); err != nil {
		return nil, err
	}
	if len(msgs) == 0 || len(msgs) > MaxBatch {
		return nil, invalidf("a send carries 1 to %d messages, got %d", MaxBatch, len(msgs))
	}
	now := b.clock.Now()
	q, err := b.st.GetQueue(ctx, &store.GetQueueParams{Name: queue, Now: now, ConfigOnly: true})
	switch {
	case errors.Is(err, store.ErrQueueNotFound):
		// Check against the settings auto-creation would give first, so a
		// refused send creates no queue.
		if _, err := b.checkMessages(msgs, tasks != nil, store.DefaultConfig(queue), now); err != nil {
			return nil, err
		}
		if q, err = b.queueFor(ctx, queue, now); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, wrap("get queue", err)
	}
	out, err := b.checkMessages(msgs, tasks != nil, q.Config, now)
	if err != nil {
		return nil, err
	}
	for i := range tasks {
		out[i].Task = tasks[i]
	}
	res, err := b.st.Send(ctx, &store.SendParams{Queue: queue, Messages: out, Now: now})
	return res, wrap("send", err)
}

// checkMessages checks msgs against cfg. An error in a batch names the
// message's index: tasks[i] when the requester sent tasks, else messages[i].
func (b *Broker) checkMessages(msgs []Message, tasks bool, cfg store.QueueConfig, now time.Time) ([]store.NewMessage, error) {
	label := "messages"
	if tasks {
		label = "tasks"
	}
	out := make([]store.NewMessage, len(msgs))
	for i := range msgs {
		nm, err := b.checkMessage(&msgs[i], cfg, now)
		if err != nil {
			if len(msgs) > 1 {
				return nil, fmt.Errorf("%s[%d]: %w", label, i, err)
			}
			return nil, err
		}
		out[i] = nm
	}
	return out, nil
}

// queueFor returns a queue, creating it when missing and allowed.
func (b *Broker) queueFor(ctx context.Context, queue string, now time.Time) (store.Queue, error) {
	q, err := b.st.GetQueue(ctx, &store.GetQueueParams{Name: queue, Now: now, ConfigOnly: true})
	if errors.Is(err, store.ErrQueueNotFound) {
		if err := b.ensureQueue(ctx, queue); err != nil {
			return store.Queue{}, err
		}
		q, err = b.st.GetQueue(ctx, &store.GetQueueParams{Name: queue, Now: now, ConfigOnly: true})
	}
	return q, wrap("get queue", err)
}

func (b *Broker) checkMessage(m *Message, cfg store.QueueConfig, now time.Time) (store.NewMessage, error) {
	size := len(m.Body)
	if m.Kind != store.BodyJSON && m.Kind != store.BodyBinary {
		return store.NewMessage{}, invalidf("message body kind is missing")
	}
	if len(m.Headers) > MaxHeaders {
		return store.NewMessage{}, invalidf("at most %d headers, got %d", MaxHeaders, len(m.Headers))
	}
	for k, v := range m.Headers {
		if k == "" || len(k) > MaxHeaderKeyLen || len(v) > MaxHeaderValueLen {
			return store.NewMessage{}, invalidf("header names are 1 to %d bytes and values at most %d", MaxHeaderKeyLen, MaxHeaderValueLen)
		}
		if !isText(k) || !isText(v) {
			return store.NewMessage{}, invalidf("header %q: names and values must be UTF-8 text without NUL", k)
		}
		size += len(k) + len(v)
	}
	if !isText(m.DedupKey) || !isText(m.Group) {
		return store.NewMessage{}, invalidf("dedup_key and group must be UTF-8 text without NUL")
	}
	if size > cfg.MaxMessageBytes {
		return store.NewMessage{}, &userError{kind: ErrTooLarge, msg: fmt.Sprintf("message is %d bytes (body and headers), the queue allows %d", size, cfg.MaxMessageBytes)}
	}
	if m.Priority < MinPriority || m.Priority > MaxPriority {
		return store.NewMessage{}, invalidf("priority must be %d to %d, got %d", MinPriority, MaxPriority, m.Priority)
	}
	if len(m.DedupKey) > MaxDedupKeyLen {
		return store.NewMessage{}, invalidf("dedup_key is at most %d bytes", MaxDedupKeyLen)
	}
	if len(m.Group) > MaxGroupLen {
		return store.NewMessage{}, invalidf("group is at most %d bytes", MaxGroupLen)
	}
	nb, err := notBefore(m, now)
	if err != nil {
		return store.NewMessage{}, err
	}
	if !nb.IsZero() && !nb.Before(now.Add(cfg.Retention)) {
		return store.NewMessage{}, invalidf("the message would come due at %s, after the queue's retention (%v) has dropped it",
			nb.Format(time.RFC3339), cfg.Retention)
	}
	return store.NewMessage{Body: m.Body, Kind: m.Kind, Headers: m.Headers, NotBefore: nb,
		Priority: m.Priority, DedupKey: m.DedupKey, Group: m.Group}, nil
}

func notBefore(m *Message, now time.Time) (time.Time, error) {
	switch {
	case m.Delay != 0 && !m.NotBefore.IsZero():
		return time.Time{}, invalidf("set delay or not_before, not both")
	case m.Delay < 0 || m.Delay > MaxDelay:
		return time.Time{}, invalidf("delay must be 0 to %v, got %v", MaxDelay, m.Delay)
	case m.Delay > 0:
		return now.Add(m.Delay), nil
	case m.NotBefore.IsZero():
		return time.Time{}, nil
	case m.NotBefore.After(now.Add(MaxDelay)):
		return time.Time{}, invalidf("not_before is more than %v ahead", MaxDelay)
	case !m.NotBefore.After(now):
		return time.Time{}, nil // in the past: ready at once
	}
	return m.NotBefore.UTC(), nil
}

// ReceiveOptions shape a receive. Zero values take the defaults.
type ReceiveOptions struct {
	Max        int           // 1..MaxReceive; 0 = 1
	Wait       time.Duration // 0..MaxWait; 0 = answer at once
	Visibility time.Duration // 0 = the queue's visibility timeout
	// Ack, if not nil, holds leases to acknowledge first, as AckResults
	// does (with AckResults as its results), in the same durable change as
	// the first lease: the acks of the messages a worker has finished ride
	// on its next receive.
	Ack        []string
	AckResults [][]byte
}

// Received is what a receive hands out, and the outcome of each of the
// acks it carried (ReceiveOptions.Ack), as AckResults reports them.
type Received struct {
	Messages []store.Message
	Acked    []error
	// Waited: the messages came after a wait (a long-poll that found the
	// queue empty at first), not from the receive's first lease.
	Waited bool
}

// Receive leases up to Max messages. With Wait it blocks until at least one
// is available or the wait ends, woken by the store's change notifications
// and by timers for delayed messages and expiring leases — never by polling,
// unless Options.PollEvery asks for a fallback.
func (b *Broker) Receive(ctx context.Context, queue string, o ReceiveOptions) ([]store.Message, error) {
	r, err := b.ReceiveAcking(ctx, queue, o)
	return r.Messages, err
}

// ReceiveAcking is Receive that also answers the outcome of the acks it
// carries. They are applied by the first lease, before any wait; a request
// refused as invalid applies none.
func (b *Broker) ReceiveAcking(ctx context.Context, queue string, o ReceiveOptions) (Received, error) {
	if err := b.checkReceive(queue, &o); err != nil {
		return Received{}, err
	}
	sd, canDefer := b.st.(store.SyncDeferrer)
	got, mark, err := b.receiveAcking(ctx, queue, o, canDefer && o.Ack != nil && o.Wait > 0)
	if len(got.Messages) > 0 {
		b.obs.Delivered(queue, b.clock.Now(), got.Messages)
	}
	if mark != 0 {
		// The acks were applied unsynced before the wait: the answer that
		// reports them waits until they are durable, even for a client that
		// has gone (the wait is a sync, under a millisecond).
		if serr := sd.WaitSynced(context.WithoutCancel(ctx), mark); serr != nil {
			return Received{}, wrap("receive", serr)
		}
	}
	return got, err
}

// receiveAcking is ReceiveAcking's lease and wait. With deferSync the
// first lease, if it hands out nothing, is applied unsynced: the mark it
// answers is for the caller to wait on.
func (b *Broker) receiveAcking(ctx context.Context, queue string, o ReceiveOptions, deferSync bool) (Received, uint64, error) {
	deadline := b.clock.Now().Add(o.Wait)
	var (
		acked []error
		mark  uint64
	)
	for waited := false; ; waited = true {
		watch := b.st.Watch(queue) // before leasing, so no wake-up falls between
		res, err := b.lease(ctx, queue, o, deferSync)
		if o.Ack != nil && err == nil {
			acked, o.Ack, o.AckResults = res.Acked, nil, nil // applied: the next lease carries none
			mark, deferSync = res.SyncMark, false
		}
		if err != nil || len(res.Messages) > 0 {
			return Received{Messages: res.Messages, Acked: acked, Waited: waited}, mark, err
		}
		now := b.clock.Now()
		if !now.Before(deadline) {
			return Received{Acked: acked}, mark, nil
		}
		wake := deadline
		if !res.NextDue.IsZero() && res.NextDue.Before(wake) {
			wake = res.NextDue
		}
		msgs, woke, err := b.wait(ctx, queue, o, watch, b.bounded(wake.Sub(now)))
		if err != nil || len(msgs) > 0 {
			return Received{Messages: msgs, Acked: acked, Waited: true}, mark, wrap("receive", err)
		}
		if !woke {
			return Received{Acked: acked}, mark, nil // the caller left or the server is stopping: nothing to hand out
		}
	}
}

// wait waits for the queue's next change, or d, as waitUntil does. When
// the store can hand messages to waiting receives (store.Handoff), the wait
// leaves a claim, and messages leased for it by the change that made them
// ready are answered at once.
func (b *Broker) wait(ctx context.Context, queue string, o ReceiveOptions, watch <-chan struct{}, d time.Duration) ([]store.Message, bool, error) {
	var c store.Claim
	if h, ok := b.st.(store.Handoff); ok {
		c = h.Claim(&store.LeaseParams{Queue: queue, Max: o.Max, MaxBytes: MaxReceiveBytes, Visibility: o.Visibility})
	}
	if c == nil {
		return nil, b.waitUntil(ctx, watch, nil, d), nil
	}
	woke := b.waitUntil(ctx, watch, c.Done(), d)
	msgs, err := c.Withdraw() // a claim taken meanwhile is answered even so
	return msgs, woke, err
}

// checkReceive validates a receive, setting the default Max.
func (b *Broker) checkReceive(queue string, o *ReceiveOptions) error {
	if err := ValidName(queue); err != nil {
		return err
	}
	if o.Max == 0 {
		o.Max = 1
	}
	if o.Max < 1 || o.Max > MaxReceive {
		return invalidf("max must be 1 to %d, got %d", MaxReceive, o.Max)
	}
	if err := durationIn("wait", o.Wait, 0, MaxWait); err != nil {
		return err
	}
	if o.Visibility != 0 {
		if err := durationIn("visibility", o.Visibility, MinVisibility, MaxVisibility); err != nil {
			return err
		}
	}
	if o.Ack == nil {
		return nil
	}
	return b.checkAck(o.Ack, o.AckResults)
}

func (b *Broker) lease(ctx context.Context, queue string, o ReceiveOptions, deferSync bool) (store.LeaseResult, error) {
	p := &store.LeaseParams{Queue: queue, Max: o.Max, MaxBytes: MaxReceiveBytes, Visibility: o.Visibility,
		Now: b.clock.Now(), Retry: b.retry, Acks: o.Ack, AckResults: o.AckResults, DeferSync: deferSync,
		NoReadWait: true}
	res, err := b.st.Lease(ctx, p)
	if errors.Is(err, store.ErrQueueNotFound) {
		if err := b.ensureQueue(ctx, queue); err != nil {
			return res, err
		}
		p.Now = b.clock.Now()
		res, err = b.st.Lease(ctx, p)
	}
	if err == nil && res.Due != (store.TickResult{}) {
		b.obs.DueWork(res.Due)
	}
	return res, wrap("receive", err)
}

// bounded is d, cut to the fallback poll interval if there is one.
func (b *Broker) bounded(d time.Duration) time.Duration {
	if b.poll > 0 && d > b.poll {
		return b.poll
	}
	return d
}

// waitUntil blocks until watch or claimed (nil: none) fires or d passes
// (true), or ctx ends (false).
func (b *Broker) waitUntil(ctx context.Context, watch, claimed <-chan struct{}, d time.Duration) bool {
	t := b.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-watch:
	case <-claimed:
	case <-t.C():
	case <-ctx.Done():
		return false
	}
	return true
}

// Ack acknowledges leases; the result has one error (or nil) per lease.
func (b *Broker) Ack(ctx context.Context, queue string, leases []string) ([]error, error) {
	return b.AckResults(ctx, queue, leases, nil)
}

// AckResults acknowledges leases and, for the messages of tasks, records
// their results: results is nil or holds one JSON result (or nil) per lease.
func (b *Broker) AckResults(ctx context.Context, queue string, leases []string, results [][]byte) ([]error, error) {
	if err := ValidName(queue); err != nil {
		return nil, err
	}
	if err := b.checkAck(leases, results); err != nil {
		return nil, err
	}
	res, err := b.st.Ack(ctx, &store.AckParams{Queue: queue, Leases: leases, Results: results, Now: b.clock.Now()})
	return res, wrap("ack", err)
}

// checkAck validates the leases of an ack and their results.
func (b *Broker) checkAck(leases []string, results [][]byte) error {
	if len(leases) == 0 || len(leases) > MaxBatch {
		return invalidf("an ack carries 1 to %d leases, got %d", MaxBatch, len(leases))
	}
	if results != nil && len(results) != len(leases) {
		return invalidf("an ack carries one result per lease: %d leases, %d results", len(leases), len(results))
	}
	for _, r := range results {
		if len(r) > b.maxResult {
			return &userError{kind: ErrTooLarge, msg: fmt.Sprintf("a result is %d bytes, the server allows %d", len(r), b.maxResult)}
		}
	}
	return nil
}

// Terminate dead-letters a message at once, whatever its attempts, with a
// reason; a task ends failed with that reason.
func (b *Broker) Terminate(ctx context.Context, queue, lease, reason string) error {
	if err := ValidName(queue); err != nil {
		return err
	}
	res, err := b.st.Nack(ctx, &store.NackParams{Queue: queue, Lease: lease, Error: cutText(reason, MaxErrorLen),
		Terminate: true, Now: b.clock.Now(), Retry: b.retry})
	if err == nil {
		b.obs.GaveBack(queue, outcomeOf(res, false))
	}
	return wrap("terminate", err)
}

// Nack gives a message back, after delay (nil: the queue's backoff), or
// dead-letters it when it has used its attempts.
func (b *Broker) Nack(ctx context.Context, queue, lease string, delay *time.Duration, reason string) (store.NackResult, error) {
	if err := checkGiveBack(queue, delay); err != nil {
		return store.NackResult{}, err
	}
	res, err := b.st.Nack(ctx, &store.NackParams{Queue: queue, Lease: lease, Delay: delay, Error: cutText(reason, MaxErrorLen),
		Now: b.clock.Now(), Retry: b.retry})
	if err == nil {
		b.obs.GaveBack(queue, outcomeOf(res, false))
	}
	return res, wrap("nack", err)
}

// Release hands a message back unprocessed: ready again after delay (nil:
// at once), its attempt not counted, never dead-lettered (a consumer that
// is stopping gives back what it took and did not start).
func (b *Broker) Release(ctx context.Context, queue, lease string, delay *time.Duration) (store.NackResult, error) {
	if err := checkGiveBack(queue, delay); err != nil {
		return store.NackResult{}, err
	}
	res, err := b.st.Nack(ctx, &store.NackParams{Queue: queue, Lease: lease, Delay: delay, Release: true,
		Now: b.clock.Now(), Retry: b.retry})
	if err == nil {
		b.obs.GaveBack(queue, outcomeOf(res, true))
	}
	return res, wrap("release", err)
}

// checkGiveBack checks the arguments Nack and Release share.
func checkGiveBack(queue string, delay *time.Duration) error {
	if err := ValidName(queue); err != nil {
		return err
	}
	if delay != nil {
		return durationIn("delay", *delay, 0, MaxDelay)
	}
	return nil
}

// Extend keeps a lease for visibility from now (0: the queue's timeout).
func (b *Broker) Extend(ctx context.Context, queue, lease string, visibility time.Duration) (time.Time, error) {
	if err := ValidName(queue); err != nil {
		return time.Time{}, err
	}
	if visibility != 0 {
		if err := durationIn("visibility", visibility, MinVisibility, MaxVisibility); err != nil {
			return time.Time{}, err
		}
	}
	t, err := b.st.Extend(ctx, &store.ExtendParams{Queue: queue, Lease: lease, Visibility: visibility, Now: b.clock.Now()})
	return t, wrap("extend", err)
}

// isText reports whether s is UTF-8 without NUL: what every backend can
// store as text (PostgreSQL's text rejects both NUL and invalid UTF-8).
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// cutText cuts s to at most n bytes, before the character that crosses the
// limit rather than inside it, so the text stays valid UTF-8.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
