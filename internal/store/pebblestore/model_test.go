package pebblestore

// Randomized round trips against a model of the queue: the check behind
// the store's reuse of memory (key slabs, scratch buffers, records read
// without their bodies for an ack, a lease's result sized once).

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// TestLeaseOfNothingIsNil: a lease that finds nothing answers nil
// messages (its result is made when the first message comes).
func TestLeaseOfNothingIsNil(t *testing.T) {
	t.Parallel()
	s := handoffStore(t, vfs.NewMem())
	res, err := s.Lease(context.Background(), &store.LeaseParams{Queue: "q", Max: 10, Now: handoffNow, Retry: retryNow})
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != nil {
		t.Errorf("Lease of an empty queue: Messages = %#v (cap %d), want nil", res.Messages, cap(res.Messages))
	}
}

type modelMsg struct {
	body    []byte
	headers map[string]string
	group   string
	acked   bool
}

// TestRandomRoundTrips drives sends (long group names past a key
// slot, inline and separate bodies, batches past regroupMin), leases,
// acks of 1 to 40 leases (through recReader and decodeMsgHead past
// ackIterMin, with repeats and stale leases), acks carried by leases,
// nacks, config changes and reopenings, and checks every delivery against
// what was sent, the counters against the model, and that every message
// is acked exactly once.
func TestRandomRoundTrips(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { t.Parallel(); randomRoundTrips(t, seed) })
	}
}

