package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

func testAck(t *testing.T, newStore newStoreFunc) {
	t.Run("Deletes", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		ids := e.sendText("q", "1", "2")
		got := e.lease("q", 2)
		e.ackOK("q", got[0].Lease)
		wantStats(t, "after ack", e.stats("q"), store.Stats{InFlight: 1, SentTotal: 2, AckedTotal: 1})
		// Long after both leases would have expired, only the unacked
		// message comes back.
		e.advance(time.Hour)
		e.tick()
		m := e.leaseOne("q", ids[1])
		if m.Attempt != 2 {
			t.Errorf("attempt %d, want 2", m.Attempt)
		}
		e.ackOK("q", m.Lease)
		wantStats(t, "end", e.stats("q"), store.Stats{SentTotal: 2, AckedTotal: 2})
	})

	t.Run("Twice", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.sendText("q", "1")
		m := e.lease("q", 1)[0]
		e.ackOK("q", m.Lease)
		errs := e.ack("q", m.Lease)
		wantErr(t, "second Ack", errs[0], store.ErrLeaseExpired)
		if s := e.stats("q"); s.AckedTotal != 1 {
			t.Errorf("AckedTotal %d after a refused second ack, want 1", s.AckedTotal)
		}
	})

	t.Run("Garbage", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.sendText("q", "1")
		m := e.lease("q", 1)[0]
		// A malformed token may be refused as invalid or as expired.
		bad := []string{"", "garbage", "not a lease!", "0", "....", strings.Repeat("A", 10000), "\x00\xff", tamper(m.Lease), m.Lease + "x"}
		for i, err := range e.ack("q", bad...) {
			wantErr(t, "Ack("+shorten(bad[i])+")", err, store.ErrInvalidLease, store.ErrLeaseExpired)
		}
		for _, l := range bad[:4] {
			_, err := e.nack("q", l, nil, "")
			wantErr(t, "Nack("+l+")", err, store.ErrInvalidLease, store.ErrLeaseExpired)
		}
		wantStats(t, "after garbage", e.stats("q"), store.Stats{InFlight: 1, SentTotal: 1})
		e.ackOK("q", m.Lease)
	})

	t.Run("AfterExpiry", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.VisibilityTimeout = 10 * time.Second
		cfg.Backoff.Initial = 0
		e.createQueue("q", cfg)
		ids := e.sendText("q", "1", "2")
		got := e.lease("q", 2)
		// Choice: a lease is valid while Now < LeaseExpiresAt and expired from
		// LeaseExpiresAt on (the instant Lease reports as NextDue).
		e.set(base.Add(10*time.Second - time.Millisecond))
		e.ackOK("q", got[1].Lease)
		e.set(base.Add(10 * time.Second))
		errs := e.ack("q", got[0].Lease)
		wantErr(t, "Ack at LeaseExpiresAt", errs[0], store.ErrLeaseExpired)
		m := e.leaseOne("q", ids[0])
		if m.Attempt != 2 {
			t.Errorf("redelivered with attempt %d, want 2", m.Attempt)
		}
		if m.Lease == got[0].Lease {
			t.Error("redelivery reuses the old lease token")
		}
		wantBody(t, m, []byte("1"), store.BodyJSON)
		wantTime(t, "SentAt of the redelivery", m.SentAt, base)
		e.ackOK("q", m.Lease)
		wantStats(t, "end", e.stats("q"), store.Stats{SentTotal: 2, AckedTotal: 2})
	})

	t.Run("Fencing", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		cfg := config()
		cfg.VisibilityTimeout = 10 * time.Second
		e.createQueue("q", cfg) // backoff 5s
		ids := e.sendText("q", "1")
		old := e.leaseOne("q", ids[0])
		// Expired, waiting for its retry, not yet redelivered: the old
		// lease is refused all the same.
		e.set(base.Add(12 * time.Second))
		e.leaseNone("q")
		wantErr(t, "Ack of an expired lease", e.ack("q", old.Lease)[0], store.ErrLeaseExpired)
		e.set(base.Add(15 * time.Second))
		cur := e.leaseOne("q", ids[0])
		// Redelivered: every verb refuses the old lease and changes nothing.
		wantErr(t, "Ack(old)", e.ack("q", old.Lease)[0], store.ErrLeaseExpired)
		_, err := e.nack("q", old.Lease, ptr(0), "stale")
		wantErr(t, "Nack(old)", err, store.ErrLeaseExpired)
		_, err = e.extend("q", old.Lease, time.Hour)
		wantErr(t, "Extend(old)", err, store.ErrLeaseExpired)
		e.leaseNone("q")
		wantStats(t, "after stale calls", e.stats("q"), store.Stats{InFlight: 1, SentTotal: 1})
		e.ackOK("q", cur.Lease)
	})

	t.Run("BatchPerLease", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.sendText("q", "a", "b", "c", "d")
		got := e.lease("q", 4)
		a, b, c, d := got[0], got[1], got[2], got[3]
		e.ackOK("q", d.Lease)
		errs := e.ack("q", a.Lease, "garbage", b.Lease, a.Lease, d.Lease, tamper(c.Lease))
		// Choice: a lease repeated in one batch is applied once; the
		// repetition is refused as expired.
		want := [][]error{
			{nil},
			{store.ErrInvalidLease, store.ErrLeaseExpired},
			{nil},
			{store.ErrLeaseExpired},
			{store.ErrLeaseExpired},
			{store.ErrInvalidLease, store.ErrLeaseExpired},
		}
		for i, w := range want {
			if w[0] == nil {
				if errs[i] != nil {
					t.Errorf("lease %d: %v, want nil", i, errs[i])
				}
				continue
			}
			wantErr(t, fmt.Sprint("lease ", i), errs[i], w...)
		}
		wantStats(t, "after batch", e.stats("q"), store.Stats{InFlight: 1, SentTotal: 4, AckedTotal: 3})
		e.ackOK("q", c.Lease)
	})

	// Enough leases in one Ack that a store may read them another way (out
	// of order, repeated, one freeing the next of its group): the same rules.
	t.Run("ManyLeases", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.sendText("q", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
		e.send("q", gmsg(`"g1"`, "g"), gmsg(`"g2"`, "g"))
		got := e.lease("q", 20) // the ten, and g1; g2 waits behind it
		if len(got) != 11 {
			t.Fatalf("leased %d, want 11", len(got))
		}
		leases := []string{got[9].Lease, got[10].Lease, got[0].Lease}
		for _, m := range got[1:9] {
			leases = append(leases, m.Lease)
		}
		leases = append(leases, got[0].Lease, "garbage", got[10].Lease, got[5].Lease)
		errs := e.ack("q", leases...)
		for i := range 11 {
			if errs[i] != nil {
				t.Errorf("lease %d: %v, want nil", i, errs[i])
			}
		}
		for i := 11; i < len(leases); i++ {
			wantErr(t, fmt.Sprint("repeated or bad lease ", i), errs[i], store.ErrLeaseExpired, store.ErrInvalidLease)
		}
		wantStats(t, "after the batch", e.stats("q"), store.Stats{Ready: 1, SentTotal: 12, AckedTotal: 11, OldestReady: base})
		m := e.lease("q", 5)
		if len(m) != 1 {
			t.Fatalf("after the batch, leased %d, want g2 alone", len(m))
		}
		wantBody(t, m[0], []byte(`"g2"`), store.BodyJSON)
		e.ackOK("q", m[0].Lease)
	})

	t.Run("WrongQueue", func(t *testing.T) {
		t.Parallel()
		e := setup(t, newStore)
		e.createQueue("q", config())
		e.createQueue("other", config())
		e.sendText("q", "1")
		e.sendText("other", "2")
		m := e.lease("q", 1)[0]
		e.lease("other", 1)
		// A lease is only good in its own queue.
		wantErr(t, "Ack in another queue", e.ack("other", m.Lease)[0], store.ErrLeaseExpired, store.ErrInvalidLease)
		_, err := e.nack("other", m.Lease, ptr(0), "")
		wantErr(t, "Nack in another queue", err, store.ErrLeaseExpired, store.ErrInvalidLease)
		_, err = e.extend("other", m.Lease, time.Hour)
		wantErr(t, "Extend in another queue", err, store.ErrLeaseExpired, store.ErrInvalidLease)
		// In a missing queue: refused as a whole or per lease.
		res, err := e.s.Ack(e.ctx, &store.AckParams{Queue: "missing", Leases: []string{m.Lease}, Now: e.now})
		if err == nil {
			if len(res) != 1 {
				t.Fatalf("Ack in a missing queue returned %d results", len(res))
			}
			err = res[0]
		}
		wantErr(t, "Ack in a missing queue", err, store.ErrQueueNotFound, store.ErrLeaseExpired, store.ErrInvalidLease)
		wantStats(t, "q", e.stats("q"), store.Stats{InFlight: 1, SentTotal: 1})
		wantStats(t, "other", e.stats("other"), store.Stats{InFlight: 1, SentTotal: 1})
		e.ackOK("q", m.Lease)
	})
}

// tamper changes one character in the middle of a lease token to another
// of the same class, so the result is still plausible but not the token.
func tamper(lease string) string {
	if lease == "" {
		return "x"
	}
	b := []byte(lease)
	i := len(b) / 2
	switch c := b[i]; {
	case c >= '0' && c <= '9':
		b[i] = '0' + (c-'0'+1)%10
	case c >= 'a' && c <= 'z':
		b[i] = 'a' + (c-'a'+1)%26
	case c >= 'A' && c <= 'Z':
		b[i] = 'A' + (c-'A'+1)%26
	case c == 'x':
		b[i] = 'y'
	default:
		b[i] = 'x'
	}
	return string(b)
}

func shorten(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
