// Package cli is courier's command line: queue administration, send,
// receive, ack/nack/extend and tasks (submit, get, watch, cancel) through the
// Go SDK; `serve`, which runs a server; and `bench`, which measures one
// (the engine is internal/bench). Commands write only to the writers they
// are given, so tests run them in-process; the process-wide parts
// (os.Args, signals, os.Exit) stay in cmd/courier.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/courierhq/courier"
	"github.com/spf13/cobra"
)

// Exit codes. They are part of the CLI's contract, listed in its help.
const (
	exitOK          = 0
	exitFailure     = 1 // the server answered with an error, or the command failed
	exitUsage       = 2 // bad flags or arguments; nothing was sent
	exitUnreachable = 3 // the server could not be reached
	exitInterrupted = 130
)

const defaultURL = "http://127.0.0.1:7070"

// env is what every command gets: its I/O, its environment, and the global
// flags. It is the one value passed to the constructors of subcommands,
// serve's (newServeCmd) included.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// Global flags, bound by the root command.
	url   string
	token string
	json  bool

	c *courier.Client // made on first use by client; closed by run

	// beforeStore runs when serve, or bench with a server in this process,
	// is about to open an embedded store, before anything else of theirs;
	// main has it start the process again with huge pages for the store
	// (internal/hugepages). Tests leave it nil.
	beforeStore func()
}

// Main runs the courier command line with args (without the program name)
// and returns the process's exit code. Canceling ctx (main does on SIGINT
// and SIGTERM) interrupts the command.
// beforeStore, if not nil, runs before an embedded store is opened in this
// process (see env.beforeStore).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, beforeStore func()) int {
	return run(ctx, args, &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, beforeStore: beforeStore})
}

// openingStore calls e.beforeStore if there is one.
func (e *env) openingStore() {
	if e.beforeStore != nil {
		e.beforeStore()
	}
}

func run(ctx context.Context, args []string, e *env) int {
	root := newRootCmd(e)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if e.c != nil {
		e.c.CloseIdleConnections()
	}
	return e.report(cmd, err)
}

const rootLong = `courier is a durable message queue and task service.

This command talks to a courier server over its HTTP API (--url), runs
one with "courier serve", and measures one with "courier bench".

Output is a table for people; --json prints the API's JSON answer instead,
one JSON value per command, for scripts.

Exit codes:
  0    success
  1    the server answered with an error (its code is shown), or the command failed
  2    usage error: bad flags or arguments; nothing was sent
  3    the server could not be reached
  130  interrupted`

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "courier",
		Short:         "A durable message queue and task service",
		Long:          rootLong,
		SilenceErrors: true, // report prints errors, and picks the exit code
		SilenceUsage:  true,
		// RunE (rather than none) so that an unknown command is a usage
		// error of ours instead of an untyped error of cobra's.
		RunE: groupRunE,
		Args: cobra.ArbitraryArgs, // else cobra rejects unknown commands itself
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	urlDefault := defaultURL
	if v := e.getenv("COURIER_URL"); v != "" {
		urlDefault = v
	}
	f := root.PersistentFlags()
	f.StringVar(&e.url, "url", urlDefault, "the server's URL (env COURIER_URL)")
	f.StringVar(&e.token, "token", e.getenv("COURIER_TOKEN"), "bearer token for the server (env COURIER_TOKEN)")
	f.BoolVar(&e.json, "json", false, "print JSON for scripts instead of tables")

	root.AddCommand(
		newQueueCmd(e),
		newSendCmd(e),
		newRecvCmd(e),
		newAckCmd(e),
		newNackCmd(e),
		newExtendCmd(e),
		newTaskCmd(e),
		// serve is the lead's: serve.go defines newServeCmd(*env).
		newServeCmd(e),
		newMigrateCmd(e),
		newBenchCmd(e),
	)
	return root
}

// groupRunE is the RunE of commands that only group others: without
// arguments it shows help; with some, they name an unknown subcommand.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, applied only on its path
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usageError{errors.New(msg)}
}

// usageError marks an error in how the command was called: exit code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// argsRange accepts min to max positional arguments (max < 0: no limit).
func argsRange(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || max >= 0 && len(args) > max {
			return usageErrorf("wrong number of arguments (%d); usage: %s", len(args), cmd.UseLine())
		}
		return nil
	}
}

// client returns the SDK client of the server named by the global flags.
func (e *env) client() (*courier.Client, error) {
	if e.c != nil {
		return e.c, nil
	}
	u, err := url.Parse(e.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("--url %q is not an http:// or https:// URL", e.url)
	}
	var opts []courier.Option
	if e.token != "" {
		opts = append(opts, courier.WithToken(e.token))
	}
	e.c = courier.NewClient(e.url, opts...)
	return e.c, nil
}

// action adapts a command's work to cobra's RunE, handing it the client.
func (e *env) action(fn func(ctx context.Context, c *courier.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		return fn(cmd.Context(), c, args)
	}
}

// report prints err as one line on stderr and returns the exit code for it.
func (e *env) report(cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	var (
		apiErr *courier.Error
		urlErr *url.Error
		usage  usageError
	)
	code, msg := exitFailure, err.Error()
	switch {
	case errors.As(err, &usage):
		code = exitUsage
	case errors.As(err, &apiErr):
		if apiErr.RetryAfter > 0 {
			msg += fmt.Sprintf("; retry after %v", apiErr.RetryAfter)
		}
	case errors.Is(err, context.Canceled):
		code, msg = exitInterrupted, "interrupted"
	case errors.As(err, &urlErr):
		code, msg = exitUnreachable, fmt.Sprintf("cannot reach the server at %s: %v", e.url, urlErr.Err)
	}
	fmt.Fprintf(e.stderr, "courier: %s\n", oneLine(msg))
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// oneLine keeps an error message on one line, whatever the server said.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
