package broker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// Limits of tasks.
const (
	DefaultResultTTL  = 24 * time.Hour
	MaxResultTTL      = 30 * 24 * time.Hour
	MaxNotifyURLLen   = 2048
	MaxNotifySecret   = 256
	DefaultMaxResult  = 1 << 20 // bytes of a task's result, unless Options say otherwise
	MaxTaskWait       = 60 * time.Second
	MaxProgressMsgLen = 1024
)

// TaskRequest is a task to submit: its message and what the requester asks.
type TaskRequest struct {
	Message      Message
	NotifyURL    string // webhook called when it finishes; "" = none
	NotifySecret string // HMAC-SHA256 key of the webhook's signature
	ReplyTo      string // queue that receives the outcome; "" = none
	ResultTTL    time.Duration
}

// Submit stores a task: its message in queue (created on first use unless
// disabled) and its record, atomically. A dedup hit returns the first task.
func (b *Broker) Submit(ctx context.Context, queue string, r TaskRequest) (store.Task, error) {
	ts, err := b.SubmitBatch(ctx, queue, []TaskRequest{r})
	if err != nil {
		return store.Task{}, err
	}
	return ts[0], nil
}

// SubmitBatch stores 1 to MaxBatch tasks in queue, all or none, and returns
// them in order. A task refused for its fields refuses the batch, and the
// error names its index.
func (b *Broker) SubmitBatch(ctx context.Context, queue string, rs []TaskRequest) ([]store.Task, error) {
	if len(rs) == 0 || len(rs) > MaxBatch {
		return nil, invalidf("a submit carries 1 to %d tasks, got %d", MaxBatch, len(rs))
	}
	msgs := make([]Message, len(rs))
	tasks := make([]*store.NewTask, len(rs))
	for i := range rs {
		r := &rs[i]
		if err := b.checkTask(r); err != nil {
			if len(rs) > 1 {
				return nil, fmt.Errorf("tasks[%d]: %w", i, err)
			}
			return nil, err
		}
		msgs[i] = r.Message
		tasks[i] = &store.NewTask{NotifyURL: r.NotifyURL, NotifySecret: r.NotifySecret,
			ReplyTo: r.ReplyTo, ResultTTL: r.ResultTTL}
	}
	res, err := b.send(ctx, queue, msgs, tasks)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(res))
	for i := range res {
		ids[i] = res[i].ID
	}
	// One read for the batch: a read each held the store's lock (or made a
	// round trip to PostgreSQL) a hundred times for a batch of a hundred.
	out, err := b.st.GetTasks(ctx, &store.GetTasksParams{IDs: ids, Now: b.clock.Now()})
	if err != nil {
		return nil, wrap("get tasks", err)
	}
	return out, nil
}

func (b *Broker) checkTask(r *TaskRequest) error {
	if r.ResultTTL == 0 {
		r.ResultTTL = DefaultResultTTL
	}
	if err := durationIn("result_ttl", r.ResultTTL, time.Second, MaxResultTTL); err != nil {
		return err
	}
	if r.ReplyTo != "" {
		if err := ValidName(r.ReplyTo); err != nil {
			return invalidf("reply_to: %v", err)
		}
	}
	if len(r.NotifySecret) > MaxNotifySecret {
		return invalidf("notify.secret is at most %d bytes", MaxNotifySecret)
	}
	if r.NotifyURL == "" {
		if r.NotifySecret != "" {
			return invalidf("notify.secret needs notify.url")
		}
		return nil
	}
	if len(r.NotifyURL) > MaxNotifyURLLen {
		return invalidf("notify.url is at most %d bytes", MaxNotifyURLLen)
	}
	u, err := url.Parse(r.NotifyURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return invalidf("notify.url must be an http:// or https:// URL without credentials")
	}
	if b.checkURL != nil {
		if err := b.checkURL(u); err != nil {
			return invalidf("notify.url: %v", err)
		}
	}
	return nil
}

