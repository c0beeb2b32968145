package porttest

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// tokenTTL is the time to live of the tokens the TokenStore suite issues
// when the test is not about expiry.
const tokenTTL = time.Minute

// shortTTL and expiryWait drive the expiry subtest: a token issued with
// shortTTL is presented expiryWait later. Stores that expire entries on the
// server keep time in milliseconds at best.
const (
	shortTTL   = 150 * time.Millisecond
	expiryWait = 400 * time.Millisecond
)

// TokenStore runs the conformance suite of ports.TokenStore. newStore is
// called once per subtest; subtests run in parallel and use random call sids,
// so the stores they get may share one backing server.
func TokenStore(t *testing.T, newStore func(t *testing.T) ports.TokenStore) {
	t.Run("IssueFormat", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		call := unique("CA")
		seen := make(map[string]bool)
		for range 20 {
			tok := issue(t, s, call, tokenTTL)
			require.Len(t, tok, 43, "unpadded base64url of 256 bits")
			raw, err := base64.RawURLEncoding.DecodeString(tok)
			require.NoError(t, err, "token is unpadded base64url")
			require.Len(t, raw, ports.TokenBytes)
			require.False(t, seen[tok], "tokens are distinct")
			seen[tok] = true
		}
	})

	t.Run("ConsumeOnce", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		call := unique("CA")
		tok := issue(t, s, call, tokenTTL)
		require.NoError(t, consume(t, s, tok, call))
		requireTokenErr(t, consume(t, s, tok, call), tok, ports.ErrTokenInvalid)
	})

	t.Run("WrongCallBurnsToken", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		call := unique("CA")
		tok := issue(t, s, call, tokenTTL)
		requireTokenErr(t, consume(t, s, tok, unique("CA")), tok, ports.ErrTokenInvalid)
		requireTokenErr(t, consume(t, s, tok, call), tok, ports.ErrTokenInvalid)
	})

	t.Run("UnknownToken", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		tok := ports.NewToken()
		requireTokenErr(t, consume(t, s, tok, unique("CA")), tok, ports.ErrTokenInvalid)
		requireTokenErr(t, consume(t, s, "", unique("CA")), "", ports.ErrTokenInvalid)
	})

	t.Run("IndependentCalls", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		callA, callB := unique("CA"), unique("CA")
		a, replaced := issueReplaced(t, s, callA, tokenTTL)
		require.False(t, replaced, "a call's first token replaces nothing")
		b, replaced := issueReplaced(t, s, callB, tokenTTL)
		require.False(t, replaced, "another call's token is not this call's")
		require.NoError(t, consume(t, s, b, callB))
		require.NoError(t, consume(t, s, a, callA))
	})

	t.Run("ReissueReplaces", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		call := unique("CA")
		first, replaced := issueReplaced(t, s, call, tokenTTL)
		require.False(t, replaced)
		second, replaced := issueReplaced(t, s, call, tokenTTL)
		require.True(t, replaced, "the first token was live")
		third, replaced := issueReplaced(t, s, call, tokenTTL)
		require.True(t, replaced, "the second token was live")
		requireTokenErr(t, consume(t, s, first, call), first, ports.ErrTokenInvalid)
		requireTokenErr(t, consume(t, s, second, call), second, ports.ErrTokenInvalid)
		require.NoError(t, consume(t, s, third, call), "the latest token connects")
	})

	t.Run("ConsumedTokenIsNotReplaced", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		call := unique("CA")
		first := issue(t, s, call, tokenTTL)
		require.NoError(t, consume(t, s, first, call))
		second, replaced := issueReplaced(t, s, call, tokenTTL)
		require.False(t, replaced, "a consumed token is no longer live")
		require.NoError(t, consume(t, s, second, call))
	})

	t.Run("ExpiredTokenIsNotReplaced", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		call := unique("CA")
		first := issue(t, s, call, shortTTL)
		time.Sleep(expiryWait)
		second, replaced := issueReplaced(t, s, call, tokenTTL)
		require.False(t, replaced, "an expired token is no longer live")
		requireTokenErr(t, consume(t, s, first, call), first, ports.ErrTokenExpired, ports.ErrTokenInvalid)
		require.NoError(t, consume(t, s, second, call))
	})

	t.Run("ConcurrentIssue", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		call := unique("CA")
		ctx := stepCtx(t)
		const n = 20
		var (
			mu     sync.Mutex
			tokens []string
			fresh  int // issues that replaced nothing
		)
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				<-release
				tok, replaced, err := s.Issue(ctx, call, tokenTTL)
				if err != nil {
					t.Errorf("Issue: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				tokens = append(tokens, tok)
				if !replaced {
					fresh++
				}
			})
		}
		close(release)
		waitGroup(t, "Issue", &wg)
		require.Len(t, tokens, n)
		assert.Equal(t, 1, fresh, "exactly one issue found no live token")
		valid := 0
		for _, tok := range tokens {
			err := consume(t, s, tok, call)
			if err == nil {
				valid++
				continue
			}
			requireTokenErr(t, err, tok, ports.ErrTokenInvalid)
		}
		assert.Equal(t, 1, valid, "exactly one token of the call stays valid")
	})

	t.Run("Expired", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		call := unique("CA")
		tok := issue(t, s, call, shortTTL)
		time.Sleep(expiryWait)
		// A store that expires entries on the server cannot tell an expired
		// token from an unknown one.
		requireTokenErr(t, consume(t, s, tok, call), tok, ports.ErrTokenExpired, ports.ErrTokenInvalid)
		requireTokenErr(t, consume(t, s, tok, call), tok, ports.ErrTokenExpired, ports.ErrTokenInvalid)
	})

	t.Run("ConcurrentConsume", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		call := unique("CA")
		tok := issue(t, s, call, tokenTTL)
		ctx := stepCtx(t)
		const n = 50
		var accepted atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				<-release
				err := s.Consume(ctx, tok, call)
				switch {
				case err == nil:
					accepted.Add(1)
				case !errors.Is(err, ports.ErrTokenInvalid):
					t.Errorf("Consume: want ErrTokenInvalid, got %v", err)
				case strings.Contains(err.Error(), tok):
					t.Errorf("error text reveals the token")
				}
			})
		}
		close(release)
		waitGroup(t, "Consume", &wg)
		assert.Equal(t, int32(1), accepted.Load(), "exactly one consumer accepted")
	})

	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, withinErr(t, "Ping", s.Ping))
	})
}

