package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convgateway/gateway/ports"
)

// Retention is how long FirstSeen remembers a key.
const Retention = 24 * time.Hour

// pruneEvery is how often, at most, a Store deletes expired deliveries.
const pruneEvery = time.Hour

// DefaultMaxLockConns is the default size of the pool of connections that
// hold or wait for user locks (see WithMaxLockConns).
const DefaultMaxLockConns = 16

// Store is a ports.ThreadStore, a ports.DeliveryLedger (with its
// ports.Leases) and ports.UserLocks, on PostgreSQL. It is safe for
// concurrent use by any number of goroutines and, sharing one database (and
// schema), by any number of processes.
type Store struct {
	pool   *pgxpool.Pool // queries
	locks  *pgxpool.Pool // one connection per LockUser caller, held until unlock
	log    *slog.Logger
	schema string
	server string // host:port/database, for errors and logs (no password)

	// migrated is set once the migrations are applied; until then every
	// operation first tries to apply them, one caller at a time (migrating
	// is the semaphore, so that waiting for it honours the context).
	migrated  atomic.Bool
	migrating chan struct{}
	failed    atomic.Bool // the last attempt to migrate failed (for logging the recovery)

	lastPrune atomic.Int64 // unix nanoseconds of the last prune attempt
}

var (
	_ ports.ThreadStore    = (*Store)(nil)
	_ ports.DeliveryLedger = (*Store)(nil)
	_ ports.Leases         = (*Store)(nil)
	_ ports.UserLocks      = (*Store)(nil)
)

type options struct {
	schema       string
	maxLockConns int32
}

// Option configures Open.
type Option func(*options)

// WithSchema keeps the store's tables in schema (created with them if it
// does not exist) instead of the connection's default search_path. The name must
// be a lower-case SQL identifier ([a-z_][a-z0-9_]*). Stores with different
// schemas in one database are independent, locks included.
func WithSchema(schema string) Option {
	return func(o *options) { o.schema = schema }
}

// WithMaxLockConns bounds the connections LockUser uses: each caller of
// LockUser, waiting or holding, uses one until it unlocks. When all are in
// use, further callers wait for one in arrival order before they queue for
// the lock in PostgreSQL. The default is DefaultMaxLockConns.
func WithMaxLockConns(n int32) Option {
	return func(o *options) { o.maxLockConns = n }
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Open connects to the PostgreSQL database at rawURL (postgres://... or a
// key=value connection string; see pgxpool.ParseConfig) and applies
// pending migrations, which also proves that the server answers. A
// malformed URL or option gives an error wrapping ports.ErrInvalidInput;
// an unreachable server one wrapping ports.ErrUnavailable that names the
// server. Neither contains the password. Open blocks until the migrations
// are applied or ctx is done (then it fails). log receives migration and
// maintenance messages. Close the Store when done.
func Open(ctx context.Context, rawURL string, log *slog.Logger, opts ...Option) (*Store, error) {
	s, err := OpenLazy(rawURL, log, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.ready(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// OpenLazy is Open without touching the server: it checks the URL and the
// options (errors wrap ports.ErrInvalidInput and contain no password) and
// makes the connection pools, but connects and migrates on first use. Until
// the migrations are applied, every operation, Ping included, first tries
// to apply them, and fails with an error wrapping ports.ErrUnavailable
// while the server cannot be reached; so a gateway can start while its
// database is down, report it through Ping, and work as soon as the
// database answers, without a goroutine of its own. Close the Store when
// done.
func OpenLazy(rawURL string, log *slog.Logger, opts ...Option) (*Store, error) {
	o := options{maxLockConns: DefaultMaxLockConns}
	for _, opt := range opts {
		opt(&o)
	}
	if o.schema != "" && !identifier.MatchString(o.schema) {
		return nil, fmt.Errorf("postgres: open: schema %q is not a lower-case identifier: %w", o.schema, ports.ErrInvalidInput)
	}
	if o.maxLockConns < 1 {
		return nil, fmt.Errorf("postgres: open: max lock connections %d: %w", o.maxLockConns, ports.ErrInvalidInput)
	}
	cfg, err := pgxpool.ParseConfig(rawURL) // its errors redact the password
	if err != nil {
		return nil, fmt.Errorf("postgres: parse database url: %w: %w", ports.ErrInvalidInput, err)
	}
	if o.schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = o.schema
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		log:       log,
		schema:    o.schema,
		server:    fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database),
		migrating: make(chan struct{}, 1),
	}
	// Neither pool connects before its first use (MinConns is 0).
	s.pool, err = pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w: %w", ports.ErrInvalidInput, err)
	}
	s.locks, err = pgxpool.NewWithConfig(context.Background(), lockPoolConfig(cfg, o.maxLockConns))
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres: open lock pool: %w: %w", ports.ErrInvalidInput, err)
	}
	return s, nil
}

// ready applies the migrations unless that is done. Callers wait for one
// another (or until ctx is done); a failure is returned to the caller that
// tried and the next caller tries again.
func (s *Store) ready(ctx context.Context) error {
	if s.migrated.Load() {
		return nil
	}
	select {
	case s.migrating <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("postgres: connect to %s: %w", s.server, context.Cause(ctx))
	}
	defer func() { <-s.migrating }()
	if s.migrated.Load() {
		return nil
	}
	if err := s.migrate(ctx); err != nil {
		s.failed.Store(true)
		return classify(ctx, "connect to "+s.server, err)
	}
	s.migrated.Store(true)
	if s.failed.Load() {
		s.log.Info("postgres: the database answers: store ready", "server", s.server)
	}
	return nil
}

// migrate applies pending migrations in one transaction.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	var applied []int
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		applied, err = migrate(ctx, tx, s.schema, ms)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(applied) > 0 {
		s.log.Info("postgres: schema migrated", "schema", s.schema, "applied", applied)
	}
	return nil
}

