package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pebblestore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is a handler over a broker over a real Pebble store in a temp dir,
// with a fake clock (so nothing waits on the wall clock) and a store wrapper
// that can inject errors.
type fixture struct {
	t   testing.TB
	h   http.Handler
	b   *broker.Broker
	st  *faultStore
	clk *clock.Fake
}

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func setup(t testing.TB) *fixture {
	return setupWith(t, Options{})
}

// setupWith uses o, filling in the broker.
func setupWith(t testing.TB, o Options) *fixture {
	t.Helper()
	ps, err := pebblestore.Open(pebblestore.Options{Dir: t.TempDir(), CacheBytes: 1 << 20,
		FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	f := &fixture{t: t, st: &faultStore{Store: ps}, clk: clock.NewFake(t0)}
	bo := broker.Options{Clock: f.clk}
	if o.Metrics != nil {
		bo.Observer = o.Metrics
	}
	f.b = broker.New(f.st, bo)
	if o.Metrics != nil {
		o.Metrics.CollectQueues(f.b)
	}
	o.Broker = f.b
	f.h = New(o)
	return f
}

// do sends a request; a non-empty body goes with Content-Type: application/json.
func (f *fixture) do(method, path, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.doCtx(context.Background(), method, path, body)
}

func (f *fixture) doCtx(ctx context.Context, method, path, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// must sends a request that must answer want, and decodes the answer into out.
func (f *fixture) must(method, path, body string, want int, out any) {
	f.t.Helper()
	w := f.do(method, path, body)
	if w.Code != want {
		f.t.Fatalf("%s %s %s: status %d, want %d; body %s", method, path, body, w.Code, want, w.Body)
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			f.t.Fatalf("%s %s: decode %s: %v", method, path, w.Body, err)
		}
	}
}

func (f *fixture) queue(name string) courier.Queue {
	f.t.Helper()
	var q courier.Queue
	f.must("GET", "/v1/queues/"+name, "", 200, &q)
	return q
}

func (f *fixture) queueNames() []string {
	f.t.Helper()
	var l courier.QueueList
	f.must("GET", "/v1/queues", "", 200, &l)
	var names []string
	for _, q := range l.Queues {
		names = append(names, q.Name)
	}
	return names
}

// errorOf decodes an error answer, failing when it is not one.
func errorOf(t testing.TB, w *httptest.ResponseRecorder) courier.ErrorDetail {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", ct, w.Body)
	}
	var eb courier.ErrorBody
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body is not {\"error\":{code,message}}: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("data after the error body")
	}
	if eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("error body lacks code or message: %+v", eb)
	}
	return eb.Error
}

// faultStore passes calls to a real store, except that it fails (or panics)
// on Send, Lease and Ready when told to.
type faultStore struct {
	store.Store
	mu    sync.Mutex // guards err, panic
	err   error
	panic bool
}

func (s *faultStore) set(err error, panic bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err, s.panic = err, panic
}

func (s *faultStore) fault() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panic {
		panic("injected panic")
	}
	return s.err
}

func (s *faultStore) Send(ctx context.Context, p *store.SendParams) ([]store.SendResult, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	return s.Store.Send(ctx, p)
}

func (s *faultStore) Lease(ctx context.Context, p *store.LeaseParams) (store.LeaseResult, error) {
	if err := s.fault(); err != nil {
		return store.LeaseResult{}, err
	}
	return s.Store.Lease(ctx, p)
}

func (s *faultStore) Ready(ctx context.Context) error {
	if err := s.fault(); err != nil {
		return err
	}
	return s.Store.Ready(ctx)
}

// decodeStrict decodes b into v, refusing fields v does not have: answers
// must carry nothing the wire types do not know.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// with is f reporting to t: a fuzz target must not report to its *testing.F.
func (f *fixture) with(t testing.TB) *fixture {
	g := *f
	g.t = t
	return &g
}
