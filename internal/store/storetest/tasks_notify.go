package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// dueMax returns the ids of up to max webhooks due at at.
func (e *env) dueMax(at time.Time, max int) []string {
	e.t.Helper()
	due, err := e.s.DueWebhooks(e.ctx, &store.DueWebhooksParams{Now: at, Max: max})
	if err != nil {
		e.t.Fatalf("DueWebhooks: %v", err)
	}
	if len(due) > max {
		e.t.Errorf("DueWebhooks(Max %d) returned %d tasks", max, len(due))
	}
	out := make([]string, len(due))
	for i, tk := range due {
		out[i] = tk.ID
	}
	return out
}

func (e *env) wantDue(what string, at time.Time, want ...string) {
	e.t.Helper()
	if got := e.dueAt(at); !slices.Equal(got, want) {
		e.t.Errorf("%s: webhooks due at %v: %v, want %v", what, at.Sub(base), got, want)
	}
}

// recordWebhook records attempt a of task id's webhook as of now.
func (e *env) recordWebhook(id string, a store.WebhookAttempt, delivered bool, next time.Time) store.Task {
	e.t.Helper()
	tk, err := e.s.RecordWebhook(e.ctx, &store.RecordWebhookParams{ID: id, Attempt: a, Delivered: delivered,
		NextAttemptAt: next, Now: e.now})
	if err != nil {
		e.t.Fatalf("RecordWebhook(%s): %v", id, err)
	}
	return tk
}

// ackedTask sends a task asking req and acks it at once; returns its id.
func (e *env) ackedTask(req store.NewTask) string {
	e.t.Helper()
	id := e.sendTask("q", req)
	e.ackOK("q", e.leaseOne("q", id).Lease)
	return id
}

func testTaskWebhooks(t *testing.T, newStore newStoreFunc) {
	t.Run("DueWhenFinished", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		hook, noHook := taskReq(), store.NewTask{ReplyTo: "replies", ResultTTL: taskTTL}
		ids := e.send("q", tmsg("done", hook), tmsg("running", hook), tmsg("no hook", noHook), tmsg("queued", hook))
		ms := e.lease("q", 3)
		e.wantDue("nothing finished", base.Add(30*time.Minute))
		e.set(base.Add(10 * time.Second))
		e.ackOK("q", ms[0].Lease, ms[2].Lease)
		if h := e.task(ids[2]).Webhook; h.Pending || h.Delivered || len(h.Attempts) != 0 || !h.NextAttemptAt.IsZero() {
			t.Errorf("webhook of a task without one: %+v, want none", h)
		}
		e.wantDue("just before the finish", base.Add(10*time.Second-time.Millisecond))
		e.wantDue("at the finish", base.Add(10*time.Second), ids[0])
		// Choice: listing claims nothing: a webhook is due until recorded.
		e.wantDue("listed again", base.Add(10*time.Second), ids[0])
		e.wantDue("later", base.Add(30*time.Minute), ids[0])
		due, err := e.s.DueWebhooks(e.ctx, &store.DueWebhooksParams{Now: e.now, Max: 10})
		if err != nil || len(due) != 1 {
			t.Fatalf("DueWebhooks: %v, %v", due, err)
		}
		tk := e.task(ids[0])
		wantTask(t, "the due task", due[0], tk)
		if due[0].Version != tk.Version {
			t.Errorf("due task version %d, GetTask's %d", due[0].Version, tk.Version)
		}
	})

	t.Run("MaxAndOrder", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", tmsg("a", taskReq()), tmsg("b", taskReq()), tmsg("c", taskReq()))
		a, b, c := ids[0], ids[1], ids[2]
		ms := e.lease("q", 3)
		for _, i := range []int{1, 2, 0} { // b at +1s, c at +2s, a at +3s
			e.advance(time.Second)
			e.ackOK("q", ms[i].Lease)
		}
		at := base.Add(3 * time.Second)
		if got := e.dueMax(at, 2); !slices.Equal(got, []string{b, c}) {
			t.Errorf("DueWebhooks(Max 2) = %v, want [%s %s], the oldest due", got, b, c)
		}
		if got := e.dueMax(at, 1); !slices.Equal(got, []string{b}) {
			t.Errorf("DueWebhooks(Max 1) = %v, want [%s]", got, b)
		}
		e.wantDue("all", at, b, c, a)
		e.recordWebhook(b, store.WebhookAttempt{At: at, Status: 503}, false, base.Add(4*time.Second))
		e.wantDue("b rescheduled", at, c, a)
		e.wantDue("b due again", base.Add(4*time.Second), c, a, b)
		e.recordWebhook(c, store.WebhookAttempt{At: at, Status: 502}, false, base.Add(5*time.Second))
		e.wantDue("c rescheduled", base.Add(10*time.Second), a, b, c)
	})

	t.Run("Retries", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.ackedTask(taskReq())
		tk := e.task(id)
		e.advance(time.Second)
		w := e.s.WatchTask(id)
		a1 := store.WebhookAttempt{At: e.now, Status: 500, Error: "HTTP 500"}
		next := e.now.Add(time.Minute)
		got := e.recordWebhook(id, a1, false, next)
		want := tk
		want.UpdatedAt = e.now
		want.Webhook = store.WebhookStatus{Pending: true, NextAttemptAt: next, Attempts: []store.WebhookAttempt{a1}}
		wantTask(t, "first attempt recorded", got, want)
		if got.Version <= tk.Version {
			t.Errorf("version %d after RecordWebhook, want more than %d", got.Version, tk.Version)
		}
		if !Closed(w) {
			t.Error("WatchTask not closed by RecordWebhook")
		}
		e.unchanged("GetTask after RecordWebhook", got)
		e.wantDue("before the next attempt", next.Add(-time.Millisecond))
		e.wantDue("at the next attempt", next, id)

		e.set(next)
		a2 := store.WebhookAttempt{At: e.now, Error: "dial tcp: connection refused"}
		next = e.now.Add(2 * time.Minute)
		got = e.recordWebhook(id, a2, false, next)
		want.UpdatedAt = e.now
		want.Webhook = store.WebhookStatus{Pending: true, NextAttemptAt: next, Attempts: []store.WebhookAttempt{a1, a2}}
		wantTask(t, "second attempt recorded", got, want)
		e.wantDue("before the third attempt", next.Add(-time.Millisecond))

		e.set(next)
		a3 := store.WebhookAttempt{At: e.now, Status: 204}
		got = e.recordWebhook(id, a3, true, time.Time{})
		want.UpdatedAt = e.now
		want.Webhook = store.WebhookStatus{Delivered: true, Attempts: []store.WebhookAttempt{a1, a2, a3}}
		wantTask(t, "delivered", got, want)
		e.unchanged("GetTask after delivery", got)
		for _, at := range []time.Duration{3 * time.Minute, 30 * time.Minute, 59 * time.Minute} {
			e.wantDue("delivered", base.Add(at))
		}
	})

	t.Run("GiveUp", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.ackedTask(taskReq())
		e.advance(time.Second)
		got := e.recordWebhook(id, store.WebhookAttempt{At: e.now, Status: 410}, false, time.Time{})
		// Choice: NextAttemptAt is zero when no attempt is pending.
		wantWebhook(t, "given up", got.Webhook, store.WebhookStatus{Attempts: []store.WebhookAttempt{{At: e.now, Status: 410}}})
		e.wantDue("given up", base.Add(time.Second))
		e.wantDue("given up, later", base.Add(59*time.Minute))
	})

	t.Run("DeliveredWins", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.ackedTask(taskReq())
		// Choice: a delivered webhook is done, whatever NextAttemptAt says.
		got := e.recordWebhook(id, store.WebhookAttempt{At: e.now, Status: 200}, true, base.Add(time.Minute))
		if h := got.Webhook; h.Pending || !h.Delivered {
			t.Errorf("webhook %+v, want delivered and not pending", h)
		}
		e.wantDue("delivered", base.Add(time.Minute))
	})

	t.Run("NotAfterResultTTL", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.ackedTask(taskReq())
		e.wantDue("before the result TTL", base.Add(taskTTL-time.Millisecond), id)
		// Choice: a result nobody can read any more is not announced, with
		// or without a Tick.
		e.wantDue("at the end of the result TTL", base.Add(taskTTL))
		e.set(base.Add(taskTTL))
		e.tick()
		e.wantDue("after the Tick, at an earlier Now", base.Add(time.Minute))
	})
}

