// Package courier is the Go SDK for courier, an asynchronous messaging and
// task service: a Client for every call of the HTTP/JSON API with typed
// errors; a Producer that batches sends; a Worker framework shaped like
// net/http (Handler, Mux, middleware) that leases, extends and settles
// messages; task submission with a Future that awaits the outcome; and the
// API's wire types. It imports only the standard library.
package courier

// The wire types below are the request and answer bodies of the HTTP API
// (docs/api.md). The server's HTTP adapter and the Client both use them, so
// the two cannot drift.

import (
	"encoding/json"
	"time"
)

// Backoff is a queue's retry schedule, as a queue object reports it: the
// delay after the n-th failure is Initial × Multiplier^(n-1), capped at Max,
// then moved by up to ±Jitter of itself (a fraction).
type Backoff struct {
	Initial    string  `json:"initial"`
	Max        string  `json:"max"`
	Multiplier float64 `json:"multiplier"`
	Jitter     float64 `json:"jitter"`
}

// BackoffSettings is a partial Backoff to set; nil fields keep their value,
// so a zero jitter can be set on purpose.
type BackoffSettings struct {
	Initial    *string  `json:"initial,omitempty"`
	Max        *string  `json:"max,omitempty"`
	Multiplier *float64 `json:"multiplier,omitempty"`
	Jitter     *float64 `json:"jitter,omitempty"`
}

// QueueSettings is the body of PUT /v1/queues/{queue}. Every field is optional;
// a nil field keeps the current value (or the default on creation).
type QueueSettings struct {
	VisibilityTimeout *string          `json:"visibility_timeout,omitempty"`
	MaxAttempts       *int             `json:"max_attempts,omitempty"`
	Backoff           *BackoffSettings `json:"backoff,omitempty"`
	DeadLetterQueue   *string          `json:"dead_letter_queue,omitempty"`
	Retention         *string          `json:"retention,omitempty"`
	MaxMessageBytes   *int             `json:"max_message_bytes,omitempty"`
	DedupWindow       *string          `json:"dedup_window,omitempty"`
}

// QueueStats are the live counters of a queue.
type QueueStats struct {
	Ready          int64  `json:"ready"`
	Delayed        int64  `json:"delayed"`
	InFlight       int64  `json:"in_flight"`
	Dead           int64  `json:"dead"`
	SentTotal      int64  `json:"sent_total"`
	AckedTotal     int64  `json:"acked_total"`
	OldestReadyAge string `json:"oldest_ready_age"`
}

// Queue is the queue object: its name, settings, pause state and stats.
type Queue struct {
	Name              string     `json:"name"`
	VisibilityTimeout string     `json:"visibility_timeout"`
	MaxAttempts       int        `json:"max_attempts"`
	Backoff           Backoff    `json:"backoff"`
	DeadLetterQueue   string     `json:"dead_letter_queue"`
	Retention         string     `json:"retention"`
	MaxMessageBytes   int        `json:"max_message_bytes"`
	DedupWindow       string     `json:"dedup_window"`
	Paused            bool       `json:"paused"`
	CreatedAt         time.Time  `json:"created_at"`
	Stats             QueueStats `json:"stats"`
}

// QueueList is the answer of GET /v1/queues.
type QueueList struct {
	Queues []Queue `json:"queues"`
}

