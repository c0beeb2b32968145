package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/store/postgres"
	"github.com/convgateway/gateway/adapters/store/storetest"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// serverURL returns the database the tests use, skipping (or failing in CI)
// the test when PostgreSQL is not running.
func serverURL(t *testing.T) string {
	t.Helper()
	return storetest.Require(t, "PostgreSQL", "TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// newSchema returns the name of a schema of the test's own, dropped when
// the test ends (after the stores registered later are closed).
func newSchema(t *testing.T, rawURL string) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "gw_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		exec(t, rawURL, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	return schema
}

// exec runs sql on a connection of its own.
func exec(t *testing.T, rawURL, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	require.NoError(t, err)
}

// open opens a store in schema and closes it when the test ends.
func open(t *testing.T, rawURL, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), rawURL, discard, postgres.WithSchema(schema))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL) // threads of random users: the subtests may share it
	porttest.ThreadStore(t, func(t *testing.T) ports.ThreadStore { return open(t, rawURL, schema) })
}

func TestDeliveryLedgerConformance(t *testing.T) {
	rawURL := serverURL(t)
	// A schema per subtest: the suite needs state of its own for each.
	porttest.DeliveryLedger(t, func(t *testing.T) ports.DeliveryLedger { return open(t, rawURL, newSchema(t, rawURL)) })
}

func TestUserLocksConformance(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL) // locks of random users: the subtests may share it
	porttest.UserLocks(t, func(t *testing.T) ports.UserLocks { return open(t, rawURL, schema) })
}

func TestLeasesConformance(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL) // leases of random ids: the subtests may share it
	porttest.Leases(t, func(t *testing.T) ports.Leases { return open(t, rawURL, schema) })
}

// Two Stores on one schema stand for two gateway instances.
func TestTwoInstances(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL)
	a, b := open(t, rawURL, schema), open(t, rawURL, schema)
	stores := []*postgres.Store{a, b}
	ctx := t.Context()
	const n = 20

	t.Run("OneThreadPerUser", func(t *testing.T) {
		got := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				id, err := stores[i%2].SaveThread(ctx, "user-1", "thread-"+string(rune('a'+i)))
				assert.NoError(t, err)
				got[i] = id
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			require.Equal(t, got[0], got[i])
		}
		for _, s := range stores {
			id, err := s.Thread(ctx, "user-1")
			require.NoError(t, err)
			require.Equal(t, got[0], id)
		}
	})

	t.Run("FirstSeenOnce", func(t *testing.T) {
		var first atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				ok, err := stores[i%2].FirstSeen(ctx, "SM-retried", "gw-1")
				assert.NoError(t, err)
				if ok {
					first.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, int32(1), first.Load(), "a delivery is first on exactly one instance")
	})

	t.Run("AbandonedOnce", func(t *testing.T) {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("sid:SM-two-%d", i)
			ok, err := stores[i%2].FirstSeen(ctx, keys[i], "gw-1")
			require.NoError(t, err)
			require.True(t, ok)
		}
		require.NoError(t, b.Delivered(ctx, keys[0]), "answered by the other instance")
		times := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 10 {
			wg.Go(func() {
				<-start
				got, err := stores[i%2].Abandoned(ctx, 0)
				assert.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()
				for _, k := range got {
					times[k]++
				}
			})
		}
		close(start)
		wg.Wait()
		assert.Zero(t, times[keys[0]], "a delivery marked on one instance is not reported by the other")
		for _, k := range keys[1:] {
			assert.Equal(t, 1, times[k], "%s is reported by exactly one call of one instance", k)
		}
	})

	t.Run("TakeOverOnce", func(t *testing.T) {
		require.NoError(t, a.Renew(ctx, "gw-crashed", time.Hour))
		ok, err := a.FirstSeen(ctx, "sid:SM-crashed", "gw-crashed")
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, a.Release(ctx, "gw-crashed")) // as if its lease had expired
		var taken, busy atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			id := fmt.Sprintf("gw-heir-%d", i)
			require.NoError(t, stores[i%2].Renew(ctx, id, time.Hour))
			wg.Go(func() {
				<-start
				claim, err := stores[i%2].TakeOver(ctx, "sid:SM-crashed", id)
				assert.NoError(t, err)
				switch claim {
				case ports.ClaimTaken:
					taken.Add(1)
				case ports.ClaimBusy:
					busy.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		assert.Equal(t, int32(1), taken.Load(), "one instance takes the delivery over")
		assert.Equal(t, int32(n-1), busy.Load(), "the others find it owned by the winner")
	})

	t.Run("LockMutualExclusion", func(t *testing.T) {
		var inside, most atomic.Int32
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				for range 5 {
					unlock, err := stores[i%2].LockUser(ctx, "user-2")
					if !assert.NoError(t, err) {
						return
					}
					if v := inside.Add(1); v > most.Load() {
						most.Store(v)
					}
					inside.Add(-1)
					unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), most.Load(), "one holder at a time across instances")
	})

	t.Run("LockFIFO", func(t *testing.T) {
		unlock, err := a.LockUser(ctx, "user-3")
		require.NoError(t, err)
		const waiters = 6
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i := range waiters {
			wg.Go(func() {
				unlock, err := stores[(i+1)%2].LockUser(ctx, "user-3") // B, A, B, ...
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				unlock()
			})
			require.Eventually(t, func() bool {
				got, err := a.LockWaiters(ctx, "user-3")
				return err == nil && got == i+1
			}, 10*time.Second, 5*time.Millisecond, "waiter %d queued", i)
		}
		unlock()
		wg.Wait()
		require.Equal(t, []int{0, 1, 2, 3, 4, 5}, order, "granted in request order across instances")
	})

	t.Run("CancelledWaiterOnOtherInstance", func(t *testing.T) {
		unlock, err := a.LockUser(ctx, "user-4")
		require.NoError(t, err)
		wctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := b.LockUser(wctx, "user-4")
			errc <- err
		}()
		require.Eventually(t, func() bool {
			got, err := b.LockWaiters(ctx, "user-4")
			return err == nil && got == 1
		}, 10*time.Second, 5*time.Millisecond)
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
		n, err := a.LockWaiters(ctx, "user-4")
		require.NoError(t, err)
		require.Zero(t, n, "the cancelled waiter left PostgreSQL's queue")
		unlock()
		unlock, err = b.LockUser(ctx, "user-4")
		require.NoError(t, err)
		unlock()
	})
}

