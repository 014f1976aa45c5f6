package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/courierhq/courier"
	"github.com/spf13/cobra"
)

func newAckCmd(e *env) *cobra.Command {
	var result string
	cmd := &cobra.Command{
		Use:   "ack QUEUE LEASE...",
		Short: "Acknowledge received messages: they are done and gone",
		Long: `Acknowledge received messages by their leases: they are done and gone.

A lease that has expired (its message may be with another consumer now) is
refused with lease_expired, and the command exits with 1. With several leases
every valid one is applied, and the refused ones are reported.

--result finishes a task's message with its result, a JSON value: the task
ends succeeded with it (for a message that is not a task it is a plain ack).`,
		Args: argsRange(2, -1),
	}
	cmd.Flags().StringVar(&result, "result", "", "a task's result, as JSON (one LEASE only)")
	cmd.RunE = e.action(func(ctx context.Context, c *courier.Client, args []string) error {
		queue, leases := args[0], args[1:]
		var res courier.AckResult
		withResult := cmd.Flags().Changed("result")
		if withResult && len(leases) != 1 {
			return usageErrorf("--result takes exactly one LEASE, got %d", len(leases))
		}
		if withResult && !json.Valid([]byte(result)) {
			return usageErrorf("--result is not valid JSON: %q (quote a string: '\"done\"')", result)
		}
		if len(leases) == 1 {
			// The single form, whose refusal is an error with its code.
			var err error
			if withResult {
				err = c.AckResult(ctx, queue, leases[0], json.RawMessage(result))
			} else {
				err = c.Ack(ctx, queue, leases[0])
			}
			if err != nil {
				return err
			}
			res.Acked = 1
		} else {
			var err error
			if res, err = c.AckBatch(ctx, queue, leases); err != nil {
				return err
			}
		}
		if e.json {
			if err := e.printJSON(res); err != nil {
				return err
			}
		} else if _, err := fmt.Fprintf(e.stdout, "acknowledged %d\n", res.Acked); err != nil {
			return err
		}
		return ackFailures(res)
	})
	return cmd
}

func newNackCmd(e *env) *cobra.Command {
	var (
		delay     time.Duration
		reason    string
		terminate bool
		release   bool
	)
	cmd := &cobra.Command{
		Use:   "nack QUEUE LEASE",
		Short: "Hand a received message back, to be delivered again",
		Long: `Hand a received message back, to be delivered again: after --delay, or
without it after the queue's backoff for the attempt. A message that has used
the queue's max attempts goes to the dead-letter queue instead.

--terminate dead-letters it at once, whatever attempts it has left, with
--error as the reason: for a message that can never be processed. A task ends
failed with that reason.

--release hands back a message that was not processed (a consumer that is
stopping, say): it is delivered again at once (or after --delay), its attempt
is not counted and it is never dead-lettered. It takes no --error.`,
		Args: argsRange(2, 2),
	}
	cmd.Flags().DurationVar(&delay, "delay", 0, "deliver again after this delay (0s: at once; default: the queue's backoff)")
	cmd.Flags().StringVar(&reason, "error", "", "why the message failed, kept with it")
	cmd.Flags().BoolVar(&terminate, "terminate", false, "dead-letter it now, whatever attempts it has left (give the reason with --error)")
	cmd.Flags().BoolVar(&release, "release", false, "hand it back unprocessed: its attempt is not counted")
	cmd.RunE = e.action(func(ctx context.Context, c *courier.Client, args []string) error {
		req := courier.NackRequest{Lease: args[1], Error: reason, Terminate: terminate, Release: release}
		switch {
		case terminate && cmd.Flags().Changed("delay"):
			return usageErrorf("--terminate and --delay exclude each other")
		case release && terminate:
			return usageErrorf("--release and --terminate exclude each other")
		case release && cmd.Flags().Changed("error"):
			return usageErrorf("--release hands back a message that was not processed: it takes no --error")
		}
		if cmd.Flags().Changed("delay") {
			req.Delay = delay.String() // "0s" too: at once, unlike no delay
		}
		res, err := c.Nack(ctx, args[0], req)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(res)
		}
		switch {
		case res.Cancelled:
			_, err = fmt.Fprintln(e.stdout, "task cancelled: its cancel had been requested, and the message is gone")
		case res.DeadLettered && terminate:
			_, err = fmt.Fprintln(e.stdout, "dead-lettered")
		case res.DeadLettered:
			_, err = fmt.Fprintln(e.stdout, "dead-lettered: the message used its attempts")
		case res.RetryAt != nil:
			_, err = fmt.Fprintf(e.stdout, "handed back; delivered again from %s\n", formatTime(*res.RetryAt))
		default:
			_, err = fmt.Fprintln(e.stdout, "handed back")
		}
		return err
	})
	return cmd
}

func newExtendCmd(e *env) *cobra.Command {
	var visibility time.Duration
	cmd := &cobra.Command{
		Use:   "extend QUEUE LEASE",
		Short: "Keep a received message leased for longer",
		Args:  argsRange(2, 2),
	}
	cmd.Flags().DurationVar(&visibility, "visibility", 0, "keep the lease this long from now (default: the queue's visibility timeout)")
	cmd.RunE = e.action(func(ctx context.Context, c *courier.Client, args []string) error {
		req := courier.ExtendRequest{Lease: args[1]}
		if visibility != 0 {
			req.Visibility = visibility.String()
		}
		until, err := c.Extend(ctx, args[0], req)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(courier.ExtendResult{LeaseExpiresAt: until})
		}
		_, err = fmt.Fprintf(e.stdout, "leased until %s\n", formatTime(until))
		return err
	})
	return cmd
}
