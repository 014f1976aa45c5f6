// Package store is courier's storage port: the domain verbs every backend
// implements (send, lease, ack, nack, extend, expire, promote, redrive, …)
// and the types they exchange. Semantics are pinned down by the conformance
// suite in package storetest, which every backend runs.
//
// Division of labour: the store keeps state and makes each verb atomic and
// durable (a verb returns only after its change is synced or committed). The
// broker owns policy: whether a failed message is retried or dead-lettered,
// and after what delay, is decided by the RetryFunc the broker passes in, so
// both backends apply exactly the same rules. Time is passed in (Now), never
// read from the wall clock, so delays and leases are testable without sleeps.
package store

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"
)

// Errors returned by stores. Callers test them with errors.Is.
var (
	ErrQueueNotFound = errors.New("queue not found")
	ErrQueueExists   = errors.New("queue already exists")
	// ErrLeaseExpired: the lease is not the current lease of an in-flight
	// message (it expired, was superseded by a redelivery, was already acked,
	// or never existed). Nothing was changed.
	ErrLeaseExpired = errors.New("lease expired")
	// ErrInvalidLease: the lease token is malformed (not one a store issued).
	ErrInvalidLease = errors.New("invalid lease")
	// ErrNoSpace: the store refuses new data because its disk is nearly full.
	// Reads, acks and deletions still work.
	ErrNoSpace = errors.New("store is low on disk space")
	// ErrFailed: a write or fsync failed; the store serves nothing more
	// until it is reopened (a restart), which rebuilds it from disk.
	ErrFailed = errors.New("store failed")
	ErrClosed = errors.New("store is closed")
	// ErrUnavailable: the store cannot be reached (its database is down or
	// restarting); nothing was changed. Retrying later is safe.
	ErrUnavailable = errors.New("store unavailable")
	// ErrOutcomeUnknown: the store lost its connection while committing, so
	// the change may or may not have been made. It must be reported as
	// unknown, never as failed: a retry may repeat it.
	ErrOutcomeUnknown = errors.New("outcome unknown: the store lost its connection while committing")
	// ErrTaskNotFound: no task has this id (or its result_ttl has passed).
	ErrTaskNotFound = errors.New("task not found")
	// ErrTaskCancelled: the task was cancelled while running; its worker
	// learns it on its next extend or progress report, which end it.
	ErrTaskCancelled = errors.New("task cancelled")
)

// WebhookWatcher is an optional capability of a Store: it tells when a
// task with a webhook has finished, so that the webhook goes out at once
// rather than at the dispatcher's next poll, which stays the authority.
type WebhookWatcher interface {
	// WatchWebhooks returns a channel closed at the next durable change
	// that makes a webhook due.
	WatchWebhooks() <-chan struct{}
}

// SyncReporter is an optional capability of a Store: the latencies of the
// fsyncs of its write-ahead log, which every answer waits for (the
// embedded store; PostgreSQL's are the database's own).
type SyncReporter interface {
	WALSyncs() SyncHistogram
}

// SyncHistogram counts fsyncs by latency: Cumulative[i] of them took at
// most Upper[i]; Count is every one (some may exceed the last bound).
type SyncHistogram struct {
	Upper      []time.Duration
	Cumulative []uint64
	Count      uint64
	Sum        time.Duration // of every fsync's latency
}

// Since is h less what before counted: the fsyncs between two snapshots
// of one histogram. A before that is not an earlier snapshot of h's
// histogram (other buckets, or counts h does not reach: another one, or
// one that started over) counted none of h's, nor does an empty before:
// h is returned whole.
func (h SyncHistogram) Since(before SyncHistogram) SyncHistogram {
	if !h.after(before) {
		return h
	}
	out := SyncHistogram{Upper: h.Upper, Cumulative: make([]uint64, len(h.Cumulative)), Count: h.Count - before.Count,
		Sum: h.Sum - before.Sum}
	for i, c := range h.Cumulative {
		out.Cumulative[i] = c - before.Cumulative[i]
	}
	return out
}

