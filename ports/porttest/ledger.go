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

// DeliveryLedger runs the conformance suite of ports.DeliveryLedger.
// newLedger is called once per subtest and must return a ledger with state
// of its own (a fresh file, schema or instance): Abandoned claims the keys
// of the whole ledger, so subtests sharing state would claim each other's
// keys. Subtests run in parallel.
//
// The suite does not control the ledger's clock: it checks Abandoned's
// olderThan with a bound far in the past (an hour: nothing recorded during
// the test is that old) and with zero (everything recorded before the
// call), never with sleeps. Deliveries are recorded by owners that hold no
// lease (stopped instances) unless a subtest is about owners; the one
// subtest about an owner's lease expiring sleeps past a short ttl, as the
// Leases suite does. The ledger's Leases are checked by the Leases suite;
// run both.
func DeliveryLedger(t *testing.T, newLedger func(t *testing.T) ports.DeliveryLedger) {
	t.Run("FirstSeenOnce", func(t *testing.T) {
		t.Parallel()
		s := newLedger(t)
		key := unique("MM")
		assert.True(t, firstSeen(t, s, key), "first time")
		assert.False(t, firstSeen(t, s, key), "second time")
		assert.False(t, firstSeen(t, s, key), "third time")
	})

	t.Run("FirstSeenConcurrent", func(t *testing.T) {
		t.Parallel()
		s := newLedger(t)
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
		s := newLedger(t)
		a, b := unique("MM"), unique("MM")
		assert.True(t, firstSeen(t, s, a))
		assert.True(t, firstSeen(t, s, b), "another key is new")
		assert.False(t, firstSeen(t, s, a))
		assert.False(t, firstSeen(t, s, b))
	})

	t.Run("AbandonedOnlyOnceOlderThan", func(t *testing.T) {
		t.Parallel()
		s := newLedger(t)
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
		s := newLedger(t)
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
		s := newLedger(t)
		key := unique("sid")
		delivered(t, s, key) // no error, and nothing recorded:
		assert.True(t, firstSeen(t, s, key), "marking an unknown key does not record it")
		assert.Equal(t, []string{key}, abandoned(t, s, 0), "nor mark its later delivery answered")
	})

	t.Run("AbandonedConcurrent", func(t *testing.T) {
		t.Parallel()
		s := newLedger(t)
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

	t.Run("TakeOverLiveOwner", func(t *testing.T) {
		t.Parallel()
		s := newLedger(t)
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
		s := newLedger(t)
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
		s := newLedger(t)
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
		s := newLedger(t)
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
		s := newLedger(t)
		owner := unique("gw")
		renew(t, s, owner, leaseTTL)
		working, lost := unique("sid"), unique("sid")
		require.True(t, firstSeenBy(t, s, working, owner))
		require.True(t, firstSeen(t, s, lost))
		assert.Equal(t, []string{lost}, abandoned(t, s, 0), "only the delivery whose owner stopped")
		release(t, s, owner)
		assert.Equal(t, []string{working}, abandoned(t, s, 0), "the other once its owner stopped")
	})
}

// firstSeen records key as taken by an instance that holds no lease (one
// that stopped).
func firstSeen(t *testing.T, s ports.DeliveryLedger, key string) bool {
	t.Helper()
	return firstSeenBy(t, s, key, unique("gw-stopped"))
}

func firstSeenBy(t *testing.T, s ports.DeliveryLedger, key, owner string) bool {
	t.Helper()
	first, err := within(t, "FirstSeen", func(ctx context.Context) (bool, error) {
		return s.FirstSeen(ctx, key, owner)
	})
	require.NoError(t, err)
	return first
}

func takeOver(t *testing.T, s ports.DeliveryLedger, key, owner string) ports.Claim {
	t.Helper()
	c, err := within(t, "TakeOver", func(ctx context.Context) (ports.Claim, error) {
		return s.TakeOver(ctx, key, owner)
	})
	require.NoError(t, err)
	return c
}

func delivered(t *testing.T, s ports.DeliveryLedger, key string) {
	t.Helper()
	require.NoError(t, withinErr(t, "Delivered", func(ctx context.Context) error {
		return s.Delivered(ctx, key)
	}))
}

func abandoned(t *testing.T, s ports.DeliveryLedger, olderThan time.Duration) []string {
	t.Helper()
	keys, err := within(t, "Abandoned", func(ctx context.Context) ([]string, error) {
		return s.Abandoned(ctx, olderThan)
	})
	require.NoError(t, err)
	return keys
}
