package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/history"
)

// callTimeout bounds every call: a call that takes longer means the server
// hangs, which the test reports (as an unexpected error).
const callTimeout = 20 * time.Second

// harness runs one courier server at a time on one data directory (or, as
// nodes of a cluster, on one database), lets workers call whichever is
// current, injects faults, and records the history.
type harness struct {
	t    *testing.T
	log  *history.Log
	seed uint64
	via  func(url string) string // the URL clients call for a server's; nil: the server's own
	// launch starts a server: on dir, or a node on the test's database.
	launch func() (*server, error)

	mu      sync.Mutex // guards the fields below
	srv     *server
	client  *courier.Client
	gen     int           // generation: 1 for the first server, +1 per restart
	down    bool          // the server of gen is being killed or stopped
	up      chan struct{} // closed, and replaced, when a new generation is up
	clients []*courier.Client
	faults  int
	odd     []string // unexpected errors: the first few
	nOdd    int
}

// newHarness starts the first server on a fresh data directory.
func newHarness(t *testing.T, seed uint64) *harness { return newHarnessVia(t, seed, nil) }

// newHarnessVia is newHarness with clients that call via(url) instead of a
// server's url: a proxy in between.
func newHarnessVia(t *testing.T, seed uint64, via func(string) string) *harness {
	dir := t.TempDir()
	return newHarnessLaunch(t, seed, via, func() (*server, error) { return startServer(t, dir) })
}

// newHarnessLaunch is a harness whose servers launch starts.
func newHarnessLaunch(t *testing.T, seed uint64, via func(string) string, launch func() (*server, error)) *harness {
	h := &harness{t: t, log: history.NewLog(), seed: seed, via: via, launch: launch, up: make(chan struct{})}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.clients {
			c.CloseIdleConnections()
		}
	})
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	return h
}

// start starts a server on the data directory and makes it current.
func (h *harness) start() error {
	s, err := h.launch()
	if err != nil {
		return err
	}
	h.adopt(s)
	return nil
}

// adopt makes s, a running server, the current one.
func (h *harness) adopt(s *server) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	url := s.url
	if h.via != nil {
		url = h.via(url)
	}
	c := courier.NewClient(url, courier.WithHTTPClient(&http.Client{Transport: tr}))
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client != nil {
		h.client.CloseIdleConnections()
	}
	h.srv, h.client, h.down = s, c, false
	h.gen++
	h.clients = append(h.clients, c)
	close(h.up)
	h.up = make(chan struct{})
}

// current returns the client of the current server and its generation.
func (h *harness) current() (*courier.Client, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.client, h.gen
}

func (h *harness) server() *server {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.srv
}

// fault marks the current server as going down, records it, and returns
// it; the caller then kills or stops it, and calls restart.
func (h *harness) fault(what string) *server {
	h.mu.Lock()
	h.down = true
	h.faults++
	s := h.srv
	h.mu.Unlock()
	h.log.Crash(what)
	return s
}

// restart starts a new server on the same data and records it.
func (h *harness) restart() error {
	if err := h.start(); err != nil {
		return err
	}
	h.log.Restart(h.server().url)
	return nil
}

// faulted reports whether the server of generation gen has been (or is
// being) killed or stopped, which explains any error of a call to it.
func (h *harness) faulted(gen int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return gen < h.gen || h.down
}

// awaitNewer blocks until a server newer than generation gen is up, or
// stop is closed (false).
func (h *harness) awaitNewer(stop <-chan struct{}, gen int) bool {
	for {
		h.mu.Lock()
		ok, up := h.gen > gen && !h.down, h.up
		h.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-up:
		case <-stop:
			return false
		}
	}
}

// ender is the error side of a call in the history.
type ender interface {
	Failed(error)
	Unknown(error)
}

// fail records err as the outcome of a call to the server of generation gen.
// An error proving the call changed nothing (a 4xx, a refused connection) is
// Failed; any other (a broken connection, a timeout, a 5xx) is Unknown. Errors matching one of expected, and errors
// that a fault of the server explains, are part of the test; any other is
// noted as unexpected, and fails the test at the end.
func (h *harness) fail(c ender, gen int, what string, err error, expected ...error) history.Outcome {
	var ae *courier.Error
	isAPI := errors.As(err, &ae)
	out := history.Unknown
	if isAPI && ae.Status < 500 || errors.Is(err, syscall.ECONNREFUSED) {
		out = history.Failed
		c.Failed(err)
	} else {
		c.Unknown(err)
	}
	for _, e := range expected {
		if errors.Is(err, e) {
			return out
		}
	}
	// A fault explains a broken connection, a refused one, and a 503 while
	// the server stops; never another error answer.
	if isAPI && ae.Status != http.StatusServiceUnavailable || !h.faulted(gen) {
		h.mu.Lock()
		h.nOdd++
		if len(h.odd) < 10 {
			h.odd = append(h.odd, fmt.Sprintf("%s (server %d): %v", what, gen, err))
		}
		h.mu.Unlock()
	}
	return out
}

