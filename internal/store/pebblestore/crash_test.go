package pebblestore

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// This file holds what the crash tests share: a history of the operations a
// workload issued, in one event order, and the checker that compares a store
// recovered from a crash image with it.

// history records, per message body, when its send began and was answered
// and what became of its acks. Event numbers come from one counter, so they
// order operations against the moments crash images were taken.
type history struct {
	clock atomic.Int64
	mu    sync.Mutex // guards msgs
	msgs  map[string]*msgHistory
	live  atomic.Int64 // messages answered as stored and not yet acked: workloads stay below a bound
	sent  atomic.Int64 // messages answered as stored
}

type msgHistory struct {
	sendStart int64 // the send began (before this, it cannot exist)
	sent      int64 // the send was answered with the message stored; 0 if not (yet)
	dup       bool  // the send was answered as a duplicate: the body was never stored
	acks      []ackAttempt
}

// ackAttempt is one ack of the message: begun at start, answered at end (0:
// not yet), ok if the store answered that it acked.
type ackAttempt struct {
	start, end int64
	ok         bool
}

func newHistory() *history { return &history{msgs: map[string]*msgHistory{}} }

func (h *history) tick() int64 { return h.clock.Add(1) }

func (h *history) update(body string, fn func(m *msgHistory)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.msgs[body]
	if !ok {
		m = &msgHistory{}
		h.msgs[body] = m
	}
	fn(m)
}

// sending records that the sends of bodies begin now.
func (h *history) sending(bodies []string) {
	ev := h.tick()
	for _, b := range bodies {
		h.update(b, func(m *msgHistory) { m.sendStart = ev })
	}
}

// sendAnswered records the answer to a send of bodies.
func (h *history) sendAnswered(bodies []string, res []store.SendResult) {
	ev := h.tick()
	for i, b := range bodies {
		h.update(b, func(m *msgHistory) {
			if res[i].Duplicate {
				m.dup = true
			} else {
				m.sent = ev
			}
		})
		if !res[i].Duplicate {
			h.live.Add(1)
			h.sent.Add(1)
		}
	}
}

// acking records that acks of bodies begin now; the returned index of
// each attempt is passed to ackAnswered.
func (h *history) acking(bodies []string) []int {
	ev := h.tick()
	idx := make([]int, len(bodies))
	for i, b := range bodies {
		h.update(b, func(m *msgHistory) {
			idx[i] = len(m.acks)
			m.acks = append(m.acks, ackAttempt{start: ev})
		})
	}
	return idx
}

// ackAnswered records the answers to acks begun by acking.
func (h *history) ackAnswered(bodies []string, idx []int, errs []error) {
	ev := h.tick()
	for i, b := range bodies {
		h.update(b, func(m *msgHistory) {
			m.acks[idx[i]].end = ev
			m.acks[idx[i]].ok = errs[i] == nil
		})
		if errs[i] == nil {
			h.live.Add(-1)
		}
	}
}

// crashReport is what the checker found in recovered stores.
type crashReport struct {
	points    int // crash images checked
	refused   int // images the store refused to open (reported, not excused)
	present   int // messages found, summed over images
	lost      int // answered sends missing, with no ack begun before the crash ended
	ackedBack int // messages whose ack was answered before the crash, found again
	phantoms  int // messages found that were never sent, or were answered as duplicates
	doubled   int // messages found twice in one recovered store
	counters  int // stats that disagree with what could be leased
	// deferredAcks: acks carried by leases whose sync was deferred (not a
	// failure: the count shows that path ran under the crash points)
	deferredAcks int
	examples     []string
}

func (r *crashReport) add(o crashReport) {
	r.points += o.points
	r.refused += o.refused
	r.present += o.present
	r.lost += o.lost
	r.ackedBack += o.ackedBack
	r.phantoms += o.phantoms
	r.doubled += o.doubled
	r.counters += o.counters
	r.deferredAcks += o.deferredAcks
	if len(r.examples) < 10 {
		r.examples = append(r.examples, o.examples[:min(len(o.examples), 10-len(r.examples))]...)
	}
}

func (r *crashReport) failures() int {
	return r.refused + r.lost + r.ackedBack + r.phantoms + r.doubled + r.counters
}

