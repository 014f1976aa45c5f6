package pebblestore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

func retryNow(q store.QueueConfig, attempt int, explicit *time.Duration) (time.Duration, bool) {
	if q.MaxAttempts > 0 && attempt >= q.MaxAttempts {
		return 0, true
	}
	if explicit != nil {
		return *explicit, false
	}
	return q.Backoff.Initial, false
}

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem(), FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := store.DefaultConfig("q")
	cfg.MaxAttempts = 2
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: cfg, Now: now}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: now, Messages: []store.NewMessage{
		{Body: []byte(`1`), Kind: store.BodyJSON}, {Body: []byte(`2`), Kind: store.BodyJSON, Group: "g"},
		{Body: []byte(`3`), Kind: store.BodyJSON, Group: "g"}, {Body: []byte(`4`), Kind: store.BodyJSON, Priority: 5},
	}})
	if err != nil || len(res) != 4 {
		t.Fatal(res, err)
	}
	lr, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 10, Now: now, Retry: retryNow})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range lr.Messages {
		got = append(got, string(m.Body))
	}
	if want := "[4 1 2]"; fmtS(got) != want {
		t.Fatalf("leased %v, want %s", got, want)
	}
	q, _ := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: now})
	if q.Stats.InFlight != 3 || q.Stats.Ready != 1 || q.Stats.SentTotal != 4 {
		t.Fatalf("stats %+v", q.Stats)
	}
	errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{lr.Messages[2].Lease, lr.Messages[2].Lease}, Now: now})
	if err != nil || errs[0] != nil || errs[1] != store.ErrLeaseExpired {
		t.Fatal(errs, err)
	}
	lr2, _ := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 10, Now: now, Retry: retryNow})
	if len(lr2.Messages) != 1 || string(lr2.Messages[0].Body) != "3" {
		t.Fatalf("after ack of group head: %+v", lr2.Messages)
	}
	// Let every lease expire twice: message 4 and 1 dead-letter at attempt 2.
	later := now.Add(time.Minute)
	lr3, _ := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 10, Now: later, Retry: retryNow})
	if len(lr3.Messages) != 3 {
		t.Fatalf("redelivered %d", len(lr3.Messages))
	}
	tr, err := s.Tick(ctx, &store.TickParams{Now: later.Add(time.Minute), Retry: retryNow})
	if err != nil || tr.DeadLettered != 3 {
		t.Fatalf("tick %+v %v", tr, err)
	}
	q, _ = s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: later})
	d, _ := s.GetQueue(ctx, &store.GetQueueParams{Name: "q.dead", Now: later})
	if q.Stats.Dead != 3 || d.Stats.Ready != 3 || q.Stats.InFlight != 0 {
		t.Fatalf("after dead-letter q=%+v dlq=%+v", q.Stats, d.Stats)
	}
	n, err := s.Redrive(ctx, &store.RedriveParams{Queue: "q", Max: 10, Now: later})
	if err != nil || n != 3 {
		t.Fatal(n, err)
	}
	q, _ = s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: later})
	if q.Stats.Dead != 0 || q.Stats.Ready != 3 {
		t.Fatalf("after redrive %+v", q.Stats)
	}
}

func fmtS(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// TestOpenRefuses: a directory in use, or stamped with another format, is
// refused with an error saying why, never opened.
func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir, FreeBytes: plenty}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open of a directory in use: %v; want an error saying it is in use", err)
	}
	if err := s.db.Set(metaKey("format"), []byte("99"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir, FreeBytes: plenty}); err == nil || !strings.Contains(err.Error(), `data format "99"`) {
		t.Errorf("open of another format: %v; want an error naming the format", err)
	}
}

