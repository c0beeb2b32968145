package app

import (
	"context"
	"sync"
	"sync/atomic"
)

// tracker counts the goroutines of a service, as a sync.WaitGroup does
// (with the same methods and rules), and tells whether any of them is
// pending work, so that a drain with nothing pending succeeds whatever the
// state of its context. Goroutines started with Loop are waited for but
// are not pending work: a service's background loops, which end as soon as
// the service signals them to.
type tracker struct {
	wg      sync.WaitGroup
	pending atomic.Int64
}

// Add adds delta, which may be negative, to the pending work and to the
// goroutines waited for.
func (t *tracker) Add(delta int) {
	t.pending.Add(int64(delta))
	t.wg.Add(delta)
}

// Done ends one unit of pending work.
func (t *tracker) Done() {
	t.pending.Add(-1)
	t.wg.Done()
}

// Go runs f in a goroutine counted as pending work until it returns.
func (t *tracker) Go(f func()) {
	t.Add(1)
	go func() {
		defer t.Done()
		f()
	}()
}

// Loop runs f in a goroutine that Wait waits for but that is not pending
// work: it must return promptly once its service asks it to.
func (t *tracker) Loop(f func()) { t.wg.Go(f) }

// Busy counts a Loop goroutine's work in progress as pending until the
// returned function is called.
func (t *tracker) Busy() (done func()) {
	t.pending.Add(1)
	return func() { t.pending.Add(-1) }
}

// Wait blocks until every goroutine has returned.
func (t *tracker) Wait() { t.wg.Wait() }

// drain waits until t's goroutines have returned. If ctx ends first while
// work is pending it calls stop, which must make the remaining work end
// promptly, waits for it all the same (no goroutine outlives a Shutdown)
// and returns ctx's error. With no work pending it returns nil, whatever
// ctx's state: it still calls stop once ctx has ended, so that loops that
// are slow to notice end too.
func drain(ctx context.Context, t *tracker, stop func()) error {
	done := make(chan struct{})
	go func() {
		t.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	default:
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// Work that finished as ctx ended finished in time.
	pending := t.pending.Load() > 0
	select {
	case <-done:
		return nil
	default:
	}
	stop()
	<-done
	if !pending {
		return nil
	}
	return ctx.Err()
}