// after tells whether h can be a later snapshot of before's histogram: the
// same buckets, and no count smaller.
func (h SyncHistogram) after(before SyncHistogram) bool {
	if h.Count < before.Count || len(h.Upper) != len(h.Cumulative) ||
		len(h.Upper) != len(before.Upper) || len(h.Cumulative) != len(before.Cumulative) {
		return false
	}
	for i := range h.Upper {
		if h.Upper[i] != before.Upper[i] || h.Cumulative[i] < before.Cumulative[i] {
			return false
		}
	}
	return true
}

// Quantile is the latency under which a fraction q of the fsyncs fell,
// read as the upper bound of the bucket that holds it; 0 with none, and
// the last bound if it lies past every bucket.
func (h SyncHistogram) Quantile(q float64) time.Duration {
	if h.Count == 0 || len(h.Upper) == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.Count))), 1)
	for i, c := range h.Cumulative {
		if c >= rank {
			return h.Upper[i]
		}
	}
	return h.Upper[len(h.Upper)-1]
}

// Over is how many fsyncs took longer than d, read at the first bucket
// bound at or above d (d itself when it is a bound): those past it. With d
// past every bound, those past the last.
func (h SyncHistogram) Over(d time.Duration) uint64 {
	if len(h.Upper) == 0 || len(h.Cumulative) != len(h.Upper) {
		return 0
	}
	i, _ := slices.BinarySearch(h.Upper, d)
	i = min(i, len(h.Upper)-1)
	return h.Count - h.Cumulative[i]
}

// Max is the upper bound of the bucket of the slowest fsync; 0 with none,
// and the last bound if it lies past every bucket.
func (h SyncHistogram) Max() time.Duration {
	if h.Count == 0 || len(h.Upper) == 0 || len(h.Cumulative) != len(h.Upper) {
		return 0
	}
	last := len(h.Upper) - 1
	if h.Count > h.Cumulative[last] {
		return h.Upper[last]
	}
	for i := last; i > 0; i-- {
		if h.Cumulative[i] > h.Cumulative[i-1] {
			return h.Upper[i]
		}
	}
	return h.Upper[0]
}

// Handoff is an optional capability of a Store: a long-poll that found
// nothing leaves a claim, and the next change that makes messages ready in
// the queue (a send, most often) leases them for the claim in its own
// atomic write. One fsync then covers the send and the lease, and the
// message reaches the waiting receiver without a second write.
type Handoff interface {
	// Claim registers a waiting receive of up to p.Max messages (p.MaxBytes
	// and p.Visibility as in Lease; p.Acks must be empty: a claim only
	// leases). It answers nil when the queue does not exist.
	Claim(p *LeaseParams) Claim
}

// SyncDeferrer is a store that can apply a lease that hands out nothing
// without waiting for its sync (LeaseParams.DeferSync). Why: a long-poll
// that carries acks would otherwise spend an fsync on them before it
// waits, and the write that ends its wait (a send handing it a message)
// spends another; deferred, one fsync covers both, since the log is
// synced in order. The acks apply at once, so no lease expires meanwhile;
// the receive's answer, which reports them, still waits until they are
// durable.
type SyncDeferrer interface {
	// WaitSynced returns once the change of mark is durable, syncing the
	// log itself if nothing else has; an error if the store failed or
	// closed without it.
	WaitSynced(ctx context.Context, mark uint64) error
}

// Claim is a waiting receive registered with a Handoff store.
type Claim interface {
	// Done is closed once messages have been leased for the claim and the
	// lease is durable.
	Done() <-chan struct{}
	// Withdraw ends the claim and answers the messages leased for it, if
	// any: a claim taken by a change still being synced is waited for, so
	// that no lease is handed out before it is durable, nor left unreported.
	Withdraw() ([]Message, error)
}

