package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/convgateway/gateway/ports"
)

// DefaultBaseURL is OpenAI's API base URL.
const DefaultBaseURL = "https://api.openai.com/v1"

// RequestTimeout bounds every request (each attempt) to the REST API: a
// hung request must not hold a user's turn for ever. An answer takes
// seconds; two minutes leaves room for long ones.
const RequestTimeout = 2 * time.Minute

// NewClient returns a client for baseURL (DefaultBaseURL if empty) that
// authenticates with apiKey and sends requests through hc (a default client
// if nil), each bounded by RequestTimeout. It does not retry on its own:
// callers opt in per request for the calls that are safe to repeat (Retry).
func NewClient(baseURL, apiKey string, hc *http.Client) openai.Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return openai.NewClient(
		option.WithBaseURL(baseURL),
		option.WithAPIKey(apiKey),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0),
		option.WithRequestTimeout(RequestTimeout),
	)
}

// Retry is the request option for calls that are safe to repeat (creating an
// empty thread, reading): a couple of retries on 408, 409, 429, 5xx and
// connection errors, with the SDK's backoff.
func Retry() option.RequestOption { return option.WithMaxRetries(2) }

// Err translates an error from an openai-go call into the ports vocabulary:
// ctx's error if ctx is done; for API errors ports.ErrNotFound (404),
// ports.ErrUnavailable (408, 429, 5xx) or ports.ErrRejected (other 4xx),
// with the status and OpenAI's error code; else ports.ErrUnavailable. The
// text never holds the API key or OpenAI's message (which may quote it).
func Err(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	}
	kind := ports.ErrRejected
	switch s := apiErr.StatusCode; {
	case s == http.StatusNotFound:
		kind = ports.ErrNotFound
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		kind = ports.ErrUnavailable
	}
	if apiErr.Code != "" {
		return fmt.Errorf("%w: openai status %d, code %q", kind, apiErr.StatusCode, apiErr.Code)
	}
	return fmt.Errorf("%w: openai status %d", kind, apiErr.StatusCode)
}