// Thread returns the thread stored for user, or an error wrapping
// ports.ErrNotFound. It blocks for one query or until ctx is done.
func (s *Store) Thread(ctx context.Context, user string) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	var id string
	err := s.pool.QueryRow(ctx, "SELECT thread_id FROM threads WHERE user_id = $1", user).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("postgres: thread: %w", ports.ErrNotFound)
	}
	if err != nil {
		return "", classify(ctx, "thread", err)
	}
	return id, nil
}

// SaveThread stores threadID for user unless user has a thread, and
// returns the stored thread. The primary key decides among concurrent
// callers in every process: all get the first writer's thread. It blocks
// for two queries or until ctx is done.
func (s *Store) SaveThread(ctx context.Context, user, threadID string) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	_, err := s.pool.Exec(ctx, "INSERT INTO threads (user_id, thread_id) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING", user, threadID)
	if err != nil {
		return "", classify(ctx, "save thread", err)
	}
	// A statement of its own, so that its snapshot sees a row committed by
	// a concurrent writer that the insert waited for.
	var id string
	if err := s.pool.QueryRow(ctx, "SELECT thread_id FROM threads WHERE user_id = $1", user).Scan(&id); err != nil {
		return "", classify(ctx, "save thread: read back", err)
	}
	return id, nil
}

// ReplaceThread stores threadID for user if user's thread is old or user
// has none, and returns the stored thread. The upsert's condition is
// checked on the row it locks, so that among concurrent callers replacing
// one old thread, in every process, one replaces it and all get its
// thread. It blocks for two queries or until ctx is done.
func (s *Store) ReplaceThread(ctx context.Context, user, old, threadID string) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO threads (user_id, thread_id) VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET thread_id = EXCLUDED.thread_id, created_at = now()
WHERE threads.thread_id = $3`, user, threadID, old)
	if err != nil {
		return "", classify(ctx, "replace thread", err)
	}
	var id string
	if err := s.pool.QueryRow(ctx, "SELECT thread_id FROM threads WHERE user_id = $1", user).Scan(&id); err != nil {
		return "", classify(ctx, "replace thread: read back", err)
	}
	return id, nil
}

// FirstSeen records key, taken by owner, and reports whether no caller in
// any process recorded it within Retention before. Among concurrent
// callers exactly one gets true. A new key is pending until Delivered. At
// most once per pruneEvery it first deletes keys older than Retention, and
// leases expired that long ago (a failure there is logged, not returned).
// It blocks for one to three queries or until ctx is done.
func (s *Store) FirstSeen(ctx context.Context, key, owner string) (bool, error) {
	if err := s.ready(ctx); err != nil {
		return false, err
	}
	s.maybePrune(ctx)
	tag, err := s.pool.Exec(ctx, "INSERT INTO deliveries (key, owner) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", key, owner)
	if err != nil {
		return false, classify(ctx, "first seen", err)
	}
	return tag.RowsAffected() == 1, nil
}

// TakeOver makes owner the owner of key's pending delivery if its owner
// holds no live lease. In one transaction it locks the delivery's row
// (SELECT ... FOR UPDATE: concurrent callers in every process wait for one
// another, and each reads the owner the previous one left), checks the
// owner's lease in a statement of its own (which sees leases committed
// while it waited) and changes the owner. It blocks for that transaction
// or until ctx is done.
func (s *Store) TakeOver(ctx context.Context, key, owner string) (ports.Claim, error) {
	if err := s.ready(ctx); err != nil {
		return ports.ClaimSettled, err
	}
	claim := ports.ClaimSettled
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var cur *string
		var settled bool
		err := tx.QueryRow(ctx, `SELECT owner, delivered_at IS NOT NULL OR reported_at IS NOT NULL