// NewMessage is one message to send. Exactly one of Body and BodyBase64 is set.
type NewMessage struct {
	Body       json.RawMessage   `json:"body,omitempty"`
	BodyBase64 *string           `json:"body_base64,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Delay      string            `json:"delay,omitempty"`
	NotBefore  *time.Time        `json:"not_before,omitempty"`
	Priority   int               `json:"priority,omitempty"`
	DedupKey   string            `json:"dedup_key,omitempty"`
	Group      string            `json:"group,omitempty"`
}

// SendBatch is the batch form of a send: up to 1000 messages.
type SendBatch struct {
	Messages []NewMessage `json:"messages"`
}

// SendResult is the answer to a single send.
type SendResult struct {
	ID string `json:"id"`
}

// SendBatchResult is the answer to a batch send, in the order sent.
type SendBatchResult struct {
	Messages []SendResult `json:"messages"`
}

// ReceiveRequest is the body of POST /v1/queues/{queue}/receive.
//
// Ack, when set, acknowledges leases as POST …/ack would, applied before
// the receive takes messages and in the same durable change: a worker's
// next receive carries the acks of the messages it has finished, saving a
// call (and, on the server, a commit) per batch. The answer's Ack says
// what became of them; a stale lease is listed there, never a 409.
type ReceiveRequest struct {
	Max        int         `json:"max,omitempty"`
	Wait       string      `json:"wait,omitempty"`
	Visibility string      `json:"visibility,omitempty"`
	Ack        *AckRequest `json:"ack,omitempty"`
}

// Message is a delivered message. Body or BodyBase64 is set, as it was sent.
type Message struct {
	ID             string            `json:"id"`
	Body           json.RawMessage   `json:"body,omitempty"`
	BodyBase64     *string           `json:"body_base64,omitempty"`
	Headers        map[string]string `json:"headers"`
	Priority       int               `json:"priority"`
	Group          string            `json:"group"`
	Attempt        int               `json:"attempt"`
	SentAt         time.Time         `json:"sent_at"`
	Lease          string            `json:"lease"`
	LeaseExpiresAt time.Time         `json:"lease_expires_at"`
}

// ReceiveResult is the answer of a receive.
type ReceiveResult struct {
	Messages []Message `json:"messages"`
	// Ack is the outcome of the request's Ack; nil when it carried none.
	Ack *AckResult `json:"ack,omitempty"`
}

// AckRequest acknowledges one lease (Lease) or many (Leases). A message that
// is a task ends succeeded, with Result (one lease) or the element of Results
// at its lease's index (many leases); a result is any JSON value, up to the
// server's result limit (1 MiB by default). Results, when set, has exactly
// one element per lease. Both are ignored for messages that are not tasks.
type AckRequest struct {
	Lease   string            `json:"lease,omitempty"`
	Leases  []string          `json:"leases,omitempty"`
	Result  json.RawMessage   `json:"result,omitempty"`
	Results []json.RawMessage `json:"results,omitempty"`
}

// AckResult reports how many leases were acknowledged. A single-lease ack
// answers 409 when its lease is stale; a batch ack applies every valid lease
// and lists the others in Failed, each with the code a single ack would get.
type AckResult struct {
	Acked  int          `json:"acked"`
	Failed []AckFailure `json:"failed,omitempty"`
}

// AckFailure is one lease of a batch ack that was not applied.
type AckFailure struct {
	Lease   string `json:"lease"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NackRequest hands a message back: after Delay, or the queue's backoff when
// empty. With Terminate it is dead-lettered at once, whatever its attempts,
// with Error as the reason (a task ends failed with it); Delay must then be
// empty.
type NackRequest struct {
	Lease     string `json:"lease"`
	Delay     string `json:"delay,omitempty"`
	Error     string `json:"error,omitempty"`
	Terminate bool   `json:"terminate,omitempty"`
	// Release hands the message back unprocessed: its attempt is not
	// counted and it is never dead-lettered; ready again after Delay
	// (default at once). It takes no Error, and not with Terminate.
	Release bool `json:"release,omitempty"`
}

// ExtendRequest keeps a lease for Visibility from now.
type ExtendRequest struct {
	Lease      string `json:"lease"`
	Visibility string `json:"visibility,omitempty"`
}

// ExtendResult is the lease's new expiry.
type ExtendResult struct {
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
}

// RedriveRequest moves up to Max dead letters back to their queue.
type RedriveRequest struct {
	Max int `json:"max,omitempty"`
}

// RedriveResult reports how many messages were moved.
type RedriveResult struct {
	Moved int `json:"moved"`
}

// PurgeResult reports how many messages a purge dropped.
type PurgeResult struct {
	Purged int `json:"purged"`
}

// ErrorBody is the body of every non-2xx answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a stable machine-readable code and a message for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of the API; each maps to one HTTP status.
const (
	CodeInvalidArgument  = "invalid_argument"  // 400
	CodeUnauthenticated  = "unauthenticated"   // 401
	CodePermissionDenied = "permission_denied" // 403
	CodeNotFound         = "not_found"         // 404
	CodeQueueNotFound    = "queue_not_found"   // 404
	CodeTaskNotFound     = "task_not_found"    // 404
	CodeConflict         = "conflict"          // 409
	CodeLeaseExpired     = "lease_expired"     // 409
	CodeTooLarge         = "too_large"         // 413
	CodeRateLimited      = "rate_limited"      // 429
	CodeQueueFull        = "queue_full"        // 429
	CodeUnavailable      = "unavailable"       // 503
	CodeInternal         = "internal"          // 500
)

// NackResult says what became of a nacked message: retried from RetryAt,
// or moved to the dead-letter queue (or dropped, when the queue has none).
type NackResult struct {
	DeadLettered bool `json:"dead_lettered"`
	// Cancelled: the message was a task's whose cancel had been
	// requested; the task ended cancelled, and the message is gone.
	Cancelled bool       `json:"cancelled,omitempty"`
	RetryAt   *time.Time `json:"retry_at,omitempty"`
}

// Health is the answer of GET /healthz and GET /readyz when all is well.
type Health struct {
	Status string `json:"status"`
}

// CodeMethodNotAllowed answers a known path called with a method it does not
// serve; the Allow header lists the methods it does.
const CodeMethodNotAllowed = "method_not_allowed" // 405

// ---------------------------------------------------------------------------
// Tasks: asynchronous request-reply (API.md "Tasks", docs/api.md "Tasks").

// TaskState is where a task is in its life.
type TaskState string

// The states of a task. Succeeded, failed and cancelled are final.
const (
	TaskQueued    TaskState = "queued"
	TaskRunning   TaskState = "running"
	TaskSucceeded TaskState = "succeeded"
	TaskFailed    TaskState = "failed"
	TaskCancelled TaskState = "cancelled"
)

// Finished reports whether s is a final state.
func (s TaskState) Finished() bool {
	return s == TaskSucceeded || s == TaskFailed || s == TaskCancelled
}

// SubmitTask is the body of POST /v1/queues/{queue}/tasks: one message, as
// for a send, and what the requester asks beyond it.
type SubmitTask struct {
	NewMessage
	// Notify is a webhook called when the task finishes; nil = none.
	Notify *TaskNotify `json:"notify,omitempty"`
	// ReplyTo is a queue that receives the outcome as a message, with the
	// task's id in the courier-task-id header; "" = none.
	ReplyTo string `json:"reply_to,omitempty"`
	// ResultTTL is how long the finished task is kept (1s to 720h); "" = 24h.
	ResultTTL string `json:"result_ttl,omitempty"`
}

// SubmitBatch is the body of a batch submit: 1 to 1000 tasks for one queue,
// stored all or none. The answer is a TaskList of the tasks, in order.
type SubmitBatch struct {
	Tasks []SubmitTask `json:"tasks"`
}

// TaskList is a list of task objects: the answer to a batch submit.
type TaskList struct {
	Tasks []Task `json:"tasks"`
}

// TaskNotify is a webhook: an http(s) URL of at most 2048 bytes, and the
// secret (at most 256 bytes) its calls are signed with. The secret is never
// answered back.
type TaskNotify struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// Task is the task object. FinishedAt is nil (absent) until the task has
// finished; Result is set (possibly to the JSON null) only when it succeeded
// with a result; Webhook is nil when no webhook was asked for.
type Task struct {
	ID              string          `json:"id"`
	Queue           string          `json:"queue"`
	State           TaskState       `json:"state"`
	Attempt         int             `json:"attempt"`
	Progress        float64         `json:"progress"`
	ProgressMessage string          `json:"progress_message,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"`
	Error           string          `json:"error,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	FinishedAt      *time.Time      `json:"finished_at,omitempty"`
	CancelRequested bool            `json:"cancel_requested"`
	ReplyTo         string          `json:"reply_to,omitempty"`
	ResultTTL       string          `json:"result_ttl"`
	Webhook         *TaskWebhook    `json:"webhook,omitempty"`
}

// TaskWebhook is the delivery state of a task's webhook. Pending means a
// delivery is still to be made, at NextAttemptAt; Delivered that one was
// answered 2xx. Attempts lists every delivery attempt, oldest first.
type TaskWebhook struct {
	URL           string           `json:"url"`
	Attempts      []WebhookAttempt `json:"attempts"`
	Delivered     bool             `json:"delivered"`
	Pending       bool             `json:"pending"`
	NextAttemptAt *time.Time       `json:"next_attempt_at,omitempty"`
}

// WebhookAttempt is one delivery attempt of a webhook: the HTTP status
// answered (0 when none came) and why it failed, if it did.
type WebhookAttempt struct {
	At     time.Time `json:"at"`
	Status int       `json:"status"`
	Error  string    `json:"error,omitempty"`
}

// ProgressRequest is the body of POST /v1/tasks/{id}/progress: a running
// task's progress (0 to 1) and a note about it, reported by the worker that
// holds Lease. It also extends the lease by Visibility ("" = the queue's
// visibility timeout).
type ProgressRequest struct {
	Lease      string  `json:"lease"`
	Progress   float64 `json:"progress"`
	Message    string  `json:"message,omitempty"`
	Visibility string  `json:"visibility,omitempty"`
}
