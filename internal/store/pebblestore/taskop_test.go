package pebblestore

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// rawTask is the stored value of a task's record, as Pebble merges it.
func rawTask(t *testing.T, s *Store, seq uint64) []byte {
	t.Helper()
	v, closer, err := s.db.Get(taskKey(seq))
	if err != nil {
		t.Fatalf("task record %d: %v", seq, err)
	}
	defer closer.Close()
	return bytes.Clone(v)
}

// sendTasks sends n tasks to q and returns their seqs.
func sendTasks(t *testing.T, s *Store, n int) []uint64 {
	t.Helper()
	var msgs []store.NewMessage
	for range n {
		msgs = append(msgs, store.NewMessage{Body: []byte(`1`), Kind: store.BodyJSON, Task: &store.NewTask{ResultTTL: time.Hour}})
	}
	res, err := s.Send(context.Background(), &store.SendParams{Queue: "q", Messages: msgs, Now: handoffNow})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, r := range res {
		seq, _ := parseID(r.ID)
		seqs = append(seqs, seq)
	}
	return seqs
}

// TestTaskLeaseMergesOneOperand: a task's lease leaves its stored record as
// it was plus one operand, not a rewrite; the task reads running, with the
// attempt, the lease's time and a version one more, from the cache and
// from Pebble, before and after a flush and a full compaction; its ack
// rewrites the record whole.
func TestTaskLeaseMergesOneOperand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := handoffStore(t, vfs.NewMem())
	seqs := sendTasks(t, s, 2)
	before := map[uint64][]byte{}
	for _, seq := range seqs {
		before[seq] = rawTask(t, s, seq)
	}
	now := handoffNow.Add(time.Second)
	lr, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 10, Visibility: time.Hour, Now: now})
	if err != nil || len(lr.Messages) != 2 {
		t.Fatalf("lease: %d messages, %v", len(lr.Messages), err)
	}
	check := func(when string) {
		t.Helper()
		for _, seq := range seqs {
			raw := rawTask(t, s, seq)
			if op := appendTaskLeaseOp(nil, 1, now); !bytes.Equal(raw, append(bytes.Clone(before[seq]), op...)) {
				t.Fatalf("%s: task record %d is %x; want %x and one operand %x", when, seq, raw, before[seq], op)
			}
			was, _ := decodeTaskRecord(before[seq])
			tk, err := s.GetTask(ctx, &store.GetTaskParams{ID: formatID(seq), Now: now})
			if err != nil || tk.State != store.TaskRunning || tk.Attempt != 1 || tk.Version != was.Version+1 || !tk.UpdatedAt.Equal(now) {
				t.Fatalf("%s: task %d = %+v, %v; want running, attempt 1, version %d", when, seq, tk, err, was.Version+1)
			}
		}
	}
	check("in the memtable, from the cache")
	s.tasks = newTaskCache(-1)
	check("in the memtable, from Pebble")
	flushAndCompact(t, s)
	check("compacted")
	errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: []string{lr.Messages[0].Lease}, Results: [][]byte{[]byte(`7`)}, Now: now})
	if err != nil || errs[0] != nil {
		t.Fatalf("ack: %v, %v", errs, err)
	}
	seq, _ := parseID(lr.Messages[0].ID)
	raw := rawTask(t, s, seq)
	r, err := decodeTaskRecord(raw)
	if err != nil || r.State != store.TaskSucceeded || !bytes.Equal(raw, r.encode()) {
		t.Fatalf("after the ack: %+v, %v; want succeeded, written whole (%x)", r, err, raw)
	}
}

// TestTaskLeaseOfJSONRecord: a task record written as JSON by an earlier
// build gets no operand (JSON cannot carry one): the lease rewrites it
// whole, in binary.
func TestTaskLeaseOfJSONRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := handoffStore(t, vfs.NewMem())
	seq := sendTasks(t, s, 1)[0]
	r, err := decodeTaskRecord(rawTask(t, s, seq))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(taskKey(seq), js, nil); err != nil {
		t.Fatal(err)
	}
	s.tasks = newTaskCache(-1)
	if _, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Visibility: time.Hour, Now: handoffNow}); err != nil {
		t.Fatal(err)
	}
	raw := rawTask(t, s, seq)
	got, err := decodeTaskRecord(raw)
	if err != nil || got.State != store.TaskRunning || got.Attempt != 1 || !bytes.Equal(raw, got.encode()) {
		t.Fatalf("a JSON record after its lease: %x (%+v, %v); want running, binary, no operand", raw, got, err)
	}
}

