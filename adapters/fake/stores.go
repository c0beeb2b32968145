package fake

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/convgateway/gateway/adapters/internal/memstore"
	"github.com/convgateway/gateway/ports"
)

var (
	_ ports.ThreadStore    = (*ThreadStore)(nil)
	_ ports.DeliveryLedger = (*ThreadStore)(nil)
	_ ports.UserLocks      = (*ThreadStore)(nil)
	_ ports.TokenStore     = (*TokenStore)(nil)
)

// outage is an injectable store failure. The zero value means "up".
type outage struct {
	mu  sync.Mutex
	err error
}

func (o *outage) set(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.err = err
}

func (o *outage) check(op string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return fmt.Errorf("fake: %s: %w", op, o.err)
	}
	return nil
}

// ThreadStore is a fake of the stores of the WhatsApp/SMS use case, one
// value for all of them: a ports.ThreadStore, a ports.DeliveryLedger (with
// its ports.Leases) and ports.UserLocks. It is the in-memory store, plus an
// injectable outage. Create one with NewThreadStore.
type ThreadStore struct {
	store *memstore.ThreadStore
	down  outage
}

// NewThreadStore returns an empty, reachable store.
func NewThreadStore() *ThreadStore { return &ThreadStore{store: memstore.NewThreadStore()} }

// Down makes every method fail with err (for example ports.ErrUnavailable)
// until Down(nil). Locks already held stay held.
func (s *ThreadStore) Down(err error) { s.down.set(err) }

// Thread returns user's thread (see ports.ThreadStore).
func (s *ThreadStore) Thread(ctx context.Context, user string) (string, error) {
	if err := s.down.check("thread"); err != nil {
		return "", err
	}
	return s.store.Thread(ctx, user)
}

// SaveThread stores user's thread unless there is one (see ports.ThreadStore).
func (s *ThreadStore) SaveThread(ctx context.Context, user, threadID string) (string, error) {
	if err := s.down.check("save thread"); err != nil {
		return "", err
	}
	return s.store.SaveThread(ctx, user, threadID)
}

// ReplaceThread replaces user's stale thread (see ports.ThreadStore).
func (s *ThreadStore) ReplaceThread(ctx context.Context, user, old, threadID string) (string, error) {
	if err := s.down.check("replace thread"); err != nil {
		return "", err
	}
	return s.store.ReplaceThread(ctx, user, old, threadID)
}

// FirstSeen records key, taken by owner (see ports.DeliveryLedger).
func (s *ThreadStore) FirstSeen(ctx context.Context, key, owner string) (bool, error) {
	if err := s.down.check("first seen"); err != nil {
		return false, err
	}
	return s.store.FirstSeen(ctx, key, owner)
}

// TakeOver takes a delivery whose owner stopped (see ports.DeliveryLedger).
func (s *ThreadStore) TakeOver(ctx context.Context, key, owner string) (ports.Claim, error) {
	if err := s.down.check("take over"); err != nil {
		return ports.ClaimSettled, err
	}
	return s.store.TakeOver(ctx, key, owner)
}

// Delivered marks key answered (see ports.DeliveryLedger).
func (s *ThreadStore) Delivered(ctx context.Context, key string) error {
	if err := s.down.check("delivered"); err != nil {
		return err
	}
	return s.store.Delivered(ctx, key)
}

// Abandoned claims the keys never marked Delivered (see
// ports.DeliveryLedger).
// While the store is down it claims nothing.
func (s *ThreadStore) Abandoned(ctx context.Context, olderThan time.Duration) ([]string, error) {
	if err := s.down.check("abandoned"); err != nil {
		return nil, err
	}
	return s.store.Abandoned(ctx, olderThan)
}

// Renew takes or extends an instance's lease (see ports.Leases).
func (s *ThreadStore) Renew(ctx context.Context, instance string, ttl time.Duration) error {
	if err := s.down.check("renew lease"); err != nil {
		return err
	}
	return s.store.Renew(ctx, instance, ttl)
}

// Release ends an instance's lease (see ports.Leases).
func (s *ThreadStore) Release(ctx context.Context, instance string) error {
	if err := s.down.check("release lease"); err != nil {
		return err
	}
	return s.store.Release(ctx, instance)
}

// Alive reports whether an instance holds a live lease (see ports.Leases).
func (s *ThreadStore) Alive(ctx context.Context, instance string) (bool, error) {
	if err := s.down.check("alive"); err != nil {
		return false, err
	}
	return s.store.Alive(ctx, instance)
}

// LockUser takes user's lock, first come first served (see
// ports.UserLocks).
func (s *ThreadStore) LockUser(ctx context.Context, user string) (func(), error) {
	if err := s.down.check("lock user"); err != nil {
		return nil, err
	}
	return s.store.LockUser(ctx, user)
}

// LockWaiters counts the callers waiting for user's lock
// (porttest.LockObserver).
func (s *ThreadStore) LockWaiters(ctx context.Context, user string) (int, error) {
	return s.store.LockWaiters(ctx, user)
}

// Ping fails while the store is down.
func (s *ThreadStore) Ping(context.Context) error { return s.down.check("ping") }

// IssuedToken is a token a fake TokenStore issued.
type IssuedToken struct {
	Token   string
	CallSid string
	TTL     time.Duration
	// Replaced tells whether the token replaced a live token of its call.
	Replaced bool
}

// TokenStore is a fake ports.TokenStore: the in-memory store, plus an
// injectable outage and a record of the tokens issued (so that a test can
// present one). Create one with NewTokenStore.
type TokenStore struct {
	store *memstore.TokenStore
	down  outage

	mu     sync.Mutex
	issued []IssuedToken
}

// NewTokenStore returns an empty, reachable store on the real clock.
func NewTokenStore() *TokenStore { return &TokenStore{store: memstore.NewTokenStore(nil)} }

// Down makes every method fail with err (for example ports.ErrUnavailable)
// until Down(nil).
func (s *TokenStore) Down(err error) { s.down.set(err) }

// Issue mints and records a token (see ports.TokenStore).
func (s *TokenStore) Issue(ctx context.Context, callSid string, ttl time.Duration) (string, bool, error) {
	if err := s.down.check("issue token"); err != nil {
		return "", false, err
	}
	tok, replaced, err := s.store.Issue(ctx, callSid, ttl)
	if err != nil {
		return "", false, err
	}
	s.mu.Lock()
	s.issued = append(s.issued, IssuedToken{Token: tok, CallSid: callSid, TTL: ttl, Replaced: replaced})
	s.mu.Unlock()
	return tok, replaced, nil
}

// Consume accepts a token once (see ports.TokenStore).
func (s *TokenStore) Consume(ctx context.Context, token, callSid string) error {
	if err := s.down.check("consume token"); err != nil {
		return err
	}
	return s.store.Consume(ctx, token, callSid)
}

// Ping fails while the store is down.
func (s *TokenStore) Ping(context.Context) error { return s.down.check("ping") }

// Issued returns the tokens issued so far, in order.
func (s *TokenStore) Issued() []IssuedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}
