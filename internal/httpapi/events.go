package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// Defaults of a task's event stream.
const (
	DefaultEventHeartbeat    = 15 * time.Second
	DefaultEventWriteTimeout = 30 * time.Second
)

// taskEvents serves GET /v1/tasks/{id}/events as server-sent events: the
// task as it is now, then one event per change, each
//
//	id: <the task's version>
//	data: <the task object>
//
// until the final state, after which the stream ends. A client resuming with
// Last-Event-ID gets nothing it has seen: the current state at once if the
// task has changed since, else the next change; a client that has seen the
// final state gets 204, which tells a browser's EventSource to stop
// reconnecting. A quiet stream carries a comment line every EventHeartbeat,
// so proxies keep it open.
//
// Why this never holds up the core: the stream reads the task through
// Broker.NextTaskChange, which only reads the store and waits on the store's
// change signal (a closed channel, not a queue of events), so there is no
// per-subscriber buffer to fill and nothing the store ever waits for. A slow
// reader blocks only this handler's own writes, each bounded by
// EventWriteTimeout; one that stays stuck loses its stream and resumes with
// Last-Event-ID. Alternative rejected: a fan-out of events to bounded
// per-subscriber buffers, which would need dropping rules and a resume path
// anyway, while the durable task record already is the resume path.
func (a *api) taskEvents(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	ctx, id := r.Context(), r.PathValue("id")
	t, err := a.b.GetTask(ctx, id, 0)
	if err != nil {
		return err // before the stream starts, errors are JSON as everywhere
	}
	last, resumed := lastEventID(r)
	if resumed && last > t.Version {
		resumed = false // not an id of this task's stream: start over
	}
	if resumed && last == t.Version && t.State.Finished() {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tells nginx not to buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	s := &eventStream{w: w, rc: http.NewResponseController(w), timeout: a.eventWriteTimeout}
	if !resumed || t.Version > last {
		err = s.task(a, &t)
	} else {
		err = s.comment("resumed") // sends the headers now
	}
	for err == nil && !t.State.Finished() {
		var next store.Task
		quiet, cancel := context.WithTimeout(ctx, a.eventHeartbeat)
		next, err = a.b.NextTaskChange(quiet, id, t.Version)
		cancel()
		switch {
		case err == nil:
			t = next
			err = s.task(a, &t)
		case ctx.Err() != nil:
			return nil // the client left, or the server is stopping
		case quiet.Err() != nil:
			err = s.comment("keep-alive")
		case errors.Is(err, store.ErrTaskNotFound), errors.Is(err, store.ErrClosed):
			return nil // gone meanwhile: a reconnect is told why in JSON
		default:
			a.log.Error("task event stream", "task", id, "err", err)
			return nil
		}
	}
	return nil // a failed write: the reader is gone or stuck, the stream ends
}

// lastEventID reads the Last-Event-ID header: a version this stream sent.
func lastEventID(r *http.Request) (uint64, bool) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// eventStream writes server-sent events, each flushed at once and bounded
// by a write deadline.
type eventStream struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

// task sends the task object as an event whose id is its version. The JSON
// is on one line: encoding/json never writes a raw newline.
func (s *eventStream) task(a *api, t *store.Task) error {
	b, err := marshal(a.taskObject(t))
	if err != nil {
		a.log.Error("encode task event", "task", t.ID, "err", err)
		return err
	}
	return s.write("id: " + strconv.FormatUint(t.Version, 10) + "\ndata: " + string(b) + "\n\n")
}

// comment sends an SSE comment, which clients ignore.
func (s *eventStream) comment(text string) error {
	return s.write(": " + text + "\n\n")
}

// write writes and flushes p within the write timeout. The deadline is wall
// time on purpose: it bounds I/O on a socket, not a duration of the domain.
// A ResponseWriter without deadlines (a test recorder) is written without.
func (s *eventStream) write(p string) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := io.WriteString(s.w, p); err != nil {
		return err
	}
	return s.rc.Flush()
}
