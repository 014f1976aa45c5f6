package courier_test

import (
	"os/exec"
	"strings"
	"testing"
)

// sdkPath is the import path of the SDK package itself.
const sdkPath = "github.com/courierhq/courier"

// TestSDKImportsOnlyStdlib keeps the SDK free of third-party and internal
// packages, so that importing it costs users nothing (DESIGN.md). It checks
// the non-test package: test-only dependencies (the server in the
// round-trip tests, goleak) do not reach users.
func TestSDKImportsOnlyStdlib(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps .: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		t.Fatalf("go list -deps . listed too little to be believed:\n%s", out)
	}
	for _, line := range lines {
		path, std, _ := strings.Cut(line, " ")
		if path == sdkPath {
			continue
		}
		first, _, _ := strings.Cut(path, "/")
		if std != "true" || strings.Contains(first, ".") {
			t.Errorf("the SDK depends on %s, which is not in the standard library", path)
		}
	}
}
