package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/courierhq/courier"
	"github.com/spf13/cobra"
)

func newRecvCmd(e *env) *cobra.Command {
	var (
		max              int
		wait, visibility time.Duration
		ack              bool
	)
	cmd := &cobra.Command{
		Use:     "recv QUEUE",
		Aliases: []string{"receive"},
		Short:   "Receive (lease) messages from a queue",
		Long: `Receive messages from QUEUE and print them with their leases.

A received message is leased, not removed: acknowledge it with
'courier ack QUEUE LEASE' or it is handed out again when the lease expires.
With --ack the messages are acknowledged after they have been printed (so a
failure to print leaves them to be delivered again). With --wait the command
waits up to that long for a first message; Ctrl-C ends the wait.`,
		Args: argsRange(1, 1),
	}
	f := cmd.Flags()
	f.IntVar(&max, "max", 1, "receive up to this many messages (1 to 1000)")
	f.DurationVar(&wait, "wait", 0, "wait up to this long (at most 60s) for a message")
	f.DurationVar(&visibility, "visibility", 0, "lease the messages for this long (default: the queue's visibility timeout)")
	f.BoolVar(&ack, "ack", false, "acknowledge the messages once printed")
	cmd.RunE = e.action(func(ctx context.Context, c *courier.Client, args []string) error {
		req := courier.ReceiveRequest{Max: max}
		if wait != 0 {
			req.Wait = wait.String()
		}
		if visibility != 0 {
			req.Visibility = visibility.String()
		}
		msgs, err := c.Receive(ctx, args[0], req)
		if err != nil {
			return err
		}
		if err := e.printMessages(msgs); err != nil {
			return err
		}
		if !ack || len(msgs) == 0 {
			return nil
		}
		return e.ackAll(ctx, c, args[0], msgs)
	})
	return cmd
}

func (e *env) printMessages(msgs []courier.Message) error {
	if e.json {
		if msgs == nil {
			msgs = []courier.Message{} // `[]`, not `null`, for scripts
		}
		return e.printJSON(courier.ReceiveResult{Messages: msgs})
	}
	if len(msgs) == 0 {
		_, err := fmt.Fprintln(e.stderr, "no messages")
		return err
	}
	return printMessages(e.stdout, msgs)
}

// ackAll acknowledges the messages recv printed. The output already went to
// stdout, so a failure is only reported (on stderr, through the error).
func (e *env) ackAll(ctx context.Context, c *courier.Client, queue string, msgs []courier.Message) error {
	leases := make([]string, len(msgs))
	for i := range msgs {
		leases[i] = msgs[i].Lease
	}
	res, err := c.AckBatch(ctx, queue, leases)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return ackFailures(res)
}

// ackFailures turns the leases a batch ack did not apply into one error.
func ackFailures(res courier.AckResult) error {
	if len(res.Failed) == 0 {
		return nil
	}
	f := res.Failed[0]
	more := ""
	if len(res.Failed) > 1 {
		more = fmt.Sprintf("; and %d more", len(res.Failed)-1)
	}
	return fmt.Errorf("%d of %d leases not acknowledged: lease %s: %s (%s)%s",
		len(res.Failed), res.Acked+len(res.Failed), f.Lease, f.Message, f.Code, more)
}
