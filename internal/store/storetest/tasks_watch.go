package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// step runs fn and checks whether it changed task id: a change raises its
// Version and closes a WatchTask taken before; anything else leaves the
// task exactly as it was and the watch open.
func (e *env) step(what, id string, change bool, fn func()) {
	e.t.Helper()
	before := e.task(id)
	w := e.s.WatchTask(id)
	fn()
	if !change {
		if Closed(w) {
			e.t.Errorf("%s: WatchTask closed, though the task did not change", what)
		}
		e.unchanged(what, before)
		return
	}
	if !Closed(w) {
		e.t.Errorf("%s: WatchTask not closed by a change of the task", what)
	}
	e.changed(what, before)
}

// Choice: WatchTask, like Watch, is checked right after the verb returns.
func testTaskWatch(t *testing.T, newStore newStoreFunc) {
	t.Run("EveryChangeAndNothingElse", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", tmsg("a", taskReq()), tmsg("b", taskReq()))
		a, b := ids[0], ids[1]
		var lease string
		e.step("Lease", a, true, func() { lease = e.leaseFirst("q", a).Lease })
		e.step("reads", a, false, func() {
			e.task(a)
			e.dueAt(e.now.Add(time.Hour))
			e.getQueue("q")
			e.queueNames()
		})
		e.advance(time.Second)
		e.step("Progress", a, true, func() {
			if _, err := e.progress(a, lease, 0.1, "one", 0); err != nil {
				t.Fatalf("Progress: %v", err)
			}
		})
		e.advance(time.Second)
		e.step("refused Progress", a, false, func() {
			_, err := e.progress(a, "garbage", 0.2, "", 0)
			wantErr(t, "Progress with a malformed lease", err, store.ErrInvalidLease, store.ErrLeaseExpired)
		})
		e.step("another task's life", a, false, func() {
			m := e.leaseFirst("q", b)
			if _, err := e.progress(b, m.Lease, 0.5, "", 0); err != nil {
				t.Fatalf("Progress of b: %v", err)
			}
			if _, err := e.cancelTask(b); err != nil {
				t.Fatalf("CancelTask of b: %v", err)
			}
			e.ackOK("q", m.Lease)
			e.ackOK("replies", e.lease("replies", 1)[0].Lease)
			e.sendText("q", "plain")
			e.ackOK("q", e.lease("q", 1)[0].Lease)
			e.tick()
		})
		e.advance(time.Second)
		// Choice: extending a lease is no change of the task (unless a
		// cancel is pending).
		e.step("Extend", a, false, func() {
			if _, err := e.extend("q", lease, 0); err != nil {
				t.Fatalf("Extend: %v", err)
			}
		})
		e.step("Nack", a, true, func() { e.nackOK("q", lease, ptr(0), "again") })
		e.advance(time.Second)
		e.step("Lease again", a, true, func() { lease = e.leaseFirst("q", a).Lease })
		e.advance(time.Second)
		e.step("CancelTask", a, true, func() {
			if _, err := e.cancelTask(a); err != nil {
				t.Fatalf("CancelTask: %v", err)
			}
		})
		e.advance(time.Second)
		e.step("CancelTask again", a, false, func() {
			if _, err := e.cancelTask(a); err != nil {
				t.Fatalf("CancelTask: %v", err)
			}
		})
		e.step("Extend of the cancelled task", a, true, func() {
			_, err := e.extend("q", lease, 0)
			wantErr(t, "Extend", err, store.ErrTaskCancelled)
		})
		e.advance(time.Second)
		e.step("reads of the finished task", a, false, func() {
			if _, err := e.cancelTask(a); err != nil {
				t.Fatalf("CancelTask of a finished task: %v", err)
			}
			e.dueAt(e.now)
			e.tick()
		})
		e.step("RecordWebhook", a, true, func() {
			e.recordWebhook(a, store.WebhookAttempt{At: e.now, Status: 500}, false, e.now.Add(time.Minute))
		})
		e.advance(time.Second)
		e.step("RecordWebhook delivered", a, true, func() {
			e.recordWebhook(a, store.WebhookAttempt{At: e.now, Status: 200}, true, time.Time{})
		})
	})

	t.Run("Ack", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		e.advance(time.Second)
		e.step("Ack", id, true, func() { e.ackOK("q", m.Lease) })
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		e.set(m.LeaseExpiresAt)
		e.step("Tick releasing the lease", id, true, func() { e.tick() })
	})
}

