package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convgateway/gateway/ports"
)

// Retention is how long FirstSeen remembers a key.
const Retention = 24 * time.Hour

// pruneEvery is how often, at most, a Store deletes expired deliveries.
const pruneEvery = time.Hour

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
