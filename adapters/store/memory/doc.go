// Package memory implements ports.ThreadStore, ports.DeliveryLedger (with
// its ports.Leases), ports.UserLocks and ports.TokenStore in the memory of
// one process. State is lost when the
// process ends and is not shared with other processes: use it for a single
// gateway instance (tokens) or for tests; use the SQLite, PostgreSQL or
// Redis stores to keep threads across restarts or to share them between
// instances.
//
// The stores are implemented in adapters/internal/memstore, which the fakes
// of adapters/fake build on too; this package is the adapter app/wire picks.
package memory