func testTaskReplyTo(t *testing.T, newStore newStoreFunc) {
	t.Run("IntoExistingQueue", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		rcfg := config()
		rcfg.VisibilityTimeout = 3 * time.Second
		e.createQueue("replies", rcfg)
		e.createQueue("q", config())
		e.advance(time.Second)
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		e.advance(time.Second)
		e.ackResults("q", []string{m.Lease}, [][]byte{[]byte(`[1,"two"]`)})
		wantQueue(t, "reply queue", e.getQueue("replies"), store.Queue{Name: "replies", Config: rcfg, CreatedAt: base})
		// Choice: an outcome counts as sent to its queue, like any message.
		wantStats(t, "reply queue", e.stats("replies"), store.Stats{Ready: 1, SentTotal: 1, OldestReady: e.now})
		e.wantReply("replies", e.task(id))
	})

	t.Run("OnlyTheOutcome", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.VisibilityTimeout = 10 * time.Second
		e.createQueue("q", cfg)
		id := e.sendTask("q", taskReq())
		e.nackOK("q", e.leaseOne("q", id).Lease, ptr(0), "retry me")
		m := e.leaseOne("q", id)
		if _, err := e.progress(id, m.Lease, 0.5, "", 0); err != nil {
			t.Fatalf("Progress: %v", err)
		}
		e.set(base.Add(10 * time.Second))
		e.tick() // expired, retried
		if names := e.queueNames(); !slices.Equal(names, []string{"q"}) {
			t.Errorf("queues %v before the task finished, want only q: no outcome yet", names)
		}
		e.set(base.Add(15 * time.Second))
		e.ackOK("q", e.leaseOne("q", id).Lease)
		e.wantReply("replies", e.task(id))
		e.leaseNone("replies")
	})

	t.Run("None", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.ackedTask(store.NewTask{NotifyURL: "https://hooks.example.test/x", ResultTTL: taskTTL})
		e.ackedTask(store.NewTask{ResultTTL: taskTTL})
		if names := e.queueNames(); !slices.Equal(names, []string{"q"}) {
			t.Errorf("queues %v, want only q: no task asked for a reply", names)
		}
	})
}
