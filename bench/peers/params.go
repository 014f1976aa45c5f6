package main

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Params are the workload parameters, the same for courier and every peer
// of one run.
type Params struct {
	// Count is the number of messages of W1 batched and of jobs of W2.
	// Default 20,000 (a quick run).
	Count int `json:"count"`
	// PerMessageCount is the number of messages of W1 per-message, which
	// makes one request per message and would take minutes at Count.
	// Default (zero): Count / 10, at least 1,000.
	PerMessageCount int `json:"per_message_count"`
	// Size is the body of every message and the payload of every job, in
	// bytes. Default 128.
	Size int `json:"size"`
	// Producers and Consumers are the concurrent senders and receivers of
	// W1; Producers also enqueue W2's jobs. Default 4 each.
	Producers int `json:"producers"`
	Consumers int `json:"consumers"`
	// Batch is the messages per send, receive and ack request of W1
	// batched, and the jobs per insert request of W2's enqueue where the
	// peer has one. Default 100.
	Batch int `json:"batch"`
	// Concurrency is W2's worker concurrency. Default 100.
	Concurrency int `json:"concurrency"`
	// Only selects the peers to run, by name (see peerNames); empty: all.
	Only []string `json:"only,omitempty"`
	// Rounds is how many times every measurement is made, courier's and
	// the peers' in turn. Default 1.
	Rounds int `json:"rounds"`
}

// peerNames are the names --only accepts.
var peerNames = []string{"nats", "river", "asynq"}

// WithDefaults returns p with zero fields set to their defaults.
func (p Params) WithDefaults() Params {
	if p.Count == 0 {
		p.Count = 20_000
	}
	if p.PerMessageCount == 0 {
		p.PerMessageCount = max(p.Count/10, 1_000)
	}
	if p.Size == 0 {
		p.Size = 128
	}
	if p.Producers == 0 {
		p.Producers = 4
	}
	if p.Consumers == 0 {
		p.Consumers = 4
	}
	if p.Batch == 0 {
		p.Batch = 100
	}
	if p.Concurrency == 0 {
		p.Concurrency = 100
	}
	if p.Rounds == 0 {
		p.Rounds = 1
	}
	return p
}

// Validate names the first bad field.
func (p Params) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"count", p.Count}, {"per-message-count", p.PerMessageCount}, {"size", p.Size},
		{"producers", p.Producers}, {"consumers", p.Consumers}, {"batch", p.Batch},
		{"concurrency", p.Concurrency}, {"rounds", p.Rounds}} {
		if f.v < 1 {
			return fmt.Errorf("--%s %d: want at least 1", f.name, f.v)
		}
	}
	for _, o := range p.Only {
		if !p.knownPeer(o) {
			return fmt.Errorf("--only %q: want some of %s", o, strings.Join(peerNames, ","))
		}
	}
	return nil
}

func (Params) knownPeer(name string) bool {
	for _, n := range peerNames {
		if n == name {
			return true
		}
	}
	return false
}

// Runs reports whether peer is selected by --only.
func (p Params) Runs(peer string) bool {
	if len(p.Only) == 0 {
		return true
	}
	for _, o := range p.Only {
		if o == peer {
			return true
		}
	}
	return false
}

// String is the parameters as the table's header line gives them.
func (p Params) String() string {
	s := fmt.Sprintf("count %d (W1 per-message: %d), size %d B, producers %d, consumers %d, batch %d, W2 concurrency %d",
		p.Count, p.PerMessageCount, p.Size, p.Producers, p.Consumers, p.Batch, p.Concurrency)
	if p.Rounds > 1 {
		s += fmt.Sprintf(", %d rounds (figures: medians; ratios: the median of the rounds' ratios, with their range)", p.Rounds)
	}
	return s
}

// payload is a message body of the run's size: random bytes, as courier
// bench's bodies are, so that no store gains from compressing them
// (PostgreSQL compresses values from about 2 KiB), from a fixed seed so
// runs are alike.
func (p Params) payload() []byte {
	rng := rand.New(rand.NewPCG(uint64(p.Size), 0x7065657273))
	b := make([]byte, p.Size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// textPayload is a payload of the run's size as text, for a JSON string:
// the base64 of random bytes, cut to the size.
func (p Params) textPayload() string {
	return base64.StdEncoding.EncodeToString(p.payload())[:p.Size]
}
