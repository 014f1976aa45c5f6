package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/courierhq/courier"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newQueueCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Manage queues: list, inspect, create, delete, purge, pause, redrive",
		RunE:  groupRunE,
		Args:  cobra.ArbitraryArgs,
	}
	cmd.AddCommand(
		newQueueLsCmd(e),
		newQueueGetCmd(e),
		newQueueCreateCmd(e),
		newQueueRmCmd(e),
		newQueuePurgeCmd(e),
		newQueuePauseCmd(e, true),
		newQueuePauseCmd(e, false),
		newQueueRedriveCmd(e),
	)
	return cmd
}

func newQueueLsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List queues with their depths",
		Args:    argsRange(0, 0),
		RunE: e.action(func(ctx context.Context, c *courier.Client, _ []string) error {
			qs, err := c.ListQueues(ctx)
			if err != nil {
				return err
			}
			if e.json {
				if qs == nil {
					qs = []courier.Queue{} // `[]`, not `null`, for scripts
				}
				return e.printJSON(courier.QueueList{Queues: qs})
			}
			return printQueues(e.stdout, qs)
		}),
	}
}

func newQueueGetCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a queue's settings and stats",
		Args:  argsRange(1, 1),
		RunE: e.action(func(ctx context.Context, c *courier.Client, args []string) error {
			q, err := c.GetQueue(ctx, args[0])
			if err != nil {
				return err
			}
			return e.printQueue(q)
		}),
	}
}

func (e *env) printQueue(q courier.Queue) error {
	if e.json {
		return e.printJSON(q)
	}
	return printQueue(e.stdout, q)
}

// queueFlags are the settings flags of `queue create`. Only the flags given
// are sent, so that on an existing queue the others keep their values.
type queueFlags struct {
	visibility, retention, dedupWindow time.Duration
	backoffInitial, backoffMax         time.Duration
	maxAttempts, maxMessageBytes       int
	deadLetterQueue                    string
	backoffMultiplier, backoffJitter   float64
}

func (q *queueFlags) register(f *pflag.FlagSet) {
	f.DurationVar(&q.visibility, "visibility-timeout", 0, "how long a received message stays leased (server default 30s)")
	f.IntVar(&q.maxAttempts, "max-attempts", 0, "deliveries before dead-lettering; 0 = unlimited (server default 5)")
	f.StringVar(&q.deadLetterQueue, "dead-letter-queue", "", "where exhausted messages go (server default NAME.dead)")
	f.DurationVar(&q.retention, "retention", 0, "how long an unreceived message lives (server default 336h)")
	f.IntVar(&q.maxMessageBytes, "max-message-bytes", 0, "largest message, body and headers (server default 1 MiB)")
	f.DurationVar(&q.dedupWindow, "dedup-window", 0, "how long a dedup key is remembered (server default 5m)")
	f.DurationVar(&q.backoffInitial, "backoff-initial", 0, "retry delay after the first attempt (server default 1s)")
	f.DurationVar(&q.backoffMax, "backoff-max", 0, "longest retry delay (server default 10m)")
	f.Float64Var(&q.backoffMultiplier, "backoff-multiplier", 0, "growth of the retry delay per attempt (server default 2)")
	f.Float64Var(&q.backoffJitter, "backoff-jitter", 0, "random spread of retry delays, 0 to 1 (server default 0.2)")
}

// settings returns the QueueSettings of the flags that were given.
func (q *queueFlags) settings(f *pflag.FlagSet) (courier.QueueSettings, error) {
	var s courier.QueueSettings
	dur := func(name string, d time.Duration) *string {
		if !f.Changed(name) {
			return nil
		}
		v := d.String()
		return &v
	}
	s.VisibilityTimeout = dur("visibility-timeout", q.visibility)
	s.Retention = dur("retention", q.retention)
	s.DedupWindow = dur("dedup-window", q.dedupWindow)
	if f.Changed("max-attempts") {
		s.MaxAttempts = &q.maxAttempts
	}
	if f.Changed("max-message-bytes") {
		s.MaxMessageBytes = &q.maxMessageBytes
	}
	if f.Changed("dead-letter-queue") {
		s.DeadLetterQueue = &q.deadLetterQueue
	}
	b := courier.BackoffSettings{Initial: dur("backoff-initial", q.backoffInitial), Max: dur("backoff-max", q.backoffMax)}
	if f.Changed("backoff-multiplier") {
		b.Multiplier = &q.backoffMultiplier
	}
	if f.Changed("backoff-jitter") {
		b.Jitter = &q.backoffJitter
	}
	if b != (courier.BackoffSettings{}) {
		s.Backoff = &b
	}
	return s, nil
}

