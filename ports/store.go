package ports

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// ThreadStore keeps one conversation thread per user: the thread in which
// the ChatAssistant holds the user's conversation (ports.ChatAssistant).
// The WhatsApp/SMS use case records the deliveries it takes in a
// DeliveryLedger and orders each user's messages with UserLocks; an
// adapter backed by one database usually implements all three.
//
// Implementations are safe for concurrent use, and the guarantees below hold
// across several gateway processes sharing one database when the
// implementation is backed by a shared database (SQLite is one process; the
// in-memory store is one process). Every method blocks for one round trip
// to the store at most, or until ctx is done (then it returns an error
// wrapping ctx's error), and may return ErrUnavailable when the backing
// store cannot be reached.
type ThreadStore interface {
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
