package httpapi

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkServeHealthz is the cost of the handler around a route (routing,
// CORS, metrics, recovery) with the cheapest route inside it.
func BenchmarkServeHealthz(b *testing.B) {
	f := setup(b)
	r := httptest.NewRequest("GET", "/healthz", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
