package memstore

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"time"

	"github.com/convgateway/gateway/ports"
)

var _ ports.TokenStore = (*TokenStore)(nil)

// TokenStore is an in-memory ports.TokenStore for a single gateway process.
// It keeps only ports.TokenKey(token), never a token. The zero value is not
// usable; create one with NewTokenStore. It is safe for concurrent use.
type TokenStore struct {
	now func() time.Time

	mu      sync.Mutex
	entries expiring // TokenKey -> call sid
	calls   expiring // call sid -> TokenKey of its latest token
}

// NewTokenStore returns an empty store that reads the time from now (nil
// means time.Now).
func NewTokenStore(now func() time.Time) *TokenStore {
	if now == nil {
		now = time.Now
	}
	return &TokenStore{now: now, entries: newExpiring(), calls: newExpiring()}
}

// Issue mints a token bound to callSid, valid for ttl, which replaces the
// call's earlier token, if any: replaced reports whether that one was
// still live. Expired tokens are swept as the table grows. It does not
// block; it fails only for a ttl that is not positive
// (ports.ErrInvalidInput).
func (s *TokenStore) Issue(_ context.Context, callSid string, ttl time.Duration) (string, bool, error) {
	if ttl <= 0 {
		return "", false, fmt.Errorf("memory: issue token: ttl %v: %w", ttl, ports.ErrInvalidInput)
	}
	tok := ports.NewToken()
	key := ports.TokenKey(tok)
	now := s.now()
	expires := now.Add(ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	replaced := false
	if old, ok := s.calls.take(callSid); ok {
		en, live := s.entries.take(old.value)
		replaced = live && now.Before(en.expires)
	}
	s.entries.put(key, callSid, expires, now)
	s.calls.put(callSid, key, expires, now)
	return tok, replaced, nil
}

// Consume accepts token for callSid once; any token it finds is removed,
// whatever the outcome. Errors wrap ports.ErrTokenInvalid (unknown, used,
// replaced or another call's token) or ports.ErrTokenExpired. The call sid
// comparison is constant-time. It does not block.
func (s *TokenStore) Consume(_ context.Context, token, callSid string) error {
	key := ports.TokenKey(token)
	now := s.now()
	s.mu.Lock()
	en, ok := s.entries.take(key)
	if ok {
		if latest, found := s.calls.get(en.value, now); found && latest == key {
			s.calls.take(en.value) // the call has no live token any more
		}
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("memory: consume token: %w", ports.ErrTokenInvalid)
	case subtle.ConstantTimeCompare([]byte(en.value), []byte(callSid)) != 1:
		return fmt.Errorf("memory: consume token: %w", ports.ErrTokenInvalid)
	case !now.Before(en.expires):
		return fmt.Errorf("memory: consume token: %w", ports.ErrTokenExpired)
	}
	return nil
}

// Ping reports that the store is reachable: it always is.
func (s *TokenStore) Ping(context.Context) error { return nil }
