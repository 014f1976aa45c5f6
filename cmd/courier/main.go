// Command courier is courier's single binary: the command line client of a
// courier server, and with `courier serve` the server itself. The commands
// live in internal/cli; main only binds them to the process.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/courierhq/courier/internal/cli"
	"github.com/courierhq/courier/internal/hugepages"
	"github.com/courierhq/courier/internal/server"
)

// init keeps main on the process's first thread until the huge-pages
// restart is decided. A parent's death signal (prctl PR_SET_PDEATHSIG, as a
// supervisor or a test harness sets it) belongs to that thread alone: an
// exec from any other thread would drop it, and courier would outlive the
// parent that started it. Commands that open no embedded store never
// decide, and keep main there: it only waits, so that costs nothing.
func init() {
	runtime.LockOSThread()
}

func main() {
	server.TuneGC()
	// A signal cancels the context: a long-poll ends, serve shuts down
	// gracefully. Then the handler is removed, so that a second signal
	// kills the process the default way should that take too long.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, func() { startWithHugePages(ctx) })
	stop()
	os.Exit(code)
}

// startWithHugePages starts courier again with the C allocator asking for
// huge pages, where that helps, before a command opens the embedded store
// (see internal/hugepages); if that fails, the command goes on without.
// Not once a signal has arrived: the new process would not see it (the
// command ends on its own, as ctx is done).
func startWithHugePages(ctx context.Context) {
	defer runtime.UnlockOSThread() // decided: see init
	if ctx.Err() != nil {
		return
	}
	if _, err := hugepages.Reexec(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "courier: warning: %v; going on without huge pages\n", err)
	}
}
