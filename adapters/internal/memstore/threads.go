package memstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/convgateway/gateway/ports"
)

// SeenTTL is how long FirstSeen remembers a key.
const SeenTTL = 24 * time.Hour

// minPrune is the table size below which expired entries are not swept.
const minPrune = 1024

var (
	_ ports.ThreadStore    = (*ThreadStore)(nil)
	_ ports.DeliveryLedger = (*ThreadStore)(nil)
	_ ports.Leases         = (*ThreadStore)(nil)
	_ ports.UserLocks      = (*ThreadStore)(nil)
)

// ThreadStore is an in-memory ports.ThreadStore, and the
// ports.DeliveryLedger (with the instance leases, ports.Leases, its
// deliveries' owners hold) and ports.UserLocks of the same process. The
// zero value is not usable; create one with NewThreadStore. It is safe for
// concurrent use.
type ThreadStore struct {
	now func() time.Time

	mu      sync.Mutex
	threads map[string]string
	seen    expiring
	// pending holds the keys FirstSeen recorded that were neither marked
	// Delivered nor claimed by Abandoned, expiring with them, each with
	// its owner's instance id; an entry's expiry minus SeenTTL is when its
	// key was first seen.
	pending expiring
	leases  expiring             // instance id -> "", until the lease expires
	locks   map[string]*userLock // only users with a holder
}

// userLock is the lock of one user: held by one caller, with a queue of
// waiters each woken by closing its channel.
type userLock struct {
	waiters []chan struct{}
}

// NewThreadStore returns an empty store whose first-seen keys expire after
// SeenTTL.
func NewThreadStore() *ThreadStore {
	return newThreadStore(time.Now)
}

func newThreadStore(now func() time.Time) *ThreadStore {
	return &ThreadStore{
		now:     now,
		threads: make(map[string]string),
		seen:    newExpiring(),
		pending: newExpiring(),
		leases:  newExpiring(),
		locks:   make(map[string]*userLock),
	}
}

// Thread returns the thread stored for user, or an error wrapping
// ports.ErrNotFound. It does not block.
func (s *ThreadStore) Thread(_ context.Context, user string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.threads[user]
	if !ok {
		return "", fmt.Errorf("memory: thread: %w", ports.ErrNotFound)
	}
	return id, nil
}

// SaveThread stores threadID for user unless the user has a thread, and
// returns the stored thread. It does not block and never fails.
func (s *ThreadStore) SaveThread(_ context.Context, user, threadID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.threads[user]; ok {
		return id, nil
	}
	s.threads[user] = threadID
	return threadID, nil
}

// ReplaceThread stores threadID for user if user's thread is old or user
// has none, and returns the stored thread. It does not block and never
// fails.
func (s *ThreadStore) ReplaceThread(_ context.Context, user, old, threadID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.threads[user]; ok && id != old {
		return id, nil
	}
	s.threads[user] = threadID
	return threadID, nil
}

// FirstSeen records key for SeenTTL, taken by owner, and reports whether
// it was new; a new key is pending until Delivered. Expired keys are swept
// as the table grows, so memory stays proportional to the keys seen within
// SeenTTL. It does not block and never fails.
func (s *ThreadStore) FirstSeen(_ context.Context, key, owner string) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen.get(key, now); ok {
		return false, nil
	}
	s.seen.put(key, "", now.Add(SeenTTL), now)
	s.pending.put(key, owner, now.Add(SeenTTL), now)
	return true, nil
}

// TakeOver makes owner the owner of key's pending delivery if its owner holds
// no live lease, under the store's mutex (see ports.DeliveryLedger). It does
// not block and never fails.
func (s *ThreadStore) TakeOver(_ context.Context, key, owner string) (ports.Claim, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, pending := s.pending.get(key, now)
	switch {
	case !pending:
		return ports.ClaimSettled, nil
	case cur == owner:
		return ports.ClaimOwned, nil
	case s.aliveLocked(cur, now):
		return ports.ClaimBusy, nil
	}
	s.pending.set(key, owner, now)
	return ports.ClaimTaken, nil
}

