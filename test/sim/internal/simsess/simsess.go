// Package simsess holds what the WebSocket simulators in test/sim share:
// the list of their sessions, which peers wait on for the newest, and the
// read loop of a session's connection.
package simsess

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/coder/websocket"
)

// Registry keeps a simulator's sessions in the order they opened. The zero
// value is ready; it is safe for concurrent use.
type Registry[S any] struct {
	mu      sync.Mutex
	list    []S
	changed chan struct{} // closed and replaced when a session is added
}

// Add appends s and wakes the waiters of Latest.
func (r *Registry[S]) Add(s S) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, s)
	if r.changed != nil {
		close(r.changed)
	}
	r.changed = make(chan struct{})
}

// All returns every session so far, oldest first.
func (r *Registry[S]) All() []S {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]S(nil), r.list...)
}

// Newest returns the newest session, if there is one.
func (r *Registry[S]) Newest() (s S, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.list); n > 0 {
		return r.list[n-1], true
	}
	return s, false
}

// Latest waits until a session exists and returns the newest. Errors wrap
// ctx.Err().
func (r *Registry[S]) Latest(ctx context.Context) (S, error) {
	for {
		r.mu.Lock()
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		if s, ok := r.Newest(); ok {
			return s, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			var zero S
			return zero, fmt.Errorf("wait for a session: %w", ctx.Err())
		}
	}
}

// ReadLoop hands every message of conn to handle, in order, until reading
// fails, and returns that error. Reads use a context without a Done
// channel (closing the connection ends them), sparing coder/websocket a
// timer per frame, and reuse one buffer: handle's argument is valid only
// during the call. It must be the connection's only reader.
func ReadLoop(conn *websocket.Conn, handle func(msg []byte)) error {
	var buf bytes.Buffer
	for {
		buf.Reset()
		_, r, err := conn.Reader(context.Background())
		if err == nil {
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			return err
		}
		handle(buf.Bytes())
	}
}
