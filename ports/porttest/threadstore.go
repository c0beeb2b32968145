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

// LockObserver is implemented by ThreadStores that can tell how many callers
// are waiting for a user's lock. The ThreadStore suite uses it to queue
// waiters one at a time without sleeping; for a store without it the suite
// lets each waiter settle for lockSettle before starting the next.
type LockObserver interface {
	// LockWaiters returns the number of callers blocked in LockUser for user.
	LockWaiters(ctx context.Context, user string) (int, error)
}

// lockSettle is how long the FIFO subtest lets a waiter reach the lock queue
// when the store cannot report its waiters.
const lockSettle = 200 * time.Millisecond

// concurrency is how many goroutines the concurrency subtests release
// together.
const concurrency = 24

// ThreadStore runs the conformance suite of ports.ThreadStore. newStore is
// called once per subtest and must return a store with state of its own
// (a fresh file, schema or instance): Abandoned claims the keys of the
// whole store, so subtests sharing state would claim each other's keys.
// Subtests run in parallel.
//
// The suite does not control the store's clock: it checks Abandoned's
// olderThan with a bound far in the past (an hour: nothing recorded during
// the test is that old) and with zero (everything recorded before the
// call), never with sleeps. Deliveries are recorded by owners that hold no
// lease (stopped instances) unless a subtest is about owners; the one
// subtest about an owner's lease expiring sleeps past a short ttl, as the
// Leases suite does. The store's Leases are checked by the Leases suite;
// run both.
func ThreadStore(t *testing.T, newStore func(t *testing.T) ports.ThreadStore) {
	t.Run("ThreadNotFound", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		_, err := within(t, "Thread", func(ctx context.Context) (string, error) {
			return s.Thread(ctx, unique("user"))
		})
		require.ErrorIs(t, err, ports.ErrNotFound)
	})

	t.Run("SaveThreadFirstWriterWins", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		user := unique("user")
		first, second := unique("thread"), unique("thread")
		got := saveThread(t, s, user, first)
		assert.Equal(t, first, got, "first save returns its own thread")
		got = saveThread(t, s, user, second)
		assert.Equal(t, first, got, "second save returns the first thread")
		assert.Equal(t, first, thread(t, s, user))
	})

	t.Run("SaveThreadConcurrent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		user := unique("user")
		threadRace(t, s, user, "SaveThread", func(ctx context.Context, id string) (string, error) {
			return s.SaveThread(ctx, user, id)
		})
	})

	t.Run("IndependentUsers", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		alice, bob := unique("alice"), unique("bob")
		ta, tb := unique("thread"), unique("thread")
		assert.Equal(t, ta, saveThread(t, s, alice, ta))
		assert.Equal(t, tb, saveThread(t, s, bob, tb))
		assert.Equal(t, ta, thread(t, s, alice))
		assert.Equal(t, tb, thread(t, s, bob))
	})

	t.Run("FirstSeenOnce", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		key := unique("MM")
		assert.True(t, firstSeen(t, s, key), "first time")
		assert.False(t, firstSeen(t, s, key), "second time")
		assert.False(t, firstSeen(t, s, key), "third time")
	})

	t.Run("FirstSeenConcurrent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		key := unique("idem")
		ctx := stepCtx(t)
		var wins, fails atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range concurrency {
			wg.Go(func() {
				<-release
				first, err := s.FirstSeen(ctx, key, unique("gw"))
				if err != nil {
					fails.Add(1)
					t.Errorf("FirstSeen: %v", err)
					return
				}
				if first {
					wins.Add(1)
				}
			})
		}
		close(release)
		waitGroup(t, "FirstSeen", &wg)
		require.Zero(t, fails.Load())
		assert.Equal(t, int32(1), wins.Load(), "exactly one caller sees the key first")
		assert.False(t, firstSeen(t, s, key), "after the race")
	})

	t.Run("FirstSeenIndependentKeys", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a, b := unique("MM"), unique("MM")
		assert.True(t, firstSeen(t, s, a))
		assert.True(t, firstSeen(t, s, b), "another key is new")
		assert.False(t, firstSeen(t, s, a))
		assert.False(t, firstSeen(t, s, b))
	})

	t.Run("AbandonedOnlyOnceOlderThan", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		assert.Empty(t, abandoned(t, s, 0), "a new store has nothing pending")
		key := unique("sid")
		require.True(t, firstSeen(t, s, key))
		assert.Empty(t, abandoned(t, s, time.Hour), "not reported before olderThan has passed")
		assert.Equal(t, []string{key}, abandoned(t, s, 0), "reported once olderThan has passed")
		assert.Empty(t, abandoned(t, s, 0), "reported once only")
		assert.False(t, firstSeen(t, s, key), "a reported key is still remembered")
		assert.Empty(t, abandoned(t, s, 0), "seeing a reported key again does not make it pending")
		delivered(t, s, key)
		assert.Empty(t, abandoned(t, s, 0), "marking a reported key changes nothing")
	})

	t.Run("AbandonedNeverDelivered", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		answered, lost := unique("sid"), unique("sid")
		require.True(t, firstSeen(t, s, answered))
		require.True(t, firstSeen(t, s, lost))
		delivered(t, s, answered)
		delivered(t, s, answered) // twice is harmless
		assert.False(t, firstSeen(t, s, answered), "a delivered key is still remembered")
		assert.Equal(t, []string{lost}, abandoned(t, s, 0), "only the key never marked")
		assert.Empty(t, abandoned(t, s, 0))
	})

	t.Run("DeliveredUnknownKey", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		key := unique("sid")
		delivered(t, s, key) // no error, and nothing recorded:
		assert.True(t, firstSeen(t, s, key), "marking an unknown key does not record it")
		assert.Equal(t, []string{key}, abandoned(t, s, 0), "nor mark its later delivery answered")
	})

	t.Run("AbandonedConcurrent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		const keys, callers = 20, 10
		want := make([]string, keys)
		for i := range want {
			want[i] = unique("sid")
			require.True(t, firstSeen(t, s, want[i]))
		}
		ctx := stepCtx(t)
		got := make([][]string, callers)
		release := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				<-release
				var err error
				got[i], err = s.Abandoned(ctx, 0)
				if err != nil {
					t.Errorf("Abandoned %d: %v", i, err)
				}
			})
		}
		close(release)
		waitGroup(t, "Abandoned", &wg)
		times := make(map[string]int, keys)
		for _, ks := range got {
			for _, k := range ks {
				times[k]++
			}
		}
		for _, k := range want {
			assert.Equal(t, 1, times[k], "key %s returned %d times by the concurrent calls", k, times[k])
		}
		assert.Len(t, times, keys, "only the keys recorded")
		assert.Empty(t, abandoned(t, s, 0), "nothing left after the race")
	})

	t.Run("ReplaceThread", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		user, other := unique("user"), unique("user")
		stale, fresh, late := unique("thread"), unique("thread"), unique("thread")
		saveThread(t, s, user, stale)
		assert.Equal(t, fresh, replaceThread(t, s, user, stale, fresh), "the stale thread is replaced")
		assert.Equal(t, fresh, thread(t, s, user))
		assert.Equal(t, fresh, replaceThread(t, s, user, stale, late), "a caller late with the same stale thread gets the new one")
		assert.Equal(t, fresh, thread(t, s, user))
		assert.Equal(t, late, replaceThread(t, s, other, unique("thread"), late), "a user without a thread gets one")
		assert.Equal(t, late, thread(t, s, other))
	})

	t.Run("ReplaceThreadConcurrent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		user, stale := unique("user"), unique("thread")
		saveThread(t, s, user, stale)
		threadRace(t, s, user, "ReplaceThread", func(ctx context.Context, id string) (string, error) {
			return s.ReplaceThread(ctx, user, stale, id)
		})
	})

	t.Run("TakeOverLiveOwner", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		owner, other := unique("gw"), unique("gw")
		renew(t, s, owner, leaseTTL)
		renew(t, s, other, leaseTTL)
		key := unique("sid")
		require.True(t, firstSeenBy(t, s, key, owner))
		assert.Equal(t, ports.ClaimOwned, takeOver(t, s, key, owner), "the owner's own repeat")
		assert.Equal(t, ports.ClaimBusy, takeOver(t, s, key, other), "a live owner's delivery is not taken")
		assert.Empty(t, abandoned(t, s, 0), "nor reported")
		delivered(t, s, key)
		assert.Equal(t, ports.ClaimSettled, takeOver(t, s, key, other), "an answered delivery is settled")
		assert.Equal(t, ports.ClaimSettled, takeOver(t, s, key, owner))
	})

	t.Run("TakeOverStoppedOwner", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		released, expired, never, heir, third := unique("gw"), unique("gw"), unique("gw"), unique("gw"), unique("gw")
		renew(t, s, released, leaseTTL)
		renew(t, s, expired, shortTTL)
		renew(t, s, heir, leaseTTL)
		renew(t, s, third, leaseTTL)
		keys := map[string]string{unique("sid"): released, unique("sid"): expired, unique("sid"): never}
		for key, owner := range keys {
			require.True(t, firstSeenBy(t, s, key, owner))
		}
		release(t, s, released)
		time.Sleep(expiryWait)
		for key, owner := range keys {
			assert.Equal(t, ports.ClaimTaken, takeOver(t, s, key, heir), "from %s", owner)
			assert.Equal(t, ports.ClaimOwned, takeOver(t, s, key, heir), "taken once")
			assert.Equal(t, ports.ClaimBusy, takeOver(t, s, key, third), "the heir is alive")
			assert.Equal(t, ports.ClaimBusy, takeOver(t, s, key, owner), "the stopped owner does not get it back")
		}
		assert.Empty(t, abandoned(t, s, 0), "deliveries taken over by a live instance are not reported")
		release(t, s, heir)
		assert.Len(t, abandoned(t, s, 0), len(keys), "reported once the heir stops too")
	})

	t.Run("TakeOverSettled", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		heir := unique("gw")
		renew(t, s, heir, leaseTTL)
		answered, reported := unique("sid"), unique("sid")
		require.True(t, firstSeen(t, s, answered))
		delivered(t, s, answered)
		require.True(t, firstSeen(t, s, reported))
		assert.Equal(t, []string{reported}, abandoned(t, s, 0))
		for name, key := range map[string]string{"unknown": unique("sid"), "answered": answered, "reported": reported} {
			assert.Equal(t, ports.ClaimSettled, takeOver(t, s, key, heir), name)
		}
		assert.True(t, firstSeen(t, s, unique("sid")), "TakeOver of an unknown key records nothing")
	})

	t.Run("TakeOverConcurrent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		const claimers = 20
		live, dead := unique("sid"), unique("sid")
		owner := unique("gw")
		renew(t, s, owner, leaseTTL)
		require.True(t, firstSeenBy(t, s, live, owner))
		require.True(t, firstSeen(t, s, dead))
		ids := make([]string, claimers)
		for i := range ids {
			ids[i] = unique("gw")
			renew(t, s, ids[i], leaseTTL)
		}
		ctx := stepCtx(t)
		claims := make(map[string][]ports.Claim)
		var mu sync.Mutex
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, id := range ids {
			for _, key := range []string{live, dead} {
				wg.Go(func() {
					<-start
					c, err := s.TakeOver(ctx, key, id)
					if err != nil {
						t.Errorf("TakeOver: %v", err)
						return
					}
					mu.Lock()
					claims[key] = append(claims[key], c)
					mu.Unlock()
				})
			}
		}
		close(start)
		waitGroup(t, "TakeOver", &wg)
		count := func(key string, want ports.Claim) int {
			n := 0
			for _, c := range claims[key] {
				if c == want {
					n++
				}
			}
			return n
		}
		assert.Equal(t, 1, count(dead, ports.ClaimTaken), "exactly one claimer takes a stopped owner's delivery: %v", claims[dead])
		assert.Equal(t, claimers-1, count(dead, ports.ClaimBusy), "the others find it owned by the winner, alive")
		assert.Equal(t, claimers, count(live, ports.ClaimBusy), "nobody takes a live owner's delivery: %v", claims[live])
	})

	t.Run("AbandonedSkipsLiveOwners", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		owner := unique("gw")
		renew(t, s, owner, leaseTTL)
		working, lost := unique("sid"), unique("sid")
		require.True(t, firstSeenBy(t, s, working, owner))
		require.True(t, firstSeen(t, s, lost))
		assert.Equal(t, []string{lost}, abandoned(t, s, 0), "only the delivery whose owner stopped")
		release(t, s, owner)
		assert.Equal(t, []string{working}, abandoned(t, s, 0), "the other once its owner stopped")
	})

	t.Run("LockMutualExclusion", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
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
		s := newStore(t)
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
		s := newStore(t)
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
		s := newStore(t)
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
		s := newStore(t)
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
		s := newStore(t)
		alice, bob := unique("alice"), unique("bob")
		unlockA := lockUser(t, s, alice)
		defer unlockA()
		lockUser(t, s, bob)() // must not wait for alice's lock
	})

	t.Run("UnlockAfterContextDone", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
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

	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, withinErr(t, "Ping", s.Ping))
	})
}

