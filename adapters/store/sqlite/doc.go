// Package sqlite implements ports.ThreadStore on an embedded SQLite database
// (modernc.org/sqlite, pure Go, no cgo): the gateway's default store, which
// keeps each user's conversation thread across restarts.
//
// The database file, and its directory when the directory's parent exists,
// are created on first start. The
// schema is versioned: the numbered files in migrations/ are applied in
// order, each in its own transaction, and recorded in schema_migrations, so
// opening an up-to-date database changes nothing.
//
// A delivery recorded by FirstSeen is pending until Delivered; Abandoned
// marks the old pending ones reported and returns them in one immediate
// transaction, so each is returned once.
//
// SQLite serves one process: LockUser is an in-process lock, so a database
// file must not be shared by several gateway instances (use the PostgreSQL or
// Redis stores to scale out).
package sqlite
