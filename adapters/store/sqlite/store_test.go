package sqlite

import (
	"context"
	"database/sql"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, discard())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// openAt opens a store in a new file whose clock reads *now.
func openAt(t *testing.T, now *time.Time) *Store {
	t.Helper()
	s, err := open(t.Context(), filepath.Join(t.TempDir(), "gateway.db"), discard(), func() time.Time { return *now })
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	// A file per subtest: the ledger's suite needs state of its own for
	// each; the others' get one too.
	porttest.ThreadStore(t, func(t *testing.T) ports.ThreadStore {
		return openStore(t, filepath.Join(t.TempDir(), "gateway.db"))
	})
}

func TestDeliveryLedgerConformance(t *testing.T) {
	porttest.DeliveryLedger(t, func(t *testing.T) ports.DeliveryLedger {
		return openStore(t, filepath.Join(t.TempDir(), "gateway.db"))
	})
}

func TestUserLocksConformance(t *testing.T) {
	porttest.UserLocks(t, func(t *testing.T) ports.UserLocks {
		return openStore(t, filepath.Join(t.TempDir(), "gateway.db"))
	})
}

func TestLeasesConformance(t *testing.T) {
	porttest.Leases(t, func(t *testing.T) ports.Leases {
		return openStore(t, filepath.Join(t.TempDir(), "gateway.db"))
	})
}

func TestOpenCreatesDirectoryAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "gateway.db")
	s := openStore(t, path)
	require.FileExists(t, path)
	require.NoError(t, s.Ping(t.Context()))

	var mode string
	require.NoError(t, s.db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode))
	assert.Equal(t, "wal", mode)
}

// Open creates the file's own directory (./data of the default) but not a
// chain of them: a mistyped path must not create directories anywhere.
func TestOpenCreatesOnlyTheFilesOwnDirectory(t *testing.T) {
	root := t.TempDir()
	_, err := Open(t.Context(), filepath.Join(root, "mistyped", "data", "gateway.db"), discard())
	require.ErrorIs(t, err, ports.ErrInvalidInput)
	assert.Contains(t, err.Error(), "does not exist")
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing is created")
}

func TestOpenRejectsEmptyPath(t *testing.T) {
	_, err := Open(t.Context(), "", discard())
	require.ErrorIs(t, err, ports.ErrInvalidInput)
}

func TestThreadsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := Open(t.Context(), path, discard())
	require.NoError(t, err)
	got, err := s.SaveThread(t.Context(), "whatsapp:+15551234567", "conv_1")
	require.NoError(t, err)
	require.Equal(t, "conv_1", got)
	first, err := s.FirstSeen(t.Context(), "MM1", "gw-1")
	require.NoError(t, err)
	require.True(t, first)
	require.NoError(t, s.Close())

	s = openStore(t, path)
	id, err := s.Thread(t.Context(), "whatsapp:+15551234567")
	require.NoError(t, err)
	assert.Equal(t, "conv_1", id)
	got, err = s.SaveThread(t.Context(), "whatsapp:+15551234567", "conv_2")
	require.NoError(t, err)
	assert.Equal(t, "conv_1", got, "the thread saved before the restart wins")
	first, err = s.FirstSeen(t.Context(), "MM1", "gw-1")
	require.NoError(t, err)
	assert.False(t, first, "a delivery seen before the restart is remembered")
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	for range 3 {
		s, err := Open(t.Context(), path, discard())
		require.NoError(t, err)
		require.NoError(t, s.Close())
	}
	s := openStore(t, path)
	ms, err := loadMigrations(migrationFiles)
	require.NoError(t, err)
	var n, version int
	require.NoError(t, s.db.QueryRowContext(t.Context(),
		`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &version))
	assert.Equal(t, len(ms), n, "each migration is recorded once")
	assert.Equal(t, ms[len(ms)-1].version, version)

	applied, err := migrate(t.Context(), s.db, ms, 0)
	require.NoError(t, err)
	assert.Zero(t, applied, "nothing left to apply")
}

func TestMigrateAppliesNewVersionsInOrder(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	v1 := fstest.MapFS{"migrations/0001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER)`)}}
	ms, err := loadMigrations(v1)
	require.NoError(t, err)
	applied, err := migrate(t.Context(), db, ms, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, applied)

	v3 := fstest.MapFS{
		"migrations/0001_a.sql": v1["migrations/0001_a.sql"],
		"migrations/0003_c.sql": {Data: []byte(`INSERT INTO a (x) SELECT max(x) * 10 FROM a`)},
		"migrations/0002_b.sql": {Data: []byte(`INSERT INTO a (x) VALUES (7)`)},
	}
	ms, err = loadMigrations(v3)
	require.NoError(t, err)
	applied, err = migrate(t.Context(), db, ms, 0)
	require.NoError(t, err)
	assert.Equal(t, 2, applied, "only the new versions run")
	var sum int
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT sum(x) FROM a`).Scan(&sum))
	assert.Equal(t, 77, sum, "0002 ran before 0003")
}

func TestFailedMigrationIsRolledBack(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	ms, err := loadMigrations(fstest.MapFS{
		"migrations/0001_bad.sql": {Data: []byte(`CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1)`)},
	})
	require.NoError(t, err)
	_, err = migrate(t.Context(), db, ms, 0)
	require.ErrorContains(t, err, "0001_bad.sql")
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(),
		`SELECT count(*) FROM sqlite_master WHERE name = 'b'`).Scan(&n))
	assert.Zero(t, n, "the half-applied migration left nothing behind")
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n))
	assert.Zero(t, n)
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no version": {"migrations/init.sql": {}},
		"duplicate":  {"migrations/0001_a.sql": {}, "migrations/001_b.sql": {}},
	} {
		_, err := loadMigrations(fsys)
		assert.Error(t, err, name)
	}
}

func TestFirstSeenForgetsAfterTTL(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := openAt(t, &now)

	first, err := s.FirstSeen(t.Context(), "old", "gw-1")
	require.NoError(t, err)
	require.True(t, first)

	now = now.Add(SeenTTL - time.Minute)
	first, err = s.FirstSeen(t.Context(), "old", "gw-1")
	require.NoError(t, err)
	assert.False(t, first, "remembered within the TTL")

	now = now.Add(2 * time.Minute) // past the TTL and past pruneEvery
	_, err = s.FirstSeen(t.Context(), "trigger", "gw-1")
	require.NoError(t, err)
	var n int
	require.NoError(t, s.db.QueryRowContext(t.Context(), `SELECT count(*) FROM deliveries WHERE key = 'old'`).Scan(&n))
	assert.Zero(t, n, "keys older than the TTL are pruned")
}

// Abandoned goes by the store's clock: a key is reported once olderThan has
// passed since it was first seen, once, and not after SeenTTL (it is
// forgotten).
func TestAbandonedAge(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := openAt(t, &now)
	ctx := t.Context()
	abandoned := func(olderThan time.Duration) []string {
		t.Helper()
		keys, err := s.Abandoned(ctx, olderThan)
		require.NoError(t, err)
		return keys
	}
	seen := func(key string) {
		t.Helper()
		first, err := s.FirstSeen(ctx, key, "gw-1")
		require.NoError(t, err)
		require.True(t, first)
	}

	seen("sid:a")
	now = now.Add(10*time.Minute - time.Millisecond)
	assert.Empty(t, abandoned(10*time.Minute), "not before olderThan")
	now = now.Add(time.Millisecond)
	assert.Equal(t, []string{"sid:a"}, abandoned(10*time.Minute), "once olderThan has passed")
	assert.Empty(t, abandoned(0), "once only")

	seen("sid:b")
	require.NoError(t, s.Delivered(ctx, "sid:b"))
	seen("sid:forgotten")
	now = now.Add(SeenTTL)
	assert.Empty(t, abandoned(0), "neither a delivered key nor one older than SeenTTL")
}

// Upgrading a database of the first schema version: the deliveries it
// recorded were never marked, and are not reported as lost; those recorded
// after the upgrade are tracked.
func TestUpgradeDoesNotReportOldDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	v1, err := fs.ReadFile(migrationFiles, "migrations/0001_init.sql")
	require.NoError(t, err)
	ms, err := loadMigrations(fstest.MapFS{"migrations/0001_init.sql": {Data: v1}})
	require.NoError(t, err)
	_, err = migrate(t.Context(), db, ms, time.Now().UnixMilli())
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `INSERT INTO deliveries (key, seen_at) VALUES ('sid:before-upgrade', ?)`,
		time.Now().Add(-time.Hour).UnixMilli())
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s := openStore(t, path) // applies 0002
	ctx := t.Context()
	got, err := s.Abandoned(ctx, 0)
	require.NoError(t, err)
	assert.Empty(t, got, "deliveries recorded before the upgrade are not reported")
	first, err := s.FirstSeen(ctx, "sid:before-upgrade", "gw-1")
	require.NoError(t, err)
	assert.False(t, first, "and still remembered")
	first, err = s.FirstSeen(ctx, "sid:after-upgrade", "gw-1")
	require.NoError(t, err)
	require.True(t, first)
	got, err = s.Abandoned(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"sid:after-upgrade"}, got)
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "gateway.db"), discard())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Ping(t.Context()), ports.ErrUnavailable)
	_, err = s.FirstSeen(t.Context(), "k", "gw-1")
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.ErrorIs(t, s.Delivered(t.Context(), "k"), ports.ErrUnavailable)
	_, err = s.Abandoned(t.Context(), 0)
	require.ErrorIs(t, err, ports.ErrUnavailable)
}

func TestCancelledContext(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "gateway.db"))
	first, err := s.FirstSeen(t.Context(), "sid:pending", "gw-1")
	require.NoError(t, err)
	require.True(t, first)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = s.SaveThread(ctx, "u", "t")
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Abandoned(ctx, 0)
	require.ErrorIs(t, err, context.Canceled)

	got, err := s.Abandoned(t.Context(), 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"sid:pending"}, got, "a cancelled Abandoned claimed nothing")
}

// A database of the second schema version has pending deliveries without
// an owner: after the upgrade they count as left behind by a stopped
// gateway, so a retry takes them over and the sweep reports them.
func TestUpgradeLeavesOwnerlessDeliveriesToTakeOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	fsys := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_delivery_reports.sql"} {
		body, err := fs.ReadFile(migrationFiles, "migrations/"+name)
		require.NoError(t, err)
		fsys["migrations/"+name] = &fstest.MapFile{Data: body}
	}
	ms, err := loadMigrations(fsys)
	require.NoError(t, err)
	_, err = migrate(t.Context(), db, ms, time.Now().UnixMilli())
	require.NoError(t, err)
	for _, key := range []string{"sid:retried", "sid:lost"} {
		_, err = db.ExecContext(t.Context(), `INSERT INTO deliveries (key, seen_at) VALUES (?, ?)`, key, time.Now().UnixMilli())
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	s := openStore(t, path) // applies 0003
	ctx := t.Context()
	require.NoError(t, s.Renew(ctx, "gw-new", time.Minute))
	claim, err := s.TakeOver(ctx, "sid:retried", "gw-new")
	require.NoError(t, err)
	assert.Equal(t, ports.ClaimTaken, claim)
	got, err := s.Abandoned(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"sid:lost"}, got, "the one taken over by a live gateway is not reported")
}

// Leases expire by the store's clock, and leases expired for longer than
// SeenTTL are pruned with the deliveries.
func TestLeaseExpiryAndPruning(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := openAt(t, &now)
	ctx := t.Context()
	require.NoError(t, s.Renew(ctx, "gw-a", 15*time.Second))
	require.NoError(t, s.Renew(ctx, "gw-b", time.Hour))
	first, err := s.FirstSeen(ctx, "sid:SM1", "gw-a")
	require.NoError(t, err)
	require.True(t, first)

	now = now.Add(15*time.Second - time.Millisecond)
	claim, err := s.TakeOver(ctx, "sid:SM1", "gw-b")
	require.NoError(t, err)
	assert.Equal(t, ports.ClaimBusy, claim, "alive until its ttl has passed")
	now = now.Add(time.Millisecond)
	alive, err := s.Alive(ctx, "gw-a")
	require.NoError(t, err)
	assert.False(t, alive)
	claim, err = s.TakeOver(ctx, "sid:SM1", "gw-b")
	require.NoError(t, err)
	assert.Equal(t, ports.ClaimTaken, claim)

	now = now.Add(SeenTTL + pruneEvery)
	_, err = s.FirstSeen(ctx, "sid:trigger", "gw-b") // prunes
	require.NoError(t, err)
	var ids []string
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM instances`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"gw-b"}, ids, "the lease expired over a day ago is pruned, the other one kept")
}
