package redisstore

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convgateway/gateway/ports"
)

// DefaultKeyPrefix is the prefix of every key the store writes unless
// WithKeyPrefix says otherwise.
const DefaultKeyPrefix = "gateway:"

// Expired is how long Redis keeps a token after its time to live has
// passed, so that Consume reports ports.ErrTokenExpired rather than
// ports.ErrTokenInvalid for it.
const Expired = time.Minute

// issueScript atomically stores a new token and makes it its call's only
// one. KEYS[1] is the new token's key, KEYS[2] the call's key, which holds
// the hash of the call's latest token; ARGV: the call sid, the keys' life
// in milliseconds, the new token's hash, the prefix of token keys, and
// Expired in milliseconds. The call's earlier token, if any, is deleted;
// the script returns 1 when it was still live (its key had more than
// Expired left to live), 0 when not, and -1, having changed nothing, when
// the new token's key already exists (a 256-bit random collision). The
// earlier token's key is named by the call's key, so it cannot be declared
// in KEYS: the script needs a single Redis server (or all the keys of a
// deployment on one node), as the store's other commands do.
var issueScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return -1 end
local replaced = 0
local old = redis.call('GET', KEYS[2])
if old and old ~= ARGV[3] then
  local oldKey = ARGV[4] .. old
  if redis.call('PTTL', oldKey) > tonumber(ARGV[5]) then replaced = 1 end
  redis.call('DEL', oldKey)
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
return replaced
`)

// consumeScript atomically takes the call sid stored under KEYS[1] and
// reports how many milliseconds the key had left to live. When KEYS[2],
// the key of the call the token is presented for, names this token
// (ARGV[1], its hash), the call has no live token any more: it is deleted
// too.
var consumeScript = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
local sid = redis.call('GETDEL', KEYS[1])
if not sid then return false end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return {sid, ttl}
`)

// TokenStore is a ports.TokenStore on Redis. It is safe for concurrent use
// by any number of goroutines and processes sharing one Redis.
type TokenStore struct {
	client *redis.Client
	prefix string
}

var _ ports.TokenStore = (*TokenStore)(nil)

// Option configures New.
type Option func(*TokenStore)

// WithKeyPrefix makes the store put prefix in front of every key instead of
// DefaultKeyPrefix: deployments (or test runs) sharing one Redis with
// different prefixes never see each other's tokens.
func WithKeyPrefix(prefix string) Option {
	return func(s *TokenStore) { s.prefix = prefix }
}

// New connects to the Redis at rawURL (redis://[user:password@]host:port/db
// or rediss:// for TLS; see redis.ParseURL) and pings it. A malformed URL
// gives an error wrapping ports.ErrInvalidInput; an unreachable server one
// wrapping ports.ErrUnavailable (and, if ctx ended first, its error). Neither
// error contains the password. New blocks until the ping answers or ctx is
// done. The caller must Close the store.
func New(ctx context.Context, rawURL string, opts ...Option) (*TokenStore, error) {
	s, err := NewLazy(rawURL, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		_ = s.client.Close()
		return nil, fmt.Errorf("redisstore: connect to redis at %s: %w: %w", s.client.Options().Addr, ports.ErrUnavailable, err)
	}
	return s, nil
}

// NewLazy is New without the ping: it checks rawURL (a malformed one gives
// an error wrapping ports.ErrInvalidInput, without the password) and makes
// the client, which connects on first use. While Redis is unreachable
// every call fails with ports.ErrUnavailable; once it answers they
// succeed, so a gateway can start while Redis is down and report it
// through Ping. The caller must Close the store.
func NewLazy(rawURL string, opts ...Option) (*TokenStore, error) {
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) { // its text quotes the whole URL, password included
			err = uerr.Err
		}
		return nil, fmt.Errorf("redisstore: parse redis url: %w: %w", ports.ErrInvalidInput, err)
	}
	s := &TokenStore{client: redis.NewClient(o), prefix: DefaultKeyPrefix}
	for _, opt := range opts {
		opt(s)
	}
	return s, nil
}

