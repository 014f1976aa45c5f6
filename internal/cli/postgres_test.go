package cli

import (
	"net/url"
	"strings"
	"testing"

	"github.com/courierhq/courier/internal/pgtest"
)

// courier migrate applies the schema once; a second run has nothing to do.
func TestMigrate(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	out := ok(t, "", "migrate", "--store", dsn)
	if out != "applied migration 1\napplied migration 2\napplied migration 3\nschema at version 3\n" {
		t.Errorf("first migrate printed %q", out)
	}
	if out := ok(t, "", "migrate", "--store", dsn); out != "schema at version 3\n" {
		t.Errorf("second migrate printed %q, want only the version", out)
	}
	r := courierCmd(t.Context(), t, "", strings.NewReader(""), "migrate", "--store", "mysql://x")
	if r.code != exitUsage {
		t.Errorf("migrate of a mysql:// store: exit %d, want %d", r.code, exitUsage)
	}
}

// courier serve --store (or COURIER_STORE) runs on PostgreSQL; it refuses an
// unmigrated schema and a server with synchronous_commit off unless told.
func TestServePostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--allow-unsafe-durability"}, "courier migrate"},
		{[]string{"--migrate"}, "synchronous_commit=off"},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--store", dsn}, c.args...)
		r := courierCmd(t.Context(), t, "", strings.NewReader(""), args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want a failure naming %q", c.args, r.code, r.stderr, c.want)
		}
	}
	u, _ := url.Parse(dsn)
	base, stop := startServeWith(t, map[string]string{"COURIER_STORE": dsn}, "store "+u.Redacted(),
		"--migrate", "--allow-unsafe-durability", "--pg-max-conns", "4", "--pg-rotate-size", "8MiB", "--pg-rotate-every", "1m")
	defer stop()
	id := strings.TrimSpace(ok(t, base, "send", "jobs", `{"n":1}`))
	if out := ok(t, base, "--json", "recv", "jobs", "--ack"); !strings.Contains(out, id) {
		t.Errorf("recv printed %q; want message %s", out, id)
	}
}
