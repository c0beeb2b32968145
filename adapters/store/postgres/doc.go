// Package postgres implements ports.ThreadStore, ports.DeliveryLedger (with
// its ports.Leases) and ports.UserLocks on PostgreSQL (pgx v5 and pgxpool),
// so that several gateway instances sharing one database keep its guarantees:
// the database does the coordinating.
//
//   - One thread per user: threads.user_id is the primary key and SaveThread
//     inserts with ON CONFLICT DO NOTHING, then reads what is stored.
//   - One reply per delivery: FirstSeen inserts into deliveries with ON
//     CONFLICT DO NOTHING; only the insert that affected a row is first.
//     Keys older than 24 hours are pruned, at most once an hour per Store.
//   - Abandoned deliveries reported once: Delivered sets delivered_at;
//     Abandoned sets reported_at on the old rows that have neither and
//     whose owner holds no live lease, chosen with FOR UPDATE SKIP LOCKED,
//     and returns their keys, so concurrent callers on every instance claim
//     disjoint keys.
//   - Instance leases and takeovers: each instance's lease is a row of
//     instances whose expires_at the database's clock sets and judges.
//     TakeOver locks the delivery's row (FOR UPDATE), checks its owner's
//     lease and changes the owner in one transaction, so that concurrent
//     takers on every instance wait for one another and at most one takes
//     a delivery whose owner stopped.
//   - Per-user order: LockUser takes a session-level advisory lock
//     (pg_advisory_lock) keyed by a hash of the user, on a connection of a
//     separate lock pool that it holds until unlock. Every waiter queues in
//     PostgreSQL's lock manager, which grants the lock in request order across
//     all instances. Lock connections never come from the query pool, so
//     holders of locks can always run their queries.
//
// Open applies versioned migrations (migrations/NNNN_name.sql, recorded in
// schema_migrations) in one transaction under a transaction-level advisory
// lock, so instances starting together do not race. OpenLazy does the same
// on first use instead, so that a gateway can start while the database is
// down: until the migrations are applied every operation (Ping included)
// tries them first and fails with ports.ErrUnavailable while the server
// cannot be reached. WithSchema keeps all
// tables in a schema of their own (created if needed), which isolates test
// runs sharing a database.
//
// Failures to reach the server are reported as ports.ErrUnavailable; the
// pools reconnect by themselves once the server is back. Errors never
// contain the connection password.
package postgres
