package courier

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A Delivery is a message handed to a Handler by a Worker: the message as
// received (its ID, Body, Headers, Attempt, Lease, …) and what the handler
// may tell the worker beyond its error: the result of a task.
//
// The Worker settles the message (ack, nack, terminate) when the handler
// returns; a handler must not Ack or Nack it itself.
type Delivery struct {
	Message

	queue      string
	c          *Client
	visibility time.Duration           // of the worker's leases
	cancel     context.CancelCauseFunc // cancels the handler's context
	keep       leaseKeeper             // extends the lease while the handler runs (worker_lease.go)
	batch      *parkedBatch            // the receive's batch a parked slot waits for, or nil (worker_receive.go)

	settled atomic.Bool // the worker has sent (or given up on) its outcome

	mu     sync.Mutex // guards result
	result json.RawMessage
}

// Queue names the queue the message came from.
func (d *Delivery) Queue() string { return d.queue }

// Type is the message's "type" header (HeaderType), which a Mux routes by.
func (d *Delivery) Type() string { return d.Headers[HeaderType] }

// SetResult sets the result a task reports when the handler returns nil:
// v encoded as JSON (a json.RawMessage is taken as it is, if valid). The
// last call wins. For a message that is not a task the result is dropped.
func (d *Delivery) SetResult(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as bodies: a result arrives as written
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("courier: encode result of message %s: %w", d.ID, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.result = bytes.TrimRight(buf.Bytes(), "\n")
	return nil
}

// Result is the result set with SetResult, or nil.
func (d *Delivery) Result() json.RawMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.result
}

// claim marks d settled and reports whether it was not before: exactly one
// of the handler's outcome and a stopping worker's release settles it.
func (d *Delivery) claim() bool { return d.settled.CompareAndSwap(false, true) }
