package store

import (
	"strings"
	"time"
)

// DeadSuffix is appended to a queue's name to name its default dead-letter queue.
const DeadSuffix = ".dead"

// DefaultConfig returns the settings of a queue created without any: the
// defaults API.md names. A queue whose name ends in DeadSuffix is taken to be
// a dead-letter queue: it never dead-letters (MaxAttempts 0, no queue of its own).
func DefaultConfig(name string) QueueConfig {
	c := QueueConfig{
		VisibilityTimeout: 30 * time.Second,
		MaxAttempts:       5,
		Backoff:           Backoff{Initial: time.Second, Max: 10 * time.Minute, Multiplier: 2, Jitter: 0.2},
		DeadLetterQueue:   name + DeadSuffix,
		Retention:         336 * time.Hour,
		MaxMessageBytes:   1 << 20,
		DedupWindow:       5 * time.Minute,
	}
	if strings.HasSuffix(name, DeadSuffix) {
		c.MaxAttempts = 0
		c.DeadLetterQueue = ""
	}
	return c
}
