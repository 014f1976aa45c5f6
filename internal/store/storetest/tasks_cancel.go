package storetest

import (
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

func testTaskCancel(t *testing.T, newStore newStoreFunc) {
	t.Run("Queued", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", tmsg("t", taskReq()), msg("plain"))
		tk := e.task(ids[0])
		e.advance(time.Second)
		w := e.s.WatchTask(ids[0])
		got, err := e.cancelTask(ids[0])
		if err != nil {
			t.Fatalf("CancelTask: %v", err)
		}
		if got.Error == "" {
			t.Error("cancelled task with no Error, want the reason")
		}
		wantTask(t, "CancelTask", got, finished(tk, e.now, store.TaskCancelled, nil, got.Error))
		if got.Version <= tk.Version {
			t.Errorf("version %d after the cancel, want more than %d", got.Version, tk.Version)
		}
		if !Closed(w) {
			t.Error("WatchTask not closed by the cancel")
		}
		e.unchanged("GetTask after CancelTask", got)
		// Choice: a cancelled task's message is removed, not acked.
		wantStats(t, "after the cancel", e.stats("q"), store.Stats{Ready: 1, SentTotal: 2, OldestReady: base})
		e.leaseOne("q", ids[1])
	})

	for _, tc := range []struct {
		name string
		prep func(e *env) string // sends the task to cancel
	}{
		{"Delayed", func(e *env) string {
			nm := tmsg("t", taskReq())
			nm.NotBefore = base.Add(time.Minute)
			return e.send("q", nm)[0]
		}},
		{"WaitingForRetry", func(e *env) string {
			id := e.sendTask("q", taskReq())
			e.nackOK("q", e.leaseOne("q", id).Lease, ptr(time.Minute), "busy")
			return id
		}},
		{"HeadOfGroup", func(e *env) string {
			nm := tmsg("t", taskReq())
			nm.Group = "g"
			return e.send("q", nm)[0]
		}},
	} {
		t.Run("Queued"+tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, newStore)
			e.createQueue("q", config())
			id := tc.prep(e)
			next := e.send("q", gmsg("next of g", "g"))[0]
			if tk, err := e.cancelTask(id); err != nil || tk.State != store.TaskCancelled {
				t.Fatalf("CancelTask: %+v, %v; want it cancelled", tk, err)
			}
			// Its message is gone; the group it held goes on.
			e.ackOK("q", e.leaseOne("q", next).Lease)
			e.advance(time.Hour)
			e.tick()
			e.leaseNone("q")
			if s := e.stats("q"); s.Ready+s.Delayed+s.InFlight != 0 || s.AckedTotal != 1 {
				t.Errorf("stats %+v, want no message left and only the next of g acked", s)
			}
		})
	}

	t.Run("Running", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.VisibilityTimeout = 10 * time.Second
		cfg.Backoff.Initial = 0
		e.createQueue("q", cfg)
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		tk := e.task(id)
		e.advance(time.Second)
		w := e.s.WatchTask(id)
		got, err := e.cancelTask(id)
		if err != nil {
			t.Fatalf("CancelTask: %v", err)
		}
		want := tk
		want.CancelRequested, want.UpdatedAt = true, e.now
		wantTask(t, "cancel requested", got, want)
		if got.Version <= tk.Version {
			t.Errorf("version %d after the cancel request, want more than %d", got.Version, tk.Version)
		}
		if !Closed(w) {
			t.Error("WatchTask not closed by the cancel request")
		}
		e.unchanged("GetTask after the request", got)
		// Choice: asking again changes nothing.
		e.advance(time.Second)
		again, err := e.cancelTask(id)
		if err != nil {
			t.Fatalf("second CancelTask: %v", err)
		}
		wantTask(t, "second CancelTask", again, got)
		e.unchanged("after a second request", got)
		wantStats(t, "cancel requested", e.stats("q"), store.Stats{InFlight: 1, SentTotal: 1})

		// The worker learns it at its next extend, which ends the task.
		e.advance(time.Second)
		_, err = e.extend("q", m.Lease, 0)
		wantErr(t, "Extend after the cancel request", err, store.ErrTaskCancelled)
		tk = e.changed("cancelled", got)
		wantTask(t, "cancelled", tk, finished(got, e.now, store.TaskCancelled, nil, tk.Error))
		if tk.Error == "" {
			t.Error("cancelled task with no Error, want the reason")
		}
		wantStats(t, "cancelled", e.stats("q"), store.Stats{SentTotal: 1})
		wantErr(t, "Ack of the cancelled task's lease", e.ack("q", m.Lease)[0], store.ErrLeaseExpired)
		_, err = e.extend("q", m.Lease, 0)
		wantErr(t, "second Extend", err, store.ErrLeaseExpired)
		// Choice: a report on a finished task with its old lease is a stale
		// lease (the task exists).
		_, err = e.progress(id, m.Lease, 0.5, "", 0)
		wantErr(t, "Progress after the end", err, store.ErrLeaseExpired)
		_, err = e.nack("q", m.Lease, nil, "")
		wantErr(t, "Nack after the end", err, store.ErrLeaseExpired)
		e.advance(30 * time.Minute)
		e.tick()
		e.leaseNone("q")
		e.unchanged("half an hour later", tk)
	})

	t.Run("Finished", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.send("q", tmsg("1", taskReq()), tmsg("2", taskReq()), tmsg("3", taskReq()))
		m := e.lease("q", 2)
		e.ackResults("q", []string{m[0].Lease}, [][]byte{[]byte(`true`)})
		if _, err := e.terminate("q", m[1].Lease, "no"); err != nil {
			t.Fatalf("Terminate: %v", err)
		}
		if _, err := e.cancelTask(ids[2]); err != nil {
			t.Fatalf("CancelTask: %v", err)
		}
		e.advance(time.Second)
		for i, state := range []store.TaskState{store.TaskSucceeded, store.TaskFailed, store.TaskCancelled} {
			tk := e.task(ids[i])
			if tk.State != state {
				t.Fatalf("task %d %s, want %s", i, tk.State, state)
			}
			// Choice: cancelling a finished task is no error: it answers
			// the task, unchanged.
			got, err := e.cancelTask(ids[i])
			if err != nil {
				t.Errorf("CancelTask of a %s task: %v", state, err)
			}
			if got.Version != tk.Version {
				t.Errorf("CancelTask of a %s task: version %d, want %d", state, got.Version, tk.Version)
			}
			wantTask(t, "CancelTask of a "+string(state)+" task", got, tk)
			e.unchanged("after CancelTask", tk)
		}
	})

	t.Run("AfterResultTTL", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		id := e.sendTask("q", taskReq())
		e.ackOK("q", e.leaseOne("q", id).Lease)
		e.advance(taskTTL)
		_, err := e.cancelTask(id)
		wantErr(t, "CancelTask after the result TTL", err, store.ErrTaskNotFound)
	})
}

