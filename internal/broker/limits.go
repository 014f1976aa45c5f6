package broker

import "time"

// Limits of the API. Transports use them to describe and pre-check requests;
// the broker enforces them.
const (
	MaxNameLen        = 80
	MaxBatch          = 1000     // messages per send, leases per ack
	MaxReceive        = 1000     // messages per receive
	MaxReceiveBytes   = 16 << 20 // bodies per receive: it stops early past this (always at least one)
	MaxWait           = 60 * time.Second
	MaxVisibility     = 12 * time.Hour
	MinVisibility     = time.Millisecond
	MaxDelay          = 10 * 365 * 24 * time.Hour // "any horizon", but not absurd
	MinPriority       = -100
	MaxPriority       = 100
	MaxAttemptsLimit  = 1000
	MaxMessageBytes   = 16 << 20                    // upper bound of a queue's max_message_bytes
	MaxRetention      = MaxDelay + 365*24*time.Hour // room for a message delayed the most
	MinRetention      = time.Second
	MaxDedupWindow    = 30 * 24 * time.Hour
	MaxBackoff        = 7 * 24 * time.Hour
	MaxMultiplier     = 100
	MaxHeaders        = 64
	MaxHeaderKeyLen   = 128
	MaxHeaderValueLen = 4096
	MaxDedupKeyLen    = 256
	MaxGroupLen       = 128
	MaxErrorLen       = 4096 // nack error text is cut to this
)