func thread(t *testing.T, s ports.ThreadStore, user string) string {
	t.Helper()
	id, err := within(t, "Thread", func(ctx context.Context) (string, error) {
		return s.Thread(ctx, user)
	})
	require.NoError(t, err)
	return id
}

func saveThread(t *testing.T, s ports.ThreadStore, user, id string) string {
	t.Helper()
	got, err := within(t, "SaveThread", func(ctx context.Context) (string, error) {
		return s.SaveThread(ctx, user, id)
	})
	require.NoError(t, err)
	return got
}

// threadRace calls store concurrency times at once, each with a thread id
// of its own, and checks that every call returned the same thread, one of
// those ids, which is then user's thread.
func threadRace(t *testing.T, s ports.ThreadStore, user, what string, store func(ctx context.Context, id string) (string, error)) {
	t.Helper()
	ctx := stepCtx(t)
	results := make([]string, concurrency)
	errs := make([]error, concurrency)
	candidates := make(map[string]bool, concurrency)
	threads := make([]string, concurrency)
	for i := range threads {
		threads[i] = unique("thread")
		candidates[threads[i]] = true
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			<-start
			results[i], errs[i] = store(ctx, threads[i])
		})
	}
	close(start)
	waitGroup(t, what, &wg)
	for i := range concurrency {
		require.NoError(t, errs[i], "%s %d", what, i)
		assert.Equal(t, results[0], results[i], "%s %d returned another thread", what, i)
	}
	assert.True(t, candidates[results[0]], "the stored thread is one of those given")
	assert.Equal(t, results[0], thread(t, s, user))
}

