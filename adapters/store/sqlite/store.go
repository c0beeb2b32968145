package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/convgateway/gateway/ports"
)

// SeenTTL is how long FirstSeen remembers a key at least; older keys are
// pruned.
const SeenTTL = 24 * time.Hour

// pruneEvery is the least time between two prunings of old delivery keys.
const pruneEvery = time.Minute

// busyTimeout is how long a statement waits for another connection's write
// lock before failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

var (
	_ ports.ThreadStore    = (*Store)(nil)
	_ ports.DeliveryLedger = (*Store)(nil)
	_ ports.Leases         = (*Store)(nil)
	_ ports.UserLocks      = (*Store)(nil)
)

// Store is a ports.ThreadStore, a ports.DeliveryLedger (with its
// ports.Leases) and ports.UserLocks, in one SQLite file. It is safe for
// concurrent use within one process; see the package comment for why only
// one process may use a file.
type Store struct {
	db        *sql.DB
	log       *slog.Logger
	locks     *userLocks
	now       func() time.Time
	lastPrune atomic.Int64 // unix ms of the last pruning
}

// Open opens the SQLite database at path, in WAL mode, and applies pending
// schema migrations. It creates the file, and the directory that holds it
// when that directory's own parent exists (./data of the default), never a
// chain of missing directories: a path into a directory that does not exist
// fails with an error wrapping ports.ErrInvalidInput. It blocks for the
// migrations and fails with an error wrapping ports.ErrUnavailable when the
// file cannot be created or opened. Close the Store when done.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	return open(ctx, path, log, time.Now)
}

func open(ctx context.Context, path string, log *slog.Logger, now func() time.Time) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite: open: empty path: %w", ports.ErrInvalidInput)
	}
	if err := makeDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w: %w", ports.ErrUnavailable, err)
	}
	s := &Store{db: db, log: log, locks: newUserLocks(), now: now}
	ms, err := loadMigrations(migrationFiles)
	if err == nil {
		var applied int
		applied, err = migrate(ctx, db, ms, now().UnixMilli())
		if applied > 0 {
			log.Info("sqlite: schema migrated", "path", path, "applied", applied, "version", ms[len(ms)-1].version)
		}
	}
	if err == nil {
		err = s.prune(ctx)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w: %w", path, ports.ErrUnavailable, err)
	}
	return s, nil
}

// makeDir creates dir unless it exists; its parent must exist.
func makeDir(dir string) error {
	err := os.Mkdir(dir, 0o750)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the directory %s does not exist (only the database file's own directory is created): %w",
			filepath.Dir(dir), ports.ErrInvalidInput)
	}
	return fmt.Errorf("create directory: %w: %w", ports.ErrUnavailable, err)
}

// Close closes the database. Calls made after Close fail.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Thread returns the thread stored for user, or an error wrapping
// ports.ErrNotFound; other failures wrap ports.ErrUnavailable.
func (s *Store) Thread(ctx context.Context, user string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT thread_id FROM threads WHERE user = ?`, user).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("sqlite: thread: %w", ports.ErrNotFound)
	}
	if err != nil {
		return "", dbErr(ctx, "thread", err)
	}
	return id, nil
}

// SaveThread stores threadID for user unless the user has a thread, and
// returns the stored thread (the first writer wins). It blocks for at most
// the busy timeout while another connection writes; failures wrap
// ports.ErrUnavailable.
func (s *Store) SaveThread(ctx context.Context, user, threadID string) (string, error) {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO threads (user, thread_id, created_at) VALUES (?, ?, ?) ON CONFLICT (user) DO NOTHING`,
		user, threadID, s.now().UnixMilli())
	if err != nil {
		return "", dbErr(ctx, "save thread", err)
	}
	var id string
	if err := s.db.QueryRowContext(ctx, `SELECT thread_id FROM threads WHERE user = ?`, user).Scan(&id); err != nil {
		return "", dbErr(ctx, "save thread", err)
	}
	return id, nil
}

