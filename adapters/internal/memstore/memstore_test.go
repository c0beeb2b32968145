package memstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func TestFirstSeenExpiresAfterTTL(t *testing.T) {
	c := newClock()
	s := newThreadStore(c.Now)
	first, err := s.FirstSeen(t.Context(), "MM1", "gw-1")
	require.NoError(t, err)
	require.True(t, first)

	c.Advance(SeenTTL - time.Second)
	first, err = s.FirstSeen(t.Context(), "MM1", "gw-1")
	require.NoError(t, err)
	assert.False(t, first, "still remembered just before the TTL")

	c.Advance(time.Second)
	first, err = s.FirstSeen(t.Context(), "MM1", "gw-1")
	require.NoError(t, err)
	assert.True(t, first, "forgotten once the TTL has passed")
}

// Abandoned goes by the store's clock: a key is reported once olderThan has
// passed since it was first seen, once, and not after SeenTTL (it is
// forgotten, pending state included).
func TestAbandonedAge(t *testing.T) {
	c := newClock()
	s := newThreadStore(c.Now)
	ctx := t.Context()
	abandoned := func(olderThan time.Duration) []string {
		t.Helper()
		keys, err := s.Abandoned(ctx, olderThan)
		require.NoError(t, err)
		return keys
	}
	seen := func(key string) {
		t.Helper()
		first, err := s.FirstSeen(ctx, key, "gw-1")
		require.NoError(t, err)
		require.True(t, first)
	}

	seen("sid:a")
	c.Advance(10*time.Minute - time.Nanosecond)
	assert.Empty(t, abandoned(10*time.Minute), "not before olderThan")
	c.Advance(time.Nanosecond)
	assert.Equal(t, []string{"sid:a"}, abandoned(10*time.Minute), "once olderThan has passed")
	assert.Empty(t, abandoned(0), "once only")

	seen("sid:b")
	require.NoError(t, s.Delivered(ctx, "sid:b"))
	seen("sid:forgotten")
	c.Advance(SeenTTL)
	assert.Empty(t, abandoned(0), "neither a delivered key nor one older than SeenTTL")
	assert.Zero(t, s.pending.len(), "the forgotten key's pending state is dropped")

	seen("sid:forgotten") // new again, and pending again
	assert.Equal(t, []string{"sid:forgotten"}, abandoned(0))
}

func TestFirstSeenGrowthIsBounded(t *testing.T) {
	c := newClock()
	s := newThreadStore(c.Now)
	const perDay = 3 * minPrune
	for day := range 5 {
		for i := range perDay {
			first, err := s.FirstSeen(t.Context(), fmt.Sprintf("MM-%d-%d", day, i), "gw-1")
			require.NoError(t, err)
			require.True(t, first)
		}
		c.Advance(SeenTTL)
	}
	// Keys older than a day are swept: at most two days' worth is kept,
	// of the keys and of their pending state (never claimed here).
	assert.LessOrEqual(t, s.seen.len(), 2*perDay+minPrune)
	assert.LessOrEqual(t, s.pending.len(), 2*perDay+minPrune)
}

func TestTokenExpiry(t *testing.T) {
	c := newClock()
	s := NewTokenStore(c.Now)
	live, _, err := s.Issue(t.Context(), "CA1", time.Minute)
	require.NoError(t, err)
	old, _, err := s.Issue(t.Context(), "CA2", time.Minute)
	require.NoError(t, err)

	c.Advance(time.Minute - time.Millisecond)
	require.NoError(t, s.Consume(t.Context(), live, "CA1"), "valid until the TTL")

	c.Advance(time.Millisecond)
	err = s.Consume(t.Context(), old, "CA2")
	require.ErrorIs(t, err, ports.ErrTokenExpired)
	require.ErrorIs(t, s.Consume(t.Context(), old, "CA2"), ports.ErrTokenInvalid, "an expired token is removed")
}

func TestTokenGrowthIsBounded(t *testing.T) {
	c := newClock()
	s := NewTokenStore(c.Now)
	const perMinute = 3 * minPrune
	for m := range 5 {
		for i := range perMinute {
			call := fmt.Sprintf("CA%d-%d", m, i)
			_, _, err := s.Issue(t.Context(), call, time.Minute)
			require.NoError(t, err)
			_, _, err = s.Issue(t.Context(), call, time.Minute) // a retried webhook
			require.NoError(t, err)
		}
		c.Advance(time.Minute)
	}
	assert.LessOrEqual(t, s.entries.len(), 2*perMinute+minPrune)
	assert.LessOrEqual(t, s.calls.len(), 2*perMinute+minPrune)
}

func TestConsumeForgetsTheCall(t *testing.T) {
	s := NewTokenStore(nil)
	tok, _, err := s.Issue(t.Context(), "CA1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Consume(t.Context(), tok, "CA1"))
	assert.Zero(t, s.calls.len(), "a call whose token was used keeps nothing")
	assert.Zero(t, s.entries.len())
}

func TestTokenStoreKeepsOnlyHashes(t *testing.T) {
	s := NewTokenStore(nil)
	tok, _, err := s.Issue(t.Context(), "CA1", time.Minute)
	require.NoError(t, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.entries.m[ports.TokenKey(tok)]
	assert.True(t, ok)
	_, ok = s.entries.m[tok]
	assert.False(t, ok)
	assert.Equal(t, ports.TokenKey(tok), s.calls.m["CA1"].value, "the call names its token by hash")
}

func TestIssueRejectsNonPositiveTTL(t *testing.T) {
	_, _, err := NewTokenStore(nil).Issue(t.Context(), "CA1", 0)
	require.ErrorIs(t, err, ports.ErrInvalidInput)
}

func TestLockStateIsFreed(t *testing.T) {
	s := NewThreadStore()
	unlock, err := s.LockUser(t.Context(), "u")
	require.NoError(t, err)
	unlock()
	unlock() // a second call does nothing
	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Empty(t, s.locks, "a free lock leaves nothing behind")
}

// Leases expire by the store's clock: a delivery's owner counts as alive
// until its ttl has passed since its last renewal, and then its delivery
// may be taken over.
func TestTakeOverAfterLeaseExpiry(t *testing.T) {
	c := newClock()
	s := newThreadStore(c.Now)
	ctx := t.Context()
	require.NoError(t, s.Renew(ctx, "gw-a", 15*time.Second))
	require.NoError(t, s.Renew(ctx, "gw-b", time.Hour))
	first, err := s.FirstSeen(ctx, "sid:SM1", "gw-a")
	require.NoError(t, err)
	require.True(t, first)

	c.Advance(10 * time.Second)
	require.NoError(t, s.Renew(ctx, "gw-a", 15*time.Second))
	c.Advance(15*time.Second - time.Nanosecond)
	claim, err := s.TakeOver(ctx, "sid:SM1", "gw-b")
	require.NoError(t, err)
	assert.Equal(t, ports.ClaimBusy, claim, "alive until the ttl has passed since the last renewal")

	c.Advance(time.Nanosecond)
	claim, err = s.TakeOver(ctx, "sid:SM1", "gw-b")
	require.NoError(t, err)
	assert.Equal(t, ports.ClaimTaken, claim)
}