func TestSchemasAreIndependent(t *testing.T) {
	rawURL := serverURL(t)
	a := open(t, rawURL, newSchema(t, rawURL))
	b := open(t, rawURL, newSchema(t, rawURL))
	ctx := t.Context()
	_, err := a.SaveThread(ctx, "user", "thread-a")
	require.NoError(t, err)
	_, err = b.Thread(ctx, "user")
	require.ErrorIs(t, err, ports.ErrNotFound)

	unlock, err := a.LockUser(ctx, "user")
	require.NoError(t, err)
	defer unlock()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	unlockB, err := b.LockUser(lctx, "user")
	require.NoError(t, err, "a lock in one schema does not block the same user in another")
	unlockB()
}

func TestConcurrentMigrations(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL)
	const n = 4
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), rawURL, discard, postgres.WithSchema(schema)) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.NoError(t, stores[i].Close())
	}
	conn, err := pgx.Connect(t.Context(), rawURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var count int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+" WHERE version = 1").Scan(&count))
	require.Equal(t, 1, count, "the first migration is recorded once")
}

func TestPrunesOldDeliveries(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL)
	s := open(t, rawURL, schema)
	ok, err := s.FirstSeen(t.Context(), "fresh", "gw-1") // prunes nothing, records a key
	require.NoError(t, err)
	require.True(t, ok)

	exec(t, rawURL, "INSERT INTO "+pgx.Identifier{schema, "deliveries"}.Sanitize()+" (key, seen_at) VALUES ('old', now() - interval '25 hours'), ('recent', now() - interval '23 hours')")
	s2 := open(t, rawURL, schema) // a new Store prunes on its first FirstSeen
	ok, err = s2.FirstSeen(t.Context(), "old", "gw-1")
	require.NoError(t, err)
	require.True(t, ok, "a key older than 24 hours was forgotten")
	ok, err = s2.FirstSeen(t.Context(), "recent", "gw-1")
	require.NoError(t, err)
	require.False(t, ok, "a key younger than 24 hours is remembered")
}