func randomRoundTrips(t *testing.T, seed uint64) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(seed, 7))
	fs := vfs.NewMem()
	open := func() *Store {
		s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	defer func() { s.Close() }()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tick := func() time.Time { now = now.Add(time.Millisecond); return now }
	cfg := store.DefaultConfig("q")
	cfg.MaxAttempts = 0
	cfg.VisibilityTimeout = time.Hour
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: cfg, Now: now}); err != nil {
		t.Fatal(err)
	}
	groups := []string{"", "", "", "g", strings.Repeat("long-group-name-", 4), strings.Repeat("x", 200)}
	sent := map[string]*modelMsg{}
	leased := map[string]string{} // lease -> id
	var stale []string
	zero := time.Duration(0)
	check := func(m store.Message) {
		want, ok := sent[m.ID]
		if !ok {
			t.Fatalf("leased unknown message %s", m.ID)
		}
		if want.acked {
			t.Fatalf("leased %s, already acked", m.ID)
		}
		if !bytes.Equal(m.Body, want.body) || !maps.Equal(m.Headers, want.headers) || m.Group != want.group {
			t.Fatalf("message %s: body %d bytes %q…, headers %v, group %q; sent %d bytes, %v, %q",
				m.ID, len(m.Body), m.Body[:min(8, len(m.Body))], m.Headers, m.Group, len(want.body), want.headers, want.group)
		}
		leased[m.Lease] = m.ID
	}
	ack := func(leases []string) []error {
		errs, err := s.Ack(ctx, &store.AckParams{Queue: "q", Leases: leases, Now: tick()})
		if err != nil {
			t.Fatal(err)
		}
		return errs
	}
	pickLeases := func(n int) []string {
		var out []string
		for l := range leased {
			if len(out) == n {
				break
			}
			out = append(out, l)
		}
		return out
	}
	settle := func(leases []string, errs []error) {
		done := map[string]bool{}
		for i, l := range leases {
			id, ok := leased[l]
			switch {
			case ok && !done[l]:
				if errs[i] != nil {
					t.Fatalf("ack of live lease %s: %v", l, errs[i])
				}
				sent[id].acked = true
				done[l] = true
			case errs[i] != store.ErrLeaseExpired && errs[i] != store.ErrInvalidLease:
				t.Fatalf("ack of stale or repeated lease %s: %v", l, errs[i])
			}
		}
		for l := range done {
			delete(leased, l)
			stale = append(stale, l)
		}
	}
	for step := 0; step < 250; step++ {
		switch op := rnd.IntN(10); {
		case op < 3:
			n := 1 + rnd.IntN(40)
			msgs := make([]store.NewMessage, n)
			for i := range msgs {
				size := rnd.IntN(200)
				if rnd.IntN(8) == 0 {
					size = inlineMax - 2 + rnd.IntN(5)
				}
				body := make([]byte, size)
				for j := range body {
					body[j] = byte(rnd.Uint32())
				}
				var h map[string]string
				if rnd.IntN(3) == 0 {
					h = map[string]string{"k": fmt.Sprint(rnd.IntN(100)), "z": "v"}
				}
				msgs[i] = store.NewMessage{Body: body, Kind: store.BodyBinary, Headers: h,
					Group: groups[rnd.IntN(len(groups))], Priority: rnd.IntN(5)}
			}
			res, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs, Now: tick()})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				sent[r.ID] = &modelMsg{body: bytes.Clone(msgs[i].Body), headers: maps.Clone(msgs[i].Headers), group: msgs[i].Group}
			}
		case op < 6:
			p := &store.LeaseParams{Queue: "q", Max: 1 + rnd.IntN(60), Now: tick(), Retry: retryNow}
			var carried []string
			if rnd.IntN(2) == 0 {
				carried = pickLeases(rnd.IntN(20))
				if len(stale) > 0 {
					carried = append(carried, stale[rnd.IntN(len(stale))])
				}
				p.Acks = carried
			}
			if rnd.IntN(4) == 0 {
				p.MaxBytes = 1 + rnd.IntN(2000)
			}
			res, err := s.Lease(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if carried != nil {
				settle(carried, res.Acked)
			}
			for _, m := range res.Messages {
				check(m)
			}
		case op < 8:
			leases := pickLeases(1 + rnd.IntN(40))
			if len(leases) > 0 && rnd.IntN(2) == 0 {
				leases = append(leases, leases[0]) // acked twice in one call
			}
			if len(stale) > 0 {
				leases = append(leases, stale[rnd.IntN(len(stale))])
			}
			leases = append(leases, "bogus")
			settle(leases, ack(leases))
		case op < 9:
			for _, l := range pickLeases(1 + rnd.IntN(3)) {
				if _, err := s.Nack(ctx, &store.NackParams{Queue: "q", Lease: l, Delay: &zero, Now: tick(), Retry: retryNow}); err != nil {
					t.Fatal(err)
				}
				delete(leased, l)
				stale = append(stale, l)
			}
		default:
			if rnd.IntN(2) == 0 {
				cfg.VisibilityTimeout = time.Hour + time.Duration(rnd.IntN(100))*time.Second
				if _, err := s.UpdateQueue(ctx, &store.UpdateQueueParams{Name: "q", Config: cfg, Now: tick()}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open()
			q, err := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if q.Config != cfg {
				t.Fatalf("config after reopening %+v, want %+v", q.Config, cfg)
			}
		}
		q, err := s.GetQueue(ctx, &store.GetQueueParams{Name: "q", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		open := 0
		for _, m := range sent {
			if !m.acked {
				open++
			}
		}
		if q.Stats.InFlight != int64(len(leased)) || q.Stats.Ready+q.Stats.InFlight+q.Stats.Delayed != int64(open) {
			t.Fatalf("step %d: stats %+v; model: %d in flight, %d not acked", step, q.Stats, len(leased), open)
		}
	}
	// Drain: everything not acked comes out once more, and then nothing.
	if rest := pickLeases(len(leased)); len(rest) > 0 {
		settle(rest, ack(rest))
	}
	for {
		res, err := s.Lease(ctx, &store.LeaseParams{Queue: "q", Max: 1000, Now: tick(), Retry: retryNow})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			break
		}
		var ls []string
		for _, m := range res.Messages {
			check(m)
			ls = append(ls, m.Lease)
		}
		settle(ls, ack(ls))
	}
	for id, m := range sent {
		if !m.acked {
			t.Errorf("message %s was never delivered after the drain", id)
		}
	}
	checkSingleDeletes(t, s, true)
}
