package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/courierhq/courier"
	"github.com/spf13/cobra"
)

func newTaskCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Submit tasks and follow them: submit, get, watch, cancel",
		Long: `Tasks are messages whose requester hears back: a worker finishes one with a
result (or an error), and the task keeps its state, progress and outcome for
its result TTL. These commands submit a task and follow it by its id.`,
		RunE: groupRunE,
		Args: cobra.ArbitraryArgs,
	}
	cmd.AddCommand(
		newTaskSubmitCmd(e),
		newTaskGetCmd(e),
		newTaskWatchCmd(e),
		newTaskCancelCmd(e),
	)
	return cmd
}

const taskSubmitLong = `Submit a task to QUEUE and print its id.

The body is BODY, or standard input when BODY is "-" or missing, sent by the
rule of 'courier send' (see its help): valid JSON as JSON, anything else as
bytes, unless --string or --base64 says otherwise.

With --wait the command waits for the task to finish and prints it, riding
out restarts of the server; it exits 0 if the task succeeded and 1 if it
failed or was cancelled. Ctrl-C stops the wait (the task goes on).`

type taskSubmitFlags struct {
	sendFlags
	wait                    bool
	notifyURL, notifySecret string
	replyTo                 string
	resultTTL               time.Duration
}

func newTaskSubmitCmd(e *env) *cobra.Command {
	var tf taskSubmitFlags
	cmd := &cobra.Command{
		Use:   "submit QUEUE [BODY|-]",
		Short: "Submit a task; with --wait, wait for its outcome",
		Long:  taskSubmitLong,
		Example: `  courier task submit images '{"url": "https://example.com/cat.png", "width": 320}'
  courier task submit --wait --header type=resize images '{"url": "…"}'
  courier task submit --reply-to results --result-ttl 1h reports '"q3"'`,
		Args: argsRange(1, 2),
	}
	f := cmd.Flags()
	f.BoolVar(&tf.wait, "wait", false, "wait for the task to finish and print it")
	f.StringVar(&tf.notifyURL, "notify-url", "", "a webhook the server calls when the task finishes")
	f.StringVar(&tf.notifySecret, "notify-secret", "", "the secret the webhook's calls are signed with (HMAC-SHA256)")
	f.StringVar(&tf.replyTo, "reply-to", "", "a queue that also receives the outcome as a message")
	f.DurationVar(&tf.resultTTL, "result-ttl", 0, "how long the finished task is kept (default the server's, 24h)")
	f.DurationVar(&tf.delay, "delay", 0, "hand the task out only after this delay")
	f.IntVar(&tf.priority, "priority", 0, "-100 to 100; higher is handed out first")
	f.StringVar(&tf.dedupKey, "dedup-key", "", "a second submit with this key within the queue's dedup window stores nothing")
	f.StringVar(&tf.group, "group", "", "tasks of one group are handed out one at a time, in order")
	f.StringArrayVar(&tf.headers, "header", nil, "a header `key=value` (repeatable); a Worker's Mux routes by \"type\"")
	f.BoolVar(&tf.base64, "base64", false, "send the body as bytes, even if it is valid JSON")
	f.BoolVar(&tf.string, "string", false, "send the body as a JSON string")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		st, err := tf.task(e.stdin, args[1:])
		if err != nil {
			return err
		}
		return e.action(func(ctx context.Context, c *courier.Client, args []string) error {
			f, err := c.Submit(ctx, args[0], st)
			if err != nil {
				return err
			}
			if !tf.wait {
				if e.json {
					return e.printJSON(f.Submitted())
				}
				_, err = fmt.Fprintln(e.stdout, f.ID())
				return err
			}
			t, err := f.Await(ctx)
			if err != nil {
				return err
			}
			if err := e.printTask(t); err != nil {
				return err
			}
			return taskOutcome(t)
		})(cmd, args)
	}
	return cmd
}

// task builds the task to submit from the flags and the body argument.
func (tf *taskSubmitFlags) task(stdin io.Reader, bodyArg []string) (courier.SubmitTask, error) {
	m, err := tf.message(stdin, bodyArg)
	if err != nil {
		return courier.SubmitTask{}, err
	}
	st := courier.SubmitTask{NewMessage: m, ReplyTo: tf.replyTo}
	if tf.resultTTL != 0 {
		st.ResultTTL = tf.resultTTL.String()
	}
	switch {
	case tf.notifyURL != "":
		st.Notify = &courier.TaskNotify{URL: tf.notifyURL, Secret: tf.notifySecret}
	case tf.notifySecret != "":
		return st, usageErrorf("--notify-secret needs --notify-url")
	}
	return st, nil
}

// taskOutcome is the error that makes a waited-for task that did not
// succeed exit 1.
func taskOutcome(t courier.Task) error {
	switch t.State {
	case courier.TaskSucceeded:
		return nil
	case courier.TaskFailed:
		return fmt.Errorf("task %s failed: %s", t.ID, orDash(t.Error))
	default:
		return fmt.Errorf("task %s ended %s", t.ID, t.State)
	}
}

func newTaskGetCmd(e *env) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a task: state, progress, result or error",
		Long: `Show a task: its state, progress, result or error, and its webhook's
deliveries. With --wait the server holds the answer until the task has
finished or the wait has passed (at most 60s), then answers it as it is.`,
		Args: argsRange(1, 1),
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long (at most 60s) for the task to finish")
	cmd.RunE = e.action(func(ctx context.Context, c *courier.Client, args []string) error {
		t, err := c.GetTask(ctx, args[0], wait)
		if err != nil {
			return err
		}
		return e.printTask(t)
	})
	return cmd
}

func newTaskWatchCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a task's events until it finishes",
		Long: `Follow a task's event stream: one line for the task as it is now, then one
per change of state or progress, until the task has finished. The stream
resumes by itself after the connection breaks, missing nothing. With --json
each event is the task object on one line (JSON Lines). Ctrl-C stops.`,
		Args: argsRange(1, 1),
		RunE: e.action(func(ctx context.Context, c *courier.Client, args []string) error {
			// One plain call first, so that an unknown id or an unreachable
			// server fails at once rather than being retried.
			if _, err := c.GetTask(ctx, args[0], 0); err != nil {
				return err
			}
			for ev, err := range c.WatchTask(ctx, args[0], "") {
				if err != nil {
					return err
				}
				if err := e.printTaskEvent(ev.Task); err != nil {
					return err
				}
			}
			return nil
		}),
	}
}

func newTaskCancelCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a task",
		Long: `Cancel a task. A queued task is cancelled at once. A running one is marked,
and ends cancelled when its worker next extends its lease or reports progress
(a worker that finishes first has done the work: the task then succeeds).
Cancelling a finished task changes nothing. Prints the task's state after.`,
		Args: argsRange(1, 1),
		RunE: e.action(func(ctx context.Context, c *courier.Client, args []string) error {
			t, err := c.CancelTask(ctx, args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(t)
			}
			msg := string(t.State)
			if !t.State.Finished() && t.CancelRequested {
				msg = fmt.Sprintf("cancel requested (%s): it ends when its worker next checks in", t.State)
			}
			_, err = fmt.Fprintf(e.stdout, "%s: %s\n", t.ID, msg)
			return err
		}),
	}
}

func (e *env) printTask(t courier.Task) error {
	if e.json {
		return e.printJSON(t)
	}
	return printTask(e.stdout, t)
}

// printTaskEvent writes one line per event of `task watch`.
func (e *env) printTaskEvent(t courier.Task) error {
	if e.json {
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(e.stdout, taskLine(t))
	return err
}
