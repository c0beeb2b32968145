// Package restclient makes twilio-go's REST requests go where the gateway
// wants them, under a context, and tells what each request met.
//
// twilio-go's REST client has a fixed base URL (https://api.twilio.com) and
// takes no context. A Client therefore builds a light twilio-go client per
// request whose HTTP transport sends the request to the configured base URL
// (TWILIO_API_BASE_URL, for simulators and proxies) and binds it to the
// caller's context, so that cancelling the context aborts the request. The
// transport notes where the request went, whether a connection was made
// (else nothing was sent) and the status of an error answer, so that the
// adapters can tell a request Twilio never saw from one it may have acted
// on. Errors name the URL the request went to, without credentials, never
// the auth token.
package restclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/convgateway/gateway/ports"
)

// DefaultBaseURL is Twilio's REST API.
const DefaultBaseURL = "https://api.twilio.com"

// DefaultTimeout bounds one request when no http.Client is given.
const DefaultTimeout = 10 * time.Second

// maxErrorBody bounds the error bodies read from Twilio.
const maxErrorBody = 64 << 10

// Client makes requests to Twilio's REST API (api/v2010) for one account.
// It is safe for concurrent use.
type Client struct {
	accountSID, authToken string
	base                  *url.URL // nil when the base URL is invalid
	hc                    *http.Client
}

// New returns a Client for the account, sending its requests to baseURL
// (scheme, host and an optional path prefix; DefaultBaseURL if empty)
// through hc's Transport, with hc's Timeout for each request and its
// CheckRedirect (a client with DefaultTimeout if hc is nil). It does not
// contact Twilio. A baseURL that does not parse as an absolute URL makes
// Valid false.
func New(accountSID, authToken, baseURL string, hc *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		base = nil
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{accountSID: accountSID, authToken: authToken, base: base, hc: hc}
}

// Valid reports whether the base URL given to New is usable.
func (c *Client) Valid() bool { return c.base != nil }

// Do calls f with an API service whose requests go to the base URL under
// ctx, each bounded by the client's timeout, and returns f's error with
// what the request met. f makes one request. Do blocks until f returns; a
// request aborted because ctx is done fails f with an error, and Failure
// then reports ctx's error. Do must not be called when Valid is false.
func (c *Client) Do(ctx context.Context, f func(*api.ApiService) error) (*Exchange, error) {
	reqCtx := ctx
	if c.hc.Timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, c.hc.Timeout)
		defer cancel()
	}
	next := c.hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	ex := &Exchange{ctx: ctx, t: &transport{ctx: reqCtx, base: c.base, next: next}}
	// The http.Client has no Timeout (reqCtx carries it), so that no timer
	// goroutine outlives a request whose body twilio-go leaves open.
	tc := &client.Client{
		Credentials: client.NewCredentials(c.accountSID, c.authToken),
		HTTPClient:  &http.Client{Transport: ex.t, CheckRedirect: c.hc.CheckRedirect},
	}
	tc.SetAccountSid(c.accountSID)
	return ex, f(api.NewApiService(client.NewRequestHandler(tc)))
}

// Exchange is what one request met. Read it after Do returned.
type Exchange struct {
	ctx context.Context
	t   *transport
}

// Status is the HTTP status of an error answer (400 or more), 0 if there
// was none.
func (e *Exchange) Status() int { return e.t.status }

// RetryAfter is the Retry-After header of an error answer, "" if none.
func (e *Exchange) RetryAfter() string { return e.t.retryAfter }

// Failure describes the request that failed f with err.
type Failure struct {
	// Ctx is the caller's context error when it was done: the request was
	// abandoned, and the other fields are not to be read.
	Ctx error
	// Status is the HTTP status of Twilio's error answer, 0 if none came.
	Status int
	// Code is Twilio's error code, when its answer carried one.
	Code int
	// Sent: a connection was made, so Twilio may have received the
	// request. False means nothing left.
	Sent bool
	// Err tells what happened, with Twilio's status, code and message, or
	// the HTTP client's error naming the URL the request went to (the
	// configured base URL without credentials, not twilio-go's).
	Err error
}

// Failure describes err, the error f failed with.
func (e *Exchange) Failure(err error) Failure {
	if ctxErr := e.ctx.Err(); ctxErr != nil {
		return Failure{Ctx: ctxErr, Err: ctxErr}
	}
	f := Failure{Status: e.t.status, Sent: e.t.connected.Load()}
	var uErr *url.Error
	if errors.As(err, &uErr) {
		err = &url.Error{Op: uErr.Op, URL: e.t.url, Err: uErr.Err}
	}
	var tErr *client.TwilioRestError
	switch {
	case errors.As(err, &tErr):
		f.Status, f.Code, f.Sent = tErr.Status, tErr.Code, true
		f.Err = fmt.Errorf("twilio status %d, error %d: %s", tErr.Status, tErr.Code, tErr.Message)
	case f.Status != 0:
		f.Err = fmt.Errorf("twilio status %d: %w", f.Status, err)
	default:
		f.Err = err
	}
	return f
}

// transport makes one request: it sends it to base instead of the host
// twilio-go chose, under ctx, and notes what the caller needs to know of
// it: the URL it went to, whether a connection was made (else nothing was
// sent), and the status and Retry-After header of an error response. It
// reads error bodies into memory and closes them, because twilio-go does
// not close the body of an error response.
type transport struct {
	ctx  context.Context
	base *url.URL
	next http.RoundTripper

	url        string      // where the request went, without credentials
	connected  atomic.Bool // a connection was obtained: the request may have been sent
	status     int         // of an error response
	retryAfter string      // of an error response
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { t.connected.Store(true) }}
	out := r.Clone(httptrace.WithClientTrace(t.ctx, trace))
	out.URL.Scheme = t.base.Scheme
	out.URL.Host = t.base.Host
	out.URL.Path = t.base.Path + r.URL.Path
	out.URL.RawPath = ""
	out.URL.User = nil
	out.Host = ""
	t.url = out.URL.Redacted()
	resp, err := t.next.RoundTrip(out)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	t.status, t.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// PortErr translates the failure into the ports' errors: ctx's error when
// it was done; ports.ErrUnavailable for a 429 (Twilio did not take the
// request) and for a request that never left (no connection);
// ports.ErrUnavailable and ports.ErrOutcomeUnknown for a 5xx and for a
// failure after a connection was made (a timeout, a connection cut, an
// answer that cannot be read): Twilio may have acted on it;
// ports.ErrRejected for any other 4xx. The error carries f.Err.
func (f Failure) PortErr() error {
	switch {
	case f.Ctx != nil:
		return f.Ctx
	case f.Status == http.StatusTooManyRequests:
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, f.Err)
	case f.Status >= 500:
		return fmt.Errorf("%w: %w: %w", ports.ErrUnavailable, ports.ErrOutcomeUnknown, f.Err)
	case f.Status >= 400:
		return fmt.Errorf("%w: %w", ports.ErrRejected, f.Err)
	case !f.Sent:
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, f.Err)
	}
	return fmt.Errorf("%w: %w: %w", ports.ErrUnavailable, ports.ErrOutcomeUnknown, f.Err)
}