// Store is the storage port. All methods are safe for concurrent use. Every
// method that changes state returns only once the change is durable, and
// reads answer only durable state: never a change a crash could still undo
// (GetQueue with ConfigOnly excepted; it serves the broker's checks before
// a write).
type Store interface {
	// CreateQueue creates a queue; ErrQueueExists if it exists.
	CreateQueue(ctx context.Context, p *CreateQueueParams) (Queue, error)
	// UpdateQueue replaces the configuration of an existing queue.
	UpdateQueue(ctx context.Context, p *UpdateQueueParams) (Queue, error)
	// GetQueue returns a queue with its stats as of Now.
	GetQueue(ctx context.Context, p *GetQueueParams) (Queue, error)
	// ListQueues returns every queue, ordered by name, with stats.
	ListQueues(ctx context.Context, p *ListQueuesParams) ([]Queue, error)
	// DeleteQueue deletes a queue and every message in it.
	DeleteQueue(ctx context.Context, p *DeleteQueueParams) error
	// PurgeQueue drops every ready, delayed and group-waiting message.
	// In-flight messages stay. Returns how many were dropped.
	PurgeQueue(ctx context.Context, p *PurgeQueueParams) (int, error)
	// SetPaused pauses or resumes handing out messages.
	SetPaused(ctx context.Context, p *SetPausedParams) (Queue, error)

	// Send stores messages in one existing queue (else ErrQueueNotFound),
	// atomically: all or none. Messages are not validated here (the broker
	// does that). A message
	// whose DedupKey was seen within the queue's dedup window is not stored;
	// its result carries the first message's id and Duplicate=true.
	Send(ctx context.Context, p *SendParams) ([]SendResult, error)
	// Lease (ErrQueueNotFound for a missing queue) hands out up to Max ready messages, highest priority first, then
	// oldest first, each with a fresh lease. Before leasing it applies what
	// Now makes due in this queue: delayed messages become ready, expired
	// leases are released (retried or dead-lettered by p.Retry), messages
	// past retention are dropped. A paused queue hands out nothing.
	//
	// With p.Acks, the lease first acknowledges those leases as Ack would,
	// in the same atomic, durable change (a receive that carries the acks
	// of the messages its worker has finished): LeaseResult.Acked has one
	// error per lease. What an ack frees (the next message of a group) may
	// be handed out by the same lease. A request error leaves the acks
	// unapplied.
	Lease(ctx context.Context, p *LeaseParams) (LeaseResult, error)
	// Ack deletes the messages of valid leases. It is applied per lease: the
	// result has one error (nil or ErrLeaseExpired/ErrInvalidLease) per lease.
	// A task's message acked ends the task succeeded, with its Result.
	Ack(ctx context.Context, p *AckParams) ([]error, error)
	// Nack gives a message back: retried after the delay the RetryFunc
	// decides (or p.Delay), or dead-lettered. With p.Release it is handed
	// back unprocessed instead: its attempt is not counted (the next
	// delivery has the same attempt number), it is never dead-lettered,
	// and it is ready after p.Delay (nil: at once), in its place by send
	// order; a task goes back to queued with its last error kept.
	//
	// Dead-lettering (by Nack, or by an expired lease in Lease/Tick) moves the
	// message, same id and body, to the queue's DeadLetterQueue, creating that
	// queue with DefaultConfig if it does not exist, with the Header* headers
	// added, attempt reset and ready at once; with no DeadLetterQueue the
	// message is dropped. A message of a group leaves its group: the next one
	// of the group becomes deliverable.
	Nack(ctx context.Context, p *NackParams) (NackResult, error)
	// Extend sets a lease's expiry to Now+Visibility.
	Extend(ctx context.Context, p *ExtendParams) (time.Time, error)
	// Redrive moves up to Max messages dead-lettered from Queue out of its
	// dead-letter queue and back into Queue, with attempts reset.
	Redrive(ctx context.Context, p *RedriveParams) (int, error)

	// GetTask returns a task as of Now; ErrTaskNotFound when it does not
	// exist or its result has outlived its ResultTTL.
	GetTask(ctx context.Context, p *GetTaskParams) (Task, error)
	// GetTasks is GetTask of every id of IDs in one read (a batch submit's
	// answer), in their order; ErrTaskNotFound when any is missing.
	GetTasks(ctx context.Context, p *GetTasksParams) ([]Task, error)
	// CancelTask cancels a task: a queued one at once (its message is
	// removed), a running one when its worker next extends or reports
	// progress (CancelRequested until then). A finished task is unchanged.
	CancelTask(ctx context.Context, p *CancelTaskParams) (Task, error)
	// Progress records a running task's progress and extends its lease, like
	// Extend. ErrTaskCancelled (the task then ends cancelled) if a cancel
	// was requested; ErrLeaseExpired for a stale lease.
	Progress(ctx context.Context, p *ProgressParams) (Task, error)
	// WatchTask returns a channel closed at the task's next change.
	WatchTask(id string) <-chan struct{}
	// DueWebhooks returns up to Max finished tasks whose webhook delivery
	// is due by Now, oldest due first.
	DueWebhooks(ctx context.Context, p *DueWebhooksParams) ([]Task, error)
	// RecordWebhook records a webhook delivery attempt and when to try
	// again (zero NextAttemptAt: no more attempts).
	RecordWebhook(ctx context.Context, p *RecordWebhookParams) (Task, error)

	// Tick does the time-driven work of every queue as of Now: promotes due
	// messages, releases expired leases, drops messages past retention, and
	// forgets dedup keys past their window. Returns when anything is next due.
	Tick(ctx context.Context, p *TickParams) (TickResult, error)

	// Watch returns a channel closed when messages may have become available
	// in the queue (a send, a nack, a released lease, a resume). It is a hint:
	// the caller leases again to find out. Registering is cheap.
	Watch(queue string) <-chan struct{}

	// Ready reports whether the store can serve (nil) or why not.
	Ready(ctx context.Context) error
	// Close releases the store. Calls after Close return ErrClosed.
	Close() error
}

