package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/store/redisstore"
	"github.com/convgateway/gateway/adapters/store/storetest"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serverURL returns the Redis the tests use, skipping (or failing in CI) the
// test when it is not running.
func serverURL(t *testing.T) string {
	t.Helper()
	return storetest.Require(t, "Redis", "TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
}

// testPrefix returns a key prefix of its own for one test run.
func testPrefix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "gateway-test-" + hex.EncodeToString(b) + ":"
}

// open connects a store to rawURL under prefix and closes it with the test.
func open(t *testing.T, rawURL, prefix string) *redisstore.TokenStore {
	t.Helper()
	s, err := redisstore.New(t.Context(), rawURL, redisstore.WithKeyPrefix(prefix))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	rawURL, prefix := serverURL(t), testPrefix()
	porttest.TokenStore(t, func(t *testing.T) ports.TokenStore { return open(t, rawURL, prefix) })
}

func TestIssueConsume(t *testing.T) {
	s := open(t, serverURL(t), testPrefix())
	ctx := t.Context()

	tok, _, err := s.Issue(ctx, "CA1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Consume(ctx, tok, "CA1"))
	require.ErrorIs(t, s.Consume(ctx, tok, "CA1"), ports.ErrTokenInvalid, "a token is accepted once")

	require.ErrorIs(t, s.Consume(ctx, ports.NewToken(), "CA1"), ports.ErrTokenInvalid, "unknown token")

	leaked, _, err := s.Issue(ctx, "CA2", time.Minute)
	require.NoError(t, err)
	require.ErrorIs(t, s.Consume(ctx, leaked, "CA3"), ports.ErrTokenInvalid, "token of another call")
	require.ErrorIs(t, s.Consume(ctx, leaked, "CA2"), ports.ErrTokenInvalid, "a token presented for the wrong call is consumed")

	_, _, err = s.Issue(ctx, "CA1", 0)
	require.ErrorIs(t, err, ports.ErrInvalidInput)
}

func TestExpiredToken(t *testing.T) {
	s := open(t, serverURL(t), testPrefix())
	tok, _, err := s.Issue(t.Context(), "CA1", time.Millisecond)
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond) // well past the 1 ms ttl
	err = s.Consume(t.Context(), tok, "CA1")
	require.ErrorIs(t, err, ports.ErrTokenExpired)
	require.NotErrorIs(t, err, ports.ErrTokenInvalid)
	require.ErrorIs(t, s.Consume(t.Context(), tok, "CA1"), ports.ErrTokenInvalid, "an expired token is consumed too")
}

func TestStoresOnlyTheHash(t *testing.T) {
	rawURL := serverURL(t)
	prefix := testPrefix()
	s := open(t, rawURL, prefix)
	tok, _, err := s.Issue(t.Context(), "CA1", time.Minute)
	require.NoError(t, err)

	o, err := redis.ParseURL(rawURL)
	require.NoError(t, err)
	raw := redis.NewClient(o)
	defer raw.Close()
	keys, err := raw.Keys(t.Context(), prefix+"*").Result()
	require.NoError(t, err)
	tokenKey, callKey := prefix+"token:"+ports.TokenKey(tok), prefix+"call:CA1"
	require.ElementsMatch(t, []string{tokenKey, callKey}, keys)
	sid, err := raw.Get(t.Context(), tokenKey).Result()
	require.NoError(t, err)
	require.Equal(t, "CA1", sid)
	latest, err := raw.Get(t.Context(), callKey).Result()
	require.NoError(t, err)
	require.Equal(t, ports.TokenKey(tok), latest, "the call names its token by hash")
	for _, k := range keys {
		ttl, err := raw.PTTL(t.Context(), k).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, time.Minute, "%s outlives the token by redisstore.Expired", k)
		require.LessOrEqual(t, ttl, time.Minute+redisstore.Expired)
	}

	require.NoError(t, s.Consume(t.Context(), tok, "CA1"))
	keys, err = raw.Keys(t.Context(), prefix+"*").Result()
	require.NoError(t, err)
	require.Empty(t, keys, "a consumed token leaves nothing behind")
}

