package courier_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection enforces DESIGN.md's one-way dependencies: the
// broker and the store port import no transport or backend, and the store
// port imports no backend.
func TestDependencyDirection(t *testing.T) {
	t.Parallel()
	forbidden := map[string][]string{
		"./internal/broker": {"net/http", "github.com/cockroachdb/pebble", "github.com/jackc/pgx",
			"github.com/prometheus", "github.com/courierhq/courier/internal/httpapi", "github.com/courierhq/courier/internal/server",
			"github.com/courierhq/courier/internal/store/pebblestore", "github.com/courierhq/courier/internal/store/pgstore"},
		"./internal/store": {"net/http", "github.com/cockroachdb/pebble", "github.com/jackc/pgx",
			"github.com/courierhq/courier/internal/broker"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if dep == b || strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

// TestPackageDocs requires a package comment on every package.
func TestPackageDocs(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, doc, _ := strings.Cut(line, "\t")
		if strings.TrimSpace(doc) == "" {
			t.Errorf("package %s has no package comment", path)
		}
	}
}

// TestNoPeerDependency keeps the peers comparison (bench/peers, its own
// module) out of courier: no package of the main module may import it or
// any peer it measures, so courier's users never download a peer.
func TestNoPeerDependency(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-test", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps -test ./...: %v\n%s", err, out)
	}
	bad := []string{"github.com/courierhq/courier/bench/peers", "github.com/nats-io/", "github.com/riverqueue/", "github.com/hibiken/asynq"}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range bad {
			if strings.HasPrefix(dep, b) {
				t.Errorf("the main module depends on %s (peers belong in bench/peers, its own module)", dep)
			}
		}
	}
}
