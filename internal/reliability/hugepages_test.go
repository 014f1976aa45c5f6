//go:build linux

package reliability

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestServeStartsWithHugePages runs the built binary's `courier serve` and
// reads the environment its process ended up with. Where Linux gives
// transparent huge pages on request ("madvise" mode) the server must have
// started itself again, in the same process, with glibc's tunable that asks
// for them (internal/hugepages); with COURIER_HUGEPAGES=off, or in any
// other mode, it must run as it was started. It must listen and stop
// cleanly either way.
func TestServeStartsWithHugePages(t *testing.T) {
	mode, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	madvise := bytes.Contains(mode, []byte("[madvise]"))
	t.Logf("transparent huge pages: %q", strings.TrimSpace(string(mode)))
	for _, c := range []struct {
		name    string
		env     []string
		restart bool
	}{
		{"default", []string{"COURIER_HUGEPAGES="}, madvise},
		{"off", []string{"COURIER_HUGEPAGES=off"}, false},
		{"other tunables kept", []string{"COURIER_HUGEPAGES=", "GLIBC_TUNABLES=glibc.malloc.arena_max=4"}, madvise},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := startProcessEnv(t, c.env, "--data", t.TempDir(), "--min-free-disk", "1MiB")
			if err != nil {
				t.Fatal(err)
			}
			env, err := processEnv(s.cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			started := env["COURIER_HUGEPAGES_STARTED"] == "1"
			if started != c.restart {
				t.Errorf("started again with huge pages: %v, want %v (environment: GLIBC_TUNABLES=%q)", started, c.restart, env["GLIBC_TUNABLES"])
			}
			// glibc cuts its own variable at the first ':' as it parses it,
			// so /proc shows only the first tunable; what glibc did with
			// the rest shows in the mappings it advised for huge pages
			// (the "hg" flag): the store's first memtable is one.
			advised, err := hugeAdvised(s.cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			if (advised > 0) != c.restart {
				t.Errorf("%d mappings advised for huge pages, want them only when started again (%v)", advised, c.restart)
			}
			if strings.Contains(c.name, "kept") && !strings.Contains(env["GLIBC_TUNABLES"], "arena_max=4") {
				t.Errorf("GLIBC_TUNABLES=%q, want the caller's arena_max=4 kept", env["GLIBC_TUNABLES"])
			}
			if _, err := s.terminate(shutdownTimeout); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// processEnv reads a running process's environment from /proc.
func processEnv(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

// hugeAdvised counts a process's mappings advised for transparent huge
// pages (MADV_HUGEPAGE: "hg" among their VmFlags in /proc's smaps).
func hugeAdvised(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok && slices.Contains(strings.Fields(flags), "hg") {
			n++
		}
	}
	return n, nil
}
