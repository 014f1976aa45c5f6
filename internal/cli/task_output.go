package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/courierhq/courier"
)

// resultPreviewRunes is how much of a result a line of `task watch` shows.
const resultPreviewRunes = 200

// printTask writes one task, a field per line, for `task get` and
// `task submit --wait`. The result is shown whole, as compact JSON.
func printTask(w io.Writer, t courier.Task) error {
	tw := newTable(w)
	rows := [][2]string{
		{"id", t.ID},
		{"queue", t.Queue},
		{"state", string(t.State)},
		{"attempt", fmt.Sprint(t.Attempt)},
		{"progress", progressText(t)},
	}
	if t.Result != nil {
		rows = append(rows, [2]string{"result", compactJSON(t.Result)})
	}
	if t.Error != "" {
		rows = append(rows, [2]string{"error", oneLine(t.Error)})
	}
	rows = append(rows,
		[2]string{"created", formatTime(t.CreatedAt)},
		[2]string{"updated", formatTime(t.UpdatedAt)},
		[2]string{"finished", formatTimePtr(t.FinishedAt)},
		[2]string{"cancel requested", yesNo(t.CancelRequested)},
		[2]string{"reply to", orDash(t.ReplyTo)},
		[2]string{"result ttl", orDash(t.ResultTTL)},
	)
	if wh := t.Webhook; wh != nil {
		rows = append(rows, [2]string{"webhook", webhookText(wh)})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// taskLine is one event of `task watch`: when, state, progress, and the
// outcome once there is one.
func taskLine(t courier.Task) string {
	parts := []string{formatTime(t.UpdatedAt), string(t.State), progressText(t)}
	if t.CancelRequested && !t.State.Finished() {
		parts = append(parts, "(cancel requested)")
	}
	if t.Result != nil {
		r := compactJSON(t.Result)
		if utf8.RuneCountInString(r) > resultPreviewRunes {
			r = string([]rune(r)[:resultPreviewRunes-1]) + "…"
		}
		parts = append(parts, "result: "+r)
	}
	if t.Error != "" {
		parts = append(parts, "error: "+oneLine(t.Error))
	}
	return strings.Join(parts, "  ")
}

func progressText(t courier.Task) string {
	s := fmt.Sprintf("%.0f%%", t.Progress*100)
	if t.ProgressMessage != "" {
		s += " " + oneLine(t.ProgressMessage)
	}
	return s
}

func webhookText(wh *courier.TaskWebhook) string {
	s := wh.URL
	switch {
	case wh.Delivered:
		s += ", delivered"
	case wh.Pending:
		s += ", pending"
		if wh.NextAttemptAt != nil {
			s += " (next attempt " + formatTime(*wh.NextAttemptAt) + ")"
		}
	case len(wh.Attempts) == 0:
		s += ", not called yet"
	default:
		s += ", given up"
	}
	if n := len(wh.Attempts); n > 0 {
		last := wh.Attempts[n-1]
		s += fmt.Sprintf(", %d attempts, last: HTTP %d", n, last.Status)
		if last.Error != "" {
			s += " " + oneLine(last.Error)
		}
	}
	return s
}

// compactJSON shows a JSON value on one line.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return formatTime(*t)
}
