package bench

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// newSleeper returns a sleeper woken by a timerfd where the kernel has one,
// and by a Go timer otherwise. Why: when a Go process is idle, its timers
// fire from the network poller's epoll_wait, whose timeout is in whole
// milliseconds, so a timer due in 0.3 ms fires about a millisecond late; an
// open-loop schedule at 1,000/s then starts a tenth of its calls up to a
// millisecond late, and that lag is charged to the latency it measures. A
// timerfd is a file the poller waits on: it wakes epoll_wait when it
// expires, to the microsecond, with no thread spinning or sleeping apart.
func newSleeper() sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return newTimerSleeper()
	}
	// A non-blocking descriptor gives a File that waits in the poller.
	return &timerfdSleeper{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}
}

type timerfdSleeper struct {
	fd  int
	f   *os.File
	buf [8]byte // the expiration count a read returns
}

func (s *timerfdSleeper) sleep(ctx context.Context, d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	if err := unix.TimerfdSettime(s.fd, 0, &spec, nil); err != nil {
		return err
	}
	// A cancelled context ends the read through its deadline.
	stop := context.AfterFunc(ctx, func() { s.f.SetReadDeadline(time.Now()) })
	_, err := s.f.Read(s.buf[:])
	if !stop() {
		return ctx.Err()
	}
	return err
}

func (s *timerfdSleeper) close() { s.f.Close() }
