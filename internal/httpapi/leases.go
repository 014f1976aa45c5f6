package httpapi

import (
	"errors"
	"net/http"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/store"
)

// ack takes {"lease": …} or {"leases": […]}. A single ack answers its
// lease's error (409 lease_expired when stale); a batch ack applies every
// valid lease and lists the others, each with the code a single ack would get.
func (a *api) ack(w http.ResponseWriter, r *http.Request) error {
	var req courier.AckRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	leases := req.Leases
	switch {
	case req.Lease != "" && req.Leases != nil:
		return invalidf("set lease or leases, not both")
	case req.Lease != "":
		leases = []string{req.Lease}
	case req.Leases == nil:
		return invalidf("lease (one) or leases (a list) is required")
	}
	errs, err := a.b.Ack(r.Context(), r.PathValue("queue"), leases)
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
	var out courier.AckResult
	for i, e := range errs {
		if e == nil {
			out.Acked++
			continue
		}
		f, ok := leaseFailure(r, leases[i], e)
		if !ok {
			return e // not a per-lease outcome: something is broken
		}
		out.Failed = append(out.Failed, f)
	}
	return writeJSON(w, http.StatusOK, out)
}

// errLeaseCount is a store answering a different number of results than leases.
var errLeaseCount = errors.New("ack: store answered a result count unlike the lease count")

func (a *api) nack(w http.ResponseWriter, r *http.Request) error {
	var req courier.NackRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	if req.Lease == "" {
		return invalidf("lease is required")
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

// optString reads "" as absent.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nackResult renders what a nack did.
func nackResult(res store.NackResult) courier.NackResult {
	out := courier.NackResult{DeadLettered: res.DeadLettered}
	if !res.DeadLettered && !res.RetryAt.IsZero() {
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