// checkUnexpected fails the test if any call failed in a way no fault
// explains.
func (h *harness) checkUnexpected() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nOdd > 0 {
		h.t.Errorf("%d unexpected errors (seed %d), the first:\n  %s", h.nOdd, h.seed, strings.Join(h.odd, "\n  "))
	}
}

// setupQueue creates the test queue: unlimited attempts (nothing is
// dead-lettered, so every message must end acked), a short visibility so
// that leases expire during the test, and a short, exact backoff so that
// expired and nacked messages come back quickly.
func (h *harness) setupQueue(queue string, vis time.Duration) {
	h.t.Helper()
	c, _ := h.current()
	v, attempts := vis.String(), 0
	initial, maxDelay, mult, jitter := "10ms", "100ms", 2.0, 0.0
	ctx, cancel := context.WithTimeout(h.t.Context(), callTimeout)
	defer cancel()
	_, err := c.PutQueue(ctx, queue, courier.QueueSettings{VisibilityTimeout: &v, MaxAttempts: &attempts,
		Backoff: &courier.BackoffSettings{Initial: &initial, Max: &maxDelay, Multiplier: &mult, Jitter: &jitter}})
	if err != nil {
		h.t.Fatalf("put queue: %v", err)
	}
}

// backoffMax is the longest retry delay of the test queue.
const backoffMax = 100 * time.Millisecond

// drain receives and acks until the queue has handed out nothing for quiet
// (longer than a lease and a backoff, so that every lease of the load has
// expired and its message come back) and its stats say it is empty. It
// fails after limit. It returns the queue's final stats.
func (h *harness) drain(queue string, quiet, limit time.Duration) (courier.QueueStats, error) {
	const vis = 30 * time.Second // no lease of the drain expires
	c, gen := h.current()
	start := time.Now()
	last := start
	for {
		if time.Since(start) > limit {
			return courier.QueueStats{}, fmt.Errorf("drain: still receiving after %v", limit)
		}
		ctx, cancel := context.WithTimeout(h.t.Context(), callTimeout)
		rc := h.log.Receive(vis)
		msgs, err := c.Receive(ctx, queue, courier.ReceiveRequest{Max: 100, Wait: "1s", Visibility: vis.String()})
		cancel()
		if err != nil {
			h.fail(rc, gen, "drain: receive", err)
			return courier.QueueStats{}, fmt.Errorf("drain: receive: %w", err)
		}
		rc.OK(deliveries(msgs)...)
		if len(msgs) > 0 {
			last = time.Now()
			leases := make([]string, len(msgs))
			for i, m := range msgs {
				leases[i] = m.Lease
			}
			if err := h.ack(c, gen, queue, leases, "drain: ack"); err != nil {
				return courier.QueueStats{}, err
			}
			continue
		}
		if time.Since(last) < quiet {
			continue
		}
		ctx, cancel = context.WithTimeout(h.t.Context(), callTimeout)
		q, err := c.GetQueue(ctx, queue)
		cancel()
		if err != nil {
			return courier.QueueStats{}, fmt.Errorf("drain: get queue: %w", err)
		}
		st := q.Stats
		if st.Ready == 0 && st.Delayed == 0 && st.InFlight == 0 && st.Dead == 0 {
			h.t.Logf("drained in %v: sent_total=%d acked_total=%d", time.Since(start).Round(time.Millisecond),
				st.SentTotal, st.AckedTotal)
			return st, nil
		}
		if time.Since(start) > limit {
			return st, fmt.Errorf("drain: after %v, nothing received for %v, yet the queue holds ready=%d delayed=%d in_flight=%d dead=%d",
				limit, time.Since(last).Round(time.Millisecond), st.Ready, st.Delayed, st.InFlight, st.Dead)
		}
	}
}

// crossCheck compares the server's counters after a full drain with the
// history: every message the server stored (unknown sends that landed
// included, which the history cannot hold to account) was received, and
// each was acked exactly once.
func (h *harness) crossCheck(st courier.QueueStats, r history.Report) {
	if st.SentTotal != int64(r.Received) || st.AckedTotal != int64(r.Received) {
		h.t.Errorf("seed %d: the server stored %d messages and acked %d, the clients received %d distinct ones",
			h.seed, st.SentTotal, st.AckedTotal, r.Received)
	}
}