// ReplaceThread stores threadID for user if user's thread is old or user
// has none, in one statement, and returns the stored thread. It blocks for
// at most the busy timeout while another connection writes; failures wrap
// ports.ErrUnavailable.
func (s *Store) ReplaceThread(ctx context.Context, user, old, threadID string) (string, error) {
	_, err := s.db.ExecContext(ctx, `INSERT INTO threads (user, thread_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (user) DO UPDATE SET thread_id = excluded.thread_id, created_at = excluded.created_at
		WHERE threads.thread_id = ?`, user, threadID, s.now().UnixMilli(), old)
	if err != nil {
		return "", dbErr(ctx, "replace thread", err)
	}
	var id string
	if err := s.db.QueryRowContext(ctx, `SELECT thread_id FROM threads WHERE user = ?`, user).Scan(&id); err != nil {
		return "", dbErr(ctx, "replace thread", err)
	}
	return id, nil
}

// FirstSeen records key, taken by owner, and reports whether it was new;
// exactly one of concurrent callers with one key gets true. A new key is
// pending until Delivered. Keys older than SeenTTL are pruned now and
// then, with the leases that expired that long ago. Failures wrap
// ports.ErrUnavailable.
func (s *Store) FirstSeen(ctx context.Context, key, owner string) (bool, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO deliveries (key, seen_at, owner) VALUES (?, ?, ?)`, key, now.UnixMilli(), owner)
	if err != nil {
		return false, dbErr(ctx, "first seen", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbErr(ctx, "first seen", err)
	}
	if last := s.lastPrune.Load(); now.UnixMilli()-last >= pruneEvery.Milliseconds() && s.lastPrune.CompareAndSwap(last, now.UnixMilli()) {
		if err := s.prune(ctx); err != nil {
			s.log.Warn("sqlite: prune delivery keys", "err", err)
		}
	}
	return n == 1, nil
}

// TakeOver makes owner the owner of key's pending delivery if its owner
// holds no live lease. It reads the delivery, checks its owner's lease and
// changes the owner in one immediate transaction, so that concurrent
// callers take turns and at most one takes the delivery. It blocks for
// that transaction (at most the busy timeout while another connection
// writes); failures wrap ports.ErrUnavailable (or ctx.Err()).
func (s *Store) TakeOver(ctx context.Context, key, owner string) (ports.Claim, error) {
	claim, err := s.takeOver(ctx, key, owner, s.now().UnixMilli())
	if err != nil {
		return ports.ClaimSettled, dbErr(ctx, "take over", err)
	}
	return claim, nil
}

func (s *Store) takeOver(ctx context.Context, key, owner string, nowMs int64) (ports.Claim, error) {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock): one writer at a time
	if err != nil {
		return ports.ClaimSettled, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var cur sql.NullString
	var settled, alive bool
	err = tx.QueryRowContext(ctx, `SELECT owner, delivered_at IS NOT NULL OR reported_at IS NOT NULL,
		EXISTS (SELECT 1 FROM instances WHERE id = deliveries.owner AND expires_at > ?)
		FROM deliveries WHERE key = ?`, nowMs, key).Scan(&cur, &settled, &alive)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ports.ClaimSettled, nil
	case err != nil:
		return ports.ClaimSettled, err
	case settled:
		return ports.ClaimSettled, nil
	case cur.Valid && cur.String == owner:
		return ports.ClaimOwned, nil
	case alive:
		return ports.ClaimBusy, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET owner = ? WHERE key = ?`, owner, key); err != nil {
		return ports.ClaimSettled, err
	}
	return ports.ClaimTaken, tx.Commit()
}

