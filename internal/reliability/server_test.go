package reliability

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// shutdownTimeout is the grace period every server is started with.
const shutdownTimeout = 5 * time.Second

// server is one run of `courier serve` as a child process.
type server struct {
	cmd    *exec.Cmd
	url    string
	stdout *lineWriter
	stderr *tailBuffer
	exited chan struct{} // closed once the process has exited and its output is read
	err    error         // of cmd.Wait; read after exited
}

// startServer starts courier on a free loopback port with data in dir and
// returns once it listens. The process is killed at the end of the test if
// it is still running.
func startServer(t testing.TB, dir string) (*server, error) {
	return startProcess(t, "--data", dir, "--min-free-disk", "1MiB")
}

// startNode starts courier as a node of a cluster over the PostgreSQL
// database dsn (migrating it if needed).
func startNode(t testing.TB, dsn string) (*server, error) {
	return startProcess(t, "--store", dsn, "--migrate")
}

// startProcess starts `courier serve` with args besides the common ones.
func startProcess(t testing.TB, args ...string) (*server, error) {
	return startProcessEnv(t, nil, args...)
}

// startProcessEnv is startProcess with env added to the test's environment.
func startProcessEnv(t testing.TB, env []string, args ...string) (*server, error) {
	s := &server{stdout: newLineWriter(), stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	s.cmd = serveCommand(args...)
	if env != nil {
		s.cmd.Env = append(os.Environ(), env...)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start courier: %w", err)
	}
	go func() {
		s.err = s.cmd.Wait() // also waits for the copying of stdout and stderr
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case line := <-s.stdout.first:
		url, ok := strings.CutPrefix(line, "courier listening on ")
		if !ok {
			_ = s.cmd.Process.Kill()
			return nil, fmt.Errorf("courier's first line: %q, want \"courier listening on URL\"", line)
		}
		s.url = url
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("courier exited before listening: %v\nstderr:\n%s", s.err, s.stderr)
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		return nil, fmt.Errorf("courier did not listen within 30s\nstderr:\n%s", s.stderr)
	}
}

// serveCommand is the command of `courier serve` with args besides the
// common ones.
func serveCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(courierBin, append([]string{"serve", "--addr", "127.0.0.1:0",
		"--shutdown-timeout", shutdownTimeout.String(), "--log-level", "warn"}, args...)...)
	// A test binary that dies (a panic elsewhere than in a test's own
	// goroutine, a timeout) runs no cleanup: the kernel ends the server
	// with it, so that no idle server outlives the tests and skews the
	// machine's later runs (TestServerDiesWithItsParent). The signal follows
	// the thread that started the child; Go's runtime keeps its threads.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// kill sends SIGKILL and waits for the process to die.
func (s *server) kill() error {
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill -9: %w", err)
	}
	<-s.exited
	var ee *exec.ExitError
	if !errors.As(s.err, &ee) {
		return fmt.Errorf("after kill -9: exit %v, want killed by a signal", s.err)
	}
	return nil
}

// terminate sends SIGTERM and waits up to limit for the process to exit. It
// returns how long the exit took, and an error unless the process exited
// with status 0 within limit.
func (s *server) terminate(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("SIGTERM: %w", err)
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-s.exited:
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.exited
		return time.Since(start), fmt.Errorf("still running %v after SIGTERM; killed\nstderr:\n%s", limit, s.stderr)
	}
	took := time.Since(start)
	if s.err != nil {
		return took, fmt.Errorf("exit after SIGTERM: %v, want status 0\nstderr:\n%s", s.err, s.stderr)
	}
	return took, nil
}

// rss is the resident memory of the running process, from /proc.
func (s *server) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.cmd.Process.Pid)
}

// lineWriter collects a process's stdout and hands its first line over.
type lineWriter struct {
	first chan string // receives the first line, once

	mu   sync.Mutex // guards buf and sent
	buf  bytes.Buffer
	sent bool
}

func newLineWriter() *lineWriter { return &lineWriter{first: make(chan string, 1)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if line, _, ok := bytes.Cut(w.buf.Bytes(), []byte("\n")); ok {
			w.first <- string(line)
			w.sent = true
		}
	}
	return len(p), nil
}

// Lines returns what the process printed so far, line by line.
func (w *lineWriter) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// tailBuffer keeps the last max bytes written to it: a process's log.
type tailBuffer struct {
	max int

	mu  sync.Mutex // guards buf
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
