package porttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"
)

// stepTimeout bounds every blocking step of a suite: a step that has not
// finished by then fails the test instead of stalling it. It is generous
// because suites also run against real servers on busy machines.
const stepTimeout = 10 * time.Second

// concurrency is how many goroutines the concurrency subtests release
// together.
const concurrency = 24

// grace is how long a step may take to return after its context expired
// before the suite reports it as hung.
const grace = 2 * time.Second

// stepCtx returns a context that ends after stepTimeout or with the test.
func stepCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), stepTimeout)
	t.Cleanup(cancel)
	return ctx
}

// within runs f with a context bounded by stepTimeout and fails the test if f
// does not return soon after that context expires. It must be called from
// the test's goroutine.
func within[T any](t *testing.T, what string, f func(ctx context.Context) (T, error)) (T, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), stepTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	timer := time.NewTimer(stepTimeout + grace)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-timer.C:
		t.Fatalf("%s: did not return within %v", what, stepTimeout+grace)
		panic("unreachable")
	}
}

// withinErr is within for functions that return only an error.
func withinErr(t *testing.T, what string, f func(ctx context.Context) error) error {
	t.Helper()
	_, err := within(t, what, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f(ctx)
	})
	return err
}

// waitGroup waits for wg and fails the test if that takes longer than
// stepTimeout plus grace.
func waitGroup(t *testing.T, what string, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(stepTimeout + grace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s: goroutines did not finish within %v", what, stepTimeout+grace)
	}
}

// eventually polls cond until it holds, failing the test after stepTimeout.
// It is for state that the port gives no way to wait for.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v", what, stepTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// unique returns prefix with a random suffix, so that suites running against
// a shared server (PostgreSQL, Redis) never see each other's keys.
func unique(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// afterStep returns a channel that fires once a step has run out of time.
func afterStep() <-chan time.Time { return time.After(stepTimeout + grace) }
