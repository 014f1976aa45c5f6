package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/courierhq/courier"
	"github.com/spf13/cobra"
)

// maxStdinBody bounds what `send -` reads: above the server's largest
// allowed message, so that the server, not the CLI, says what is too large.
const maxStdinBody = 32 << 20

const sendLong = `Send a message to QUEUE and print its id.

The body is BODY, or standard input when BODY is "-" or missing.
How it is sent:
  - a body that is valid JSON is sent as JSON ("body"), as written;
  - anything else is sent as bytes ("body_base64"), exactly as given;
  - --string sends the text as a JSON string instead: "hello" not hello;
  - --base64 sends bytes even when they are valid JSON.
So 'courier send q {"n":1}' sends an object, 'courier send q 42' a number,
and 'courier send q hello' the five bytes h-e-l-l-o.`

type sendFlags struct {
	delay          time.Duration
	priority       int
	dedupKey       string
	group          string
	headers        []string
	base64, string bool
}

func newSendCmd(e *env) *cobra.Command {
	var sf sendFlags
	cmd := &cobra.Command{
		Use:   "send QUEUE [BODY|-]",
		Short: "Send a message to a queue",
		Long:  sendLong,
		Example: `  courier send orders '{"id": 42}'
  courier send --delay 10s --header trace-id=abc orders '"later"'
  gzip -c report.csv | courier send --base64 reports -`,
		Args: argsRange(1, 2),
	}
	f := cmd.Flags()
	f.DurationVar(&sf.delay, "delay", 0, "hand the message out only after this delay")
	f.IntVar(&sf.priority, "priority", 0, "-100 to 100; higher is handed out first")
	f.StringVar(&sf.dedupKey, "dedup-key", "", "a second send with this key within the queue's dedup window stores nothing")
	f.StringVar(&sf.group, "group", "", "messages of one group are handed out one at a time, in order")
	f.StringArrayVar(&sf.headers, "header", nil, "a header `key=value` (repeatable)")
	f.BoolVar(&sf.base64, "base64", false, "send the body as bytes, even if it is valid JSON")
	f.BoolVar(&sf.string, "string", false, "send the body as a JSON string")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// Build the message, and so find usage errors, before any connection.
		m, err := sf.message(e.stdin, args[1:])
		if err != nil {
			return err
		}
		return e.action(func(ctx context.Context, c *courier.Client, args []string) error {
			id, err := c.Send(ctx, args[0], m)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(courier.SendResult{ID: id})
			}
			_, err = fmt.Fprintln(e.stdout, id)
			return err
		})(cmd, args)
	}
	return cmd
}

// message builds the message to send from the flags and the body argument
// (none or "-": stdin), following the rule of sendLong.
func (sf *sendFlags) message(stdin io.Reader, bodyArg []string) (courier.NewMessage, error) {
	m := courier.NewMessage{Priority: sf.priority, DedupKey: sf.dedupKey, Group: sf.group}
	if sf.base64 && sf.string {
		return m, usageErrorf("--base64 and --string exclude each other")
	}
	if sf.delay != 0 {
		m.Delay = sf.delay.String()
	}
	for _, h := range sf.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return m, usageErrorf("--header %q is not key=value", h)
		}
		if m.Headers == nil {
			m.Headers = make(map[string]string)
		}
		m.Headers[k] = v
	}
	body, err := readBody(stdin, bodyArg)
	if err != nil {
		return m, err
	}
	switch {
	case sf.string:
		m.Body, err = json.Marshal(string(body))
		if err != nil {
			return m, err
		}
	case !sf.base64 && json.Valid(body):
		m.Body = body
	default:
		m.BodyBase64 = courier.BinaryBody(body)
	}
	return m, nil
}

func readBody(stdin io.Reader, bodyArg []string) ([]byte, error) {
	if len(bodyArg) == 1 && bodyArg[0] != "-" {
		return []byte(bodyArg[0]), nil
	}
	if stdin == nil {
		return nil, usageErrorf("no BODY given and no standard input")
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxStdinBody+1))
	if err != nil {
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	if len(b) > maxStdinBody {
		return nil, fmt.Errorf("standard input is over %d bytes, more than any queue takes", maxStdinBody)
	}
	return b, nil
}
