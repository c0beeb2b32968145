package memory

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
}

// NewTokenStore returns an empty store that reads the time from now (nil
// means time.Now).
func NewTokenStore(now func() time.Time) *TokenStore {
	if now == nil {
		now = time.Now
	}
	return &TokenStore{now: now, entries: newExpiring()}
}

// Issue mints a token bound to callSid, valid for ttl. Expired tokens are
// swept as the table grows. It does not block; it fails only for a ttl that
// is not positive (ports.ErrInvalidInput).
func (s *TokenStore) Issue(_ context.Context, callSid string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("memory: issue token: ttl %v: %w", ttl, ports.ErrInvalidInput)
	}
	tok := ports.NewToken()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries.put(ports.TokenKey(tok), callSid, now.Add(ttl), now)
	return tok, nil
}

// Consume accepts token for callSid once; any token it finds is removed,
// whatever the outcome. Errors wrap ports.ErrTokenInvalid (unknown, used or
// another call's token) or ports.ErrTokenExpired. The call sid comparison is
// constant-time. It does not block.
func (s *TokenStore) Consume(_ context.Context, token, callSid string) error {
	now := s.now()
	s.mu.Lock()
	en, ok := s.entries.take(ports.TokenKey(token))
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
