package webhook_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/clock"
	"github.com/courierhq/courier/internal/netguard"
	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/pebblestore"
	"github.com/courierhq/courier/internal/webhook"
)

// newBroker is a broker over a fresh in-memory store on a fake clock, whose
// submit check is guard's.
func newBroker(t *testing.T, guard *netguard.Guard) (*broker.Broker, *clock.Fake) {
	t.Helper()
	st, err := pebblestore.Open(pebblestore.Options{Dir: "db", FS: vfs.NewMem(), CacheBytes: 1 << 20,
		FreeBytes: func() (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatalf("pebblestore.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	clk := clock.NewFake(t0)
	return broker.New(st, broker.Options{Clock: clk, CheckURL: guard.CheckURL}), clk
}

// TestWithRealBroker runs a task from submit to a delivered webhook through
// the broker and its store.
func TestWithRealBroker(t *testing.T) {
	t.Parallel()
	guard, err := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	b, clk := newBroker(t, guard)
	rc := newReceiver(t, ok(http.StatusOK))
	ctx := t.Context()

	task, err := b.Submit(ctx, "jobs", broker.TaskRequest{
		Message:   broker.Message{Body: []byte(`{"n":1}`), Kind: store.BodyJSON},
		NotifyURL: rc.URL + "/hook", NotifySecret: secret,
	})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	d := webhook.New(b, webhook.Options{Guard: guard, Clock: clk})
	t.Cleanup(func() { d.Stop(t.Context()) })
	if n := d.RunOnce(ctx); n != 0 {
		t.Fatalf("RunOnce before the task finished made %d attempts", n)
	}
	msgs, err := b.Receive(ctx, "jobs", broker.ReceiveOptions{})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive: %d messages, %v", len(msgs), err)
	}
	if errs, err := b.AckResults(ctx, "jobs", []string{msgs[0].Lease}, [][]byte{[]byte(`{"sum":3}`)}); err != nil || errs[0] != nil {
		t.Fatalf("AckResults: %v %v", errs, err)
	}
	if n := d.RunOnce(ctx); n != 1 {
		t.Fatalf("RunOnce made %d attempts, want 1", n)
	}

	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	body := reqs[0].body
	if err := courier.VerifyWebhook(secret, reqs[0].header.Get("Courier-Signature"), body, clk.Now(), 0); err != nil {
		t.Errorf("Verify: %v", err)
	}
	var p struct {
		ID     string          `json:"id"`
		State  string          `json:"state"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.ID != task.ID || p.State != "succeeded" || string(p.Result) != `{"sum":3}` {
		t.Errorf("payload %s (%v), want task %s succeeded with its result", body, err, task.ID)
	}
	got, err := b.GetTask(ctx, task.ID, 0)
	if err != nil {
		t.Fatalf("GetTask: %v", err)
	}
	if h := got.Webhook; !h.Delivered || h.Pending || len(h.Attempts) != 1 || h.Attempts[0].Status != 200 {
		t.Fatalf("webhook status %+v, want delivered with one 200 attempt", h)
	}
	if n := d.RunOnce(ctx); n != 0 {
		t.Fatalf("RunOnce after delivery made %d attempts", n)
	}
}

// TestSubmitRefusesDeniedLiterals checks the broker's submit-time check
// with the guard's CheckURL, shorthand forms included.
func TestSubmitRefusesDeniedLiterals(t *testing.T) {
	t.Parallel()
	guard, err := netguard.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newBroker(t, guard)
	for _, u := range []string{"http://127.0.0.1:9/", "http://127.1/", "http://2130706433/", "http://0x7f000001/",
		"http://0177.0.0.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/",
		"http://localhost/", "http://10.0.0.1/"} {
		_, err := b.Submit(t.Context(), "jobs", broker.TaskRequest{
			Message: broker.Message{Body: []byte(`{}`), Kind: store.BodyJSON}, NotifyURL: u, NotifySecret: secret})
		if !errors.Is(err, broker.ErrInvalid) || !strings.Contains(err.Error(), "notify.url") {
			t.Errorf("Submit with notify %s: err = %v, want ErrInvalid about notify.url", u, err)
		}
	}
	if _, err := b.Submit(t.Context(), "jobs", broker.TaskRequest{
		Message: broker.Message{Body: []byte(`{}`), Kind: store.BodyJSON}, NotifyURL: "https://hooks.example.com/x"}); err != nil {
		t.Errorf("Submit with a public name: %v", err)
	}
}

// TestFinishedTaskWakesDispatcher: a started dispatcher delivers a task's
// webhook as soon as the task finishes, woken by the store: its clock never
// moves, so its poll never comes.
func TestFinishedTaskWakesDispatcher(t *testing.T) {
	t.Parallel()
	guard, err := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	b, clk := newBroker(t, guard)
	got := make(chan string, 10)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		got <- r.Header.Get("Courier-Task-Id")
	})
	ctx := t.Context()
	d := webhook.New(b, webhook.Options{Guard: guard, Clock: clk})
	d.Start()
	t.Cleanup(func() { d.Stop(t.Context()) })
	for i := range 3 { // each finish wakes it anew
		task, err := b.Submit(ctx, "jobs", broker.TaskRequest{
			Message: broker.Message{Body: []byte(`1`), Kind: store.BodyJSON}, NotifyURL: rc.URL + "/hook"})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := b.Receive(ctx, "jobs", broker.ReceiveOptions{})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Receive: %d messages, %v", len(msgs), err)
		}
		if i == 1 { // a failure (dead-lettered at once) is an end too
			if err := b.Terminate(ctx, "jobs", msgs[0].Lease, "no"); err != nil {
				t.Fatal(err)
			}
		} else if errs, err := b.AckResults(ctx, "jobs", []string{msgs[0].Lease}, [][]byte{[]byte(`2`)}); err != nil || errs[0] != nil {
			t.Fatalf("AckResults: %v %v", errs, err)
		}
		if id := await(t, got, "the webhook"); id != task.ID {
			t.Fatalf("delivered %s, want %s", id, task.ID)
		}
	}
}