func issue(t *testing.T, s ports.TokenStore, callSid string, ttl time.Duration) string {
	t.Helper()
	tok, _ := issueReplaced(t, s, callSid, ttl)
	return tok
}

// issueReplaced issues a token and returns it and whether it replaced a
// live one.
func issueReplaced(t *testing.T, s ports.TokenStore, callSid string, ttl time.Duration) (string, bool) {
	t.Helper()
	type issued struct {
		token    string
		replaced bool
	}
	got, err := within(t, "Issue", func(ctx context.Context) (issued, error) {
		tok, replaced, err := s.Issue(ctx, callSid, ttl)
		return issued{tok, replaced}, err
	})
	require.NoError(t, err)
	return got.token, got.replaced
}

func consume(t *testing.T, s ports.TokenStore, token, callSid string) error {
	t.Helper()
	return withinErr(t, "Consume", func(ctx context.Context) error {
		return s.Consume(ctx, token, callSid)
	})
}

// requireTokenErr checks that err wraps one of targets and does not reveal
// token.
func requireTokenErr(t *testing.T, err error, token string, targets ...error) {
	t.Helper()
	require.Error(t, err, "token was accepted")
	matched := false
	for _, target := range targets {
		matched = matched || errors.Is(err, target)
	}
	require.True(t, matched, "error %q wraps none of %v", err, targets)
	if token != "" {
		require.NotContains(t, err.Error(), token, "error text reveals the token")
	}
}
