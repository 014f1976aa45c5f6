package bench

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// usage is what the process has used so far: CPU time (user + system, of
// every thread) and its peak resident set.
type usage struct {
	cpu     time.Duration
	cpuOK   bool
	peakRSS int64 // bytes; 0: unknown
}

// resources measures the process over a run: CPU time as the difference of
// two readings, peak RSS as the high-water mark since the start of the run.
type resources struct {
	start      usage
	peakIsRuns bool // the kernel's high-water mark was reset at the start
}

// startResources resets the kernel's RSS high-water mark, so that the peak
// read at the end is the run's, not the process's whole life's (Linux:
// writing 5 to /proc/self/clear_refs; harmless, it clears nothing else).
// Where that fails, the peak is the process's since it started.
func startResources() *resources {
	err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return &resources{start: readUsage(), peakIsRuns: err == nil}
}

// finish returns the CPU seconds since the start (ok false: unknown) and
// the peak RSS in bytes (0: unknown).
func (r *resources) finish() (cpuSeconds float64, ok bool, peakRSS int64) {
	end := readUsage()
	if end.cpuOK && r.start.cpuOK {
		return (end.cpu - r.start.cpu).Seconds(), true, end.peakRSS
	}
	return 0, false, end.peakRSS
}

func readUsage() usage {
	u := usage{}
	u.cpu, u.cpuOK = cpuTime()
	if kb, ok := procStatus("VmHWM"); ok {
		u.peakRSS = kb << 10
	} else {
		u.peakRSS = maxRSS()
	}
	return u
}

// currentRSS is the process's resident set now, in bytes (0: unknown).
func currentRSS() int64 {
	kb, _ := procStatus("VmRSS")
	return kb << 10
}

// heapInUse is the Go heap's bytes in use now. It stops the world briefly.
func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// procStatus reads a "kB" field of /proc/self/status (Linux).
func procStatus(field string) (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return kb, err == nil
	}
	return 0, false
}

// dirBytes is the size of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
