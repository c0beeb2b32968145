package ports

import "context"

// UserLocks serializes the work on one user's messages: a user's lock has
// one holder at a time, and waiters are granted it in the order they asked
// for it. The WhatsApp/SMS use case holds it from looking up the user's
// thread to handing over the answer, so that one assistant exchange runs
// at a time per user and answers go out in order.
//
// Implementations are safe for concurrent use. Backed by a shared database
// a lock excludes every other holder in every process sharing it; SQLite
// and the in-memory locks serve one process.
type UserLocks interface {
	// LockUser blocks until the caller holds the user's lock, or ctx is
	// done: the error then wraps ctx's error, and the caller does not
	// hold the lock (a caller whose ctx ends while it waits leaves the
	// queue without disturbing the order of the others). A ctx that is
	// done already may still be granted a free lock. Waiters are granted
	// the lock in the order they asked for it; locks of different users
	// are independent. Errors: ErrUnavailable when the backing store
	// cannot be reached. The returned unlock must be called exactly once;
	// it never blocks for long and is safe to call after ctx is done.
	LockUser(ctx context.Context, user string) (unlock func(), err error)
}
