package ports

import (
	"context"
	"time"
)

// Leases keeps the leases of the running gateway processes (instances) in
// a store they share, so that work an instance took on (a delivery of a
// message to answer) can be told apart: owned by an instance that is
// alive, or left behind by one that stopped (it crashed, was killed, or
// shut down without finishing it), which another instance may then take
// over.
//
// Each process holds one lease under an id of its own, renews it well
// before it expires and releases it when it stops. A lease not renewed
// within its ttl has expired: its instance counts as stopped, whether it
// died or only lost the store for that long. Expiry is judged by the
// store's clock (the database server's, for a shared database), so that
// instances need not agree on the time; they should use the same ttl,
// since an instance waiting for another's lease to expire can only tell
// how long that takes from its own.
//
// Implementations are safe for concurrent use and, when backed by a
// shared database, across processes. Every method blocks for one round
// trip to the store at most, or until ctx is done, and may return an error
// wrapping ErrUnavailable.
type Leases interface {
	// Renew takes instance's lease, or extends it, so that it expires ttl
	// from now. A lease that expired or was released is taken again.
	// Errors: ErrInvalidInput for an empty instance or a ttl that is not
	// positive.
	Renew(ctx context.Context, instance string, ttl time.Duration) error

	// Release ends instance's lease at once: what it owns may be taken
	// over from now on. Releasing a lease that is unknown, expired or
	// released is not an error.
	Release(ctx context.Context, instance string) error

	// Alive reports whether instance holds a lease that has not expired.
	Alive(ctx context.Context, instance string) (bool, error)
}