func testTaskTTL(t *testing.T, newStore newStoreFunc) {
	t.Run("GoneAtExpiresAt", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		e.set(base.Add(10 * time.Second))
		e.ackOK("q", m.Lease)
		tk := e.task(id)
		end := base.Add(10*time.Second + taskTTL)
		wantTime(t, "ExpiresAt", tk.ExpiresAt, end)
		e.set(end.Add(-time.Millisecond))
		e.unchanged("just before ExpiresAt", tk)
		// Without a Tick: the answer is as of Now.
		e.set(end)
		e.noTask("at ExpiresAt", id)
		e.set(end.Add(time.Hour))
		e.noTask("after ExpiresAt", id)
		// Choice: reads remove nothing: only Tick deletes the record.
		e.set(base.Add(20 * time.Second))
		e.unchanged("at an earlier Now, before any Tick", tk)
		e.set(end)
		e.tick()
		e.set(base.Add(20 * time.Second))
		e.noTask("at an earlier Now, after the Tick", id)
		_, err := e.cancelTask(id)
		wantErr(t, "CancelTask after the Tick", err, store.ErrTaskNotFound)
	})

	t.Run("CountsFromTheFinish", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.MaxAttempts = 0
		e.createQueue("q", cfg)
		short := store.NewTask{ResultTTL: time.Minute}
		ids := e.send("q", tmsg("queued", short), tmsg("running", short), tmsg("done", short), tmsg("kept", taskReq()))
		ms := e.lease("q", 4)
		e.ackOK("q", ms[2].Lease, ms[3].Lease)
		e.nackOK("q", ms[0].Lease, ptr(0), "back to the queue")
		// Each finished task's TTL runs from its finish.
		e.set(base.Add(time.Minute))
		e.tick()
		e.set(base.Add(30 * time.Second))
		e.noTask("a task finished with a 1m TTL, after the Tick", ids[2])
		e.task(ids[3])
		// Unfinished tasks never expire, whatever their TTL.
		e.set(base.Add(100 * time.Hour))
		e.tick()
		e.task(ids[0])
		e.task(ids[1])
		e.noTask("a task finished with a 1h TTL", ids[3])
	})
}

func testTaskConcurrency(t *testing.T, newStore newStoreFunc) {
	run := func(t *testing.T, cancel bool) {
		e := setup(t, newStore)
		e.createQueue("q", config())
		const n = 200
		req := store.NewTask{ReplyTo: "replies", ResultTTL: taskTTL}
		var ids []string
		for len(ids) < n {
			msgs := make([]store.NewMessage, 50)
			for i := range msgs {
				msgs[i] = tmsg(fmt.Sprint(len(ids)+i), req)
			}
			ids = append(ids, e.send("q", msgs...)...)
		}
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					res, err := e.s.Lease(e.ctx, &store.LeaseParams{Queue: "q", Max: 4, Visibility: time.Hour, Now: e.now, Retry: e.retry})
					if err != nil || len(res.Messages) == 0 {
						if err != nil {
							t.Errorf("Lease: %v", err)
						}
						return
					}
					results := make([][]byte, len(res.Messages))
					for i, m := range res.Messages {
						results[i] = []byte(`"` + m.ID + `"`)
						if _, err := e.progress(m.ID, m.Lease, 0.5, "", 0); err != nil && !(cancel && errors.Is(err, store.ErrTaskCancelled)) {
							t.Errorf("Progress of %s: %v", m.ID, err)
						}
					}
					errs, err := e.s.Ack(e.ctx, &store.AckParams{Queue: "q", Leases: leases(res.Messages), Results: results, Now: e.now})
					if err != nil {
						t.Errorf("Ack: %v", err)
						return
					}
					for i, err := range errs {
						if err != nil && !(cancel && errors.Is(err, store.ErrLeaseExpired)) {
							t.Errorf("Ack of %s: %v", res.Messages[i].ID, err)
						}
					}
				}
			})
		}
		if cancel {
			wg.Go(func() {
				for _, id := range ids {
					if _, err := e.cancelTask(id); err != nil {
						t.Errorf("CancelTask(%s): %v", id, err)
					}
				}
			})
		}
		wg.Go(func() { // a reader
			for _, id := range ids {
				if _, err := e.getTask(id); err != nil {
					t.Errorf("GetTask(%s): %v", id, err)
				}
			}
		})
		wg.Wait()
		counts := map[store.TaskState]int{}
		for _, id := range ids {
			tk := e.task(id)
			counts[tk.State]++
			switch {
			case tk.State == store.TaskSucceeded && string(tk.Result) == `"`+id+`"` && tk.Attempt == 1:
			case cancel && tk.State == store.TaskCancelled:
			default:
				t.Errorf("task %s: %s, attempt %d, result %s", id, tk.State, tk.Attempt, tk.Result)
			}
		}
		if !cancel && counts[store.TaskSucceeded] != n {
			t.Errorf("states %v, want all %d succeeded", counts, n)
		}
		// Exactly one outcome per task.
		seen := map[string]int{}
		for {
			ms := e.lease("replies", 100)
			if len(ms) == 0 {
				break
			}
			for _, m := range ms {
				seen[m.Headers[store.HeaderTaskID]]++
			}
		}
		for _, id := range ids {
			if seen[id] != 1 {
				t.Errorf("task %s: %d outcomes, want 1", id, seen[id])
			}
		}
		if len(seen) != n {
			t.Errorf("outcomes of %d tasks, want %d", len(seen), n)
		}
		if s := e.stats("q"); s.Ready+s.InFlight+s.Delayed != 0 {
			t.Errorf("stats %+v, want no message left", s)
		}
	}
	t.Run("LeaseAndAck", func(t *testing.T) {
		t.Parallel()
		run(t, false)
	})
	t.Run("WithCancels", func(t *testing.T) {
		t.Parallel()
		run(t, true)
	})
}
