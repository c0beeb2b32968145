package fake

import (
	"context"
	"slices"
	"sync"

	"github.com/convgateway/gateway/ports"
)

var (
	_ ports.Calls    = (*Calls)(nil)
	_ ports.Messages = (*Messages)(nil)
)

// Calls is a fake ports.Calls for tests of the HTTP adapter. By default
// Answer mints a fresh token and Serve reads the stream until it ends (or
// ctx is done) and closes it. Both can be replaced. Create one with
// NewCalls.
type Calls struct {
	mu       sync.Mutex
	answer   func(context.Context, ports.IncomingCall) (ports.CallAnswer, error)
	serve    func(context.Context, ports.TelephonyChannel) error
	incoming []ports.IncomingCall
	active   int
	served   int
	changed  changes
}

// NewCalls returns the default fake.
func NewCalls() *Calls {
	return &Calls{
		answer: func(context.Context, ports.IncomingCall) (ports.CallAnswer, error) {
			return ports.CallAnswer{Token: ports.NewToken()}, nil
		},
		serve: drain,
	}
}

// drain reads ch until the stream ends or ctx is done, then ends ch.
func drain(ctx context.Context, ch ports.TelephonyChannel) error {
	defer ch.End(ports.EndCompleted)
	for {
		if _, err := ch.Recv(ctx); err != nil {
			if isClosed(err) {
				return nil
			}
			return err
		}
	}
}

// SetAnswer replaces what Answer does.
func (c *Calls) SetAnswer(f func(context.Context, ports.IncomingCall) (ports.CallAnswer, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answer = f
}

// SetServe replaces what Serve does.
func (c *Calls) SetServe(f func(context.Context, ports.TelephonyChannel) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serve = f
}

// Answer records call and answers it.
func (c *Calls) Answer(ctx context.Context, call ports.IncomingCall) (ports.CallAnswer, error) {
	c.mu.Lock()
	c.incoming = append(c.incoming, call)
	answer := c.answer
	c.mu.Unlock()
	c.changed.notify()
	return answer(ctx, call)
}

// Serve runs the serve function on ch, counting active and finished calls.
func (c *Calls) Serve(ctx context.Context, ch ports.TelephonyChannel) error {
	c.mu.Lock()
	c.active++
	serve := c.serve
	c.mu.Unlock()
	c.changed.notify()
	defer func() {
		c.mu.Lock()
		c.active--
		c.served++
		c.mu.Unlock()
		c.changed.notify()
	}()
	return serve(ctx, ch)
}

// Incoming returns the calls answered so far, in order.
func (c *Calls) Incoming() []ports.IncomingCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.incoming)
}

// Active returns the number of Serve calls running.
func (c *Calls) Active() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

// WaitActive blocks until exactly n Serve calls are running; it returns an
// error when ctx ends first.
func (c *Calls) WaitActive(ctx context.Context, n int) error {
	return c.changed.until(ctx, func() bool { return c.Active() == n })
}

// WaitServed blocks until at least n Serve calls have returned; it returns
// an error when ctx ends first.
func (c *Calls) WaitServed(ctx context.Context, n int) error {
	return c.changed.until(ctx, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.served >= n
	})
}

// Messages is a fake ports.Messages for tests of the HTTP adapter. By
// default it answers every message inline with EchoPrefix + its body; the
// handler can be replaced. Create one with NewMessages.
type Messages struct {
	mu       sync.Mutex
	handle   func(context.Context, ports.InboundMessage) (ports.Reply, error)
	received []ports.InboundMessage
	changed  changes
}

// NewMessages returns the default fake.
func NewMessages() *Messages {
	return &Messages{handle: func(_ context.Context, m ports.InboundMessage) (ports.Reply, error) {
		return ports.Reply{Messages: []string{EchoPrefix + m.Body}}, nil
	}}
}

// SetHandle replaces what Handle does.
func (m *Messages) SetHandle(f func(context.Context, ports.InboundMessage) (ports.Reply, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handle = f
}

// Handle records msg and runs the handler.
func (m *Messages) Handle(ctx context.Context, msg ports.InboundMessage) (ports.Reply, error) {
	m.mu.Lock()
	m.received = append(m.received, msg)
	handle := m.handle
	m.mu.Unlock()
	m.changed.notify()
	return handle(ctx, msg)
}

// Received returns the messages handled so far, in order.
func (m *Messages) Received() []ports.InboundMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.received)
}

// WaitReceived blocks until at least n messages were handled and returns
// them; it returns an error when ctx ends first.
func (m *Messages) WaitReceived(ctx context.Context, n int) ([]ports.InboundMessage, error) {
	var got []ports.InboundMessage
	err := m.changed.until(ctx, func() bool {
		got = m.Received()
		return len(got) >= n
	})
	return got, err
}
