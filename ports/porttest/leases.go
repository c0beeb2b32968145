package porttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// leaseTTL is the ttl of the leases the suites take when the test is not
// about expiry: far longer than any test.
const leaseTTL = time.Hour

// Leases runs the conformance suite of ports.Leases. newLeases is called
// once per subtest; subtests run in parallel and use random instance ids,
// so the stores they get may share one database. Expiry is checked with a
// short ttl and a sleep, as the TokenStore suite does (shortTTL,
// expiryWait).
func Leases(t *testing.T, newLeases func(t *testing.T) ports.Leases) {
	t.Run("RenewMakesAlive", func(t *testing.T) {
		t.Parallel()
		l := newLeases(t)
		a, b := unique("gw"), unique("gw")
		assert.False(t, alive(t, l, a), "an unknown instance is not alive")
		renew(t, l, a, leaseTTL)
		assert.True(t, alive(t, l, a))
		assert.False(t, alive(t, l, b), "another instance is not")
		renew(t, l, a, leaseTTL)
		assert.True(t, alive(t, l, a), "renewed again")
	})

	t.Run("Release", func(t *testing.T) {
		t.Parallel()
		l := newLeases(t)
		a, b := unique("gw"), unique("gw")
		renew(t, l, a, leaseTTL)
		renew(t, l, b, leaseTTL)
		release(t, l, a)
		assert.False(t, alive(t, l, a), "released")
		assert.True(t, alive(t, l, b), "another lease is untouched")
		release(t, l, a)            // twice is harmless
		release(t, l, unique("gw")) // so is an unknown lease
		renew(t, l, a, leaseTTL)
		assert.True(t, alive(t, l, a), "a released lease is taken again")
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		l := newLeases(t)
		short, extended := unique("gw"), unique("gw")
		renew(t, l, short, shortTTL)
		renew(t, l, extended, shortTTL)
		assert.True(t, alive(t, l, short), "alive within its ttl")
		renew(t, l, extended, leaseTTL)
		time.Sleep(expiryWait)
		assert.False(t, alive(t, l, short), "expired once its ttl has passed")
		assert.True(t, alive(t, l, extended), "a renewal extends the lease")
		renew(t, l, short, leaseTTL)
		assert.True(t, alive(t, l, short), "an expired lease is taken again")
	})

	t.Run("InvalidInput", func(t *testing.T) {
		t.Parallel()
		l := newLeases(t)
		for name, c := range map[string]struct {
			id  string
			ttl time.Duration
		}{
			"empty id": {"", leaseTTL},
			"zero ttl": {unique("gw"), 0},
			"negative": {unique("gw"), -time.Second},
		} {
			err := withinErr(t, "Renew", func(ctx context.Context) error { return l.Renew(ctx, c.id, c.ttl) })
			assert.ErrorIs(t, err, ports.ErrInvalidInput, name)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		l := newLeases(t)
		ids := make([]string, concurrency)
		for i := range ids {
			ids[i] = unique("gw")
		}
		ctx := stepCtx(t)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				<-start
				for range 3 {
					if err := l.Renew(ctx, id, leaseTTL); err != nil {
						t.Errorf("Renew %s: %v", id, err)
						return
					}
					if ok, err := l.Alive(ctx, id); err != nil || !ok {
						t.Errorf("Alive %s after Renew: %v, %v", id, ok, err)
						return
					}
				}
			})
		}
		close(start)
		waitGroup(t, "Renew", &wg)
		for _, id := range ids {
			assert.True(t, alive(t, l, id))
		}
	})
}

func renew(t *testing.T, l ports.Leases, id string, ttl time.Duration) {
	t.Helper()
	require.NoError(t, withinErr(t, "Renew", func(ctx context.Context) error { return l.Renew(ctx, id, ttl) }))
}

func release(t *testing.T, l ports.Leases, id string) {
	t.Helper()
	require.NoError(t, withinErr(t, "Release", func(ctx context.Context) error { return l.Release(ctx, id) }))
}

func alive(t *testing.T, l ports.Leases, id string) bool {
	t.Helper()
	ok, err := within(t, "Alive", func(ctx context.Context) (bool, error) { return l.Alive(ctx, id) })
	require.NoError(t, err)
	return ok
}