// GetTask returns a task. With wait > 0 it holds the answer until the task
// has finished or the wait ends, woken by the task's changes.
func (b *Broker) GetTask(ctx context.Context, id string, wait time.Duration) (store.Task, error) {
	if err := durationIn("wait", wait, 0, MaxTaskWait); err != nil {
		return store.Task{}, err
	}
	deadline := b.clock.Now().Add(wait)
	for {
		watch := b.st.WatchTask(id) // before reading, so no change falls between
		t, err := b.st.GetTask(ctx, &store.GetTaskParams{ID: id, Now: b.clock.Now()})
		if err != nil || t.State.Finished() {
			return t, wrap("get task", err)
		}
		now := b.clock.Now()
		if !now.Before(deadline) || !b.waitUntil(ctx, watch, nil, b.bounded(deadline.Sub(now))) {
			return t, nil
		}
	}
}

// NextTaskChange returns the task once its Version is past after, waiting
// for a change (or ctx) if it is not: the feed of a task's event stream.
func (b *Broker) NextTaskChange(ctx context.Context, id string, after uint64) (store.Task, error) {
	for {
		watch := b.st.WatchTask(id)
		t, err := b.st.GetTask(ctx, &store.GetTaskParams{ID: id, Now: b.clock.Now()})
		if err != nil || t.Version > after {
			return t, wrap("get task", err)
		}
		var poll <-chan time.Time
		if b.poll > 0 {
			timer := b.clock.NewTimer(b.poll)
			defer timer.Stop()
			poll = timer.C()
		}
		select {
		case <-watch:
		case <-poll:
		case <-ctx.Done():
			return store.Task{}, ctx.Err()
		}
	}
}

// CancelTask cancels a task (see store.Store.CancelTask).
func (b *Broker) CancelTask(ctx context.Context, id string) (store.Task, error) {
	t, err := b.st.CancelTask(ctx, &store.CancelTaskParams{ID: id, Now: b.clock.Now()})
	return t, wrap("cancel task", err)
}

// Progress records a running task's progress (0..1) and extends its lease
// (visibility 0: the queue's timeout). store.ErrTaskCancelled tells the
// worker the task was cancelled and is now ended.
func (b *Broker) Progress(ctx context.Context, id, lease string, progress float64, msg string, visibility time.Duration) (store.Task, error) {
	if !(progress >= 0 && progress <= 1) {
		return store.Task{}, invalidf("progress must be 0 to 1, got %v", progress)
	}
	if len(msg) > MaxProgressMsgLen || !isText(msg) {
		return store.Task{}, invalidf("message is UTF-8 text of at most %d bytes", MaxProgressMsgLen)
	}
	if visibility != 0 {
		if err := durationIn("visibility", visibility, MinVisibility, MaxVisibility); err != nil {
			return store.Task{}, err
		}
	}
	t, err := b.st.Progress(ctx, &store.ProgressParams{ID: id, Lease: lease, Progress: progress, Message: msg,
		Visibility: visibility, Now: b.clock.Now()})
	return t, wrap("progress", err)
}

// WatchWebhooks returns a channel closed when a webhook may have become
// due, or nil when the store cannot tell (then polling alone finds them).
func (b *Broker) WatchWebhooks() <-chan struct{} {
	if w, ok := b.st.(store.WebhookWatcher); ok {
		return w.WatchWebhooks()
	}
	return nil
}

// DueWebhooks lists finished tasks whose webhook is due now.
func (b *Broker) DueWebhooks(ctx context.Context, max int) ([]store.Task, error) {
	ts, err := b.st.DueWebhooks(ctx, &store.DueWebhooksParams{Now: b.clock.Now(), Max: max})
	return ts, wrap("due webhooks", err)
}

// RecordWebhook records a delivery attempt (see store.Store.RecordWebhook).
func (b *Broker) RecordWebhook(ctx context.Context, id string, a store.WebhookAttempt, delivered bool, next time.Time) error {
	_, err := b.st.RecordWebhook(ctx, &store.RecordWebhookParams{ID: id, Attempt: a, Delivered: delivered,
		NextAttemptAt: next, Now: b.clock.Now()})
	if errors.Is(err, store.ErrTaskNotFound) {
		return nil // expired meanwhile: nothing left to deliver
	}
	return wrap("record webhook", err)
}
