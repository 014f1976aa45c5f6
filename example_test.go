package courier_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/server"
)

// exampleServer starts a courier server for an example, on a free port and
// a fresh data directory, and returns its URL and a func that stops it. A
// real program talks to a running `courier serve` instead.
func exampleServer() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "courier-example-")
	if err != nil {
		log.Fatal(err)
	}
	s, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	return s.URL(), func() {
		if err := s.Stop(context.Background()); err != nil {
			log.Fatal(err)
		}
		os.RemoveAll(dir)
	}
}

// Send a message, receive it, and acknowledge it once the work is done.
func ExampleClient() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c := courier.NewClient(url)
	defer c.CloseIdleConnections()

	body, err := courier.JSONBody(map[string]any{"order": 42})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Send(ctx, "orders", courier.NewMessage{Body: body}); err != nil {
		log.Fatal(err)
	}

	msgs, err := c.Receive(ctx, "orders", courier.ReceiveRequest{Max: 10, Wait: "20s"})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Printf("attempt %d: %s\n", m.Attempt, m.Body)
		err := c.Ack(ctx, "orders", m.Lease)
		if errors.Is(err, courier.ErrLeaseExpired) {
			continue // too slow: the message is (or will be) delivered again
		}
		if err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// attempt 1: {"order":42}
}

type email struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

// A Worker hands each message to the handler of its "type" header, and acks,
// retries or dead-letters it by what the handler returns.
func ExampleWorker() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c := courier.NewClient(url)
	defer c.CloseIdleConnections()

	for _, to := range []string{"ada@example.com", "grace@example.com"} {
		body, _ := courier.JSONBody(email{To: to, Subject: "hello"})
		_, err := c.Send(ctx, "mail", courier.NewMessage{Body: body,
			Headers: map[string]string{courier.HeaderType: "email.send"}})
		if err != nil {
			log.Fatal(err)
		}
	}

	sent := make(chan struct{})
	mux := courier.NewMux()
	mux.Handle("email.send", courier.HandleJSON(func(ctx context.Context, e email) (struct{}, error) {
		if e.To == "" {
			return struct{}{}, courier.Terminate("no recipient") // dead-letter it: retrying will not help
		}
		fmt.Printf("to %s: %s\n", e.To, e.Subject)
		sent <- struct{}{}
		return struct{}{}, nil // acknowledged
	}))
	w := courier.NewWorker(c, "mail", mux, courier.WorkerOptions{Concurrency: 1})
	if err := w.Start(); err != nil {
		log.Fatal(err)
	}
	<-sent
	<-sent
	if err := w.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// to ada@example.com: hello
	// to grace@example.com: hello
}

type resize struct {
	Image string `json:"image"`
	Width int    `json:"width"`
}

// Submit a task and await its result, which a worker produces.
func ExampleClient_Submit() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c := courier.NewClient(url)
	defer c.CloseIdleConnections()

	// The worker side, usually in another program.
	w := courier.NewWorker(c, "images", courier.HandleJSON(func(ctx context.Context, r resize) (string, error) {
		return fmt.Sprintf("%s?w=%d", strings.TrimSuffix(r.Image, ".png")+".small.png", r.Width), nil
	}), courier.WorkerOptions{})
	if err := w.Start(); err != nil {
		log.Fatal(err)
	}
	defer w.Stop(ctx)

	// The requester: submit, go on with other work, then await the outcome.
	body, _ := courier.JSONBody(resize{Image: "cat.png", Width: 320})
	f, err := c.Submit(ctx, "images", courier.SubmitTask{NewMessage: courier.NewMessage{Body: body}})
	if err != nil {
		log.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	task, err := f.Await(actx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.State, string(task.Result))
	// Output:
	// succeeded "cat.small.png?w=320"
}

// Stop a worker gracefully: it takes no new messages, lets running
// handlers finish until a deadline, then cancels them and hands their
// messages back to the queue. Run does this when its context ends, with
// ShutdownTimeout as the deadline; a program ends that context on SIGTERM
// (the library installs no signal handlers):
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	if err := w.Run(ctx); err != nil { … }
func ExampleWorker_Run() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c := courier.NewClient(url)
	defer c.CloseIdleConnections()
	if _, err := c.Send(ctx, "reports", courier.NewMessage{Body: []byte(`"q3"`)}); err != nil {
		log.Fatal(err)
	}

	started := make(chan struct{})
	w := courier.NewWorker(c, "reports", courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		close(started)
		<-ctx.Done() // a long job that watches its context
		fmt.Println("handler:", context.Cause(ctx))
		return ctx.Err()
	}), courier.WorkerOptions{ShutdownTimeout: 100 * time.Millisecond, ReleaseDelay: time.Second})

	runCtx, sigterm := context.WithCancel(ctx) // what signal.NotifyContext gives
	done := make(chan error)
	go func() { done <- w.Run(runCtx) }()
	<-started
	sigterm()
	fmt.Println("run:", <-done)

	q, err := c.GetQueue(ctx, "reports")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("handed back:", q.Stats.Delayed+q.Stats.Ready)
	// Output:
	// handler: courier: worker stopped
	// run: courier: stop worker: released 1 message: context deadline exceeded
	// handed back: 1
}

// A handler that declines work for now snoozes its message: it comes back
// after the delay with its attempt uncounted, so a message held back many
// times is never dead-lettered for it.
func ExampleSnooze() {
	busy := map[string]bool{"acme": true} // tenants over their share just now
	handler := courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		if busy[d.Headers["tenant"]] {
			return courier.Snooze(30 * time.Second)
		}
		fmt.Printf("job %s done\n", d.ID)
		return nil // acknowledged
	})
	c := courier.NewClient("http://127.0.0.1:7070")
	w := courier.NewWorker(c, "jobs", handler, courier.WorkerOptions{})
	if err := w.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
