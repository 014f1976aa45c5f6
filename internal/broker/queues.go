package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// QueueSettings is a partial queue configuration: nil fields keep the current
// value (or the default, for a new queue). Durations are already parsed.
type QueueSettings struct {
	VisibilityTimeout *time.Duration
	MaxAttempts       *int
	Backoff           *BackoffSettings
	DeadLetterQueue   *string
	Retention         *time.Duration
	MaxMessageBytes   *int
	DedupWindow       *time.Duration
}

// BackoffSettings is a partial backoff; nil fields keep the current value.
type BackoffSettings struct {
	Initial    *time.Duration
	Max        *time.Duration
	Multiplier *float64
	Jitter     *float64
}

// ValidName reports whether name is a valid queue name: 1–80 characters of
// A-Z a-z 0-9 _ - . (the error says what is wrong).
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return invalidf("queue name must be 1 to %d characters, got %d", MaxNameLen, len(name))
	}
	if strings.Trim(name, ".") == "" { // "." and ".." cannot stand in a URL path
		return invalidf("queue name %q is only dots", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return invalidf("queue name %q has a character outside A-Z a-z 0-9 _ - .", name)
		}
	}
	return nil
}

// PutQueue creates a queue, or updates the settings of an existing one.
func (b *Broker) PutQueue(ctx context.Context, name string, s QueueSettings) (store.Queue, error) {
	if err := ValidName(name); err != nil {
		return store.Queue{}, err
	}
	now := b.clock.Now()
	q, err := b.st.GetQueue(ctx, &store.GetQueueParams{Name: name, Now: now})
	switch {
	case errors.Is(err, store.ErrQueueNotFound):
		cfg, err := applySettings(name, store.DefaultConfig(name), s)
		if err != nil {
			return store.Queue{}, err
		}
		q, err = b.st.CreateQueue(ctx, &store.CreateQueueParams{Name: name, Config: cfg, Now: now})
		if errors.Is(err, store.ErrQueueExists) { // lost a race with another creator: update instead
			return b.PutQueue(ctx, name, s)
		}
		return q, wrap("create queue", err)
	case err != nil:
		return store.Queue{}, wrap("get queue", err)
	}
	cfg, err := applySettings(name, q.Config, s)
	if err != nil {
		return store.Queue{}, err
	}
	q, err = b.st.UpdateQueue(ctx, &store.UpdateQueueParams{Name: name, Config: cfg, Now: now})
	return q, wrap("update queue", err)
}

// GetQueue returns a queue with its stats.
func (b *Broker) GetQueue(ctx context.Context, name string) (store.Queue, error) {
	if err := ValidName(name); err != nil {
		return store.Queue{}, err
	}
	q, err := b.st.GetQueue(ctx, &store.GetQueueParams{Name: name, Now: b.clock.Now()})
	return q, wrap("get queue", err)
}

// ListQueues returns every queue, by name.
func (b *Broker) ListQueues(ctx context.Context) ([]store.Queue, error) {
	qs, err := b.st.ListQueues(ctx, &store.ListQueuesParams{Now: b.clock.Now()})
	return qs, wrap("list queues", err)
}

// DeleteQueue deletes a queue and its messages.
func (b *Broker) DeleteQueue(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	err := b.st.DeleteQueue(ctx, &store.DeleteQueueParams{Name: name, Now: b.clock.Now()})
	if err == nil {
		b.obs.QueueDeleted(name)
	}
	return wrap("delete queue", err)
}

// PurgeQueue drops the ready and delayed messages of a queue.
func (b *Broker) PurgeQueue(ctx context.Context, name string) (int, error) {
	if err := ValidName(name); err != nil {
		return 0, err
	}
	n, err := b.st.PurgeQueue(ctx, &store.PurgeQueueParams{Name: name, Now: b.clock.Now()})
	return n, wrap("purge queue", err)
}

// SetPaused pauses or resumes a queue.
func (b *Broker) SetPaused(ctx context.Context, name string, paused bool) (store.Queue, error) {
	if err := ValidName(name); err != nil {
		return store.Queue{}, err
	}
	q, err := b.st.SetPaused(ctx, &store.SetPausedParams{Name: name, Paused: paused, Now: b.clock.Now()})
	return q, wrap("set paused", err)
}

// Redrive moves up to max dead letters of a queue back into it.
func (b *Broker) Redrive(ctx context.Context, name string, max int) (int, error) {
	if err := ValidName(name); err != nil {
		return 0, err
	}
	if max == 0 {
		max = MaxBatch
	}
	if max < 1 || max > 100*MaxBatch {
		return 0, invalidf("max must be 1 to %d, got %d", 100*MaxBatch, max)
	}
	n, err := b.st.Redrive(ctx, &store.RedriveParams{Queue: name, Max: max, Now: b.clock.Now()})
	return n, wrap("redrive", err)
}

// ensureQueue creates a missing queue with defaults unless auto-creation is off.
func (b *Broker) ensureQueue(ctx context.Context, name string) error {
	if b.noAuto {
		return fmt.Errorf("%w: queue %q does not exist", store.ErrQueueNotFound, name)
	}
	_, err := b.PutQueue(ctx, name, QueueSettings{})
	return err
}

// wrap names the operation on an error, keeping nil nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
