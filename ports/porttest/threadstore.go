package porttest

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// ThreadStore runs the conformance suite of ports.ThreadStore. newStore is
// called once per subtest; subtests run in parallel and use random user
// ids, so the stores they get may share one database.
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

func replaceThread(t *testing.T, s ports.ThreadStore, user, old, id string) string {
	t.Helper()
	got, err := within(t, "ReplaceThread", func(ctx context.Context) (string, error) {
		return s.ReplaceThread(ctx, user, old, id)
	})
	require.NoError(t, err)
	return got
}