// TestTaskHandoffSetThenMerge: tasks sent while a receive waits are leased
// in the send's own batch: each task record is written (Set) and marked
// running (Merge) in one batch, and reads running, from the cache and,
// after a flush, compaction and reopening, from Pebble.
func TestTaskHandoffSetThenMerge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := vfs.NewMem()
	s := handoffStore(t, fs)
	var seqs []uint64
	handedOff(t, s, 3, func() { seqs = sendTasks(t, s, 3) })
	check := func(when string) {
		t.Helper()
		for _, seq := range seqs {
			tk, err := s.GetTask(ctx, &store.GetTaskParams{ID: formatID(seq), Now: handoffNow})
			if err != nil || tk.State != store.TaskRunning || tk.Attempt != 1 {
				t.Fatalf("%s: task %d = %+v, %v; want running, attempt 1", when, seq, tk, err)
			}
		}
	}
	check("from the cache")
	flushAndCompact(t, s)
	s = reopen(t, s, fs)
	check("reopened")
}

// TestTaskLeaseOfCorruptRecord: a task record that does not decode is
// reported at its lease, as a rewrite did, not delivered with an operand
// merged into it.
func TestTaskLeaseOfCorruptRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := handoffStore(t, vfs.NewMem())
	seq := sendTasks(t, s, 1)[0]
	if err := s.db.Set(taskKey(seq), []byte{taskRecordVersion, 0, 0xff}, nil); err != nil {
		t.Fatal(err)
	}
	s.tasks = newTaskCache(-1)
	lr, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Visibility: time.Hour, Now: handoffNow})
	if err == nil {
		t.Fatalf("lease over a corrupt task record: %d messages, no error; raw record now %x", len(lr.Messages), rawTask(t, s, seq))
	}
}

// TestTaskReleaseKeepsOneOperand: a nack rewrites the record whole, so a
// second lease leaves it with one operand again; the watcher of the task is
// woken by each lease and sees a new version.
func TestTaskReleaseKeepsOneOperand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := handoffStore(t, vfs.NewMem())
	seq := sendTasks(t, s, 1)[0]
	id := formatID(seq)
	for attempt := 1; attempt <= 3; attempt++ {
		now := handoffNow.Add(time.Duration(attempt) * time.Second)
		before, err := s.GetTask(ctx, &store.GetTaskParams{ID: id, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		watch := s.WatchTask(id)
		lr, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1, Visibility: time.Hour, Now: now})
		if err != nil || len(lr.Messages) != 1 {
			t.Fatalf("lease %d: %+v, %v", attempt, lr, err)
		}
		select {
		case <-watch:
		default:
			t.Fatalf("lease %d did not wake the task's watcher", attempt)
		}
		tk, err := s.GetTask(ctx, &store.GetTaskParams{ID: id, Now: now})
		if err != nil || tk.State != store.TaskRunning || tk.Attempt != attempt || tk.Version != before.Version+1 || !tk.UpdatedAt.Equal(now) {
			t.Fatalf("after lease %d: %+v, %v (before: version %d)", attempt, tk, err, before.Version)
		}
		raw := rawTask(t, s, seq)
		r, err := decodeTaskRecord(raw)
		if err != nil {
			t.Fatal(err)
		}
		if op := appendTaskLeaseOp(nil, attempt, now); len(raw) != len(r.encode())+len(op) || string(raw[len(raw)-len(op):]) != string(op) {
			t.Fatalf("lease %d: stored %x, want a whole record and one operand %x", attempt, raw, op)
		}
		zero := time.Duration(0)
		if _, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: lr.Messages[0].Lease, Retry: retryNow, Delay: &zero, Now: now}); err != nil {
			t.Fatal(err)
		}
		raw = rawTask(t, s, seq)
		if r, err := decodeTaskRecord(raw); err != nil || r.State != store.TaskQueued || string(r.encode()) != string(raw) {
			t.Fatalf("after nack %d: %x (%+v, %v); want queued, written whole", attempt, raw, r, err)
		}
	}
}
