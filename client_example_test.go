package courier_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/courierhq/courier"
)

// A producer sends a message; a consumer receives it, works, and acks it.
func ExampleClient() {
	ctx := context.Background()
	c := courier.NewClient("http://127.0.0.1:7070")

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
		fmt.Printf("%s: %s\n", m.ID, m.Body)
		err := c.Ack(ctx, "orders", m.Lease)
		if errors.Is(err, courier.ErrLeaseExpired) {
			continue // it took too long: the message will be (or was) delivered again
		}
		if err != nil {
			log.Fatal(err)
		}
	}
}
