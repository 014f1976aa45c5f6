package courier

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// HeaderType is the message header a Mux routes by: the kind of work a
// message asks for, e.g. "email.send".
const HeaderType = "type"

// ErrNoHandler is the error of a Mux's default NotFound handler: no handler
// is registered for the message's type.
var ErrNoHandler = errors.New("courier: no handler for the message's type")

// Mux is a Handler that routes each delivery to the Handler registered for
// its type: the value of its "type" header (HeaderType). Types match
// exactly. A delivery of an unregistered type, or without one, goes to the
// NotFound handler.
//
// Middleware added with Use wraps every delivery the Mux handles, NotFound
// included, in the order added: the first one added is the outermost.
//
// Register handlers and middleware before the Mux handles deliveries; it is
// safe for concurrent use either way.
type Mux struct {
	mu       sync.RWMutex // guards the fields below
	handlers map[string]Handler
	notFound Handler
	mws      []Middleware
	chain    Handler // dispatch wrapped in mws; rebuilt by Use
}

// NewMux returns an empty Mux.
func NewMux() *Mux {
	m := &Mux{handlers: make(map[string]Handler)}
	m.chain = HandlerFunc(m.dispatch)
	return m
}

// Handle registers h for messages of type typ. It panics if typ is empty, h
// is nil, or typ already has a handler: those are programming errors, found
// at startup.
func (m *Mux) Handle(typ string, h Handler) {
	if typ == "" {
		panic("courier: Mux.Handle with an empty type")
	}
	if h == nil {
		panic(fmt.Sprintf("courier: Mux.Handle(%q) with a nil handler", typ))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.handlers[typ]; dup {
		panic(fmt.Sprintf("courier: Mux.Handle(%q): the type already has a handler", typ))
	}
	m.handlers[typ] = h
}

// HandleFunc registers fn for messages of type typ, like Handle.
func (m *Mux) HandleFunc(typ string, fn func(ctx context.Context, d *Delivery) error) {
	m.Handle(typ, HandlerFunc(fn))
}

// NotFound sets the handler of deliveries whose type has no handler. The
// default returns an error matching ErrNoHandler, so that such a message is
// retried by the queue's policy (a worker that knows its type may take it
// meanwhile, during a rolling deploy) and dead-lettered in the end. Use a
// handler that returns Terminate to dead-letter at once instead.
func (m *Mux) NotFound(h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notFound = h
}

// Use adds middleware that wraps every delivery the Mux handles.
func (m *Mux) Use(mws ...Middleware) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mws = append(m.mws, mws...)
	var h Handler = HandlerFunc(m.dispatch)
	for i := len(m.mws) - 1; i >= 0; i-- {
		h = m.mws[i](h)
	}
	m.chain = h
}

// Handler returns the handler that a delivery of type typ would reach,
// without middleware, and whether one is registered for typ.
func (m *Mux) Handler(typ string) (h Handler, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if h, ok := m.handlers[typ]; ok {
		return h, true
	}
	if m.notFound != nil {
		return m.notFound, false
	}
	return HandlerFunc(noHandler), false
}

// HandleDelivery routes d through the middleware to the handler of its type.
func (m *Mux) HandleDelivery(ctx context.Context, d *Delivery) error {
	m.mu.RLock()
	h := m.chain
	m.mu.RUnlock()
	return h.HandleDelivery(ctx, d)
}

func (m *Mux) dispatch(ctx context.Context, d *Delivery) error {
	h, _ := m.Handler(d.Type())
	return h.HandleDelivery(ctx, d)
}

func noHandler(_ context.Context, d *Delivery) error {
	return fmt.Errorf("%w %q", ErrNoHandler, d.Type())
}
