package ports

import "errors"

// The error vocabulary shared by every port. Adapters wrap these with %w so
// that callers can use errors.Is; the HTTP adapter maps them to status codes.
var (
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")

	// ErrClosed: the session, stream or store has been closed, by either
	// side. Receiving it from Recv is the normal end of a stream.
	ErrClosed = errors.New("closed")

	// ErrTokenInvalid: a stream token is missing, unknown, already used, or
	// was issued for another call. The cases are deliberately not told apart
	// to the peer.
	ErrTokenInvalid = errors.New("invalid token")

	// ErrTokenExpired: a stream token was issued but its time to live has
	// passed.
	ErrTokenExpired = errors.New("token expired")

	// ErrUnavailable: a dependency (database, cache, remote API) could not be
	// reached or answered with a server-side failure. The operation may
	// succeed if retried later.
	ErrUnavailable = errors.New("dependency unavailable")

	// ErrRejected: a remote API refused the request as invalid (a 4xx other
	// than rate limiting). Retrying the same request will not help.
	ErrRejected = errors.New("request rejected")

	// ErrAssistantFailed: the assistant could not produce an answer (its run
	// failed, was cancelled, expired, ended incomplete or asked for tools
	// the gateway does not provide).
	ErrAssistantFailed = errors.New("assistant failed")

	// ErrInvalidInput: input from a peer (a frame, a form, a setting) is
	// malformed.
	ErrInvalidInput = errors.New("invalid input")

	// ErrOutcomeUnknown: a request reached a remote API, which may or may
	// not have acted on it, and its answer was lost (a server error, a
	// timeout or a connection cut after the request was sent). Repeating
	// it may do the thing twice. It comes together with ErrUnavailable.
	ErrOutcomeUnknown = errors.New("outcome unknown")
)
