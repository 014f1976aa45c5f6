package pebblestore

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

func fullTaskRecord() taskRecord {
	at := time.Date(2026, 11, 25, 8, 0, 0, 123456789, time.UTC)
	return taskRecord{
		Queue: "q", State: store.TaskFailed, Attempt: 3, Progress: 0.25, ProgressMessage: "half\x00way",
		Result: []byte(`{"r":[1,2]}`), Error: "boom", CreatedAt: at, UpdatedAt: at.Add(time.Second),
		FinishedAt: at.Add(2 * time.Second), ExpiresAt: at.Add(24 * time.Hour), Version: 9, CancelRequested: true,
		Request: store.NewTask{NotifyURL: "https://example.com/h", NotifySecret: "s", ReplyTo: "answers", ResultTTL: 24 * time.Hour},
		Webhook: store.WebhookStatus{Pending: true, NextAttemptAt: at.Add(time.Minute), Delivered: true,
			Attempts: []store.WebhookAttempt{{At: at, Status: 503, Error: "busy"}, {At: at.Add(time.Second)}}},
	}
}

// TestTaskRecordEncoding: every field survives encode and decode; every
// prefix of a record is refused; a JSON record of an earlier build is read.
func TestTaskRecordEncoding(t *testing.T) {
	t.Parallel()
	for _, r := range []taskRecord{fullTaskRecord(), {State: store.TaskQueued}} {
		b := r.encode()
		got, err := decodeTaskRecord(b)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", r, got, err)
		}
		for i := range len(b) {
			if _, err := decodeTaskRecord(b[:i]); err == nil {
				t.Fatalf("a record cut to %d of %d bytes was accepted", i, len(b))
			}
		}
		if _, err := decodeTaskRecord(append(b, 0)); err == nil {
			t.Fatal("a record with a trailing byte was accepted")
		}
	}
	// Lease operands follow a record: each is applied in turn.
	base := fullTaskRecord()
	at := base.UpdatedAt.Add(time.Hour)
	b := appendTaskLeaseOp(base.encode(), 4, at)
	got, err := decodeTaskRecord(b)
	want := base
	want.State, want.Attempt, want.Progress, want.ProgressMessage, want.UpdatedAt, want.Version =
		store.TaskRunning, 4, 0, "", at, base.Version+1
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("record with an operand read as %+v, %v; want %+v", got, err, want)
	}
	b2 := appendTaskLeaseOp(b, 5, at.Add(time.Second))
	if got, err := decodeTaskRecord(b2); err != nil || got.Attempt != 5 || got.Version != base.Version+2 {
		t.Fatalf("record with two operands read as %+v, %v", got, err)
	}
	for i := len(base.encode()) + 1; i < len(b); i++ {
		if _, err := decodeTaskRecord(b[:i]); err == nil {
			t.Fatalf("an operand cut to %d of %d bytes was accepted", i-len(base.encode()), len(b)-len(base.encode()))
		}
	}
	old := fullTaskRecord()
	js, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	got, err = decodeTaskRecord(js)
	if err != nil || !bytes.Equal(got.encode(), old.encode()) {
		t.Fatalf("JSON record read as %+v, %v", got, err)
	}
}

func FuzzDecodeTaskRecord(f *testing.F) {
	full := fullTaskRecord()
	f.Add(full.encode())
	f.Add((&taskRecord{State: store.TaskRunning}).encode())
	f.Add([]byte(`{"queue":"q","state":"bogus"}`))
	f.Add([]byte(`{"queue":"q","state":"queued"}`))
	f.Add([]byte{taskRecordVersion, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x01})
	f.Add([]byte{})
	f.Add(appendTaskLeaseOp(full.encode(), 2, time.Unix(0, 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r taskRecord
		var err error
		if n := allocated(func() { r, err = decodeTaskRecord(b) }); n > maxDecodeAlloc(len(b)) {
			t.Fatalf("decoding %d bytes allocated %d bytes", len(b), n)
		}
		if err != nil {
			return
		}
		if !knownState(r.State) {
			t.Fatalf("decoded an unknown state %q from %x", r.State, b)
		}
		b2 := r.encode()
		r2, err := decodeTaskRecord(b2)
		if err != nil {
			t.Fatalf("decode(%x) = %+v, but its encoding %x is refused: %v", b, r, b2, err)
		}
		if b3 := r2.encode(); !bytes.Equal(b2, b3) {
			t.Fatalf("re-encoding is unstable: %x then %x", b2, b3)
		}
		// A binary record decodes to exactly what it encodes (JSON ones may
		// carry time zones and pre-1970 times, which the encoding drops).
		if b[0] != '{' && !math.IsNaN(r.Progress) && !reflect.DeepEqual(r, r2) {
			t.Fatalf("decode(%x) = %+v; its encoding decodes as %+v", b, r, r2)
		}
	})
}
