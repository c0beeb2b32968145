package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

// unlockTimeout bounds the work of an unlock: releasing the advisory lock,
// or closing the connection when that fails.
const unlockTimeout = 5 * time.Second

// cancelDeadline is how long a lock connection waits for the server to
// honour a cancel request before it breaks the connection.
const cancelDeadline = 2 * time.Second

// lockPoolConfig derives the configuration of the lock pool from the query
// pool's. When a LockUser context ends while it waits, its connection sends
// the server a cancel request, which takes the waiter out of the lock queue
// at once (breaking the connection instead would leave the server waiting
// in the queue until it is granted the lock).
func lockPoolConfig(cfg *pgxpool.Config, maxConns int32) *pgxpool.Config {
	lc := cfg.Copy()
	lc.MinConns = 0
	lc.MaxConns = maxConns
	lc.MaxConnIdleTime = time.Minute
	lc.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelDeadline}
	}
	return lc
}

// LockUser blocks until the caller holds user's lock, which excludes every
// other holder in every process sharing the database and schema, or until
// ctx is done (the error then wraps ctx's error). Waiters are granted the
// lock in the order their requests reached PostgreSQL; a waiter first waits
// for a lock connection when all WithMaxLockConns are in use. A waiter
// whose ctx ends leaves the queue and never holds the lock. The database
// being unreachable gives an error wrapping ports.ErrUnavailable.
//
// The returned unlock must be called once (later calls do nothing); it
// blocks for at most a few seconds and is safe to call after ctx is done.
// Should the lock outlive its holder (the process dies, the connection
// breaks), PostgreSQL releases it with the session.
func (s *Store) LockUser(ctx context.Context, user string) (unlock func(), err error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	key := userLockKey(s.schema, user)
	c, err := s.locks.Acquire(ctx)
	if err != nil {
		return nil, classify(ctx, "lock user", err)
	}
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		// The session ends with the connection, and with it any lock the
		// server may have granted just before the cancellation.
		s.destroy(c)
		return nil, classify(ctx, "lock user", err)
	}
	var once sync.Once
	return func() { once.Do(func() { s.unlock(c, key) }) }, nil
}

// unlock releases the advisory lock key held on c and returns c to the
// pool, or, if that fails, closes c so that the lock ends with its session.
func (s *Store) unlock(c *pgxpool.Conn, key int64) {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	var released bool
	err := c.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", key).Scan(&released)
	if err == nil && released {
		c.Release()
		return
	}
	if err == nil {
		err = fmt.Errorf("lock was not held")
	}
	s.log.Warn("postgres: unlock user: closing the connection instead", "err", wrap("unlock user", err))
	s.destroy(c)
}

// destroy takes c out of the lock pool and closes it, ending its session.
func (s *Store) destroy(c *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	_ = c.Hijack().Close(ctx)
}

// LockWaiters returns how many sessions, in every process sharing the
// database and schema, are queued in PostgreSQL for user's lock (callers
// still waiting for a lock connection are not counted). It is for tests
// and diagnostics; it blocks for one query or until ctx is done, and fails
// with ports.ErrUnavailable when the database is unreachable.
func (s *Store) LockWaiters(ctx context.Context, user string) (int, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	key := uint64(userLockKey(s.schema, user))
	const q = `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`
	var n int
	if err := s.pool.QueryRow(ctx, q, int64(key>>32), int64(key&0xffffffff)).Scan(&n); err != nil {
		return 0, classify(ctx, "lock waiters", err)
	}
	return n, nil
}