// ack acknowledges leases in one call (a batch ack for several) and records
// it. A refused lease is not an error; a failed call is returned.
func (h *harness) ack(c *courier.Client, gen int, queue string, leases []string, what string,
	expected ...error) error {
	ctx, cancel := context.WithTimeout(h.t.Context(), callTimeout)
	defer cancel()
	ac := h.log.Ack(leases...)
	var err error
	if len(leases) == 1 {
		err = c.Ack(ctx, queue, leases[0])
		if err == nil {
			ac.OK()
		}
	} else {
		var res courier.AckResult
		res, err = c.AckBatch(ctx, queue, leases)
		if err == nil {
			refused := make([]string, len(res.Failed))
			for i, f := range res.Failed {
				refused[i] = f.Lease
			}
			ac.OK(refused...)
		}
	}
	if err != nil {
		h.fail(ac, gen, what, err, expected...)
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// deliveries turns received messages into the history's deliveries.
func deliveries(msgs []courier.Message) []history.Delivery {
	ds := make([]history.Delivery, len(msgs))
	for i, m := range msgs {
		ds[i] = history.Delivery{ID: m.ID, Body: string(m.Body), Lease: m.Lease, Attempt: m.Attempt,
			LeaseExpiresAt: m.LeaseExpiresAt}
	}
	return ds
}

// conclude drains the queue of w, halted, within limit and checks the
// history: the verdict (see verdict, which gets name, faultName and
// extra), then the server's counters against it.
func (h *harness) conclude(w *workload, limit time.Duration, name, faultName, extra string) history.Report {
	st, err := h.drain(w.queue, w.vis+backoffMax+time.Second, limit)
	if err != nil {
		h.t.Errorf("seed %d: %v", h.seed, err)
	}
	h.checkUnexpected()
	r := h.verdict(name, faultName, extra)
	if err == nil {
		h.crossCheck(st, r)
	}
	return r
}

// verdict checks the history, prints the test's summary line — name, seed,
// faults (counted as faultName), then the report — and fails the test on
// any violation, showing the first ones with their history and writing the
// whole history to a file.
func (h *harness) verdict(name, faultName, extra string) history.Report {
	r := h.report()
	h.mu.Lock()
	faults := h.faults
	h.mu.Unlock()
	h.t.Logf("summary %s: seed=%d %s=%d %v;%s", name, h.seed, faultName, faults, r, extra)
	if r.OK() {
		return r
	}
	var b strings.Builder
	for i, v := range r.Violations {
		if i == 10 {
			fmt.Fprintf(&b, "… and %d more\n", len(r.Violations)-i)
			break
		}
		fmt.Fprintf(&b, "%v\n", v)
		for _, e := range h.log.Excerpt(strings.Split(v.ID, ",")[0], v.Body) {
			fmt.Fprintf(&b, "    %v\n", e)
		}
	}
	h.t.Errorf("history check failed (seed %d; COURIER_SEED=%d replays the workload):\n%s%s", h.seed, h.seed,
		b.String(), h.saveHistory(name))
	return r
}

// report logs the errors the calls met and checks the history.
func (h *harness) report() history.Report {
	h.logErrors()
	return history.Check(h.log)
}

// saveHistory writes every event to a file that outlives the test, and
// says where.
func (h *harness) saveHistory(name string) string {
	f, err := os.CreateTemp("", "courier-history-"+name+"-"+strconv.FormatUint(h.seed, 10)+"-*.txt")
	if err != nil {
		return fmt.Sprintf("(history not saved: %v)", err)
	}
	defer f.Close()
	for _, e := range h.log.Events() {
		fmt.Fprintln(f, e)
	}
	return "the whole history: " + filepath.ToSlash(f.Name())
}

// logErrors logs how many calls ended in each kind of error, with the
// addresses taken out, so that a reader sees what the faults did to the
// clients.
func (h *harness) logErrors() {
	counts := make(map[string]int)
	for _, e := range h.log.Events() {
		if e.Outcome == history.Failed || e.Outcome == history.Unknown {
			counts[fmt.Sprintf("%s %s: %s", e.Op, e.Outcome, addrs.ReplaceAllString(e.Detail, "…"))]++
		}
	}
	keys := slices.Sorted(maps.Keys(counts))
	for _, k := range keys {
		h.t.Logf("errors: %6d × %s", counts[k], k)
	}
}

var addrs = regexp.MustCompile(`127\.0\.0\.1:\d+|/v1/queues/[^" ]*`)

// seed is COURIER_SEED, or a fresh seed from the clock; it is logged with
// how to replay it.
func seed(t *testing.T) uint64 {
	t.Helper()
	n := uint64(time.Now().UnixNano())
	if s := os.Getenv("COURIER_SEED"); s != "" {
		var err error
		if n, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("COURIER_SEED=%q: want an unsigned integer", s)
		}
	}
	t.Logf("seed %d (COURIER_SEED=%d replays the workload)", n, n)
	return n
}

// between is a random duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// jsonBody is a message body: the JSON string s.
func jsonBody(s string) json.RawMessage { return json.RawMessage(strconv.Quote(s)) }
