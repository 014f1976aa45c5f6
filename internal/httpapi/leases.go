package httpapi

import (
	"errors"
	"net/http"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/store"
)

// ack takes {"lease": …} or {"leases": […]}, with the result of a task
// ("result") or of each ("results"). A single ack answers its lease's error
// (409 lease_expired when stale); a batch ack applies every valid lease and
// lists the others, each with the code a single ack would get.
func (a *api) ack(w http.ResponseWriter, r *http.Request) error {
	var req ackRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	leases, results, err := ackLeases(&req.AckRequest)
	if err != nil {
		return err
	}
	errs, err := a.b.AckResults(r.Context(), r.PathValue("queue"), leases, results)
	if err != nil {
		return err
	}
	if len(errs) != len(leases) {
		return errLeaseCount
	}
	if req.Lease != "" {
		if errs[0] != nil {
			return errs[0]
		}
		return writeJSON(w, http.StatusOK, courier.AckResult{Acked: 1})
	}
	out, err := ackOutcome(r, leases, errs)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// ackOutcome is the answer to a batch of acks: how many were applied, and
// the failure of each of the others. An error that is no lease's outcome
// means something is broken, and is returned.
func ackOutcome(r *http.Request, leases []string, errs []error) (courier.AckResult, error) {
	if len(errs) != len(leases) {
		return courier.AckResult{}, errLeaseCount
	}
	var out courier.AckResult
	for i, e := range errs {
		if e == nil {
			out.Acked++
			continue
		}
		f, ok := leaseFailure(r, leases[i], e)
		if !ok {
			return courier.AckResult{}, e
		}
		out.Failed = append(out.Failed, f)
	}
	return out, nil
}

// ackLeases reads the leases of an ack and the results of its tasks: result
// goes with lease, results (one per lease, by index) with leases. A result
// is JSON as sent ("null" included); nil results means none.
func ackLeases(req *courier.AckRequest) (leases []string, results [][]byte, err error) {
	switch {
	case req.Lease != "" && req.Leases != nil:
		return nil, nil, invalidf("set lease or leases, not both")
	case req.Lease != "":
		if req.Results != nil {
			return nil, nil, invalidf("results goes with leases; with lease, give result")
		}
		if req.Result != nil {
			results = [][]byte{req.Result}
		}
		return []string{req.Lease}, results, nil
	case req.Leases == nil:
		return nil, nil, invalidf("lease (one) or leases (a list) is required")
	case req.Result != nil:
		return nil, nil, invalidf("result goes with lease; with leases, give results (one per lease, in order)")
	}
	if req.Results != nil {
		// The broker checks that the counts match.
		results = make([][]byte, len(req.Results))
		for i, r := range req.Results {
			results[i] = r
		}
	}
	return req.Leases, results, nil
}

// errLeaseCount is a store answering a different number of results than leases.
var errLeaseCount = errors.New("ack: store answered a result count unlike the lease count")

// nack gives a message back, or with "terminate" dead-letters it at once
// with "error" as the reason (a task ends failed with it), or with
// "release" hands it back unprocessed, its attempt not counted.
func (a *api) nack(w http.ResponseWriter, r *http.Request) error {
	var req courier.NackRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	if req.Lease == "" {
		return invalidf("lease is required")
	}
	if req.Release {
		return a.release(w, r, req)
	}
	if req.Terminate {
		if req.Delay != "" {
			return invalidf("terminate dead-letters the message at once: it takes no delay")
		}
		if err := a.b.Terminate(r.Context(), r.PathValue("queue"), req.Lease, req.Error); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, courier.NackResult{DeadLettered: true})
	}
	delay, err := optDuration("delay", optString(req.Delay))
	if err != nil {
		return err
	}
	res, err := a.b.Nack(r.Context(), r.PathValue("queue"), req.Lease, delay, req.Error)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nackResult(res))
}

// release is a nack with "release": the message was not processed.
func (a *api) release(w http.ResponseWriter, r *http.Request, req courier.NackRequest) error {
	if req.Terminate {
		return invalidf("release and terminate exclude each other: release gives the message back for another delivery, terminate dead-letters it")
	}
	if req.Error != "" {
		return invalidf("release gives back a message that was not processed: it takes no error (nack without release records one)")
	}
	delay, err := optDuration("delay", optString(req.Delay))
	if err != nil {
		return err
	}
	res, err := a.b.Release(r.Context(), r.PathValue("queue"), req.Lease, delay)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nackResult(res))
}

// optString reads "" as absent.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nackResult renders what a nack did.
func nackResult(res store.NackResult) courier.NackResult {
	out := courier.NackResult{DeadLettered: res.DeadLettered, Cancelled: res.Cancelled}
	if !res.DeadLettered && !res.Cancelled && !res.RetryAt.IsZero() {
		t := res.RetryAt.UTC()
		out.RetryAt = &t
	}
	return out
}

func (a *api) extend(w http.ResponseWriter, r *http.Request) error {
	var req courier.ExtendRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	if req.Lease == "" {
		return invalidf("lease is required")
	}
	vis, err := duration("visibility", req.Visibility)
	if err != nil {
		return err
	}
	exp, err := a.b.Extend(r.Context(), r.PathValue("queue"), req.Lease, vis)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, courier.ExtendResult{LeaseExpiresAt: exp.UTC()})
}
