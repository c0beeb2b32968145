package sqlite

import (
	"context"
	"sync"
)

// userLocks is a set of per-user FIFO locks held in this process.
type userLocks struct {
	mu    sync.Mutex
	locks map[string]*userLock // only users with a holder
}

// userLock is one user's lock: held by one caller, with a queue of waiters
// each woken by closing its channel.
type userLock struct {
	waiters []chan struct{}
}

func newUserLocks() *userLocks {
	return &userLocks{locks: make(map[string]*userLock)}
}

// lock blocks until the caller holds user's lock or ctx is done.
func (u *userLocks) lock(ctx context.Context, user string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u.mu.Lock()
	l, held := u.locks[user]
	if !held {
		u.locks[user] = &userLock{}
		u.mu.Unlock()
		return u.unlocker(user), nil
	}
	granted := make(chan struct{})
	l.waiters = append(l.waiters, granted)
	u.mu.Unlock()

	select {
	case <-granted:
		return u.unlocker(user), nil
	case <-ctx.Done():
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	select {
	case <-granted: // granted while giving up: pass the lock on
		u.releaseLocked(user)
	default:
		for i, w := range l.waiters {
			if w == granted {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				break
			}
		}
	}
	return nil, ctx.Err()
}

// waiting returns the number of callers waiting for user's lock.
func (u *userLocks) waiting(user string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	if l, ok := u.locks[user]; ok {
		return len(l.waiters)
	}
	return 0
}

func (u *userLocks) unlocker(user string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			u.releaseLocked(user)
		})
	}
}

// releaseLocked hands user's lock to the first waiter, or frees it.
func (u *userLocks) releaseLocked(user string) {
	l := u.locks[user]
	if len(l.waiters) == 0 {
		delete(u.locks, user)
		return
	}
	next := l.waiters[0]
	l.waiters = l.waiters[1:]
	close(next)
}