// Abandoned goes by the database's clock: a delivery is reported once
// olderThan has passed since it was first seen, and not once Retention has
// (it is forgotten).
func TestAbandonedAge(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL)
	s := open(t, rawURL, schema)
	exec(t, rawURL, "INSERT INTO "+pgx.Identifier{schema, "deliveries"}.Sanitize()+" (key, seen_at) VALUES "+
		"('sid:recent', now() - interval '5 minutes'), ('sid:old', now() - interval '20 minutes'), "+
		"('sid:yesterday', now() - interval '23 hours'), ('sid:expired', now() - interval '25 hours')")
	got, err := s.Abandoned(t.Context(), 10*time.Minute)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"sid:old", "sid:yesterday"}, got)
	got, err = s.Abandoned(t.Context(), time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []string{"sid:recent"}, got, "the rest was reported before or has expired")
}

// Upgrading a database of the first schema version: the deliveries it
// recorded were never marked, and are not reported as lost; those recorded
// after the upgrade are tracked.
func TestUpgradeDoesNotReportOldDeliveries(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL)
	v1, err := os.ReadFile(filepath.Join("migrations", "0001_init.sql"))
	require.NoError(t, err)
	exec(t, rawURL, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()+"; SET search_path = "+pgx.Identifier{schema}.Sanitize()+";\n"+
		string(v1)+`;
		CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init.sql');
		INSERT INTO deliveries (key, seen_at) VALUES ('sid:before-upgrade', now() - interval '1 hour');`)

	s := open(t, rawURL, schema) // applies 0002
	got, err := s.Abandoned(t.Context(), 0)
	require.NoError(t, err)
	assert.Empty(t, got, "deliveries recorded before the upgrade are not reported")
	ok, err := s.FirstSeen(t.Context(), "sid:before-upgrade", "gw-1")
	require.NoError(t, err)
	assert.False(t, ok, "and still remembered")
	ok, err = s.FirstSeen(t.Context(), "sid:after-upgrade", "gw-1")
	require.NoError(t, err)
	require.True(t, ok)
	got, err = s.Abandoned(t.Context(), 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"sid:after-upgrade"}, got)
}

func TestUnreachableAtStart(t *testing.T) {
	addr := storetest.ClosedAddr(t)
	_, err := postgres.Open(t.Context(), "postgres://postgres:s3cret-pw@"+addr+"/test?sslmode=disable", discard)
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.Contains(t, err.Error(), "postgres")
	require.Contains(t, err.Error(), addr[len("127.0.0.1:"):])
	require.NotContains(t, err.Error(), "s3cret-pw")
}

