package httpapi

import (
	"net/http"

	courier "github.com/courierhq/courier"
)

// healthz says the process is up and serving HTTP; it checks nothing else,
// so a restart is never triggered by a slow disk.
func (a *api) healthz(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, courier.Health{Status: "ok"})
}

// readyz says whether the store can serve: 200, or 503 unavailable.
func (a *api) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := a.b.Ready(r.Context()); err != nil {
		if r.Context().Err() != nil {
			return nil // the prober went away
		}
		a.log.Warn("not ready", "err", err)
		w.Header().Set("Retry-After", "1")
		writeErrorBody(w, http.StatusServiceUnavailable, courier.CodeUnavailable, "the store is not ready")
		return nil
	}
	return writeJSON(w, http.StatusOK, courier.Health{Status: "ok"})
}

// serveMetrics answers a Prometheus scrape (the text format; OpenMetrics is
// not offered).
func (a *api) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	a.metrics.ServeHTTP(w, r)
	return nil
}
