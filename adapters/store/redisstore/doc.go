// Package redisstore implements ports.TokenStore on Redis, so that a stream
// token minted by one gateway instance is accepted exactly once by whichever
// instance the media stream reaches.
//
// A token is kept under key prefix+"token:"+ports.TokenKey(token) with the
// call sid as value; the token itself is never stored. A call's latest
// token is named under prefix+"call:"+callSid (the token's hash, never the
// token). Issue runs one atomic script: it writes the new token (SET ... PX
// ... NX), deletes the call's earlier token and records the new one, so a
// repeated webhook leaves exactly one valid token per call, whichever
// instances issued them. Consume reads and deletes the token in one atomic
// script (PTTL + GETDEL, and the call's record when it names this token),
// so among any number of concurrent consumers in any number of processes
// exactly one gets the call sid.
//
// Expiry is Redis's: a key lives for its time to live plus a short
// after-life (Expired) during which Consume can still tell an expired token
// (ports.ErrTokenExpired) from an unknown one. After that the key is gone
// and an expired token is indistinguishable from one never issued
// (ports.ErrTokenInvalid). Expiry follows the Redis server's clock, so
// instances need not agree on the time.
//
// The client (github.com/redis/go-redis/v9) reconnects by itself: when
// Redis is unreachable calls fail with ports.ErrUnavailable, and they
// succeed again once it is back. NewLazy makes a store without contacting
// Redis, so that a gateway can start while Redis is down.
package redisstore