// RetryFunc decides the fate of a message that failed its attempt-th
// delivery (nack or lease expiry): retry after delay, or dead-letter it.
// explicit is the delay the consumer asked for, if any. The broker provides it.
type RetryFunc func(q QueueConfig, attempt int, explicit *time.Duration) (delay time.Duration, deadLetter bool)

// QueueConfig is a queue's settings. Every field is set (defaults applied by the broker).
type QueueConfig struct {
	VisibilityTimeout time.Duration
	MaxAttempts       int // 0 = unlimited
	Backoff           Backoff
	DeadLetterQueue   string // "" = none: failed messages are dropped
	Retention         time.Duration
	MaxMessageBytes   int
	DedupWindow       time.Duration // 0 = no dedup
}

// Backoff is a retry schedule; see courier.Backoff.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
}

// Queue is a queue as stored: name, config, state and stats.
type Queue struct {
	Name      string
	Config    QueueConfig
	Paused    bool
	CreatedAt time.Time
	Stats     Stats
}

// Stats are a queue's counters as of the Now of the call.
type Stats struct {
	Ready      int64 // deliverable now, including group members waiting for their turn
	Delayed    int64
	InFlight   int64
	Dead       int64 // messages dead-lettered from this queue still in a dead-letter queue
	SentTotal  int64 // messages ever stored in this queue (dedup hits excluded)
	AckedTotal int64
	// OldestReady is the send time of the oldest ready message; zero if none.
	OldestReady time.Time
}

// BodyKind says how a body was sent, so it is returned the same way.
type BodyKind uint8

const (
	BodyJSON   BodyKind = 1 // sent as "body": raw JSON text
	BodyBinary BodyKind = 2 // sent as "body_base64": raw bytes
)

// NewMessage is a message to store.
type NewMessage struct {
	Body      []byte
	Kind      BodyKind
	Headers   map[string]string
	NotBefore time.Time // zero = ready at once
	Priority  int       // -100..100
	DedupKey  string
	Group     string
	// Task, when set, makes the message a task: a task record with the
	// message's id is stored with it, atomically.
	Task *NewTask
}

