package courier

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"time"
)

// TaskEvent is one event of a task's event stream: the task as it was
// after a change of state or progress.
type TaskEvent struct {
	// ID is the event's id. Pass it to WatchTask as lastEventID to resume
	// the stream after this event.
	ID   string
	Task Task
}

// WatchTask follows the task id's event stream (GET /v1/tasks/{id}/events):
// it yields the task as it is now, then once per change, and ends after the
// final state. With lastEventID (the ID of an event seen before) it resumes
// after that event; a stream whose final state was seen ends at once.
//
// It reconnects by itself, resuming after the last event it yielded, when
// the stream breaks in a way that may mend (see AwaitTask): nothing is
// missed and nothing repeated. An error that retrying cannot fix, or ctx's
// end, is yielded once as the last element. Stopping the loop early closes
// the stream.
//
//	for ev, err := range c.WatchTask(ctx, id, "") {
//		if err != nil { … }
//		fmt.Println(ev.Task.State, ev.Task.Progress)
//	}
func (c *Client) WatchTask(ctx context.Context, id, lastEventID string) iter.Seq2[TaskEvent, error] {
	return func(yield func(TaskEvent, error) bool) {
		last := lastEventID
		var backoff time.Duration
		for {
			progressed, done, err := c.watchOnce(ctx, id, &last, yield)
			if done {
				return
			}
			if progressed {
				backoff = 0
			}
			if err == nil {
				// The stream ended before the final state: the server is
				// stopping, or a proxy cut it. Resume.
				err = io.ErrUnexpectedEOF
			} else if ctx.Err() != nil || !transient(err) {
				yield(TaskEvent{}, fmt.Errorf("courier: watch task %s: %w", id, err))
				return
			}
			backoff = nextBackoff(backoff, err)
			if !sleepCtx(ctx, backoff) {
				yield(TaskEvent{}, fmt.Errorf("courier: watch task %s: %w (after: %v)", id, ctx.Err(), err))
				return
			}
		}
	}
}

// watchOnce reads one connection's stream, updating *last with each event
// yielded. It reports whether it yielded anything, and whether the watch is
// done (the final state was seen, or yield asked to stop); err is why the
// stream broke otherwise (nil: it ended cleanly but early).
func (c *Client) watchOnce(ctx context.Context, id string, last *string, yield func(TaskEvent, error) bool) (progressed, done bool, err error) {
	p, err := taskPath(id, "events")
	if err != nil {
		return false, true, yieldErr(yield, err)
	}
	req, err := c.request(ctx, http.MethodGet, p, nil)
	if err != nil {
		return false, true, yieldErr(yield, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return false, true, nil // the final state was seen already
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return false, false, errorFrom(resp)
	}
	events := newSSEReader(resp.Body)
	for {
		ev, err := events.next()
		if err == io.EOF {
			return progressed, false, nil
		}
		if err != nil {
			return progressed, false, err
		}
		var t Task
		if err := json.Unmarshal([]byte(ev.data), &t); err != nil {
			return progressed, true, yieldErr(yield, fmt.Errorf("courier: watch task %s: event %q is not a task: %w", id, ev.id, err))
		}
		progressed = true
		*last = ev.id
		if !yield(TaskEvent{ID: ev.id, Task: t}, nil) || t.State.Finished() {
			return true, true, nil
		}
	}
}

// yieldErr yields err as the last element and returns nil.
func yieldErr(yield func(TaskEvent, error) bool, err error) error {
	yield(TaskEvent{}, err)
	return nil
}

// maxSSELine bounds a line of an event stream: a task object carries its
// result, which the server limits (1 MiB by default) but may be configured
// higher. A longer line ends the stream with an error, rather than growing
// the buffer without bound.
const maxSSELine = 64 << 20

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	id, typ, data string
}

// sseReader parses a text/event-stream as the HTML standard describes it
// ("9.2 Server-sent events"): lines end in CRLF, LF or CR; a blank line
// dispatches the event gathered; lines starting with a colon are comments;
// "data" lines accumulate; "id" sets the last event id, which persists
// across events; "retry" and unknown fields are ignored.
type sseReader struct {
	sc     *bufio.Scanner
	lastID string
}

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSSELine)
	sc.Split(scanSSELines)
	return &sseReader{sc: sc}
}

// next returns the next event with data; io.EOF when the stream ends (an
// event not ended by a blank line is dropped, as the standard says).
func (r *sseReader) next() (sseEvent, error) {
	var (
		data    strings.Builder
		hasData bool
		typ     string
	)
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if len(line) == 0 {
			if !hasData {
				typ = "" // nothing to dispatch; the id, if any, stays
				continue
			}
			return sseEvent{id: r.lastID, typ: typ, data: strings.TrimSuffix(data.String(), "\n")}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			hasData = true
			data.Write(value)
			data.WriteByte('\n')
		case "id":
			if !bytes.ContainsRune(value, 0) {
				r.lastID = string(value)
			}
		case "event":
			typ = string(value)
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}

// scanSSELines splits a stream into lines ended by CRLF, LF or CR.
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0:
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data):
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	case atEOF:
		return i + 1, data[:i], nil
	default:
		return 0, nil, nil // a CR last: wait to see whether LF follows
	}
}
