package broker_test

import (
	"testing"
	"time"

	"github.com/courierhq/courier/internal/broker"
	"github.com/courierhq/courier/internal/store"
)

// deafStore loses every wake-up, as a node of a cluster may when its
// listener is down.
type deafStore struct{ store.Store }

func (deafStore) Watch(string) <-chan struct{}     { return make(chan struct{}) }
func (deafStore) WatchTask(string) <-chan struct{} { return make(chan struct{}) }

// With PollEvery, a long-poll whose wake-up is lost still finds the message
// at the next poll; without it, it waits (the control).
func TestPollEveryFindsWhatNoWakeUpAnnounced(t *testing.T) {
	for _, poll := range []time.Duration{0, time.Second} {
		e := setupOver(t, deafStore{memStore(t)}, broker.Options{PollEvery: poll})
		e.put(t, "q", broker.QueueSettings{})
		added := e.clk.TimerAdded()
		ch := e.receiveAsync(t.Context(), "q", broker.ReceiveOptions{Wait: 20 * time.Second})
		<-added // the receive found nothing and waits
		e.send(t, "q", msg(`1`))
		pending(t, ch)
		e.clk.Advance(time.Second)
		if poll == 0 {
			pending(t, ch)
			e.clk.Advance(19 * time.Second)
			if r := <-ch; len(r.msgs) != 1 {
				t.Fatalf("without a poll: %d messages at the deadline, want the 1 sent", len(r.msgs))
			}
			continue
		}
		select {
		case r := <-ch:
			if r.err != nil || len(r.msgs) != 1 {
				t.Fatalf("after one poll interval: %d messages, %v; want 1", len(r.msgs), r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("receive did not look again after PollEvery")
		}
	}
}
