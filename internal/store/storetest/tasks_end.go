package storetest

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// endConfig: 10s visibility, 2 attempts, a 5s backoff, dead letters to
// q.dead, a retention of one hour.
func endConfig() store.QueueConfig {
	cfg := config()
	cfg.VisibilityTimeout = 10 * time.Second
	cfg.MaxAttempts = 2
	cfg.DeadLetterQueue = "q.dead"
	cfg.Retention = time.Hour
	return cfg
}

// taskEnd is one way a task ends.
type taskEnd struct {
	name string
	// prep brings the task, sent at base, to just before its end, and
	// returns the lease its worker holds, if any.
	prep func(e *env, id string) string
	end  func(e *env, id, lease string)

	state     store.TaskState
	reason    string // the task's Error, exactly, unless anyReason
	anyReason bool   // Error is set, in the store's words
	result    []byte
	// dead is the dead letter's courier-dead-reason, "" if none is made;
	// deadAttempts its courier-attempts.
	dead, deadAttempts string
	late               bool // noticed after the fact: FinishedAt is not pinned to the Now of end
	gone               bool // the queue is deleted
}

// taskEnds are the ways a task ends, each through its message's fate.
func taskEnds() []taskEnd {
	leased := func(e *env, id string) string { return e.leaseOne("q", id).Lease }
	lastAttempt := func(e *env, id string) string {
		e.nackOK("q", e.leaseOne("q", id).Lease, ptr(0), "first")
		return e.leaseOne("q", id).Lease
	}
	lastByExpiry := func(e *env, id string) string { // the second lease ends at +25s
		e.leaseOne("q", id)
		e.set(base.Add(10 * time.Second))
		e.leaseNone("q")
		e.set(base.Add(15 * time.Second))
		return e.leaseOne("q", id).Lease
	}
	cancelRequested := func(e *env, id string) string {
		l := e.leaseOne("q", id).Lease
		if tk, err := e.cancelTask(id); err != nil || tk.State != store.TaskRunning || !tk.CancelRequested {
			e.t.Fatalf("CancelTask of a running task: %+v, %v; want running with CancelRequested", tk, err)
		}
		return l
	}
	queued := func(*env, string) string { return "" }
	ackWith := func(e *env, _, lease string) {
		e.ackResults("q", []string{lease}, [][]byte{[]byte(`{"width":640}`)})
	}
	expiryByTick := func(at time.Duration) func(e *env, _, _ string) {
		return func(e *env, _, _ string) { e.set(base.Add(at)); e.tick() }
	}
	expiryByLease := func(at time.Duration) func(e *env, _, _ string) {
		return func(e *env, _, _ string) { e.set(base.Add(at)); e.leaseNone("q") }
	}
	cancelled := func(e *env, id, _ string) {
		if _, err := e.cancelTask(id); err != nil {
			e.t.Fatalf("CancelTask: %v", err)
		}
	}
	return []taskEnd{
		{name: "Ack", prep: leased, end: ackWith, state: store.TaskSucceeded, result: []byte(`{"width":640}`)},
		{name: "AckWithoutResult", prep: leased, state: store.TaskSucceeded,
			end: func(e *env, _, lease string) { e.ackOK("q", lease) }},
		{name: "NackOfLastAttempt", prep: lastAttempt, state: store.TaskFailed, reason: "second",
			dead: store.DeadMaxAttempts, deadAttempts: "2",
			end: func(e *env, _, lease string) {
				if r := e.nackOK("q", lease, nil, "second"); !r.DeadLettered {
					e.t.Errorf("NackResult %+v, want DeadLettered", r)
				}
			}},
		{name: "ExpiryOfLastAttemptByTick", prep: lastByExpiry, end: expiryByTick(25 * time.Second),
			state: store.TaskFailed, anyReason: true, dead: store.DeadMaxAttempts, deadAttempts: "2"},
		{name: "ExpiryOfLastAttemptByLease", prep: lastByExpiry, end: expiryByLease(25 * time.Second),
			state: store.TaskFailed, anyReason: true, dead: store.DeadMaxAttempts, deadAttempts: "2"},
		{name: "Terminate", prep: leased, state: store.TaskFailed, reason: "bad input: no image",
			dead: store.DeadTerminated, deadAttempts: "1",
			end: func(e *env, _, lease string) {
				if r, err := e.terminate("q", lease, "bad input: no image"); err != nil || !r.DeadLettered {
					e.t.Errorf("Terminate: %+v, %v; want DeadLettered", r, err)
				}
			}},
		{name: "CancelQueued", prep: queued, end: cancelled, state: store.TaskCancelled, anyReason: true},
		{name: "CancelRunningThenExtend", prep: cancelRequested, state: store.TaskCancelled, anyReason: true,
			end: func(e *env, _, lease string) {
				_, err := e.extend("q", lease, 0)
				wantErr(e.t, "Extend of a cancelled task", err, store.ErrTaskCancelled)
			}},
		{name: "CancelRunningThenProgress", prep: cancelRequested, state: store.TaskCancelled, anyReason: true,
			end: func(e *env, id, lease string) {
				_, err := e.progress(id, lease, 0.5, "half", 0)
				wantErr(e.t, "Progress of a cancelled task", err, store.ErrTaskCancelled)
			}},
		// Choice: cancelling a running task is cooperative: a worker that
		// completes it first has done the work, and the task succeeds.
		{name: "CancelRunningThenAck", prep: cancelRequested, end: ackWith, state: store.TaskSucceeded,
			result: []byte(`{"width":640}`)},
		// Choice: a task whose cancel was requested is never retried: when
		// its attempt fails (nack or expiry) it ends cancelled.
		{name: "CancelRunningThenNack", prep: cancelRequested, state: store.TaskCancelled, anyReason: true,
			end: func(e *env, _, lease string) {
				_, err := e.nack("q", lease, ptr(0), "gave up")
				if err != nil {
					wantErr(e.t, "Nack of a cancelled task", err, store.ErrTaskCancelled)
				}
			}},
		{name: "CancelRunningThenExpiry", prep: cancelRequested, end: expiryByTick(10 * time.Second),
			state: store.TaskCancelled, anyReason: true},
		{name: "Purge", prep: queued, state: store.TaskCancelled, anyReason: true,
			end: func(e *env, _, _ string) {
				if n, err := e.s.PurgeQueue(e.ctx, &store.PurgeQueueParams{Name: "q", Now: e.now}); err != nil || n != 1 {
					e.t.Fatalf("PurgeQueue = %d, %v; want 1", n, err)
				}
			}},
		{name: "DeleteQueued", prep: queued, state: store.TaskCancelled, anyReason: true, gone: true,
			end: func(e *env, _, _ string) { e.deleteQueue("q") }},
		{name: "DeleteRunning", prep: leased, state: store.TaskCancelled, anyReason: true, gone: true,
			end: func(e *env, _, _ string) { e.deleteQueue("q") }},
		{name: "RetentionByTick", prep: queued, end: expiryByTick(time.Hour + time.Millisecond),
			state: store.TaskFailed, anyReason: true, late: true},
		{name: "RetentionByLease", prep: queued, end: expiryByLease(time.Hour + time.Millisecond),
			state: store.TaskFailed, anyReason: true, late: true},
	}
}

