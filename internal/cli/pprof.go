package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"runtime"
	rpprof "runtime/pprof"
	"runtime/trace"
	"time"
)

// Profiling: `courier serve --pprof ADDR` serves Go's profiles (CPU, heap,
// goroutines, mutex and block, execution trace) on a listener of its own,
// apart from the API, and `courier bench --cpuprofile FILE` and `--trace
// FILE` write the CPU profile and the execution trace of a run. The
// profile listener is loopback-only: goroutine dumps show request data in
// their arguments, and a CPU profile costs the server time, so it is not
// something to offer a network. Reach it from elsewhere through an SSH
// tunnel.

// pprofServer is the running profile listener.
type pprofServer struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// Sampling of the mutex and block profiles while --pprof is on: one
// contention event in mutexFraction, and about one blocking event per
// blockRate of time blocked. Both are off otherwise, as Go's default, since
// they cost every contended lock and every blocking operation a little.
const (
	mutexFraction = 100
	blockRate     = 100 * time.Microsecond
)

// startPprof listens on addr (a loopback HOST:PORT), serves the profiles
// under /debug/pprof/, and turns on the mutex and block profiles.
func startPprof(addr string) (*pprofServer, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	runtime.SetMutexProfileFraction(mutexFraction)
	runtime.SetBlockProfileRate(int(blockRate))
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also the named profiles: heap, goroutine, …
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p := &pprofServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln) // ends with ErrServerClosed at stop
	}()
	return p, nil
}

// stop closes the listener and any profile being taken, and turns the
// mutex and block profiles off again.
func (p *pprofServer) stop() {
	_ = p.srv.Close()
	<-p.done
	runtime.SetMutexProfileFraction(0)
	runtime.SetBlockProfileRate(0)
}

// checkLoopback accepts HOST:PORT where HOST is a loopback IP address. A
// name, even "localhost", is refused: what it resolves to is up to the
// host's configuration.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof %q: want HOST:PORT, like 127.0.0.1:6060", addr)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("--pprof %q: profiles are served on a loopback IP address only, like 127.0.0.1:6060 or [::1]:6060", addr)
	}
	return nil
}

// cpuProfile writes a CPU profile to path until the returned function is
// called, which reports a failure to finish the file.
func cpuProfile(path string) (func() error, error) {
	return record("--cpuprofile", path, rpprof.StartCPUProfile, rpprof.StopCPUProfile)
}

// executionTrace writes an execution trace (go tool trace reads it) to path
// until the returned function is called.
func executionTrace(path string) (func() error, error) {
	return record("--trace", path, trace.Start, trace.Stop)
}

// record runs start on a new file at path, and returns what stops it and
// closes the file; flag names the file in errors.
func record(flag, path string, start func(io.Writer) error, stop func()) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if err := start(f); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", flag, err), f.Close())
	}
	return func() error {
		stop()
		if err := f.Close(); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		return nil
	}, nil
}