// Two stores on one Redis stand for two gateway instances.
func TestTwoInstances(t *testing.T) {
	rawURL, prefix := serverURL(t), testPrefix()
	a, b := open(t, rawURL, prefix), open(t, rawURL, prefix)
	ctx := t.Context()

	tok, _, err := a.Issue(ctx, "CA1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, b.Consume(ctx, tok, "CA1"), "minted on A, accepted on B")
	require.ErrorIs(t, a.Consume(ctx, tok, "CA1"), ports.ErrTokenInvalid, "then refused on A")
	require.ErrorIs(t, b.Consume(ctx, tok, "CA1"), ports.ErrTokenInvalid, "and on B")

	// Many concurrent consumers on both instances: exactly one wins.
	tok, _, err = a.Issue(ctx, "CA2", time.Minute)
	require.NoError(t, err)
	const n = 20
	errs := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		s := []*redisstore.TokenStore{a, b}[i%2]
		wg.Go(func() {
			<-start
			errs <- s.Consume(ctx, tok, "CA2")
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	accepted := 0
	for err := range errs {
		if err == nil {
			accepted++
			continue
		}
		require.ErrorIs(t, err, ports.ErrTokenInvalid)
	}
	require.Equal(t, 1, accepted)

	// A webhook repeated on the other instance replaces the token.
	first, replaced, err := a.Issue(ctx, "CA3", time.Minute)
	require.NoError(t, err)
	require.False(t, replaced)
	second, replaced, err := b.Issue(ctx, "CA3", time.Minute)
	require.NoError(t, err)
	require.True(t, replaced, "B sees the token A issued")
	require.ErrorIs(t, a.Consume(ctx, first, "CA3"), ports.ErrTokenInvalid, "A's token was replaced")
	require.NoError(t, a.Consume(ctx, second, "CA3"), "B's token is accepted on A")
}

func TestUnreachableAtStart(t *testing.T) {
	addr := storetest.ClosedAddr(t)
	_, err := redisstore.New(t.Context(), "redis://user:s3cret-pw@"+addr+"/0")
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.Contains(t, err.Error(), "redis")
	require.Contains(t, err.Error(), addr)
	require.NotContains(t, err.Error(), "s3cret-pw")
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"redis://user:s3cret-pw@[::1/0", "http://user:s3cret-pw@127.0.0.1:6379/0", "redis://user:s3cret-pw@127.0.0.1:6379/x"} {
		_, err := redisstore.New(t.Context(), u)
		require.ErrorIs(t, err, ports.ErrInvalidInput, u)
		require.NotContains(t, err.Error(), "s3cret-pw")
	}
}

// A store whose Redis goes away fails with ErrUnavailable and works again
// when Redis is back, without being reopened.
func TestRecovers(t *testing.T) {
	rawURL := serverURL(t)
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	proxy := storetest.NewProxy(t, u.Host)
	s := open(t, storetest.WithHost(t, rawURL, proxy.Addr()), testPrefix())
	tok, _, err := s.Issue(t.Context(), "CA1", time.Minute)
	require.NoError(t, err)

	proxy.Stop()
	require.ErrorIs(t, s.Ping(t.Context()), ports.ErrUnavailable)
	_, _, err = s.Issue(t.Context(), "CA2", time.Minute)
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.ErrorIs(t, s.Consume(t.Context(), tok, "CA1"), ports.ErrUnavailable)

	proxy.Start()
	require.Eventually(t, func() bool { return s.Ping(t.Context()) == nil }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, s.Consume(t.Context(), tok, "CA1"), "the token issued before the outage is still good")
}

func TestCancelledContext(t *testing.T) {
	s := open(t, serverURL(t), testPrefix())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := s.Issue(ctx, "CA1", time.Minute)
	require.ErrorIs(t, err, context.Canceled)
}

// A store made while Redis is down: making it succeeds, every call fails
// with ErrUnavailable naming the server and never the password, and the
// store works once Redis answers, without being remade.
func TestNewLazyWhileDown(t *testing.T) {
	rawURL := serverURL(t)
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	proxy := storetest.NewProxy(t, u.Host)
	proxy.Stop()
	ctx := t.Context()

	secret, err := redisstore.NewLazy("redis://:s3cret-pw@" + proxy.Addr() + "/0")
	require.NoError(t, err, "nothing is dialled before first use")
	defer secret.Close()
	s, err := redisstore.NewLazy(storetest.WithHost(t, rawURL, proxy.Addr()), redisstore.WithKeyPrefix(testPrefix()))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })

	err = secret.Ping(ctx)
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.Contains(t, err.Error(), proxy.Addr(), "the error names the server")
	require.NotContains(t, err.Error(), "s3cret-pw")
	_, _, err = s.Issue(ctx, "CA1", time.Minute)
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.ErrorIs(t, s.Consume(ctx, ports.NewToken(), "CA1"), ports.ErrUnavailable)

	proxy.Start()
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 10*time.Second, 20*time.Millisecond)
	tok, _, err := s.Issue(ctx, "CA1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Consume(ctx, tok, "CA1"))
}

func TestNewLazyBadURL(t *testing.T) {
	_, err := redisstore.NewLazy("redis://user:s3cret-pw@[::1/0")
	require.ErrorIs(t, err, ports.ErrInvalidInput)
	require.NotContains(t, err.Error(), "s3cret-pw")
}
