package server_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/courierhq/courier/internal/server"
)

func TestValidateWebhookAllow(t *testing.T) {
	t.Parallel()
	cfg := server.Config{WebhookAllow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}}}.WithDefaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "webhook allow") {
		t.Fatalf("Validate with an invalid prefix: %v, want an error naming webhook allow", err)
	}
	cfg.WebhookAllow = cfg.WebhookAllow[:1]
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// TestStopsWebhooks starts a server with an allow-list and stops it; the
// goroutine-leak check in TestMain catches a dispatcher left running.
func TestStopsWebhooks(t *testing.T) {
	t.Parallel()
	start(t, server.Config{WebhookAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
}

func TestValidatePG(t *testing.T) {
	t.Parallel()
	cfg := server.Config{PG: server.PGConfig{MaxConns: 4}}.WithDefaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "only with a PostgreSQL store") {
		t.Fatalf("Validate of postgres settings without a store: %v, want an error", err)
	}
	cfg.Store = "postgres://h/db"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	cfg.PG.MaxConns = -1
	if err := cfg.Validate(); err == nil {
		t.Fatal("Validate of max conns -1: no error")
	}
}
