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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convgateway/gateway/ports"
)

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
