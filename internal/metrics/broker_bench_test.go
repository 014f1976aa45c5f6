package metrics

import (
	"testing"
	"time"

	"github.com/courierhq/courier/internal/store"
)

// BenchmarkDelivered is what a receive of 1,000 first deliveries costs
// the metrics: a counter add and 1,000 histogram observations.
func BenchmarkDelivered(b *testing.B) {
	m := New(Options{})
	now := time.Now()
	msgs := make([]store.Message, 1000)
	for i := range msgs {
		msgs[i] = store.Message{Attempt: 1, SentAt: now.Add(-time.Duration(i) * time.Millisecond)}
	}
	for b.Loop() {
		m.Delivered("q", now, msgs)
	}
}
