package app

import (
	"context"
	"sync"
)

// drain waits until wg is done. If ctx ends first it calls stop, which must
// make the remaining work end promptly, waits for it all the same (no
// goroutine outlives a Shutdown) and returns ctx's error.
func drain(ctx context.Context, wg *sync.WaitGroup, stop func()) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		stop()
		<-done
		return ctx.Err()
	}
}
