package history_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/history"
)

// TestLogConcurrent records from many goroutines: every event gets its own
// number, in order, and each outcome names its invocation.
func TestLogConcurrent(t *testing.T) {
	t.Parallel()
	l := history.NewLog()
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				body := string(rune('a'+w)) + "-" + time.Duration(i).String()
				l.Send(body).OK(body)
				l.Receive(time.Second).OK(history.Delivery{ID: body, Body: body, Lease: body, Attempt: 1,
					LeaseExpiresAt: time.Now().Add(time.Second)})
				l.Ack(body).OK()
			}
		})
	}
	wg.Wait()
	events := l.Events()
	if len(events) != workers*each*6 || l.Len() != len(events) {
		t.Fatalf("%d events, want %d", len(events), workers*each*6)
	}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		if e.Outcome != history.Invoked {
			inv := events[e.Call-1]
			if inv.Outcome != history.Invoked || inv.Op != e.Op || e.Call >= e.Seq {
				t.Fatalf("%v ends %v", e, inv)
			}
		}
		if i > 0 && e.Time.Before(events[i-1].Time) {
			t.Fatalf("time goes back: %v after %v", e, events[i-1])
		}
	}
	if r := history.Check(l); !r.OK() || r.SendsOK != workers*each || r.Acked != workers*each {
		t.Fatalf("report: %v", r)
	}
}

func TestCompletedTwicePanics(t *testing.T) {
	t.Parallel()
	l := history.NewLog()
	c := l.Send("a")
	c.OK("1")
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "completed twice") {
			t.Errorf("recover() = %v, want a panic about completing twice", p)
		}
	}()
	c.Unknown(errors.New("late"))
}

func TestEventString(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	l := history.NewLog(history.WithClock(func() time.Time { return at }))
	l.Receive(2 * time.Second).OK(history.Delivery{ID: "1", Body: `"x"`, Lease: "L", Attempt: 3, LeaseExpiresAt: at})
	l.Ack("L", "M").OK("M")
	l.Nack("L").Unknown(errors.New("EOF"))
	l.Crash("kill -9")
	var got []string
	for _, e := range l.Events() {
		got = append(got, e.String())
	}
	want := []string{
		"#1 03:04:05.000006 receive invoked visibility=2s",
		`#2 03:04:05.000006 receive ok (of #1) [id=1 body="x" attempt=3 lease=L expires=03:04:05.000006]`,
		"#3 03:04:05.000006 ack invoked leases=[L M]",
		"#4 03:04:05.000006 ack ok (of #3) refused=[M]",
		"#5 03:04:05.000006 nack invoked leases=[L]",
		"#6 03:04:05.000006 nack unknown (of #5): EOF",
		"#7 03:04:05.000006 crash: kill -9",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
