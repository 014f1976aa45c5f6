package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/courierhq/courier"
)

// bodyPreviewRunes is how much of a body a table shows.
const bodyPreviewRunes = 60

// printJSON writes v as indented JSON: the --json output of every command.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a writer that aligns tab-separated columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// printQueues writes the table of `queue ls`.
func printQueues(w io.Writer, qs []courier.Queue) error {
	t := newTable(w)
	fmt.Fprintln(t, "NAME\tREADY\tDELAYED\tIN FLIGHT\tDEAD\tOLDEST\tPAUSED")
	for _, q := range qs {
		s := q.Stats
		fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", q.Name, s.Ready, s.Delayed, s.InFlight, s.Dead,
			orDash(s.OldestReadyAge), yesNo(q.Paused))
	}
	return t.Flush()
}

// printQueue writes one queue, a field per line, for `queue get` and `create`.
func printQueue(w io.Writer, q courier.Queue) error {
	t := newTable(w)
	b := q.Backoff
	rows := [][2]string{
		{"name", q.Name},
		{"paused", yesNo(q.Paused)},
		{"visibility timeout", q.VisibilityTimeout},
		{"max attempts", maxAttempts(q.MaxAttempts)},
		{"backoff", fmt.Sprintf("initial %s, max %s, multiplier %g, jitter %g", b.Initial, b.Max, b.Multiplier, b.Jitter)},
		{"dead-letter queue", orDash(q.DeadLetterQueue)},
		{"retention", q.Retention},
		{"max message bytes", fmt.Sprint(q.MaxMessageBytes)},
		{"dedup window", q.DedupWindow},
		{"created", formatTime(q.CreatedAt)},
		{"ready", fmt.Sprint(q.Stats.Ready)},
		{"delayed", fmt.Sprint(q.Stats.Delayed)},
		{"in flight", fmt.Sprint(q.Stats.InFlight)},
		{"dead", fmt.Sprint(q.Stats.Dead)},
		{"sent total", fmt.Sprint(q.Stats.SentTotal)},
		{"acked total", fmt.Sprint(q.Stats.AckedTotal)},
		{"oldest ready age", orDash(q.Stats.OldestReadyAge)},
	}
	for _, r := range rows {
		fmt.Fprintf(t, "%s:\t%s\n", r[0], r[1])
	}
	return t.Flush()
}

// printMessages writes the table of `recv`. The lease is shown whole: it is
// what `ack`, `nack` and `extend` take.
func printMessages(w io.Writer, msgs []courier.Message) error {
	t := newTable(w)
	fmt.Fprintln(t, "ID\tATTEMPT\tLEASE\tBODY")
	for i := range msgs {
		m := &msgs[i]
		fmt.Fprintf(t, "%s\t%d\t%s\t%s\n", m.ID, m.Attempt, m.Lease, bodyPreview(m))
	}
	return t.Flush()
}

// bodyPreview shows a body on one table line: JSON as sent, bytes as text
// when they are text, else only their size; cut to bodyPreviewRunes.
func bodyPreview(m *courier.Message) string {
	b, err := m.BodyBytes()
	if err != nil {
		return "(undecodable body)"
	}
	if len(b) == 0 {
		return "(empty)"
	}
	if m.BodyBase64 != nil && !isPrintable(b) {
		return fmt.Sprintf("(%d bytes)", len(b))
	}
	s := strings.Join(strings.Fields(string(b)), " ") // newlines and tabs would break the table
	if utf8.RuneCountInString(s) > bodyPreviewRunes {
		s = string([]rune(s)[:bodyPreviewRunes-1]) + "…"
	}
	return s
}

// isPrintable reports whether b is UTF-8 text without control characters
// (other than whitespace).
func isPrintable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func maxAttempts(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
