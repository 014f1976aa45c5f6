package cli

import (
	"io"
	"net/netip"
	"reflect"
	"testing"
)

func TestServeWebhookAllow(t *testing.T) {
	t.Parallel()
	f := serveFlags{addr: "127.0.0.1:0", data: t.TempDir(), logLevel: "error", logFormat: "text",
		maxRequest: "1MiB", minFree: "1MiB", cache: "1MiB", taskCache: "1MiB", shutdownTimeout: 1,
		webhookAllow: []string{"10.0.0.0/8", "127.0.0.1", "fd00::/8"}}
	cfg, err := f.config(io.Discard)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("fd00::/8")}
	if !reflect.DeepEqual(cfg.WebhookAllow, want) {
		t.Fatalf("WebhookAllow = %v, want %v", cfg.WebhookAllow, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "fe80::1%eth0", ""} {
		f.webhookAllow = []string{bad}
		if _, err := f.config(io.Discard); err == nil {
			t.Errorf("--webhook-allow %q: no error", bad)
		}
	}
}