// TestTaskSmoke walks one task through its life: queued, running, a failed
// attempt, succeeded with a result sent to reply_to and a webhook due, then
// gone after its result TTL.
func TestTaskSmoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem(), FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: now}); err != nil {
		t.Fatal(err)
	}
	req := &store.NewTask{NotifyURL: "https://example.test/hook", ReplyTo: "replies", ResultTTL: time.Hour}
	res, err := s.Send(ctx, &store.SendParams{Queue: "q", Now: now, Messages: []store.NewMessage{{Body: []byte(`{"x":1}`), Kind: store.BodyJSON, Task: req}}})
	if err != nil {
		t.Fatal(err)
	}
	id := res[0].ID
	state := func(want store.TaskState) store.Task {
		t.Helper()
		task, err := s.GetTask(ctx, &store.GetTaskParams{ID: id, Now: now})
		if err != nil || task.State != want {
			t.Fatalf("task %s: %+v, %v; want state %s", id, task, err, want)
		}
		return task
	}
	state(store.TaskQueued)
	watch := s.WatchTask(id)
	lr, _ := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: now, Retry: retryNow})
	<-watch // closed by the lease
	if tk := state(store.TaskRunning); tk.Attempt != 1 {
		t.Fatalf("attempt %d", tk.Attempt)
	}
	if _, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: lr.Messages[0].Lease, Delay: new(time.Duration), Error: "boom", Now: now, Retry: retryNow}); err != nil {
		t.Fatal(err)
	}
	if tk := state(store.TaskQueued); tk.Error != "boom" {
		t.Fatalf("error %q", tk.Error)
	}
	lr, _ = s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Now: now, Retry: retryNow})
	if tk, err := s.Progress(ctx, &store.ProgressParams{ID: id, Lease: lr.Messages[0].Lease, Progress: 0.5, Message: "half", Now: now}); err != nil || tk.Progress != 0.5 {
		t.Fatalf("progress: %+v %v", tk, err)
	}
	errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{lr.Messages[0].Lease}, Results: [][]byte{[]byte(`{"ok":true}`)}, Now: now})
	if err != nil || errs[0] != nil {
		t.Fatal(errs, err)
	}
	if tk := state(store.TaskSucceeded); string(tk.Result) != `{"ok":true}` || tk.Attempt != 2 || !tk.Webhook.Pending {
		t.Fatalf("finished task %+v", tk)
	}
	due, err := s.DueWebhooks(ctx, &store.DueWebhooksParams{Now: now, Max: 10})
	if err != nil || len(due) != 1 || due[0].ID != id {
		t.Fatalf("due webhooks %+v %v", due, err)
	}
	if _, err := s.RecordWebhook(ctx, &store.RecordWebhookParams{ID: id, Attempt: store.WebhookAttempt{At: now, Status: 200}, Delivered: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueWebhooks(ctx, &store.DueWebhooksParams{Now: now.Add(time.Hour), Max: 10}); len(due) != 0 {
		t.Fatalf("delivered webhook still due: %+v", due)
	}
	rr, _ := s.Lease(ctx, &store.LeaseParams{Queue: "replies", Max: 10, Now: now, Retry: retryNow})
	if len(rr.Messages) != 1 || rr.Messages[0].Headers[store.HeaderTaskID] != id || !strings.Contains(string(rr.Messages[0].Body), `"ok":true`) {
		t.Fatalf("reply: %+v", rr.Messages)
	}
	if _, err := s.Tick(ctx, &store.TickParams{Now: now.Add(2 * time.Hour), Retry: retryNow}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTask(ctx, &store.GetTaskParams{ID: id, Now: now.Add(2 * time.Hour)}); err != store.ErrTaskNotFound {
		t.Fatalf("after TTL: %v, want ErrTaskNotFound", err)
	}
	q, _ := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: now})
	if q.Stats.Ready+q.Stats.InFlight+q.Stats.Delayed != 0 {
		t.Fatalf("queue not empty: %+v", q.Stats)
	}
}

// TestQueueIDsNotReused: a queue created after a restart never gets the id
// of a deleted one, whose dead letters (naming their source by id) would
// otherwise be redriven into it.
func TestQueueIDsNotReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := vfs.NewMem()
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := store.DefaultConfig("x")
	cfg.MaxAttempts, cfg.DeadLetterQueue = 1, "shared"
	for _, name := range []string{"shared", "alpha"} {
		if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: name, Config: cfg, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	s.Send(ctx, &store.SendParams{Queue: "alpha", Now: now, Messages: []store.NewMessage{{Body: []byte(`"secret"`), Kind: store.BodyJSON}}})
	lr, _ := s.Lease(ctx, &store.LeaseParams{Queue: "alpha", Max: 1, Now: now, Retry: retryNow})
	if res, err := s.Nack(ctx, &store.NackParams{Queue: "alpha", Lease: lr.Messages[0].Lease, Now: now, Retry: retryNow}); err != nil || !res.DeadLettered {
		t.Fatal(res, err)
	}
	alphaID := s.queues["alpha"].rec.ID
	if err := s.DeleteQueue(ctx, &store.DeleteQueueParams{Name: "alpha", Now: now}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, fs)
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "beta", Config: cfg, Now: now}); err != nil {
		t.Fatal(err)
	}
	if id := s.queues["beta"].rec.ID; id == alphaID {
		t.Fatalf("beta got the deleted alpha's id %d", id)
	}
	if n, err := s.Redrive(ctx, &store.RedriveParams{Queue: "beta", Max: 10, Now: now}); err != nil || n != 0 {
		t.Fatalf("redrive of beta moved %d (%v); alpha's dead letter must stay", n, err)
	}
}

// TestLeaseMaxBytes: a lease stops once the bodies handed out reach
// MaxBytes, and always hands out at least one message.
func TestLeaseMaxBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem(), FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: store.DefaultConfig("q"), Now: now})
	body := make([]byte, 100)
	msgs := []store.NewMessage{{Body: body, Kind: store.BodyBinary}, {Body: body, Kind: store.BodyBinary}, {Body: body, Kind: store.BodyBinary}}
	if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: now}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ maxBytes, want int }{{150, 2}, {10, 1}} {
		lr, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 10, MaxBytes: tc.maxBytes, Now: now, Retry: retryNow})
		if err != nil || len(lr.Messages) != tc.want {
			t.Fatalf("MaxBytes %d: %d messages, %v; want %d", tc.maxBytes, len(lr.Messages), err, tc.want)
		}
	}
}

// reopen closes s and opens its directory ("db" on fs) again; the store it
// returns closes when the test ends.
func reopen(t *testing.T, s *Store, fs vfs.FS) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