// NewTask is what a requester asks of a task beyond its message.
type NewTask struct {
	NotifyURL    string        // webhook called when the task finishes; "" = none
	NotifySecret string        // HMAC key of the webhook's signature
	ReplyTo      string        // queue that receives the outcome as a message; "" = none
	ResultTTL    time.Duration // how long the finished task is kept
}

// TaskState is where a task is in its life.
type TaskState string

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

// Task is a task's durable record. Every change increments Version, so a
// reader that saw version v knows whether it has missed anything.
type Task struct {
	ID              string
	Queue           string
	State           TaskState
	Attempt         int
	Progress        float64
	ProgressMessage string
	Result          []byte // JSON; set when succeeded
	Error           string // why it last failed, or why it ended failed/cancelled
	CreatedAt       time.Time
	UpdatedAt       time.Time
	FinishedAt      time.Time // zero until finished
	ExpiresAt       time.Time // FinishedAt + ResultTTL; zero until finished
	Version         uint64
	CancelRequested bool
	Request         NewTask
	Webhook         WebhookStatus
}

// WebhookStatus is the delivery state of a finished task's webhook.
type WebhookStatus struct {
	Pending       bool      // a delivery is still to be made
	NextAttemptAt time.Time // when, if Pending
	Attempts      []WebhookAttempt
	Delivered     bool // a delivery was answered 2xx
}

// WebhookAttempt is one delivery attempt of a webhook.
type WebhookAttempt struct {
	At     time.Time
	Status int    // HTTP status; 0 when no answer came
	Error  string // why it failed, if it did
}

// Headers of a task outcome sent to a reply_to queue.
const (
	HeaderTaskID    = "courier-task-id"
	HeaderTaskState = "courier-task-state"
)

// SendResult is the id of a stored (or deduplicated) message.
type SendResult struct {
	ID        string
	Duplicate bool
}

// Message is a leased message.
type Message struct {
	ID             string
	Queue          string
	Body           []byte
	Kind           BodyKind
	Headers        map[string]string
	Priority       int
	Group          string
	Attempt        int // 1 on first delivery
	SentAt         time.Time
	Lease          string
	LeaseExpiresAt time.Time
}

// LeaseResult is what Lease handed out, and, when it handed out nothing,
// when the queue next changes by itself (a delayed message comes due or a
// lease expires; zero if never): the time a receive waiting for messages
// wakes up by. With messages it may be zero.
type LeaseResult struct {
	Messages []Message
	NextDue  time.Time
	// Acked is the outcome of each of LeaseParams.Acks, as Ack answers it.
	Acked []error
	// SyncMark, if not 0, is a change applied without its sync
	// (LeaseParams.DeferSync): pass it to SyncDeferrer.WaitSynced before
	// answering anything that depends on it.
	SyncMark uint64
	// Due is the queue's due work this lease did before leasing, as Tick
	// counts it (NextDue unset): expired leases, delayed messages come due,
	// retention. What a lease does here a later Tick does not count again.
	// With DeferSync, it is reported before that work is durable.
	Due TickResult
}

// NackResult says what happened to a nacked message.
type NackResult struct {
	DeadLettered bool
	// Cancelled: the message was a task's whose cancel had been requested;
	// the task ended cancelled and the message is gone.
	Cancelled bool
	RetryAt   time.Time // when it will be ready again, if retried
}

// TickResult reports the work Tick did and when it is next needed.
type TickResult struct {
	Promoted, Expired, DeadLettered, Dropped int
	NextDue                                  time.Time // zero if nothing is scheduled
}

// Add adds o's counts to r's (not NextDue).
func (r *TickResult) Add(o TickResult) {
	r.Promoted += o.Promoted
	r.Expired += o.Expired
	r.DeadLettered += o.DeadLettered
	r.Dropped += o.Dropped
}