FROM deliveries WHERE key = $1 FOR UPDATE`, key).Scan(&cur, &settled)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil
		case err != nil:
			return err
		case settled:
			return nil
		case cur != nil && *cur == owner:
			claim = ports.ClaimOwned
			return nil
		}
		if cur != nil {
			var alive bool
			if err := tx.QueryRow(ctx, aliveQuery, *cur).Scan(&alive); err != nil {
				return err
			}
			if alive {
				claim = ports.ClaimBusy
				return nil
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE deliveries SET owner = $2 WHERE key = $1", key, owner); err != nil {
			return err
		}
		claim = ports.ClaimTaken
		return nil
	})
	if err != nil {
		return ports.ClaimSettled, classify(ctx, "take over", err)
	}
	return claim, nil
}

// aliveQuery tells whether the instance $1 holds a live lease. The time is
// the transaction's (now()): in a transaction that waited, a lease may
// look alive a little longer than it is, never shorter.
const aliveQuery = "SELECT EXISTS (SELECT 1 FROM instances WHERE id = $1 AND expires_at > now())"

// Renew takes or extends instance's lease until ttl from now by the
// database's clock (see ports.Leases). It blocks for one query or until
// ctx is done; an empty instance or a ttl that is not positive is
// ports.ErrInvalidInput.
func (s *Store) Renew(ctx context.Context, instance string, ttl time.Duration) error {
	if instance == "" || ttl <= 0 {
		return fmt.Errorf("postgres: renew lease: instance %q, ttl %v: %w", instance, ttl, ports.ErrInvalidInput)
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO instances (id, expires_at) VALUES ($1, now() + make_interval(secs => $2))
ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at`, instance, ttl.Seconds())
	if err != nil {
		return classify(ctx, "renew lease", err)
	}
	return nil
}

// Release ends instance's lease (see ports.Leases). It blocks for one
// query or until ctx is done.
func (s *Store) Release(ctx context.Context, instance string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM instances WHERE id = $1", instance); err != nil {
		return classify(ctx, "release lease", err)
	}
	return nil
}

// Alive reports whether instance holds a live lease, by the database's
// clock (see ports.Leases). It blocks for one query or until ctx is done.
func (s *Store) Alive(ctx context.Context, instance string) (bool, error) {
	if err := s.ready(ctx); err != nil {
		return false, err
	}
	var alive bool
	if err := s.pool.QueryRow(ctx, aliveQuery, instance).Scan(&alive); err != nil {
		return false, classify(ctx, "alive", err)
	}
	return alive, nil
}

// Delivered marks key answered, so that Abandoned never returns it, in any
// process. An unknown key changes nothing. It blocks for one query or until
// ctx is done.
func (s *Store) Delivered(ctx context.Context, key string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, "UPDATE deliveries SET delivered_at = now() WHERE key = $1 AND delivered_at IS NULL", key)
	if err != nil {
		return classify(ctx, "delivered", err)
	}
	return nil
}

