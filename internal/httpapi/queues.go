package httpapi

import (
	"net/http"
	"time"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

// durationField is a duration setting to parse: its JSON name, its text (nil
// when absent), and where the parsed value goes.
type durationField struct {
	field string
	in    *string
	out   **time.Duration
}

// queueSettings parses the durations of the body of PUT /v1/queues/{queue},
// naming the field of a bad one. The wire type has pointers all the way
// down, so a setting given as zero ("jitter": 0) is told from one left out.
func queueSettings(p *courier.QueueSettings) (broker.QueueSettings, error) {
	s := broker.QueueSettings{MaxAttempts: p.MaxAttempts, DeadLetterQueue: p.DeadLetterQueue,
		MaxMessageBytes: p.MaxMessageBytes}
	fields := []durationField{
		{"visibility_timeout", p.VisibilityTimeout, &s.VisibilityTimeout},
		{"retention", p.Retention, &s.Retention},
		{"dedup_window", p.DedupWindow, &s.DedupWindow},
	}
	if p.Backoff != nil {
		s.Backoff = &broker.BackoffSettings{Multiplier: p.Backoff.Multiplier, Jitter: p.Backoff.Jitter}
		fields = append(fields,
			durationField{"backoff.initial", p.Backoff.Initial, &s.Backoff.Initial},
			durationField{"backoff.max", p.Backoff.Max, &s.Backoff.Max})
	}
	for _, f := range fields {
		d, err := optDuration(f.field, f.in)
		if err != nil {
			return broker.QueueSettings{}, err
		}
		*f.out = d
	}
	return s, nil
}

func (a *api) putQueue(w http.ResponseWriter, r *http.Request) error {
	var req courier.QueueSettings
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	s, err := queueSettings(&req)
	if err != nil {
		return err
	}
	q, err := a.b.PutQueue(r.Context(), r.PathValue("queue"), s)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.queueObject(q))
}

func (a *api) getQueue(w http.ResponseWriter, r *http.Request) error {
	q, err := a.b.GetQueue(r.Context(), r.PathValue("queue"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.queueObject(q))
}

func (a *api) listQueues(w http.ResponseWriter, r *http.Request) error {
	qs, err := a.b.ListQueues(r.Context())
	if err != nil {
		return err
	}
	out := courier.QueueList{Queues: make([]courier.Queue, len(qs))} // [] rather than null when empty
	for i := range qs {
		out.Queues[i] = a.queueObject(qs[i])
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) deleteQueue(w http.ResponseWriter, r *http.Request) error {
	if err := a.b.DeleteQueue(r.Context(), r.PathValue("queue")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) purgeQueue(w http.ResponseWriter, r *http.Request) error {
	if err := a.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	n, err := a.b.PurgeQueue(r.Context(), r.PathValue("queue"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, courier.PurgeResult{Purged: n})
}

func (a *api) pauseQueue(w http.ResponseWriter, r *http.Request) error {
	return a.setPaused(w, r, true)
}

func (a *api) resumeQueue(w http.ResponseWriter, r *http.Request) error {
	return a.setPaused(w, r, false)
}

func (a *api) setPaused(w http.ResponseWriter, r *http.Request, paused bool) error {
	if err := a.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	q, err := a.b.SetPaused(r.Context(), r.PathValue("queue"), paused)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.queueObject(q))
}

func (a *api) redrive(w http.ResponseWriter, r *http.Request) error {
	var req courier.RedriveRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	n, err := a.b.Redrive(r.Context(), r.PathValue("queue"), req.Max)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, courier.RedriveResult{Moved: n})
}

// queueObject renders a queue as API.md's queue object, durations in Go
// syntax ("30s", "5m0s") and times in UTC.
func (a *api) queueObject(q store.Queue) courier.Queue {
	c := q.Config
	age := time.Duration(0)
	if !q.Stats.OldestReady.IsZero() {
		age = max(a.b.Now().Sub(q.Stats.OldestReady), 0).Truncate(time.Millisecond)
	}
	return courier.Queue{
		Name:              q.Name,
		VisibilityTimeout: c.VisibilityTimeout.String(),
		MaxAttempts:       c.MaxAttempts,
		Backoff: courier.Backoff{Initial: c.Backoff.Initial.String(), Max: c.Backoff.Max.String(),
			Multiplier: c.Backoff.Multiplier, Jitter: c.Backoff.Jitter},
		DeadLetterQueue: c.DeadLetterQueue,
		Retention:       c.Retention.String(),
		MaxMessageBytes: c.MaxMessageBytes,
		DedupWindow:     c.DedupWindow.String(),
		Paused:          q.Paused,
		CreatedAt:       q.CreatedAt.UTC(),
		Stats: courier.QueueStats{
			Ready: q.Stats.Ready, Delayed: q.Stats.Delayed, InFlight: q.Stats.InFlight,
			Dead: q.Stats.Dead, SentTotal: q.Stats.SentTotal, AckedTotal: q.Stats.AckedTotal,
			OldestReadyAge: age.String(),
		},
	}
}