func testTaskProgress(t *testing.T, newStore newStoreFunc) {
	progressConfig := func() store.QueueConfig {
		cfg := config()
		cfg.VisibilityTimeout = 10 * time.Second
		cfg.Backoff.Initial = 0
		return cfg
	}

	t.Run("Records", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", progressConfig())
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		tk := e.task(id)
		e.advance(2 * time.Second)
		w := e.s.WatchTask(id)
		got, err := e.progress(id, m.Lease, 0.25, "resizing", 0)
		if err != nil {
			t.Fatalf("Progress: %v", err)
		}
		want := tk
		want.Progress, want.ProgressMessage, want.UpdatedAt = 0.25, "resizing", e.now
		wantTask(t, "Progress", got, want)
		if got.Version <= tk.Version {
			t.Errorf("version %d after Progress, want more than %d", got.Version, tk.Version)
		}
		if !Closed(w) {
			t.Error("WatchTask not closed by Progress")
		}
		e.unchanged("GetTask after Progress", got)
		// Each report replaces the last, message included.
		e.advance(time.Second)
		got2, err := e.progress(id, m.Lease, 1, "", 0)
		if err != nil {
			t.Fatalf("second Progress: %v", err)
		}
		want.Progress, want.ProgressMessage, want.UpdatedAt = 1, "", e.now
		wantTask(t, "second Progress", got2, want)
		if got2.Version <= got.Version {
			t.Errorf("version %d after a second Progress, want more than %d", got2.Version, got.Version)
		}
		e.unchanged("GetTask after the second Progress", got2)
	})

	t.Run("ExtendsLease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", progressConfig())
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id) // until +10s
		e.set(base.Add(8 * time.Second))
		if _, err := e.progress(id, m.Lease, 0.1, "", 0); err != nil {
			t.Fatalf("Progress: %v", err)
		}
		// The queue's visibility from Now: until +18s.
		e.set(base.Add(10 * time.Second))
		e.leaseNone("q")
		if r := e.tick(); r.Expired != 0 {
			t.Errorf("Tick %+v at the old expiry, want nothing expired", r)
		}
		e.set(base.Add(18*time.Second - time.Millisecond))
		e.leaseNone("q")
		e.set(base.Add(18 * time.Second))
		m = e.leaseOne("q", id)
		if m.Attempt != 2 {
			t.Errorf("attempt %d, want 2", m.Attempt)
		}
		// An explicit visibility.
		if _, err := e.progress(id, m.Lease, 0.2, "", time.Minute); err != nil {
			t.Fatalf("Progress: %v", err)
		}
		e.set(base.Add(78*time.Second - time.Millisecond))
		e.leaseNone("q")
		e.set(base.Add(78 * time.Second))
		e.leaseOne("q", id)
	})

	t.Run("StaleLease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", progressConfig())
		id := e.sendTask("q", taskReq())
		m1 := e.leaseOne("q", id)
		e.set(base.Add(10 * time.Second)) // m1 has expired
		_, err := e.progress(id, m1.Lease, 0.9, "late", 0)
		wantErr(t, "Progress with an expired lease", err, store.ErrLeaseExpired)
		m2 := e.leaseOne("q", id)
		_, err = e.progress(id, m1.Lease, 0.9, "late", 0)
		wantErr(t, "Progress with a superseded lease", err, store.ErrLeaseExpired)
		tk := e.task(id)
		if tk.Progress != 0 || tk.ProgressMessage != "" {
			t.Errorf("progress %v %q after refused reports, want none", tk.Progress, tk.ProgressMessage)
		}
		if _, err := e.progress(id, m2.Lease, 0.3, "", 0); err != nil {
			t.Fatalf("Progress with the current lease: %v", err)
		}
		e.ackOK("q", m2.Lease)
		tk = e.task(id)
		_, err = e.progress(id, m2.Lease, 0.4, "", 0)
		wantErr(t, "Progress after the ack", err, store.ErrLeaseExpired)
		e.unchanged("after refused reports", tk)
	})

	t.Run("OtherLease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", progressConfig())
		e.createQueue("other", progressConfig())
		ids := e.send("q", tmsg("a", taskReq()), tmsg("b", taskReq()), msg("plain"))
		c := e.sendTask("other", taskReq())
		queued := e.sendTask("q", taskReq())
		ms := e.lease("q", 3)
		wantIDs(t, "lease", ms, ids...)
		mc := e.leaseOne("other", c)
		a, b := e.task(ids[0]), e.task(ids[1])
		for _, tc := range []struct {
			what, id, lease string
			want            []error
		}{
			{"the lease of another task", ids[0], ms[1].Lease, []error{store.ErrLeaseExpired}},
			{"the lease of a plain message", ids[0], ms[2].Lease, []error{store.ErrLeaseExpired}},
			{"the lease of a task of another queue", ids[0], mc.Lease, []error{store.ErrLeaseExpired}},
			{"a queued task", queued, ms[0].Lease, []error{store.ErrLeaseExpired}},
			{"a plain message", ids[2], ms[2].Lease, []error{store.ErrTaskNotFound}},
			{"a malformed lease", ids[0], "garbage", []error{store.ErrInvalidLease, store.ErrLeaseExpired}},
			{"an empty lease", ids[0], "", []error{store.ErrInvalidLease, store.ErrLeaseExpired}},
			{"a tampered lease", ids[0], tamper(ms[0].Lease), []error{store.ErrInvalidLease, store.ErrLeaseExpired}},
		} {
			_, err := e.progress(tc.id, tc.lease, 0.5, "x", time.Hour)
			wantErr(t, "Progress of "+tc.what, err, tc.want...)
		}
		e.unchanged("task a", a)
		e.unchanged("task b", b)
		// The leases are untouched: each still expires at +10s.
		e.set(base.Add(10 * time.Second))
		wantIDs(t, "lease at +10s", e.lease("q", 10), ids[0], ids[1], ids[2], queued)
	})

	t.Run("NewAttemptStartsAtZero", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", progressConfig())
		id := e.sendTask("q", taskReq())
		m := e.leaseOne("q", id)
		if _, err := e.progress(id, m.Lease, 0.8, "almost", 0); err != nil {
			t.Fatalf("Progress: %v", err)
		}
		e.nackOK("q", m.Lease, ptr(0), "crashed")
		e.leaseOne("q", id)
		// Choice: progress belongs to an attempt: a new attempt starts
		// with none, so a watcher never sees the last attempt's as this one's.
		if tk := e.task(id); tk.Progress != 0 || tk.ProgressMessage != "" {
			t.Errorf("attempt 2 starts with progress %v %q, want 0 \"\"", tk.Progress, tk.ProgressMessage)
		}
	})
}