func TestBadSettings(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://postgres:s3cret-pw@127.0.0.1:5432/test?sslmode=bogus", discard)
	require.ErrorIs(t, err, ports.ErrInvalidInput)
	require.NotContains(t, err.Error(), "s3cret-pw")

	_, err = postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:5432/test", discard, postgres.WithSchema(`x"; DROP TABLE t; --`))
	require.ErrorIs(t, err, ports.ErrInvalidInput)

	_, err = postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:5432/test", discard, postgres.WithMaxLockConns(0))
	require.ErrorIs(t, err, ports.ErrInvalidInput)
}

// A store whose server goes away fails with ErrUnavailable, does not keep
// a lock whose connection broke, and works again when the server is back,
// without being reopened.
func TestRecovers(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL)
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	proxy := storetest.NewProxy(t, u.Host)
	s := open(t, storetest.WithHost(t, rawURL, proxy.Addr()), schema)
	direct := open(t, rawURL, schema)
	ctx := t.Context()

	_, err = s.SaveThread(ctx, "user", "thread-1")
	require.NoError(t, err)
	unlock, err := s.LockUser(ctx, "user")
	require.NoError(t, err)

	proxy.Stop()
	require.ErrorIs(t, s.Ping(ctx), ports.ErrUnavailable)
	_, err = s.Thread(ctx, "user")
	require.ErrorIs(t, err, ports.ErrUnavailable)
	_, err = s.FirstSeen(ctx, "SM1", "gw-1")
	require.ErrorIs(t, err, ports.ErrUnavailable)
	_, err = s.LockUser(ctx, "other")
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.ErrorIs(t, s.Delivered(ctx, "SM1"), ports.ErrUnavailable)
	_, err = s.Abandoned(ctx, 0)
	require.ErrorIs(t, err, ports.ErrUnavailable)
	unlock() // its connection is gone: returns promptly all the same

	// The lock died with its session: another instance can take it.
	require.Eventually(t, func() bool {
		lctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		unlock, err := direct.LockUser(lctx, "user")
		if err != nil {
			return false
		}
		unlock()
		return true
	}, 10*time.Second, 10*time.Millisecond)

	proxy.Start()
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 10*time.Second, 20*time.Millisecond)
	id, err := s.Thread(ctx, "user")
	require.NoError(t, err)
	require.Equal(t, "thread-1", id)
	unlock, err = s.LockUser(ctx, "user")
	require.NoError(t, err)
	unlock()
}

// A Store opened lazily while the server is down: opening succeeds, every
// operation fails with ErrUnavailable naming the server and never the
// password, and once the server answers the first operation migrates the
// schema and the store works, without being reopened.
func TestOpenLazyWhileDown(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL)
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	proxy := storetest.NewProxy(t, u.Host)
	proxy.Stop()
	withPassword, err := url.Parse(storetest.WithHost(t, rawURL, proxy.Addr()))
	require.NoError(t, err)
	withPassword.User = url.UserPassword(u.User.Username(), "s3cret-pw") // trust auth ignores it
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	s, err := postgres.OpenLazy(withPassword.String(), log, postgres.WithSchema(schema))
	require.NoError(t, err, "nothing is dialled before first use")
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	ctx := t.Context()

	errs := []error{s.Ping(ctx)}
	_, err = s.Thread(ctx, "user")
	errs = append(errs, err)
	_, err = s.SaveThread(ctx, "user", "thread-1")
	errs = append(errs, err)
	_, err = s.FirstSeen(ctx, "SM1", "gw-1")
	errs = append(errs, err)
	_, err = s.LockUser(ctx, "user")
	errs = append(errs, err)
	errs = append(errs, s.Delivered(ctx, "SM1"))
	_, err = s.Abandoned(ctx, 0)
	errs = append(errs, err)
	for i, err := range errs {
		require.ErrorIs(t, err, ports.ErrUnavailable, "operation %d", i)
		require.Contains(t, err.Error(), proxy.Addr(), "the error names the server")
		require.NotContains(t, err.Error(), "s3cret-pw")
	}
	var tables int
	conn, err := pgx.Connect(ctx, rawURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&tables))
	require.Zero(t, tables, "nothing was migrated while the server was away")

	proxy.Start()
	require.NoError(t, s.Ping(ctx), "the first operation after the server is back migrates")
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&tables))
	require.Equal(t, 4, tables, "threads, deliveries, instances, schema_migrations")
	id, err := s.SaveThread(ctx, "user", "thread-1")
	require.NoError(t, err)
	require.Equal(t, "thread-1", id)
	first, err := s.FirstSeen(ctx, "SM1", "gw-1")
	require.NoError(t, err)
	require.True(t, first)
	unlock, err := s.LockUser(ctx, "user")
	require.NoError(t, err)
	unlock()
	require.Contains(t, logs.String(), "store ready", "the recovery is logged")
	require.NotContains(t, logs.String(), "s3cret-pw")
}

// Lazily opened stores of several instances racing on their first
// operations against a fresh schema: all succeed and the schema is
// migrated once.
func TestOpenLazyConcurrentFirstUse(t *testing.T) {
	rawURL := serverURL(t)
	schema := newSchema(t, rawURL)
	const instances, callers = 3, 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range instances {
		s, err := postgres.OpenLazy(rawURL, discard, postgres.WithSchema(schema))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, s.Close()) })
		for i := range callers {
			wg.Go(func() {
				<-start
				_, err := s.SaveThread(t.Context(), fmt.Sprintf("user-%d", i), "thread")
				assert.NoError(t, err)
			})
		}
	}
	close(start)
	wg.Wait()
	conn, err := pgx.Connect(t.Context(), rawURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var rows, versions, users int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT version) FROM "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&rows, &versions))
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, "threads"}.Sanitize()).Scan(&users))
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	require.NoError(t, err)
	require.Equal(t, len(files), versions, "every migration applied")
	require.Equal(t, versions, rows, "each migration recorded once")
	require.Equal(t, callers, users)
}

func TestOpenLazyBadSettings(t *testing.T) {
	_, err := postgres.OpenLazy("postgres://postgres:s3cret-pw@127.0.0.1:5432/test?sslmode=bogus", discard)
	require.ErrorIs(t, err, ports.ErrInvalidInput)
	require.NotContains(t, err.Error(), "s3cret-pw")
	_, err = postgres.OpenLazy("postgres://postgres:s3cret-pw@127.0.0.1:5432/test", discard, postgres.WithSchema("Bad-Name"))
	require.ErrorIs(t, err, ports.ErrInvalidInput)
}