func newQueueCreateCmd(e *env) *cobra.Command {
	var qf queueFlags
	cmd := &cobra.Command{
		Use:     "create NAME",
		Aliases: []string{"update", "put"},
		Short:   "Create a queue, or change the settings of one",
		Long: `Create a queue, or change the settings of an existing one.

Only the settings given as flags are sent: on a new queue the others take the
server's defaults, on an existing one they keep their values. Durations are
written like 500ms, 30s, 5m, 1h.`,
		Args: argsRange(1, 1),
	}
	qf.register(cmd.Flags())
	cmd.RunE = e.action(func(ctx context.Context, c *courier.Client, args []string) error {
		s, err := qf.settings(cmd.Flags())
		if err != nil {
			return err
		}
		q, err := c.PutQueue(ctx, args[0], s)
		if err != nil {
			return err
		}
		return e.printQueue(q)
	})
	return cmd
}

func newQueueRmCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Delete a queue and its messages",
		Args:    argsRange(1, 1),
		RunE: e.action(func(ctx context.Context, c *courier.Client, args []string) error {
			if err := c.DeleteQueue(ctx, args[0]); err != nil {
				return err
			}
			if e.json {
				return e.printJSON(map[string]any{"queue": args[0], "deleted": true})
			}
			_, err := fmt.Fprintf(e.stdout, "deleted queue %q\n", args[0])
			return err
		}),
	}
}

func newQueuePurgeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "purge NAME",
		Short: "Drop every ready and delayed message of a queue (not those in flight)",
		Args:  argsRange(1, 1),
		RunE: e.action(func(ctx context.Context, c *courier.Client, args []string) error {
			n, err := c.PurgeQueue(ctx, args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(courier.PurgeResult{Purged: n})
			}
			_, err = fmt.Fprintf(e.stdout, "purged %d messages from %q\n", n, args[0])
			return err
		}),
	}
}

// newQueuePauseCmd makes `pause` (pause true) or `resume`.
func newQueuePauseCmd(e *env, pause bool) *cobra.Command {
	use, short, done := "resume NAME", "Let a paused queue hand out messages again", "resumed"
	if pause {
		use, short, done = "pause NAME", "Stop a queue from handing out messages (it still takes sends)", "paused"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  argsRange(1, 1),
		RunE: e.action(func(ctx context.Context, c *courier.Client, args []string) error {
			call := c.ResumeQueue
			if pause {
				call = c.PauseQueue
			}
			q, err := call(ctx, args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(q)
			}
			_, err = fmt.Fprintf(e.stdout, "%s queue %q\n", done, q.Name)
			return err
		}),
	}
}

func newQueueRedriveCmd(e *env) *cobra.Command {
	var max int
	cmd := &cobra.Command{
		Use:   "redrive NAME",
		Short: "Move a queue's dead-lettered messages back into it",
		Args:  argsRange(1, 1),
		RunE: e.action(func(ctx context.Context, c *courier.Client, args []string) error {
			n, err := c.Redrive(ctx, args[0], max)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(courier.RedriveResult{Moved: n})
			}
			_, err = fmt.Fprintf(e.stdout, "moved %d %s back to %q\n", n, plural(n, "message"), args[0])
			return err
		}),
	}
	cmd.Flags().IntVar(&max, "max", 0, "move at most this many (0: the server's default)")
	return cmd
}

// plural returns word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