// Delivered marks key answered: Abandoned will not return it. An unknown
// key is ignored. It does not block and never fails.
func (s *ThreadStore) Delivered(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending.take(key)
	return nil
}

// Abandoned returns the keys first seen at least olderThan ago that are
// neither Delivered nor returned before and whose owner holds no live
// lease, and forgets them as pending: each is returned once. It scans the
// pending keys (those of at most SeenTTL) under the store's mutex, so
// concurrent callers never share a key. It does not block and never fails.
func (s *ThreadStore) Abandoned(_ context.Context, olderThan time.Duration) ([]string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	alive := func(owner string) bool { return s.aliveLocked(owner, now) }
	return s.pending.takeBy(now.Add(-max(olderThan, 0)).Add(SeenTTL), now, alive), nil
}

// Renew takes or extends instance's lease until ttl from now (see
// ports.Leases). Expired leases are swept as the table grows. It does not
// block; it fails only for an empty instance or a ttl that is not
// positive (ports.ErrInvalidInput).
func (s *ThreadStore) Renew(_ context.Context, instance string, ttl time.Duration) error {
	if instance == "" || ttl <= 0 {
		return fmt.Errorf("memory: renew lease: instance %q, ttl %v: %w", instance, ttl, ports.ErrInvalidInput)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases.put(instance, "", now.Add(ttl), now)
	return nil
}

// Release ends instance's lease (see ports.Leases). It does not block and
// never fails.
func (s *ThreadStore) Release(_ context.Context, instance string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases.take(instance)
	return nil
}

// Alive reports whether instance holds a live lease. It does not block
// and never fails.
func (s *ThreadStore) Alive(_ context.Context, instance string) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aliveLocked(instance, now), nil
}

// aliveLocked reports whether instance holds a live lease at now. s.mu
// must be held.
func (s *ThreadStore) aliveLocked(instance string, now time.Time) bool {
	_, ok := s.leases.get(instance, now)
	return ok
}

// LockUser blocks until the caller holds user's lock or ctx is done; waiters
// are served first come, first served. A caller whose ctx ends while waiting
// leaves the queue and gets an error wrapping ctx.Err(). The returned unlock
// hands the lock to the next waiter; calling it again does nothing.
func (s *ThreadStore) LockUser(ctx context.Context, user string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: lock user: %w", err)
	}
	s.mu.Lock()
	l, held := s.locks[user]
	if !held {
		s.locks[user] = &userLock{}
		s.mu.Unlock()
		return s.unlocker(user), nil
	}
	granted := make(chan struct{})
	l.waiters = append(l.waiters, granted)
	s.mu.Unlock()

	select {
	case <-granted:
		return s.unlocker(user), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-granted:
		// Granted while giving up: pass the lock on.
		s.releaseLocked(user)
	default:
		for i, w := range l.waiters {
			if w == granted {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				break
			}
		}
	}
	return nil, fmt.Errorf("memory: lock user: %w", ctx.Err())
}

// LockWaiters returns the number of callers waiting for user's lock
// (porttest.LockObserver). It does not block.
func (s *ThreadStore) LockWaiters(_ context.Context, user string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[user]; ok {
		return len(l.waiters), nil
	}
	return 0, nil
}

func (s *ThreadStore) unlocker(user string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.releaseLocked(user)
		})
	}
}

// releaseLocked hands user's lock to the first waiter, or frees it. s.mu
// must be held.
func (s *ThreadStore) releaseLocked(user string) {
	l := s.locks[user]
	if len(l.waiters) == 0 {
		delete(s.locks, user)
		return
	}
	close(l.waiters[0])
	l.waiters[0] = nil
	l.waiters = l.waiters[1:]
}

// Ping reports that the store is reachable: it always is.
func (s *ThreadStore) Ping(context.Context) error { return nil }
