//go:build linux && cgo

package hugepages

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// thpEnabled is where Linux says which mappings get transparent huge pages.
const thpEnabled = "/sys/kernel/mm/transparent_hugepage/enabled"

// Reexec starts this program again with args (os.Args) and glibc's tunable
// asking for huge pages, if that helps here and was not done yet; on
// success it does not return. Otherwise it returns why not, or the error
// that stopped it, and the process goes on as it is. Call it before
// anything the new process would repeat or conflict with (a listener, an
// open store); it is meant for the process's main command only, never a
// test binary.
func Reexec(args []string) (skipped string, err error) {
	mode, _ := os.ReadFile(thpEnabled)
	exe, _ := os.Readlink("/proc/self/exe")
	value, why, ok := plan(os.Getenv, host{thpMode: string(mode), exe: exe, traced: traced()})
	if !ok {
		return why, nil
	}
	env := withEnv(withEnv(os.Environ(), tunables, value), started, "1")
	if err := syscall.Exec("/proc/self/exe", args, env); err != nil {
		return "", fmt.Errorf("start again with %s=%s: %w", tunables, value, err)
	}
	return "", nil // not reached: Exec replaced the process
}

// traced tells whether a tracer (a debugger, strace) is attached, from
// /proc/self/status.
func traced() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "TracerPid:"); ok {
			return strings.TrimSpace(v) != "0"
		}
	}
	return false
}