func (e *env) deleteQueue(name string) {
	e.t.Helper()
	if err := e.s.DeleteQueue(e.ctx, &store.DeleteQueueParams{Name: name, Now: e.now}); err != nil {
		e.t.Fatalf("DeleteQueue(%q): %v", name, err)
	}
}

// dueAt returns the ids of the webhooks due at at (Max 100).
func (e *env) dueAt(at time.Time) []string {
	e.t.Helper()
	due, err := e.s.DueWebhooks(e.ctx, &store.DueWebhooksParams{Now: at, Max: 100})
	if err != nil {
		e.t.Fatalf("DueWebhooks: %v", err)
	}
	out := make([]string, len(due))
	for i, tk := range due {
		out[i] = tk.ID
	}
	return out
}

// outcome is the body of the message a finished task sends to reply_to.
type outcome struct {
	ID     string          `json:"id"`
	State  store.TaskState `json:"state"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// wantReply leases the one message waiting in queue, checks that it is the
// outcome of tk, and acks it.
func (e *env) wantReply(queue string, tk store.Task) {
	e.t.Helper()
	ms := e.lease(queue, 10)
	if len(ms) != 1 {
		e.t.Errorf("%d messages in %s, want the one outcome of %s", len(ms), queue, tk.ID)
		return
	}
	m := ms[0]
	defer e.ackOK(queue, m.Lease)
	if m.Kind != store.BodyJSON {
		e.t.Errorf("outcome of kind %d, want JSON", m.Kind)
	}
	if m.Headers[store.HeaderTaskID] != tk.ID || m.Headers[store.HeaderTaskState] != string(tk.State) {
		e.t.Errorf("outcome headers %v, want %s %s and %s %s", m.Headers, store.HeaderTaskID, tk.ID, store.HeaderTaskState, tk.State)
	}
	// Choice: the outcome is sent when the task finishes.
	wantTime(e.t, "outcome SentAt", m.SentAt, tk.FinishedAt)
	var o outcome
	if err := json.Unmarshal(m.Body, &o); err != nil {
		e.t.Errorf("outcome body %q: %v", m.Body, err)
		return
	}
	// Choice: the outcome's error is the task's Error, absent on success.
	if o.ID != tk.ID || o.State != tk.State || o.Error != tk.Error {
		e.t.Errorf("outcome %s, want id %s, state %s, error %q", m.Body, tk.ID, tk.State, tk.Error)
	}
	if !sameJSON(o.Result, tk.Result) {
		e.t.Errorf("outcome result %s, want %s", o.Result, tk.Result)
	}
}

// sameJSON reports whether two JSON texts hold the same value; an empty
// text is null.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if len(a) > 0 && json.Unmarshal(a, &va) != nil {
		return false
	}
	if len(b) > 0 && json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func testTaskEnds(t *testing.T, newStore newStoreFunc) {
	for _, tc := range taskEnds() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, newStore)
			e.createQueue("q", endConfig())
			req := taskReq()
			id := e.sendTask("q", req)
			lease := tc.prep(e, id)
			e.advance(time.Second)
			before := e.task(id)
			w := e.s.WatchTask(id)
			tc.end(e, id, lease)

			tk := e.task(id)
			if tk.Version <= before.Version {
				t.Errorf("version %d after the end, want more than %d", tk.Version, before.Version)
			}
			if !Closed(w) {
				t.Error("WatchTask not closed when the task ended")
			}
			if tc.anyReason {
				if tk.Error == "" {
					t.Errorf("%s task with no Error, want the reason", tk.State)
				}
				tc.reason = tk.Error
			}
			want := before
			want.Attempt = tk.Attempt // checked by other tests
			want.Progress, want.ProgressMessage = tk.Progress, tk.ProgressMessage
			finishedAt := e.now
			if tc.late {
				if tk.FinishedAt.Before(base.Add(time.Hour-time.Millisecond)) || tk.FinishedAt.After(e.now) {
					t.Errorf("FinishedAt %v, want between the end of retention and the Now that noticed it", tk.FinishedAt)
				}
				finishedAt = tk.FinishedAt
			}
			want = finished(want, finishedAt, tc.state, tc.result, tc.reason)
			wantTask(t, "ended", tk, want)

			// reply_to: the outcome. Choice: a missing reply_to queue is
			// created with DefaultConfig, as a dead-letter queue is.
			wantQueue(t, "reply queue", e.getQueue("replies"),
				store.Queue{Name: "replies", Config: store.DefaultConfig("replies"), CreatedAt: finishedAt})
			e.wantReply("replies", tk)

			// The webhook is due from FinishedAt on.
			if due := e.dueAt(tk.FinishedAt.Add(-time.Millisecond)); len(due) != 0 {
				t.Errorf("webhooks due before the task finished: %v", due)
			}
			if due := e.dueAt(tk.FinishedAt); !slices.Equal(due, []string{id}) {
				t.Errorf("webhooks due when the task finished: %v, want [%s]", due, id)
			}

			// The message is gone (or dead-lettered): nothing comes back.
			if !tc.gone {
				s := e.stats("q")
				if s.Ready+s.Delayed+s.InFlight != 0 {
					t.Errorf("stats of q after the end %+v, want no message left", s)
				}
				e.advance(time.Minute)
				e.leaseNone("q")
			}
			if tc.dead == "" {
				if slices.Contains(e.queueNames(), "q.dead") {
					t.Error("a dead-letter queue was created, want no dead letter")
				}
			} else {
				d := e.leaseOne("q.dead", id)
				wantDead(t, d, nil, "q", tc.deadAttempts, &tk.Error)
				if got := d.Headers[store.HeaderDeadReason]; got != tc.dead {
					t.Errorf("dead letter %s = %q, want %q", store.HeaderDeadReason, got, tc.dead)
				}
				// The dead letter is a plain message: acking it, even with
				// a result, does not touch the task.
				e.ackResults("q.dead", []string{d.Lease}, [][]byte{[]byte(`"late"`)})
			}
			// Choice: a finished task never changes (but for its webhook's
			// bookkeeping), whatever becomes of its message's copies.
			e.tick()
			e.unchanged("finished, later", tk)
		})
	}
}

func testTaskDeadLetters(t *testing.T, newStore newStoreFunc) {
	t.Run("DeadLetterIsPlain", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 1
		cfg.DeadLetterQueue = "q.dead"
		e.createQueue("q", cfg)
		ids := e.send("q", tmsg("a", taskReq()), tmsg("b", taskReq()))
		for _, m := range e.lease("q", 2) {
			e.nackOK("q", m.Lease, nil, "boom")
		}
		a, b := e.task(ids[0]), e.task(ids[1])
		for _, tk := range []store.Task{a, b} {
			if tk.State != store.TaskFailed || tk.Error != "boom" {
				t.Fatalf("task %s: %s with error %q, want failed with boom", tk.ID, tk.State, tk.Error)
			}
		}
		e.ackOK("replies", leases(e.lease("replies", 10))...)
		e.advance(time.Second)

		// The dead letters keep the tasks' ids, but are plain messages:
		// nothing done to them touches the tasks.
		ds := e.lease("q.dead", 10)
		wantIDs(t, "dead letters", ds, ids...)
		if _, err := e.progress(ids[0], ds[0].Lease, 0.5, "dead", 0); err == nil {
			t.Error("Progress with a dead letter's lease succeeded, want an error")
		}
		if _, err := e.extend("q.dead", ds[0].Lease, 0); err != nil {
			t.Errorf("Extend of a dead letter: %v", err)
		}
		e.nackOK("q.dead", ds[0].Lease, ptr(0), "again")
		e.ackResults("q.dead", []string{ds[1].Lease}, [][]byte{[]byte(`"late"`)})
		e.unchanged("after its dead letter was nacked", a)
		e.unchanged("after its dead letter was acked", b)

		// Choice: a redriven dead letter is a plain message too: the task
		// stays failed, whatever becomes of it.
		if n := e.redrive("q", 10); n != 1 {
			t.Fatalf("Redrive moved %d, want 1", n)
		}
		m := e.leaseOne("q", ids[0])
		if _, err := e.progress(ids[0], m.Lease, 0.5, "redriven", 0); err == nil {
			t.Error("Progress of a finished task succeeded (with a redriven copy's lease), want an error")
		}
		if _, err := e.cancelTask(ids[0]); err != nil {
			t.Errorf("CancelTask of a failed task: %v", err)
		}
		e.ackResults("q", []string{m.Lease}, [][]byte{[]byte(`"late"`)})
		e.unchanged("after its redriven copy was acked", a)
		e.leaseNone("replies")
		if due := e.dueAt(e.now); !slices.Equal(slices.Sorted(slices.Values(due)), ids) {
			t.Errorf("webhooks due %v, want those of the two failures, %v", due, ids)
		}
	})

	t.Run("TerminateWithoutDeadLetterQueue", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config()) // 3 attempts, no dead-letter queue
		id := e.sendTask("q", store.NewTask{ResultTTL: taskTTL})
		m := e.leaseOne("q", id)
		tk := e.task(id)
		e.advance(time.Second)
		if r, err := e.terminate("q", m.Lease, "poison"); err != nil || !r.DeadLettered {
			t.Fatalf("Terminate: %+v, %v; want DeadLettered", r, err)
		}
		wantTask(t, "terminated", e.changed("terminated", tk), finished(tk, e.now, store.TaskFailed, nil, "poison"))
		wantStats(t, "terminated", e.stats("q"), store.Stats{SentTotal: 1})
		if names := e.queueNames(); !slices.Equal(names, []string{"q"}) {
			t.Errorf("queues %v, want only q", names)
		}
	})
}