// Parameters of the verbs. Now is the caller's clock.
type (
	CreateQueueParams struct {
		Name   string
		Config QueueConfig
		Now    time.Time
	}
	UpdateQueueParams struct {
		Name   string
		Config QueueConfig
		Now    time.Time
	}
	GetQueueParams struct {
		Name string
		Now  time.Time
		// ConfigOnly skips the stats (left zero): for callers on a hot path
		// that need only the settings.
		ConfigOnly bool
	}
	ListQueuesParams  struct{ Now time.Time }
	DeleteQueueParams struct {
		Name string
		Now  time.Time
	}
	PurgeQueueParams struct {
		Name string
		Now  time.Time
	}
	SetPausedParams struct {
		Name   string
		Paused bool
		Now    time.Time
	}
	SendParams struct {
		Queue    string
		Messages []NewMessage
		Now      time.Time
	}
	LeaseParams struct {
		Queue string
		Max   int
		// MaxBytes stops a lease early once the bodies handed out reach it
		// (at least one message is handed out); 0 = no limit.
		MaxBytes   int
		Visibility time.Duration // 0 = the queue's VisibilityTimeout
		Now        time.Time
		Retry      RetryFunc
		// Acks (and AckResults, as in AckParams) are acknowledged before
		// leasing, in the same change.
		Acks       []string
		AckResults [][]byte
		// DeferSync, for a SyncDeferrer: when the lease hands out nothing
		// (a long-poll that will wait), its change is applied at once but
		// not synced; LeaseResult.SyncMark says so. Ignored otherwise.
		DeferSync bool
		// NoReadWait: a lease that carries no acks and changes nothing
		// answers at once, without waiting for the syncs of changes it may
		// have seen (a store's reads otherwise answer durable state only).
		// It hands out nothing, and an empty receive promises nothing: at
		// least once delivery lets one come back empty at any moment, as a
		// PostgreSQL receive does when SKIP LOCKED passes over rows that
		// other transactions hold. A long-poll then waits for a message
		// instead of for a sync; competing consumers' empty wake-ups stop
		// kicking syncs of each other's deferred acks (SyncDeferrer).
		NoReadWait bool
	}
	AckParams struct {
		Queue  string
		Leases []string
		// Results, if not nil, has one JSON result (or nil) per lease: the
		// result of the task whose message the lease holds.
		Results [][]byte
		Now     time.Time
	}
	NackParams struct {
		Queue string
		Lease string
		Delay *time.Duration // nil: the RetryFunc's backoff
		Error string
		// Terminate dead-letters the message at once, whatever its
		// attempts, with Error as the reason; a task ends failed.
		Terminate bool
		// Release hands the message back without counting its attempt
		// (see Store.Nack); Error is not kept. Not with Terminate.
		Release bool
		Now     time.Time
		Retry   RetryFunc
	}
	ExtendParams struct {
		Queue      string
		Lease      string
		Visibility time.Duration // 0 = the queue's VisibilityTimeout
		Now        time.Time
	}
	RedriveParams struct {
		Queue string
		Max   int
		Now   time.Time
	}
	TickParams struct {
		Now   time.Time
		Retry RetryFunc
	}
	GetTaskParams struct {
		ID  string
		Now time.Time
	}
	GetTasksParams struct {
		IDs []string
		Now time.Time
	}
	CancelTaskParams struct {
		ID  string
		Now time.Time
	}
	ProgressParams struct {
		ID         string
		Lease      string
		Progress   float64 // 0..1
		Message    string
		Visibility time.Duration // 0 = the queue's VisibilityTimeout
		Now        time.Time
	}
	DueWebhooksParams struct {
		Now time.Time
		Max int
	}
	RecordWebhookParams struct {
		ID            string
		Attempt       WebhookAttempt
		Delivered     bool
		NextAttemptAt time.Time // zero: no more attempts
		Now           time.Time
	}
)

// Headers a store adds to a dead-lettered message.
const (
	HeaderSourceQueue = "courier-source-queue"
	HeaderAttempts    = "courier-attempts"
	HeaderError       = "courier-error"
	HeaderDeadReason  = "courier-dead-reason"
)

// Reasons in HeaderDeadReason.
const (
	DeadMaxAttempts = "max_attempts"
	DeadTerminated  = "terminated"
)
