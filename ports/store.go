package ports

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// ThreadStore keeps one conversation thread per user, records which webhook
// deliveries were already processed and by which gateway instance, and
// serializes work per user.
//
// The store also tells deliveries that were taken but never answered: the
// gateway records a delivery with FirstSeen under the id of the instance
// that takes it (its owner), marks it Delivered once it is answered, and
// asks for the Abandoned ones, so that a delivery whose process died in
// between (a crash, a kill) is found by another process or by the next
// start. A repeat of such a delivery (Twilio retries a webhook whose
// answer it never got) is taken over with TakeOver by the instance it
// reaches, once the owner is known to have stopped: the store keeps the
// instances' leases (Leases) beside the deliveries, so that the owner's
// lease and the delivery are checked in one atomic step.
//
// Implementations are safe for concurrent use, and the guarantees below hold
// across several gateway processes sharing one database when the
// implementation is backed by a shared database (SQLite is one process; the
// in-memory store is one process). Every method may return ErrUnavailable
// when the backing store cannot be reached.
type ThreadStore interface {
	// Leases are the leases of the instances that own deliveries.
	Leases

	// Thread returns the thread id stored for user, or an error wrapping
	// ErrNotFound.
	Thread(ctx context.Context, user string) (string, error)

	// SaveThread stores threadID for user unless the user already has a
	// thread, and returns the thread that is stored after the call: the
	// existing one if there was one (the first writer wins), else threadID.
	// Concurrent calls for one user all return the same id.
	SaveThread(ctx context.Context, user, threadID string) (string, error)

	// ReplaceThread stores threadID for user in place of old, a thread
	// found to be gone (the assistant no longer knows it), and returns the
	// thread that is stored after the call: threadID if user's thread was
	// old (or user had none), else the thread that is stored (another
	// caller replaced old first). It is a compare-and-swap on old:
	// concurrent calls replacing one old thread all return the same id.
	ReplaceThread(ctx context.Context, user, old, threadID string) (string, error)

	// FirstSeen records key (an idempotency token or a MessageSid) as
	// taken by owner (an instance id, see Leases) and reports whether this
	// is the first time it was recorded. Among concurrent calls with one
	// key exactly one returns true. Keys are remembered for at least 24
	// hours. A key recorded as new is pending until Delivered(key): see
	// TakeOver and Abandoned.
	FirstSeen(ctx context.Context, key, owner string) (bool, error)

	// TakeOver makes owner the owner of the pending delivery recorded
	// under key if its owner holds no live lease (the owner stopped before
	// answering it), and reports what it found (see Claim): ClaimTaken
	// when owner took it, ClaimOwned when it was owner's already,
	// ClaimBusy when another instance alive owns it, ClaimSettled when
	// there is nothing to take (answered, reported, or unknown). The
	// check and the change are atomic: among concurrent calls for one
	// key, in every process sharing the store, at most one gets
	// ClaimTaken, and only while no owner alive holds the key. When
	// owner's own lease has expired, a later caller may take the delivery
	// from owner in turn. It blocks for one transaction on the store or
	// until ctx is done.
	TakeOver(ctx context.Context, key, owner string) (Claim, error)

	// Delivered records that the delivery whose key FirstSeen recorded was
	// answered (handed over, sent, or deliberately answered otherwise), so
	// that Abandoned never returns key and TakeOver never takes it. Marking
	// a key twice, or a key Abandoned already returned, is harmless; an
	// unknown (or forgotten) key is not an error and nothing is recorded for
	// it, so a later FirstSeen of that key is new and pending as usual. It
	// blocks for one write to the store or until ctx is done (then the key
	// may or may not be marked). Safe for concurrent use.
	Delivered(ctx context.Context, key string) error

	// Abandoned claims and returns, in no particular order, the keys that
	// FirstSeen recorded at least olderThan ago (olderThan <= 0: every one
	// recorded before the call), that were neither marked Delivered nor
	// returned by an earlier Abandoned call, and whose owner holds no live
	// lease (an owner alive may still answer them). The claim is atomic:
	// among concurrent calls, in every process sharing the store, each such
	// key is returned by exactly one call, once. Keys are forgotten with the
	// retention of FirstSeen (at least 24 hours); a key older than that may
	// never be returned. Nothing to claim is an empty result, not an
	// error. It blocks for one transaction on the store or until ctx is
	// done. A call that fails (an error wrapping ctx's error when ctx
	// ended, else ErrUnavailable) claimed nothing, unless the store failed
	// while committing the claim: keys may then be claimed and never
	// returned. Safe for concurrent use.
	Abandoned(ctx context.Context, olderThan time.Duration) ([]string, error)

	// LockUser blocks until the caller holds the user's lock, or ctx is
	// done. Waiters are granted the lock in the order they asked for it.
	// The returned unlock must be called exactly once; it never blocks for
	// long and is safe to call after ctx is done.
	LockUser(ctx context.Context, user string) (unlock func(), err error)

	// Ping reports whether the store is reachable (for readiness checks).
	Ping(ctx context.Context) error
}

// TokenStore issues and consumes single-use, expiring stream tokens that bind
// a media stream to the call whose webhook minted it.
//
// A call has at most one valid token: issuing a token for a call whose
// earlier token is still live replaces that token, so a webhook that
// Twilio retries (or that someone replays) leaves one token that connects,
// the latest, whichever instance issued it.
//
// Implementations are safe for concurrent use and, when backed by a shared
// server, across several gateway processes: a token is accepted exactly once
// in the whole deployment, and a replacement is atomic there too. They
// store only TokenKey(token), never the token itself, and never put a token
// in an error or a log.
type TokenStore interface {
	// Issue mints a new token (NewToken) bound to callSid, valid for ttl,
	// and makes it the call's only valid token: a token issued earlier for
	// callSid stops working (Consume refuses it with ErrTokenInvalid).
	// replaced reports whether such an earlier token was still live (issued,
	// not consumed, not expired): the call's webhook was answered before.
	// Among concurrent calls for one callSid, exactly one token stays
	// valid, and exactly one call reports replaced false when the call had
	// no live token before them. Errors: ErrInvalidInput for a ttl that is
	// not positive, ErrUnavailable when the backing store fails (then
	// nothing was issued or replaced).
	Issue(ctx context.Context, callSid string, ttl time.Duration) (token string, replaced bool, err error)

	// Consume accepts token for callSid once. It returns nil the first time
	// for a live token of that call, an error wrapping ErrTokenExpired when
	// its time has passed, and an error wrapping ErrTokenInvalid when it is
	// unknown, already consumed, replaced by a later Issue or bound to
	// another call. A token presented for the wrong call is consumed all
	// the same (it has leaked). A consumed token is no longer live: a later
	// Issue for its call reports replaced false. The call sid comparison is
	// constant-time.
	Consume(ctx context.Context, token, callSid string) error

	// Ping reports whether the store is reachable (for readiness checks).
	Ping(ctx context.Context) error
}

// TokenBytes is the entropy of a stream token: 256 bits.
const TokenBytes = 32

// NewToken returns a fresh random token: 256 bits from crypto/rand, encoded
// as unpadded base64url (43 characters).
func NewToken() string {
	b := make([]byte, TokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TokenKey is the form under which stores keep a token: the hex SHA-256 of
// the token. Looking a token up by its hash means the lookup's timing tells
// an attacker nothing about stored tokens.
func TokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Pinger is anything whose reachability /ready reports.
type Pinger interface {
	Ping(ctx context.Context) error
}
