package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

// submitRequest is the body of a submit: one task, or {"tasks": [...]}. As
// in sendRequest, the single task's fields are embedded so that one decode
// takes both forms and still refuses unknown fields.
type submitRequest struct {
	courier.SubmitTask
	Tasks []courier.SubmitTask `json:"tasks"`
}

// submit stores a task, or a batch of them: 202 Accepted and the task
// object, with its URL in Location; for a batch {"tasks": [...]}, in order.
// The message's checks are send's; the task's (result_ttl, reply_to, notify)
// are the broker's.
func (a *api) submit(w http.ResponseWriter, r *http.Request) error {
	var req submitRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	if req.Tasks == nil {
		tr, err := taskRequest(&req.SubmitTask)
		if err != nil {
			return err
		}
		t, err := a.b.Submit(r.Context(), r.PathValue("queue"), tr)
		if err != nil {
			return err
		}
		w.Header().Set("Location", taskPath(t.ID))
		return a.writeTask(w, http.StatusAccepted, &t)
	}
	if !isZeroTask(&req.SubmitTask) {
		return invalidf("a batch submit has only the field \"tasks\"; put every task's fields inside it")
	}
	if len(req.Tasks) == 0 || len(req.Tasks) > broker.MaxBatch {
		return invalidf("tasks must hold 1 to %d tasks, got %d", broker.MaxBatch, len(req.Tasks))
	}
	trs := make([]broker.TaskRequest, len(req.Tasks))
	for i := range req.Tasks {
		tr, err := taskRequest(&req.Tasks[i])
		if err != nil {
			return invalidf("tasks[%d]: %v", i, err)
		}
		trs[i] = tr
	}
	ts, err := a.b.SubmitBatch(r.Context(), r.PathValue("queue"), trs)
	if err != nil {
		return err
	}
	return a.writeTasks(w, http.StatusAccepted, ts)
}

func isZeroTask(t *courier.SubmitTask) bool {
	return isZeroMessage(&t.NewMessage) && t.Notify == nil && t.ReplyTo == "" && t.ResultTTL == ""
}

// taskRequest checks the form of one task; its ranges are the broker's.
func taskRequest(req *courier.SubmitTask) (broker.TaskRequest, error) {
	m, err := brokerMessage(&req.NewMessage)
	if err != nil {
		return broker.TaskRequest{}, err
	}
	ttl, err := duration("result_ttl", req.ResultTTL)
	if err != nil {
		return broker.TaskRequest{}, err
	}
	tr := broker.TaskRequest{Message: m, ReplyTo: req.ReplyTo, ResultTTL: ttl}
	if req.Notify != nil {
		if req.Notify.URL == "" {
			return tr, invalidf("notify.url is required when notify is given")
		}
		tr.NotifyURL, tr.NotifySecret = req.Notify.URL, req.Notify.Secret
	}
	return tr, nil
}

// taskPath is the URL path of a task. Ids are URL-safe; escaping is a guard.
func taskPath(id string) string { return "/v1/tasks/" + url.PathEscape(id) }

// getTask answers the task object; with ?wait= it holds the answer until the
// task has finished or the wait ends. A wait cut short by its context (the
// server stopping) answers the task as it is.
func (a *api) getTask(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "wait")
	if err != nil {
		return err
	}
	wait, err := duration("wait", q.Get("wait"))
	if err != nil {
		return err
	}
	t, err := a.b.GetTask(r.Context(), r.PathValue("id"), wait)
	if err != nil {
		return err
	}
	return a.writeTask(w, http.StatusOK, &t)
}

// query parses the URL's query, refusing parameters other than allowed, as
// unknown fields of a body are refused.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidf("the query string is malformed")
	}
	for k, v := range q {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			return nil, invalidf("unknown query parameter %q", k)
		}
		if len(v) > 1 {
			return nil, invalidf("query parameter %q is given %d times", k, len(v))
		}
	}
	return q, nil
}

// progressRequest is courier.ProgressRequest with progress required: its
// Progress (a pointer, to tell 0 from absent) hides the embedded one.
type progressRequest struct {
	courier.ProgressRequest
	Progress *float64 `json:"progress"`
}

// progress records a running task's progress and extends its worker's lease.
// A cancelled task answers 409 conflict (and is then ended); a stale lease
// 409 lease_expired.
func (a *api) progress(w http.ResponseWriter, r *http.Request) error {
	var req progressRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	if req.Lease == "" {
		return invalidf("lease is required")
	}
	if req.Progress == nil {
		return invalidf("progress is required: a number from 0 to 1")
	}
	vis, err := duration("visibility", req.Visibility)
	if err != nil {
		return err
	}
	t, err := a.b.Progress(r.Context(), r.PathValue("id"), req.Lease, *req.Progress, req.Message, vis)
	if err != nil {
		return err
	}
	return a.writeTask(w, http.StatusOK, &t)
}

// cancelTask cancels a queued task at once and marks a running one
// (cancel_requested); a finished task is answered unchanged.
func (a *api) cancelTask(w http.ResponseWriter, r *http.Request) error {
	if err := a.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	t, err := a.b.CancelTask(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return a.writeTask(w, http.StatusOK, &t)
}

func (a *api) writeTask(w http.ResponseWriter, status int, t *store.Task) error {
	o := a.taskObject(t)
	b, err := appendTask(nil, &o)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	writeRaw(w, status, append(b, '\n'))
	return nil
}

func (a *api) writeTasks(w http.ResponseWriter, status int, ts []store.Task) error {
	out := make([]courier.Task, len(ts))
	for i := range ts {
		out[i] = a.taskObject(&ts[i])
	}
	b, err := appendTaskList(make([]byte, 0, 256*len(ts)), out)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	writeRaw(w, status, append(b, '\n'))
	return nil
}

// taskObject renders a task as the API's task object. The webhook's secret
// is never part of it.
func (a *api) taskObject(t *store.Task) courier.Task {
	out := courier.Task{
		ID: t.ID, Queue: t.Queue, State: courier.TaskState(t.State), Attempt: t.Attempt,
		Progress: t.Progress, ProgressMessage: t.ProgressMessage, Error: t.Error,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(), CancelRequested: t.CancelRequested,
		ReplyTo: t.Request.ReplyTo, ResultTTL: t.Request.ResultTTL.String(),
	}
	if len(t.Result) > 0 {
		// The result was valid JSON when acked; json.Valid guards the answer
		// against a bug elsewhere, which would otherwise break every read.
		if json.Valid(t.Result) {
			out.Result = t.Result
		} else {
			a.log.Error("task result is not JSON", "task", t.ID)
		}
	}
	if !t.FinishedAt.IsZero() {
		f := t.FinishedAt.UTC()
		out.FinishedAt = &f
	}
	if t.Request.NotifyURL != "" {
		wh := &courier.TaskWebhook{URL: t.Request.NotifyURL, Delivered: t.Webhook.Delivered, Pending: t.Webhook.Pending,
			Attempts: make([]courier.WebhookAttempt, len(t.Webhook.Attempts))}
		for i, at := range t.Webhook.Attempts {
			wh.Attempts[i] = courier.WebhookAttempt{At: at.At.UTC(), Status: at.Status, Error: at.Error}
		}
		if t.Webhook.Pending && !t.Webhook.NextAttemptAt.IsZero() {
			n := t.Webhook.NextAttemptAt.UTC()
			wh.NextAttemptAt = &n
		}
		out.Webhook = wh
	}
	return out
}