// abandonedQuery claims the pending deliveries first seen at least $1
// seconds ago and less than $2 seconds ago (the retention) whose owner
// holds no live lease. FOR UPDATE SKIP
// LOCKED makes concurrent claims, in every process, take disjoint rows
// without waiting for one another (so without deadlocks); a row whose
// claim another transaction committed meanwhile is re-checked, and so
// skipped, when it is locked.
const abandonedQuery = `UPDATE deliveries SET reported_at = now()
WHERE key IN (
    SELECT key FROM deliveries
    WHERE delivered_at IS NULL AND reported_at IS NULL
      AND seen_at <= now() - make_interval(secs => $1)
      AND seen_at > now() - make_interval(secs => $2)
      AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = deliveries.owner AND i.expires_at > now())
    FOR UPDATE SKIP LOCKED)
RETURNING key`

// Abandoned claims and returns the keys first seen at least olderThan ago
// (by the database's clock), within Retention, that are neither delivered
// nor returned before and whose owner holds no live lease; each is
// returned by one call in one process only.
// The claim is one statement in a transaction that commits after every key
// is read: a call that fails before the commit (ctx's end included) claims
// nothing. It blocks for that transaction or until ctx is done.
func (s *Store) Abandoned(ctx context.Context, olderThan time.Duration) ([]string, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var keys []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, abandonedQuery, max(olderThan, 0).Seconds(), Retention.Seconds())
		var err error
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, classify(ctx, "abandoned", err)
	}
	return keys, nil
}

// maybePrune deletes deliveries older than Retention, and leases expired
// that long ago, unless this Store did so less than pruneEvery ago.
func (s *Store) maybePrune(ctx context.Context) {
	now := time.Now().UnixNano()
	last := s.lastPrune.Load()
	if now-last < int64(pruneEvery) || !s.lastPrune.CompareAndSwap(last, now) {
		return
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM deliveries WHERE seen_at < now() - make_interval(secs => $1)", Retention.Seconds())
	if err != nil {
		s.log.Warn("postgres: prune deliveries", "err", classify(ctx, "prune", err))
		return
	}
	if n := tag.RowsAffected(); n > 0 {
		s.log.Debug("postgres: pruned deliveries", "deleted", n)
	}
	// No delivery is left that a lease expired that long ago owned.
	if _, err := s.pool.Exec(ctx, "DELETE FROM instances WHERE expires_at < now() - make_interval(secs => $1)", Retention.Seconds()); err != nil {
		s.log.Warn("postgres: prune leases", "err", classify(ctx, "prune", err))
	}
}

// Ping reports whether the database answers and the store is usable: nil,
// or an error wrapping ports.ErrUnavailable. Like every operation of a
// Store from OpenLazy it first applies the migrations if that is not done
// yet, so a readiness probe is what brings a store that started without
// its database into service. It blocks for one round trip (or the
// migrations) or until ctx is done.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if err := s.pool.Ping(ctx); err != nil {
		return classify(ctx, "ping", err)
	}
	return nil
}

// Close closes both pools. It blocks until every connection is back, so
// every unlock returned by LockUser must have been called (or be called
// concurrently); calls after Close fail.
func (s *Store) Close() error {
	s.locks.Close()
	s.pool.Close()
	return nil
}

// classify wraps err from operation op: after the end of ctx as ctx's
// error, else as wrap does.
func classify(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil { // whatever err says (a cancelled statement, a broken read), ctx is why
		return fmt.Errorf("postgres: %s: %w", op, context.Cause(ctx))
	}
	return wrap(op, err)
}

// wrap wraps err from operation op: a statement the server refused as it
// is, any other failure (to reach the server, or one the server reports as
// transient) as ports.ErrUnavailable.
func wrap(op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !transient(pgErr.Code) {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return fmt.Errorf("postgres: %s: %w: %w", op, ports.ErrUnavailable, err)
}

// transient reports whether a SQLSTATE says the server could not serve the
// request now (connection exception, insufficient resources, operator
// intervention, system error) rather than that the request was wrong.
func transient(code string) bool {
	switch code[:2] {
	case "08", "53", "57", "58":
		return true
	}
	return false
}

// hashKey maps s to an advisory lock key.
func hashKey(s string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return int64(h.Sum64())
}

// userLockKey is the advisory lock key of user's lock in schema.
func userLockKey(schema, user string) int64 {
	return hashKey("gateway:user:" + strconv.Quote(schema) + ":" + user)
}
