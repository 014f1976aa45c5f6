package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/pgtest"
)

// courierBin is the courier binary TestMain builds for the tests to run.
var courierBin string

func TestMain(m *testing.M) {
	if bin := os.Getenv(parentHelperEnv); bin != "" {
		os.Exit(parentHelper(bin)) // this process is the helper of TestServerDiesWithItsParent
	}
	dir, err := os.MkdirTemp("", "courier-reliability-")
	if err == nil {
		courierBin, err = build(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// One throwaway PostgreSQL server for the cluster tests (pgkill_test.go).
	goleak.VerifyTestMain(pgtest.WithServer(m), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// build compiles cmd/courier of this module into dir, without the race
// detector: the server's speed shapes the load, and the tests watch the
// server from the outside.
func build(dir string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(dir, "courier")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/courier")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/courier: %w\n%s", err, out)
	}
	return bin, nil
}
