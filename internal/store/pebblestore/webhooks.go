package pebblestore

import (
	"context"

	"github.com/cockroachdb/pebble/v2"

	"github.com/courierhq/courier/internal/store"
)

// maxWebhookAttempts bounds the attempts a task record keeps (the latest).
const maxWebhookAttempts = 20

// DueWebhooks lists finished tasks whose webhook delivery is due.
// Like every read, it answers once what it read is durable: a webhook posts
// a task's outcome to the world, which must not see one a crash could undo.
func (s *Store) DueWebhooks(ctx context.Context, p *store.DueWebhooksParams) ([]store.Task, error) {
	var mark uint64
	ts, err := s.dueWebhooks(p, &mark)
	if err := s.dur.wait(ctx, mark); err != nil {
		return nil, err
	}
	return ts, err
}

func (s *Store) dueWebhooks(p *store.DueWebhooksParams, mark *uint64) ([]store.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*mark = s.dur.mark()
	if err := s.usable(); err != nil {
		return nil, err
	}
	lo := s.hookCur
	if lo == nil {
		lo = []byte{tagHookDue}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: globalTimeUpTo(tagHookDue, p.Now)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	t := &txn{s: s, b: s.db.NewIndexedBatch(), now: p.Now}
	defer t.b.Close()
	var out []store.Task
	// Delivered webhooks leave tombstones behind: start the next scan at
	// the first live key (there is none below it), or past all that is due.
	if it.First() {
		s.hookCur = append([]byte(nil), it.Key()...)
	} else {
		s.hookCur = globalTimeUpTo(tagHookDue, p.Now)
	}
	for ok := it.First(); ok && len(out) < p.Max; ok = it.Next() {
		seq, err := keySeq(it.Key())
		if err != nil {
			return nil, err
		}
		r, found, err := t.getTask(seq)
		if err != nil {
			return nil, err
		}
		// A result nobody can read any more is not announced.
		if found && r.Webhook.Pending && r.ExpiresAt.After(p.Now) {
			out = append(out, r.task(seq))
		}
	}
	return out, it.Error()
}

// RecordWebhook records a delivery attempt and reschedules or ends delivery.
func (s *Store) RecordWebhook(ctx context.Context, p *store.RecordWebhookParams) (store.Task, error) {
	seq, err := parseID(p.ID)
	if err != nil {
		return store.Task{}, store.ErrTaskNotFound
	}
	var out store.Task
	err = s.update(p.Now, func(t *txn) error {
		r, ok, err := t.getTask(seq)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrTaskNotFound
		}
		if r.Webhook.Pending {
			t.b.Delete(globalTimeKey(tagHookDue, r.Webhook.NextAttemptAt, seq), nil)
		}
		h := &r.Webhook
		h.Attempts = append(h.Attempts, p.Attempt)
		if len(h.Attempts) > maxWebhookAttempts {
			h.Attempts = h.Attempts[len(h.Attempts)-maxWebhookAttempts:]
		}
		h.Delivered = h.Delivered || p.Delivered
		h.Pending = !h.Delivered && !p.NextAttemptAt.IsZero()
		h.NextAttemptAt = p.NextAttemptAt
		if h.Pending {
			k := globalTimeKey(tagHookDue, p.NextAttemptAt, seq)
			t.b.Set(k, nil, nil)
			t.lowerGlobal(&t.hookCur, k)
		}
		t.putTask(seq, r)
		out = r.task(seq)
		return nil
	})
	return out, err
}

// expireTasks deletes finished tasks whose result TTL has ended (and their
// pending webhooks: a result nobody can read any more is not announced).
func (t *txn) expireTasks(limit int) (int, error) {
	lo := t.s.taskTTLCur
	if lo == nil {
		lo = []byte{tagTaskTTL}
	}
	it, err := t.iter(lo, globalTimeUpTo(tagTaskTTL, t.now))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		k := append([]byte(nil), it.Key()...)
		seq, err := keySeq(k)
		if err != nil {
			return n, err
		}
		r, found, err := t.getTask(seq)
		if err != nil {
			return n, err
		}
		if found && r.Webhook.Pending {
			t.b.Delete(globalTimeKey(tagHookDue, r.Webhook.NextAttemptAt, seq), nil)
		}
		t.deleteTask(seq)
		t.b.Delete(k, nil)
		t.taskCur = globalCursor{key: k, set: true}
		t.wakeTasks = append(t.wakeTasks, seq)
		n++
	}
	return n, it.Error()
}
