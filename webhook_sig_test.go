package courier_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/courierhq/courier"
)

// t0 is when the signatures of these tests are made.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestSignWebhookMatchesTheDocumentedScheme(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"t1"}`)
	m := hmac.New(sha256.New, []byte("k"))
	fmt.Fprintf(m, "%d.%s", t0.Unix(), body)
	want := fmt.Sprintf("t=%d,v1=%s", t0.Unix(), hex.EncodeToString(m.Sum(nil)))
	if got := courier.SignWebhook("k", t0, body); got != want {
		t.Fatalf("SignWebhook = %q, want %q", got, want)
	}
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"t1","state":"succeeded"}`)
	sig := courier.SignWebhook("k", t0, body)
	other := courier.SignWebhook("old-key", t0, body)
	for _, tc := range []struct {
		name      string
		secret    string
		header    string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error // nil = valid
	}{
		{"valid", "k", sig, body, t0, 0, nil},
		{"valid a little later", "k", sig, body, t0.Add(4 * time.Minute), 0, nil},
		{"valid with the receiver's clock a little behind", "k", sig, body, t0.Add(-4 * time.Minute), 0, nil},
		{"replayed after the default tolerance", "k", sig, body, t0.Add(6 * time.Minute), 0, courier.ErrStaleSignature},
		{"replayed after a custom tolerance", "k", sig, body, t0.Add(31 * time.Second), 30 * time.Second, courier.ErrStaleSignature},
		{"from the future", "k", sig, body, t0.Add(-6 * time.Minute), 0, courier.ErrStaleSignature},
		{"tampered body", "k", sig, []byte(`{"id":"t1","state":"failed"}`), t0, 0, courier.ErrBadSignature},
		{"body with a byte more", "k", sig, append(body, ' '), t0, 0, courier.ErrBadSignature},
		{"wrong secret", "k2", sig, body, t0, 0, courier.ErrBadSignature},
		{"timestamp moved forward", "k", fmt.Sprintf("t=%d,%s", t0.Unix()+600, sig[len("t=1767225600,"):]), body, t0.Add(10 * time.Minute), 0, courier.ErrBadSignature},
		{"one of two v1 matches (rotation)", "k", other + ",v1=" + sig[len("t=1767225600,v1="):], body, t0, 0, nil},
		{"spaces after commas", "k", "t=1767225600, v1=" + sig[len("t=1767225600,v1="):], body, t0, 0, nil},
		{"unknown scheme ignored", "k", sig + ",v9=abc", body, t0, 0, nil},
		{"only an unknown scheme", "k", fmt.Sprintf("t=%d,v9=abc", t0.Unix()), body, t0, 0, courier.ErrNoSignature},
		{"missing header", "k", "", body, t0, 0, courier.ErrNoSignature},
		{"no timestamp", "k", sig[len("t=1767225600,"):], body, t0, 0, courier.ErrNoSignature},
		{"two timestamps", "k", "t=1," + sig, body, t0, 0, courier.ErrNoSignature},
		{"timestamp not a number", "k", "t=soon," + sig[len("t=1767225600,"):], body, t0, 0, courier.ErrNoSignature},
		{"v1 not hex", "k", "t=1767225600,v1=zz", body, t0, 0, courier.ErrNoSignature},
		{"v1 too short", "k", "t=1767225600,v1=abcd", body, t0, 0, courier.ErrNoSignature},
		{"garbage", "k", "garbage", body, t0, 0, courier.ErrNoSignature},
	} {
		err := courier.VerifyWebhook(tc.secret, tc.header, tc.body, tc.now, tc.tolerance)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: VerifyWebhook = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzVerifyWebhook checks that VerifyWebhook never panics on a hostile header and
// accepts one only if it carries the true HMAC of its own timestamp.
func FuzzVerifyWebhook(f *testing.F) {
	f.Add("t=1767225600,v1=00", []byte("{}"))
	f.Add(courier.SignWebhook("k", t0, []byte("{}")), []byte("{}"))
	f.Add(courier.SignWebhook("k", t0, []byte("{}"))+",v1=ab", []byte("{}"))
	f.Add("t=-9223372036854775808,v1=", []byte(""))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if courier.VerifyWebhook("k", header, body, t0, 0) != nil {
			return
		}
		for _, kv := range strings.Split(header, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			if k != "t" {
				continue
			}
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("Verify accepted %q, whose t is no number", header)
			}
			sig := courier.SignWebhook("k", time.Unix(sec, 0), body)
			if !strings.Contains(header, sig[strings.Index(sig, ",v1=")+1:]) {
				t.Fatalf("Verify accepted %q for %q without its HMAC", header, body)
			}
			return
		}
		t.Fatalf("Verify accepted %q, which has no t", header)
	})
}
