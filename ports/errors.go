package ports

import (
	"errors"
	"strings"
)

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

// JoinErrors returns an error that wraps every non-nil one of errs (nil
// when there is none; the error itself when there is one). Unlike
// errors.Join, its text is one line, the errors' texts separated by "; ",
// so that it can go into a log line. errors.Is and errors.As see every
// error it wraps.
func JoinErrors(errs ...error) error {
	var list joinedErrors
	for _, err := range errs {
		if err != nil {
			list = append(list, err)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}

// joinedErrors is the error of JoinErrors: two or more errors.
type joinedErrors []error

func (e joinedErrors) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e joinedErrors) Unwrap() []error { return e }
