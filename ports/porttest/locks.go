package porttest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// LockObserver is implemented by UserLocks that can tell how many callers
// are waiting for a user's lock. The UserLocks suite uses it to queue
// waiters one at a time without sleeping; for locks without it the suite
// lets each waiter settle for lockSettle before starting the next.
type LockObserver interface {
	// LockWaiters returns the number of callers blocked in LockUser for user.
	LockWaiters(ctx context.Context, user string) (int, error)
}

// lockSettle is how long the FIFO subtest lets a waiter reach the lock queue
// when the store cannot report its waiters.
const lockSettle = 200 * time.Millisecond

// UserLocks runs the conformance suite of ports.UserLocks. newLocks is
// called once per subtest; subtests run in parallel and use random user
// ids, so the locks they get may share one database.
func UserLocks(t *testing.T, newLocks func(t *testing.T) ports.UserLocks) {
	t.Run("LockMutualExclusion", func(t *testing.T) {
		t.Parallel()
		s := newLocks(t)
		user := unique("user")
		ctx := stepCtx(t)
		const workers, rounds = 8, 5
		var inside atomic.Int32
		counter := 0 // guarded by the store's lock only; -race checks it
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				<-release
				for range rounds {
					unlock, err := s.LockUser(ctx, user)
					if err != nil {
						t.Errorf("LockUser: %v", err)
						return
					}
					if n := inside.Add(1); n != 1 {
						t.Errorf("%d holders of one user's lock", n)
					}
					counter++
					inside.Add(-1)
					unlock()
				}
			})
		}
		close(release)
		waitGroup(t, "LockUser", &wg)
		assert.Equal(t, workers*rounds, counter)
	})

	t.Run("LockFIFO", func(t *testing.T) {
		t.Parallel()
		s := newLocks(t)
		user := unique("user")
		ctx := stepCtx(t)
		unlock := lockUser(t, s, user)

		const waiters = 5
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i := range waiters {
			wg.Go(func() {
				unlock, err := s.LockUser(ctx, user)
				if err != nil {
					t.Errorf("waiter %d: LockUser: %v", i, err)
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				unlock()
			})
			awaitWaiters(t, s, user, i+1)
		}
		unlock()
		waitGroup(t, "queued LockUser", &wg)
		assert.Equal(t, []int{0, 1, 2, 3, 4}, order, "waiters are granted the lock in arrival order")
	})

	t.Run("LockCancelWhileWaiting", func(t *testing.T) {
		t.Parallel()
		s := newLocks(t)
		user := unique("user")
		unlock := lockUser(t, s, user)

		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			unlock, err := s.LockUser(ctx, user)
			if err == nil {
				unlock()
			}
			errc <- err
		}()
		awaitWaiters(t, s, user, 1)
		cancel()
		select {
		case err := <-errc:
			require.Error(t, err, "LockUser returned the lock after its context was cancelled")
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(stepTimeout):
			t.Fatal("LockUser did not return after its context was cancelled")
		}
		unlock()
		// The abandoned wait must not keep the lock.
		lockUser(t, s, user)()
	})

	t.Run("LockCancelledWaiterKeepsOrder", func(t *testing.T) {
		t.Parallel()
		s := newLocks(t)
		user := unique("user")
		unlock := lockUser(t, s, user)

		cctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			unlock, err := s.LockUser(cctx, user)
			if err == nil {
				unlock()
			}
			errc <- err
		}()
		awaitWaiters(t, s, user, 1)

		ctx := stepCtx(t)
		got := make(chan struct{})
		go func() {
			unlock, err := s.LockUser(ctx, user)
			if err != nil {
				t.Errorf("second waiter: LockUser: %v", err)
			} else {
				unlock()
			}
			close(got)
		}()
		awaitWaiters(t, s, user, 2)
		cancel()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(stepTimeout):
			t.Fatal("cancelled LockUser did not return")
		}
		unlock()
		select {
		case <-got:
		case <-time.After(stepTimeout):
			t.Fatal("the waiter behind a cancelled one never got the lock")
		}
	})

	t.Run("LockDoneContext", func(t *testing.T) {
		t.Parallel()
		s := newLocks(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		unlock, err := within(t, "LockUser", func(context.Context) (func(), error) {
			return s.LockUser(ctx, unique("user"))
		})
		if err != nil {
			// Taking a free lock with a done context is allowed; when the
			// store refuses, it says why.
			assert.ErrorIs(t, err, context.Canceled)
			return
		}
		unlock()
	})

	t.Run("LockUsersIndependent", func(t *testing.T) {
		t.Parallel()
		s := newLocks(t)
		alice, bob := unique("alice"), unique("bob")
		unlockA := lockUser(t, s, alice)
		defer unlockA()
		lockUser(t, s, bob)() // must not wait for alice's lock
	})

	t.Run("UnlockAfterContextDone", func(t *testing.T) {
		t.Parallel()
		s := newLocks(t)
		user := unique("user")
		ctx, cancel := context.WithTimeout(t.Context(), stepTimeout)
		unlock, err := within(t, "LockUser", func(context.Context) (func(), error) {
			return s.LockUser(ctx, user)
		})
		require.NoError(t, err)
		cancel()
		unlock()
		lockUser(t, s, user)()
	})
}

// lockUser takes user's lock, failing the test if that does not happen in
// time. The returned unlock must be called.
func lockUser(t *testing.T, s ports.UserLocks, user string) func() {
	t.Helper()
	unlock, err := within(t, "LockUser", func(ctx context.Context) (func(), error) {
		return s.LockUser(ctx, user)
	})
	require.NoError(t, err)
	require.NotNil(t, unlock)
	return unlock
}

// awaitWaiters returns once n callers wait for user's lock: observed through
// LockObserver when the store has it, else after a settle delay.
func awaitWaiters(t *testing.T, s ports.UserLocks, user string, n int) {
	t.Helper()
	obs, ok := s.(LockObserver)
	if !ok {
		time.Sleep(lockSettle)
		return
	}
	eventually(t, "lock waiters", func() bool {
		got, err := within(t, "LockWaiters", func(ctx context.Context) (int, error) {
			return obs.LockWaiters(ctx, user)
		})
		require.NoError(t, err)
		return got >= n
	})
}
