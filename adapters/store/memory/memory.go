package memory

import (
	"time"

	"github.com/convgateway/gateway/adapters/internal/memstore"
)

// ThreadStore is an in-memory ports.ThreadStore, with the instance leases
// (ports.Leases) its deliveries' owners hold. Create one with
// NewThreadStore. It is safe for concurrent use; no method blocks except
// LockUser, which waits for the user's lock, first come first served, or
// for its context.
type ThreadStore = memstore.ThreadStore

// TokenStore is an in-memory ports.TokenStore for a single gateway process.
// It keeps only ports.TokenKey(token), never a token. Create one with
// NewTokenStore. It is safe for concurrent use and never blocks.
type TokenStore = memstore.TokenStore

// SeenTTL is how long ThreadStore.FirstSeen remembers a key.
const SeenTTL = memstore.SeenTTL

// NewThreadStore returns an empty store whose first-seen keys expire after
// SeenTTL.
func NewThreadStore() *ThreadStore { return memstore.NewThreadStore() }

// NewTokenStore returns an empty store that reads the time from now (nil
// means time.Now).
func NewTokenStore(now func() time.Time) *TokenStore { return memstore.NewTokenStore(now) }
