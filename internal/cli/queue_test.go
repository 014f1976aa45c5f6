package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/courierhq/courier"
)

func TestQueueCreateGet(t *testing.T) {
	t.Parallel()
	url := setup(t)

	out := ok(t, url, "queue", "create", "orders", "--visibility-timeout", "45s", "--max-attempts", "3",
		"--dead-letter-queue", "orders.failed", "--retention", "24h", "--max-message-bytes", "2048",
		"--dedup-window", "1m", "--backoff-initial", "2s", "--backoff-max", "1m",
		"--backoff-multiplier", "3", "--backoff-jitter", "0.5")
	for _, want := range []string{"name:", "orders", "visibility timeout:", "45s", "max attempts:", "3",
		"initial 2s, max 1m0s, multiplier 3, jitter 0.5", "orders.failed", "24h0m0s", "2048", "1m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("queue create output lacks %q:\n%s", want, out)
		}
	}

	// An update sends only the flags given: the others keep their values.
	var q courier.Queue
	decode(t, ok(t, url, "--json", "queue", "create", "orders", "--max-attempts", "4"), &q)
	if q.Name != "orders" || q.MaxAttempts != 4 || q.VisibilityTimeout != "45s" || q.Backoff.Jitter != 0.5 {
		t.Errorf("queue create --json after update = %+v", q)
	}
	decode(t, ok(t, url, "queue", "get", "orders", "--json"), &q)
	if q.Name != "orders" || q.MaxAttempts != 4 {
		t.Errorf("queue get --json = %+v", q)
	}
	if out := ok(t, url, "queue", "get", "orders"); !strings.Contains(out, "max attempts:") || !strings.Contains(out, "4") {
		t.Errorf("queue get:\n%s", out)
	}

}

func TestQueueListPausePurgeRm(t *testing.T) {
	t.Parallel()
	url := setup(t)
	var q courier.Queue
	ok(t, url, "send", "orders", "1")
	ok(t, url, "send", "orders", "2")
	out := ok(t, url, "queue", "ls")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 ||
		strings.Join(strings.Fields(lines[0]), " ") != "NAME READY DELAYED IN FLIGHT DEAD OLDEST PAUSED" ||
		strings.Fields(lines[1])[0] != "orders" || strings.Fields(lines[1])[1] != "2" {
		t.Errorf("queue ls:\n%s", out)
	}
	var l courier.QueueList
	decode(t, ok(t, url, "queue", "ls", "--json"), &l)
	if len(l.Queues) != 1 || l.Queues[0].Stats.Ready != 2 {
		t.Errorf("queue ls --json = %+v", l)
	}

	if out := ok(t, url, "queue", "pause", "orders"); out != "paused queue \"orders\"\n" {
		t.Errorf("queue pause: %q", out)
	}
	decode(t, ok(t, url, "queue", "resume", "orders", "--json"), &q)
	if q.Paused {
		t.Errorf("queue resume --json = %+v, want not paused", q)
	}
	decode(t, ok(t, url, "queue", "pause", "orders", "--json"), &q)
	if !q.Paused {
		t.Errorf("queue pause --json = %+v, want paused", q)
	}
	if out := ok(t, url, "queue", "resume", "orders"); out != "resumed queue \"orders\"\n" {
		t.Errorf("queue resume: %q", out)
	}

	if out := ok(t, url, "queue", "purge", "orders"); out != "purged 2 messages from \"orders\"\n" {
		t.Errorf("queue purge: %q", out)
	}
	var p courier.PurgeResult
	decode(t, ok(t, url, "queue", "purge", "orders", "--json"), &p)
	if p.Purged != 0 {
		t.Errorf("second queue purge --json = %+v", p)
	}

	if out := ok(t, url, "queue", "rm", "orders"); out != "deleted queue \"orders\"\n" {
		t.Errorf("queue rm: %q", out)
	}
	r := courierCmd(t.Context(), t, url, nil, "queue", "get", "orders")
	if r.code != exitFailure || r.stdout != "" || !strings.HasPrefix(r.stderr, "courier: ") ||
		!strings.HasSuffix(r.stderr, "(queue_not_found)\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("queue get of a deleted queue: %+v; want exit 1 and one line naming queue_not_found", r)
	}
	ok(t, url, "queue", "create", "other")
	var del map[string]any
	decode(t, ok(t, url, "queue", "rm", "other", "--json"), &del)
	if del["queue"] != "other" || del["deleted"] != true {
		t.Errorf("queue rm --json = %v", del)
	}
	decode(t, ok(t, url, "queue", "ls", "--json"), &l)
	if l.Queues == nil || len(l.Queues) != 0 {
		t.Errorf("queue ls --json of no queues = %+v, want an empty list", l)
	}
}

func TestQueueRedrive(t *testing.T) {
	t.Parallel()
	url := setup(t)
	ok(t, url, "queue", "create", "work", "--max-attempts", "1")
	ok(t, url, "send", "work", `"job"`)
	for range 2 {
		var rr courier.ReceiveResult
		decode(t, ok(t, url, "recv", "work", "--json"), &rr)
		if len(rr.Messages) != 1 {
			t.Fatalf("recv = %+v", rr)
		}
		if out := ok(t, url, "nack", "work", rr.Messages[0].Lease); !strings.HasPrefix(out, "dead-lettered") {
			t.Errorf("nack at max attempts: %q", out)
		}
		if out := ok(t, url, "queue", "redrive", "work", "--max", "5"); out != "moved 1 message back to \"work\"\n" {
			t.Errorf("queue redrive: %q", out)
		}
	}
	var res courier.RedriveResult
	decode(t, ok(t, url, "queue", "redrive", "work", "--json"), &res)
	if res.Moved != 0 {
		t.Errorf("queue redrive --json with nothing dead = %+v", res)
	}
}

func TestQueueAPIError(t *testing.T) {
	t.Parallel()
	url := setup(t)
	r := courierCmd(t.Context(), t, url, nil, "queue", "create", "q", "--max-attempts", "-1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "max_attempts") || !strings.HasSuffix(r.stderr, "(invalid_argument)\n") {
		t.Errorf("queue create --max-attempts -1: %+v; want exit 1 naming the field and the code", r)
	}
}

// decode parses the JSON output of a command into v.
func decode(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("output is not the JSON expected (%v):\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("output has more than one JSON value:\n%s", out)
	}
}

// TestQueueZeroJitter sets a jitter of 0 on purpose: it must reach the server.
func TestQueueZeroJitter(t *testing.T) {
	t.Parallel()
	url := setup(t)
	ok(t, url, "queue", "create", "exact", "--backoff-jitter", "0")
	var q courier.Queue
	decode(t, ok(t, url, "--json", "queue", "get", "exact"), &q)
	if q.Backoff.Jitter != 0 || q.Backoff.Multiplier != 2 {
		t.Fatalf("backoff %+v; want jitter 0 and the default multiplier 2", q.Backoff)
	}
}
