// Package sqlite implements ports.ThreadStore, ports.DeliveryLedger (with its
// ports.Leases) and ports.UserLocks on an embedded SQLite database
// (modernc.org/sqlite, pure Go, no cgo): the gateway's default store, which
// keeps each user's conversation thread across restarts.
//
// The database file, and its directory when the directory's parent exists,
// are created on first start. The
// schema is versioned: the numbered files in migrations/ are applied in
// order, each in its own transaction, and recorded in schema_migrations, so
// opening an up-to-date database changes nothing.
//
// A delivery recorded by FirstSeen is pending until Delivered, and owned by
// the instance that took it, whose lease (ports.Leases) is a row of the
// instances table. Abandoned marks the old pending ones whose owner holds
// no live lease reported and returns them in one immediate transaction, so
// each is returned once; TakeOver checks the owner's lease and changes the
// owner in one immediate transaction too. Leases expire by this process's
// clock.
//
// SQLite serves one process: LockUser is an in-process lock, so a database
// file must not be shared by several gateway instances (use the PostgreSQL or
// Redis stores to scale out).
package sqlite
