package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier"
)

func TestAckNackExtend(t *testing.T) {
	t.Parallel()
	url := setup(t)
	for _, b := range []string{"1", "2", "3"} {
		ok(t, url, "send", "w", b)
	}
	var rr courier.ReceiveResult
	decode(t, ok(t, url, "recv", "w", "--max", "3", "--json"), &rr)
	if len(rr.Messages) != 3 {
		t.Fatalf("recv = %+v", rr)
	}
	m1, m2, m3 := rr.Messages[0], rr.Messages[1], rr.Messages[2]

	out := ok(t, url, "extend", "w", m1.Lease, "--visibility", "10m")
	if !strings.HasPrefix(out, "leased until ") {
		t.Errorf("extend: %q", out)
	}
	var ext courier.ExtendResult
	decode(t, ok(t, url, "extend", "w", m1.Lease, "--json"), &ext)
	if ext.LeaseExpiresAt.IsZero() {
		t.Errorf("extend --json = %+v", ext)
	}

	if out := ok(t, url, "nack", "w", m1.Lease, "--delay", "0s", "--error", "flaky"); !strings.HasPrefix(out, "handed back") {
		t.Errorf("nack: %q", out)
	}
	var nr courier.NackResult
	decode(t, ok(t, url, "nack", "w", m2.Lease, "--json", "--delay", "1h"), &nr)
	if nr.DeadLettered || nr.RetryAt == nil || nr.RetryAt.Before(time.Now().Add(59*time.Minute)) {
		t.Errorf("nack --delay 1h --json = %+v", nr)
	}

	// m1's lease is stale now: refused with its code, and exit 1.
	r := courierCmd(t.Context(), t, url, nil, "ack", "w", m1.Lease)
	if r.code != exitFailure || !strings.HasPrefix(r.stderr, "courier: ") || !strings.HasSuffix(r.stderr, "(lease_expired)\n") {
		t.Errorf("ack of a stale lease = %+v; want exit 1 and lease_expired", r)
	}
	// A batch applies the valid lease and reports the stale one.
	r = courierCmd(t.Context(), t, url, nil, "ack", "w", m3.Lease, m1.Lease, "--json")
	var ar courier.AckResult
	decode(t, r.stdout, &ar)
	if r.code != exitFailure || ar.Acked != 1 || len(ar.Failed) != 1 || ar.Failed[0].Lease != m1.Lease ||
		!strings.Contains(r.stderr, "1 of 2 leases not acknowledged") {
		t.Errorf("ack of a valid and a stale lease = %+v", r)
	}

	m := recvOne(t, url, "w") // m1 again, handed back at once
	if m.ID != m1.ID || m.Attempt != 2 {
		t.Errorf("after nack received %s attempt %d, want %s attempt 2", m.ID, m.Attempt, m1.ID)
	}
	// Released, it comes again at once with the same attempt.
	if out := ok(t, url, "nack", "--release", "w", m.Lease); !strings.HasPrefix(out, "handed back") {
		t.Errorf("nack --release: %q", out)
	}
	if m = recvOne(t, url, "w"); m.ID != m1.ID || m.Attempt != 2 {
		t.Errorf("after nack --release received %s attempt %d, want %s attempt 2 again", m.ID, m.Attempt, m1.ID)
	}
	ar = courier.AckResult{}
	decode(t, ok(t, url, "ack", "w", m.Lease, "--json"), &ar)
	if ar.Acked != 1 || len(ar.Failed) != 0 {
		t.Errorf("ack --json = %+v", ar)
	}
}
