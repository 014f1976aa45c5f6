package broker

import (
	"time"

	"github.com/courierhq/courier/internal/store"
)

// applySettings overlays s on cfg and validates the result, naming the bad field.
func applySettings(name string, cfg store.QueueConfig, s QueueSettings) (store.QueueConfig, error) {
	if s.VisibilityTimeout != nil {
		cfg.VisibilityTimeout = *s.VisibilityTimeout
	}
	if s.MaxAttempts != nil {
		cfg.MaxAttempts = *s.MaxAttempts
	}
	if bs := s.Backoff; bs != nil {
		if bs.Initial != nil {
			cfg.Backoff.Initial = *bs.Initial
		}
		if bs.Max != nil {
			cfg.Backoff.Max = *bs.Max
		}
		if bs.Multiplier != nil {
			cfg.Backoff.Multiplier = *bs.Multiplier
		}
		if bs.Jitter != nil {
			cfg.Backoff.Jitter = *bs.Jitter
		}
	}
	if s.DeadLetterQueue != nil {
		cfg.DeadLetterQueue = *s.DeadLetterQueue
	}
	if s.Retention != nil {
		cfg.Retention = *s.Retention
	}
	if s.MaxMessageBytes != nil {
		cfg.MaxMessageBytes = *s.MaxMessageBytes
	}
	if s.DedupWindow != nil {
		cfg.DedupWindow = *s.DedupWindow
	}
	return cfg, validateConfig(name, cfg)
}

func validateConfig(name string, c store.QueueConfig) error {
	if err := durationIn("visibility_timeout", c.VisibilityTimeout, MinVisibility, MaxVisibility); err != nil {
		return err
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > MaxAttemptsLimit {
		return invalidf("max_attempts must be 0 (unlimited) to %d, got %d", MaxAttemptsLimit, c.MaxAttempts)
	}
	if err := durationIn("backoff.initial", c.Backoff.Initial, time.Millisecond, MaxBackoff); err != nil {
		return err
	}
	if err := durationIn("backoff.max", c.Backoff.Max, c.Backoff.Initial, MaxBackoff); err != nil {
		return err
	}
	if !(c.Backoff.Multiplier >= 1 && c.Backoff.Multiplier <= MaxMultiplier) { // also rejects NaN
		return invalidf("backoff.multiplier must be 1 to %d, got %v", MaxMultiplier, c.Backoff.Multiplier)
	}
	if !(c.Backoff.Jitter >= 0 && c.Backoff.Jitter <= 1) {
		return invalidf("backoff.jitter must be 0 to 1, got %v", c.Backoff.Jitter)
	}
	if err := validateDLQ(name, c.DeadLetterQueue); err != nil {
		return err
	}
	if err := durationIn("retention", c.Retention, MinRetention, MaxRetention); err != nil {
		return err
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > MaxMessageBytes {
		return invalidf("max_message_bytes must be 1 to %d, got %d", MaxMessageBytes, c.MaxMessageBytes)
	}
	return durationIn("dedup_window", c.DedupWindow, 0, MaxDedupWindow)
}

func validateDLQ(name, dlq string) error {
	if dlq == "" {
		return nil
	}
	if dlq == name {
		return invalidf("dead_letter_queue cannot be the queue itself")
	}
	if len(dlq) > MaxNameLen && dlq == name+store.DeadSuffix {
		return invalidf("queue name %q is too long for the default dead-letter queue %q (max %d characters): set dead_letter_queue", name, dlq, MaxNameLen)
	}
	if err := ValidName(dlq); err != nil {
		return invalidf("dead_letter_queue: %v", err)
	}
	return nil
}

func durationIn(field string, d, min, max time.Duration) error {
	if d < min || d > max {
		return invalidf("%s must be %v to %v, got %v", field, min, max, d)
	}
	return nil
}