// firstSeen records key as taken by an instance that holds no lease (one
// that stopped).
func firstSeen(t *testing.T, s ports.ThreadStore, key string) bool {
	t.Helper()
	return firstSeenBy(t, s, key, unique("gw-stopped"))
}

func firstSeenBy(t *testing.T, s ports.ThreadStore, key, owner string) bool {
	t.Helper()
	first, err := within(t, "FirstSeen", func(ctx context.Context) (bool, error) {
		return s.FirstSeen(ctx, key, owner)
	})
	require.NoError(t, err)
	return first
}

func takeOver(t *testing.T, s ports.ThreadStore, key, owner string) ports.Claim {
	t.Helper()
	c, err := within(t, "TakeOver", func(ctx context.Context) (ports.Claim, error) {
		return s.TakeOver(ctx, key, owner)
	})
	require.NoError(t, err)
	return c
}

func replaceThread(t *testing.T, s ports.ThreadStore, user, old, id string) string {
	t.Helper()
	got, err := within(t, "ReplaceThread", func(ctx context.Context) (string, error) {
		return s.ReplaceThread(ctx, user, old, id)
	})
	require.NoError(t, err)
	return got
}

func delivered(t *testing.T, s ports.ThreadStore, key string) {
	t.Helper()
	require.NoError(t, withinErr(t, "Delivered", func(ctx context.Context) error {
		return s.Delivered(ctx, key)
	}))
}

func abandoned(t *testing.T, s ports.ThreadStore, olderThan time.Duration) []string {
	t.Helper()
	keys, err := within(t, "Abandoned", func(ctx context.Context) ([]string, error) {
		return s.Abandoned(ctx, olderThan)
	})
	require.NoError(t, err)
	return keys
}

// lockUser takes user's lock, failing the test if that does not happen in
// time. The returned unlock must be called.
func lockUser(t *testing.T, s ports.ThreadStore, user string) func() {
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
func awaitWaiters(t *testing.T, s ports.ThreadStore, user string, n int) {
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
