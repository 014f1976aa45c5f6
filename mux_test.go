package courier_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/courierhq/courier"
)

func delivery(typ string) *courier.Delivery {
	return &courier.Delivery{Message: courier.Message{ID: "m1", Headers: map[string]string{courier.HeaderType: typ}}}
}

func TestMuxRoutes(t *testing.T) {
	t.Parallel()
	var calls []string
	record := func(name string) courier.HandlerFunc {
		return func(ctx context.Context, d *courier.Delivery) error {
			calls = append(calls, name+":"+d.Type())
			return nil
		}
	}
	mux := courier.NewMux()
	mux.Handle("email.send", record("email"))
	mux.HandleFunc("sms.send", record("sms"))
	mux.Use(func(next courier.Handler) courier.Handler {
		return courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
			calls = append(calls, "outer")
			return next.HandleDelivery(ctx, d)
		})
	}, func(next courier.Handler) courier.Handler {
		return courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
			calls = append(calls, "inner")
			return next.HandleDelivery(ctx, d)
		})
	})
	ctx := t.Context()
	for _, typ := range []string{"email.send", "sms.send"} {
		if err := mux.HandleDelivery(ctx, delivery(typ)); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if got := strings.Join(calls, " "); got != "outer inner email:email.send outer inner sms:sms.send" {
		t.Errorf("calls: %s", got)
	}

	// Unknown types: an error matching ErrNoHandler, through the middleware.
	calls = nil
	err := mux.HandleDelivery(ctx, delivery("fax.send"))
	if !errors.Is(err, courier.ErrNoHandler) || !strings.Contains(err.Error(), `"fax.send"`) || len(calls) != 2 {
		t.Errorf("unknown type: %v, calls %v", err, calls)
	}
	if _, ok := mux.Handler("fax.send"); ok {
		t.Error("Handler reports a handler for an unknown type")
	}
	mux.NotFound(courier.HandlerFunc(func(ctx context.Context, d *courier.Delivery) error {
		return courier.Terminate("unknown type " + d.Type())
	}))
	if err := mux.HandleDelivery(ctx, delivery("")); !errors.Is(err, courier.ErrTerminate) || err.Error() != "unknown type " {
		t.Errorf("NotFound: %v", err)
	}
}

func TestMuxRegistrationErrors(t *testing.T) {
	t.Parallel()
	h := courier.HandlerFunc(func(context.Context, *courier.Delivery) error { return nil })
	for name, fn := range map[string]func(m *courier.Mux){
		"empty type": func(m *courier.Mux) { m.Handle("", h) },
		"nil":        func(m *courier.Mux) { m.Handle("a", nil) },
		"twice":      func(m *courier.Mux) { m.Handle("a", h); m.Handle("a", h) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn(courier.NewMux())
		}()
	}
}

func TestOutcomeErrors(t *testing.T) {
	t.Parallel()
	cause := errors.New("slow down")
	err := courier.RetryAfter(5e9, cause)
	var ra *courier.RetryAfterError
	if !errors.As(err, &ra) || ra.Delay != 5e9 || !errors.Is(err, cause) || err.Error() != "retry after 5s: slow down" {
		t.Errorf("RetryAfter: %v", err)
	}
	if err := courier.Terminate("bad"); !errors.Is(err, courier.ErrTerminate) || err.Error() != "bad" {
		t.Errorf("Terminate: %v", err)
	}
	if d := delivery("x"); d.SetResult(map[string]string{"a": "<b>"}) != nil || string(d.Result()) != `{"a":"<b>"}` {
		t.Errorf("SetResult: %s", d.Result())
	}
	if err := delivery("x").SetResult(func() {}); err == nil {
		t.Error("SetResult of a func: no error")
	}
}