// Delivered marks key answered, so that Abandoned never returns it. An
// unknown key changes nothing. It blocks for one write (at most the busy
// timeout while another connection writes); failures wrap
// ports.ErrUnavailable.
func (s *Store) Delivered(ctx context.Context, key string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE deliveries SET delivered_at = ? WHERE key = ? AND delivered_at IS NULL`,
		s.now().UnixMilli(), key)
	if err != nil {
		return dbErr(ctx, "delivered", err)
	}
	return nil
}

// Abandoned claims the keys first seen at least olderThan ago, within
// SeenTTL, that are neither delivered nor reported and whose owner holds
// no live lease: it marks them reported
// and returns them, in one immediate transaction, so that no other caller
// returns them again. It blocks for that transaction (at most the busy
// timeout while another connection writes). On failure, ctx's end
// included, the transaction is rolled back: nothing is claimed. Failures
// wrap ports.ErrUnavailable (or ctx.Err()).
func (s *Store) Abandoned(ctx context.Context, olderThan time.Duration) ([]string, error) {
	now := s.now()
	keys, err := s.claimAbandoned(ctx, now.UnixMilli(), now.Add(-max(olderThan, 0)).UnixMilli(), now.Add(-SeenTTL).UnixMilli())
	if err != nil {
		return nil, dbErr(ctx, "abandoned", err)
	}
	return keys, nil
}

func (s *Store) claimAbandoned(ctx context.Context, nowMs, seenBy, seenAfter int64) ([]string, error) {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock): one writer at a time
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET reported_at = ?1
		WHERE delivered_at IS NULL AND reported_at IS NULL AND seen_at <= ?2 AND seen_at > ?3
		  AND NOT EXISTS (SELECT 1 FROM instances WHERE id = deliveries.owner AND expires_at > ?1)
		RETURNING key`, nowMs, seenBy, seenAfter)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return keys, tx.Commit()
}

// prune deletes delivery keys older than SeenTTL, and the leases that
// expired that long ago (no delivery they owned is left).
func (s *Store) prune(ctx context.Context) error {
	now := s.now()
	s.lastPrune.Store(now.UnixMilli())
	cutoff := now.Add(-SeenTTL).UnixMilli()
	_, err := s.db.ExecContext(ctx, `DELETE FROM deliveries WHERE seen_at < ?`, cutoff)
	if err == nil {
		_, err = s.db.ExecContext(ctx, `DELETE FROM instances WHERE expires_at < ?`, cutoff)
	}
	return err
}

// Renew takes or extends instance's lease until ttl from now (see
// ports.Leases). It blocks for one write (at most the busy timeout while
// another connection writes); failures wrap ports.ErrUnavailable, and
// ports.ErrInvalidInput for an empty instance or a ttl that is not
// positive.
func (s *Store) Renew(ctx context.Context, instance string, ttl time.Duration) error {
	if instance == "" || ttl <= 0 {
		return fmt.Errorf("sqlite: renew lease: instance %q, ttl %v: %w", instance, ttl, ports.ErrInvalidInput)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO instances (id, expires_at) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`, instance, s.now().Add(ttl).UnixMilli())
	if err != nil {
		return dbErr(ctx, "renew lease", err)
	}
	return nil
}

// Release ends instance's lease (see ports.Leases). It blocks for one
// write; failures wrap ports.ErrUnavailable.
func (s *Store) Release(ctx context.Context, instance string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM instances WHERE id = ?`, instance); err != nil {
		return dbErr(ctx, "release lease", err)
	}
	return nil
}

// Alive reports whether instance holds a live lease (see ports.Leases). It
// blocks for one query; failures wrap ports.ErrUnavailable.
func (s *Store) Alive(ctx context.Context, instance string) (bool, error) {
	var alive bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM instances WHERE id = ? AND expires_at > ?)`,
		instance, s.now().UnixMilli()).Scan(&alive)
	if err != nil {
		return false, dbErr(ctx, "alive", err)
	}
	return alive, nil
}

// LockUser blocks until the caller holds user's lock or ctx is done; waiters
// are served first come, first served. The lock lives in this process only.
// A caller whose ctx ends while waiting leaves the queue and gets an error
// wrapping ctx.Err(). The returned unlock hands the lock to the next waiter;
// calling it again does nothing.
func (s *Store) LockUser(ctx context.Context, user string) (func(), error) {
	unlock, err := s.locks.lock(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock user: %w", err)
	}
	return unlock, nil
}

// LockWaiters returns the number of callers waiting for user's lock
// (porttest.LockObserver). It does not block.
func (s *Store) LockWaiters(_ context.Context, user string) (int, error) {
	return s.locks.waiting(user), nil
}

// Ping checks that the database answers a query; failures wrap
// ports.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return dbErr(ctx, "ping", err)
	}
	return nil
}

// dbErr names a failed operation; it wraps ctx.Err() when the context ended,
// else ports.ErrUnavailable.
func dbErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("sqlite: %s: %w", op, ctxErr)
	}
	return fmt.Errorf("sqlite: %s: %w: %w", op, ports.ErrUnavailable, err)
}
