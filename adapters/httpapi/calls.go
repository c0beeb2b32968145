package httpapi

import (
	"context"
	"sync"
)

// liveCalls tracks the media streams being served, which echo's and
// net/http's Shutdown do not wait for (their connections are hijacked).
type liveCalls struct {
	ctx    context.Context // parent of every call; cancelled at the drain deadline
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closing bool
	n       int
}

func newLiveCalls() *liveCalls {
	ctx, cancel := context.WithCancel(context.Background())
	return &liveCalls{ctx: ctx, cancel: cancel}
}

// begin registers a call. The returned context keeps parent's values but
// not its cancellation (the request's context ends with the handler's
// connection bookkeeping, not with the call); it is cancelled when the
// drain deadline passes. end must be called when the call is over. ok is
// false once the server is shutting down.
func (l *liveCalls) begin(parent context.Context) (ctx context.Context, end func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return nil, nil, false
	}
	l.n++
	l.wg.Add(1)
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(l.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
		l.mu.Lock()
		l.n--
		l.mu.Unlock()
		l.wg.Done()
	}, true
}

func (l *liveCalls) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// close refuses new calls.
func (l *liveCalls) close() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
}

// drain waits for the live calls to end until ctx is done, then cancels
// those left and waits for them. It returns how many were cancelled and
// ctx's error, or 0 and nil when all ended in time.
func (l *liveCalls) drain(ctx context.Context) (int, error) {
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	defer l.cancel()
	select {
	case <-done:
		return 0, nil
	case <-ctx.Done():
	}
	select {
	case <-done: // ended just in time
		return 0, nil
	default:
	}
	n := l.count()
	l.cancel()
	<-done
	return n, ctx.Err()
}
