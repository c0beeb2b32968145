package fake

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/convgateway/gateway/ports"
)

// changes wakes the goroutines waiting for a fake's state to change.
// The zero value is ready to use.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

// next returns a channel that is closed at the next notify.
func (c *changes) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// notify wakes every waiter.
func (c *changes) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// until blocks until cond holds or ctx is done. cond is evaluated after each
// notify; it does its own locking.
func (c *changes) until(ctx context.Context, cond func() bool) error {
	for {
		wake := c.next()
		if cond() {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("fake: wait: %w", ctx.Err())
		}
	}
}

// queue is a FIFO of scripted values. The zero value is ready to use; it is
// not safe for concurrent use.
type queue[T any] struct{ items []T }

func (q *queue[T]) push(v ...T) { q.items = append(q.items, v...) }

func (q *queue[T]) pop() (T, bool) {
	var zero T
	if len(q.items) == 0 {
		return zero, false
	}
	v := q.items[0]
	q.items[0] = zero
	q.items = q.items[1:]
	return v, true
}

// item is one entry of a stream: an event, or the end of the stream.
type item[E any] struct {
	ev  E
	end *ports.SessionEnded
}

// streamBuffer is how many events a peer may queue before it blocks.
const streamBuffer = 1024

// stream carries events from a fake's peer to the fake's Recv, and knows
// when and why the stream ended. It is safe for concurrent use.
type stream[E any] struct {
	items  chan item[E]
	closed chan struct{} // closed by the local side's Close

	mu        sync.Mutex
	localEnd  *ports.SessionEnded // set by close
	remoteEnd *ports.SessionEnded // set by the peer's end
	recvEnd   *ports.SessionEnded // the end Recv has delivered
}

func newStream[E any]() *stream[E] {
	return &stream[E]{items: make(chan item[E], streamBuffer), closed: make(chan struct{})}
}

// endErr is the error Recv and the send methods return once the stream ended.
func endErr(op string, end *ports.SessionEnded) error {
	return fmt.Errorf("fake: %s: %w: %w", op, ports.ErrClosed, end)
}

// alive returns nil while neither side has ended the stream.
func (s *stream[E]) alive(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.localEnd != nil:
		return endErr(op, s.localEnd)
	case s.remoteEnd != nil:
		return endErr(op, s.remoteEnd)
	}
	return nil
}

// push queues ev for Recv, blocking while the buffer is full.
func (s *stream[E]) push(ctx context.Context, ev E) error {
	if err := s.alive("peer send"); err != nil {
		return err
	}
	return s.enqueue(ctx, item[E]{ev: ev})
}

// end queues the end of the stream after the events already queued; the
// local side's sends fail from now on.
func (s *stream[E]) end(ctx context.Context, end *ports.SessionEnded) error {
	s.mu.Lock()
	if s.localEnd != nil || s.remoteEnd != nil {
		s.mu.Unlock()
		return nil
	}
	s.remoteEnd = end
	s.mu.Unlock()
	return s.enqueue(ctx, item[E]{end: end})
}

func (s *stream[E]) enqueue(ctx context.Context, it item[E]) error {
	select {
	case s.items <- it:
		return nil
	case <-s.closed:
		return s.alive("peer send")
	case <-ctx.Done():
		return fmt.Errorf("fake: peer send: %w", ctx.Err())
	}
}

// recv returns the next event, or the end once the stream ended.
func (s *stream[E]) recv(ctx context.Context) (E, error) {
	var zero E
	s.mu.Lock()
	end := s.localEnd
	if end == nil {
		end = s.recvEnd
	}
	s.mu.Unlock()
	if end != nil {
		return zero, endErr("recv", end)
	}
	select {
	case it := <-s.items:
		if it.end != nil {
			s.mu.Lock()
			s.recvEnd = it.end
			s.mu.Unlock()
			return zero, endErr("recv", it.end)
		}
		return it.ev, nil
	case <-s.closed:
		return zero, s.alive("recv")
	case <-ctx.Done():
		return zero, fmt.Errorf("fake: recv: %w", ctx.Err())
	}
}

// close ends the stream from the local side. It reports whether this was
// the first close.
func (s *stream[E]) close(end *ports.SessionEnded) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.localEnd != nil {
		return false
	}
	s.localEnd = end
	close(s.closed)
	return true
}

// done is closed when the local side closed the stream.
func (s *stream[E]) done() <-chan struct{} { return s.closed }

// errCheck returns the ctx error, if any, wrapped for op.
func errCheck(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake: %s: %w", op, err)
	}
	return nil
}

// isClosed reports whether err is the end of a stream.
func isClosed(err error) bool { return errors.Is(err, ports.ErrClosed) }