func (r *crashReport) note(format string, args ...any) {
	if len(r.examples) < 10 {
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
}

func (r *crashReport) String() string {
	return fmt.Sprintf("%d crash points, %d messages found, lost %d, acked-then-back %d, phantoms %d, doubled %d, counter mismatches %d, refused to open %d; %d acks carried with a deferred sync",
		r.points, r.present, r.lost, r.ackedBack, r.phantoms, r.doubled, r.counters, r.refused, r.deferredAcks)
}

// recoverAt is a time after the workloads' end: every lease has expired and
// every delay has come, while no retention or dedup window has run out.
var recoverAt = crashBase.Add(time.Hour)

var crashBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// checkRecovered compares a store recovered from a crash image, taken
// between events start and end, with the history:
//   - every message whose send was answered before start is there, unless
//     an ack of it began before end and did not fail;
//   - no message whose ack was answered before start is there;
//   - nothing is there that was not sent by end, or was answered as a
//     duplicate, and nothing is there twice;
//   - the stats agree with what can be leased: after Tick has done all due
//     work, nothing is delayed or in flight, each queue hands out exactly
//     Ready messages, a queue that never dead-letters has SentTotal -
//     AckedTotal = Ready, and Dead counts the queue's messages in its
//     dead-letter queue.
//
// It drains the store (leasing and acking everything).
func checkRecovered(s *Store, h *history, start, end int64) crashReport {
	ctx := context.Background()
	r := crashReport{points: 1}
	// One Tick does all due work of a store this small; the stats check
	// below would see what it left.
	if _, err := s.Tick(ctx, &store.TickParams{Now: recoverAt, Retry: retryNow}); err != nil {
		r.counters++
		r.note("tick: %v", err)
		return r
	}
	queues, err := s.ListQueues(ctx, &store.ListQueuesParams{Now: recoverAt})
	if err != nil {
		r.counters++
		r.note("list queues: %v", err)
		return r
	}
	found := map[string]int{}
	deadFrom := map[string]int64{}
	for _, q := range queues {
		st := q.Stats
		if st.Delayed != 0 || st.InFlight != 0 {
			r.counters++
			r.note("queue %s after all due work: %d delayed, %d in flight", q.Name, st.Delayed, st.InFlight)
		}
		// Only sends fill a queue that never dead-letters and is no
		// dead-letter queue itself.
		if q.Config.MaxAttempts == 0 && !strings.HasSuffix(q.Name, store.DeadSuffix) && st.SentTotal-st.AckedTotal != st.Ready {
			r.counters++
			r.note("queue %s: sent %d - acked %d != ready %d", q.Name, st.SentTotal, st.AckedTotal, st.Ready)
		}
		n, err := drainQueue(s, q.Name, func(m store.Message) {
			found[string(m.Body)]++
			if src := m.Headers[store.HeaderSourceQueue]; src != "" {
				deadFrom[src]++
			}
		})
		if err != nil {
			r.counters++
			r.note("drain %s: %v", q.Name, err)
		}
		if int64(n) != st.Ready {
			r.counters++
			r.note("queue %s: stats say %d ready, %d could be leased", q.Name, st.Ready, n)
		}
	}
	for _, q := range queues {
		if q.Stats.Dead != deadFrom[q.Name] {
			r.counters++
			r.note("queue %s: stats say %d dead-lettered, %d found in dead-letter queues", q.Name, q.Stats.Dead, deadFrom[q.Name])
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for body, n := range found {
		r.present++
		m, ok := h.msgs[body]
		switch {
		case n > 1:
			r.doubled++
			r.note("%s found %d times", body, n)
		case !ok || m.sendStart == 0 || m.sendStart > end:
			r.phantoms++
			r.note("%s found, never sent before the crash", body)
		case m.dup:
			r.phantoms++
			r.note("%s found, though its send was answered as a duplicate", body)
		}
		if ok {
			for _, a := range m.acks {
				if a.ok && a.end < start {
					r.ackedBack++
					r.note("%s found, though its ack was answered before the crash (event %d < %d)", body, a.end, start)
					break
				}
			}
		}
	}
	for body, m := range h.msgs {
		if m.sent == 0 || m.sent >= start || found[body] > 0 {
			continue
		}
		excused := false
		for _, a := range m.acks {
			if a.start < end && (a.ok || a.end == 0) {
				excused = true
			}
		}
		if !excused {
			r.lost++
			r.note("%s lost: its send was answered at event %d, before the crash at %d", body, m.sent, start)
		}
	}
	return r
}

// drainQueue leases every message of a queue as of recoverAt, calling fn
// for each, and returns how many there were. It acks what it leased only
// when a group member may be waiting behind it.
func drainQueue(s *Store, queue string, fn func(store.Message)) (int, error) {
	ctx := context.Background()
	n := 0
	for {
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: queue, Max: 1000, Visibility: time.Hour, Now: recoverAt, Retry: retryNow})
		if err != nil || len(res.Messages) == 0 {
			return n, err
		}
		n += len(res.Messages)
		var leases []string
		for _, m := range res.Messages {
			fn(m)
			if m.Group != "" {
				leases = append(leases, m.Lease)
			}
		}
		if len(leases) == 0 && len(res.Messages) < 1000 {
			return n, nil // everything leasable was handed out
		}
		errs, err := s.Ack(ctx, &store.AckParams{Queue: queue, Leases: leases, Now: recoverAt})
		if err != nil {
			return n, err
		}
		if i := slices.IndexFunc(errs, func(e error) bool { return e != nil }); i >= 0 {
			return n, fmt.Errorf("ack of a message just leased: %w", errs[i])
		}
	}
}

// testSeed is COURIER_SEED if set, else a fresh seed; the test logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("COURIER_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("COURIER_SEED=%q: %v", v, err)
		}
		t.Logf("seed %d (from COURIER_SEED)", seed)
		return seed
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (COURIER_SEED=%d reproduces the operations and crash choices; goroutine interleavings vary)", seed, seed)
	return seed
}

func unlimited(name string) store.QueueConfig {
	c := store.DefaultConfig(name)
	c.MaxAttempts = 0
	return c
}

func plenty() (uint64, error) { return 1 << 40, nil }
