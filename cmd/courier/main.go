// Command courier is courier's single binary: the command line client of a
// courier server, and with `courier serve` the server itself. The commands
// live in internal/cli; main only binds them to the process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/courierhq/courier/internal/cli"
	"github.com/courierhq/courier/internal/server"
)

func main() {
	server.TuneGC()
	// A signal cancels the context: a long-poll ends, serve shuts down
	// gracefully. Then the handler is removed, so that a second signal
	// kills the process the default way should that take too long.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
