// Package hugepages lets the C allocator back the embedded store's memory
// with transparent huge pages.
//
// Built with cgo, Pebble allocates its memtables and block cache with C's
// calloc, outside the Go heap. On Linux, where transparent huge pages are
// set to "madvise" (Debian's and many distributions' default), glibc
// hands that memory out in 4 KiB pages unless its glibc.malloc.hugetlb
// tunable asks it to advise huge pages; each 4 KiB page is then faulted
// in on its first write. A fresh memtable of 64 MiB is 16,384 such faults,
// and on a virtual machine each costs microseconds: a tenth of the CPU of
// a job burn-down on a fresh server went there (docs/benchmarks-journal.md).
// glibc reads its tunables from the environment only when a process
// starts, so the only way to ask from inside is to start again: Reexec
// runs this same program once more, with the tunable set, before the
// store opens.
package hugepages

import (
	"path"
	"strings"
)

// Env is the environment variable that turns the re-execution off: set
// it to "off" to keep the C allocator's default.
const Env = "COURIER_HUGEPAGES"

// started marks the environment of the process Reexec started, so that it
// never starts another whatever glibc does with its own variable.
const started = "COURIER_HUGEPAGES_STARTED"

// tunables is glibc's environment variable of tunables, and hugetlb the
// one that makes malloc advise transparent huge pages (glibc 2.35 and
// later; older versions ignore it).
const (
	tunables = "GLIBC_TUNABLES"
	hugetlb  = "glibc.malloc.hugetlb"
)

// host is what plan needs to know of the machine and the process.
type host struct {
	thpMode string // /sys/kernel/mm/transparent_hugepage/enabled; "" if unreadable
	exe     string // the program /proc/self/exe names
	traced  bool   // a debugger or tracer is attached (TracerPid)
}

// plan decides whether the process should start again, and with which
// value of GLIBC_TUNABLES. The second result says why not when the third
// is false.
func plan(getenv func(string) string, h host) (value string, why string, ok bool) {
	if strings.EqualFold(getenv(Env), "off") {
		return "", Env + "=off", false
	}
	if strings.HasPrefix(path.Base(h.exe), "ld-") {
		// Run through the dynamic loader (ld-linux… courier serve):
		// starting the loader again would not start courier.
		return "", "started through the dynamic loader", false
	}
	if h.traced {
		return "", "a debugger is attached", false // keep it on this process
	}
	if getenv(started) != "" {
		return "", "started with huge pages already", false
	}
	cur := getenv(tunables)
	if strings.Contains(cur, hugetlb) {
		return "", tunables + " already sets " + hugetlb, false
	}
	if !strings.Contains(h.thpMode, "[madvise]") {
		// "[always]": every mapping gets huge pages already; "[never]",
		// or no such file: there are none to ask for.
		return "", "transparent huge pages are not in madvise mode", false
	}
	if cur != "" {
		return cur + ":" + hugetlb + "=1", "", true
	}
	return hugetlb + "=1", "", true
}

// withEnv is environ with key set to value: its entry replaced if it had
// one (a second entry of the same name might not be the one read), or
// added.
func withEnv(environ []string, key, value string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}