// Issue mints a token bound to callSid that Consume accepts until ttl has
// passed (rounded to whole milliseconds), and makes it the call's only
// token: the call's earlier token is deleted, and replaced reports whether
// it was still live. The token and the call's record are written in one
// script, atomically for every process sharing the Redis. A ttl below one
// millisecond gives an error wrapping ports.ErrInvalidInput; a Redis
// failure one wrapping ports.ErrUnavailable. It blocks for one round trip
// to Redis (plus the client's retries) or until ctx is done.
func (s *TokenStore) Issue(ctx context.Context, callSid string, ttl time.Duration) (string, bool, error) {
	if ttl < time.Millisecond {
		return "", false, fmt.Errorf("redisstore: issue: ttl %v: %w", ttl, ports.ErrInvalidInput)
	}
	ttl = ttl.Round(time.Millisecond)
	token := ports.NewToken()
	hash := ports.TokenKey(token)
	res, err := issueScript.Run(ctx, s.client, []string{s.tokenKey(hash), s.callKey(callSid)},
		callSid, (ttl + Expired).Milliseconds(), hash, s.prefix+"token:", Expired.Milliseconds()).Int()
	if err != nil {
		return "", false, fail("issue", err)
	}
	if res < 0 {
		return "", false, fmt.Errorf("redisstore: issue: token collision: %w", ports.ErrUnavailable)
	}
	return token, res == 1, nil
}

// Consume accepts token for callSid once. It returns nil for a live token
// of that call; an error wrapping ports.ErrTokenExpired for a token whose
// time to live passed less than Expired ago; an error wrapping
// ports.ErrTokenInvalid for one unknown, already consumed, replaced,
// expired longer ago, or bound to another call (such a token is consumed
// all the same); and an error wrapping ports.ErrUnavailable when Redis
// fails. The token is taken atomically: among concurrent calls in all
// processes at most one succeeds. It blocks for one round trip to Redis or
// until ctx is done.
func (s *TokenStore) Consume(ctx context.Context, token, callSid string) error {
	hash := ports.TokenKey(token)
	res, err := consumeScript.Run(ctx, s.client, []string{s.tokenKey(hash), s.callKey(callSid)}, hash).Slice()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: consume: %w", ports.ErrTokenInvalid)
	}
	if err != nil {
		return fail("consume", err)
	}
	sid, _ := res[0].(string)
	left, _ := res[1].(int64)
	if left >= 0 && time.Duration(left)*time.Millisecond <= Expired {
		return fmt.Errorf("redisstore: consume: %w", ports.ErrTokenExpired)
	}
	if subtle.ConstantTimeCompare([]byte(sid), []byte(callSid)) != 1 {
		return fmt.Errorf("redisstore: consume: %w", ports.ErrTokenInvalid)
	}
	return nil
}

// Ping reports whether Redis answers: nil, or an error wrapping
// ports.ErrUnavailable that names the server. It blocks for one round trip
// or until ctx is done.
func (s *TokenStore) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fail("ping redis at "+s.client.Options().Addr, err)
	}
	return nil
}

// Close closes the connections to Redis. Calls after Close fail.
func (s *TokenStore) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

// tokenKey is the key of the token whose hash (ports.TokenKey) is hash.
func (s *TokenStore) tokenKey(hash string) string { return s.prefix + "token:" + hash }

// callKey is the key that holds the hash of callSid's latest token.
func (s *TokenStore) callKey(callSid string) string { return s.prefix + "call:" + callSid }

// fail names the operation and classifies err: a context's end is reported
// as such, anything else as ports.ErrUnavailable.
func fail(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return fmt.Errorf("redisstore: %s: %w: %w", op, ports.ErrUnavailable, err)
}
