package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/convgateway/gateway/adapters/twilio/internal/restclient"
	"github.com/convgateway/gateway/ports"
)

// DefaultBaseURL is Twilio's REST API.
const DefaultBaseURL = restclient.DefaultBaseURL

// DefaultTimeout bounds one request when Options.HTTPClient is nil.
const DefaultTimeout = restclient.DefaultTimeout

// Retries of the requests Twilio did not take: a 429 (error 20429, "Too
// many requests": Twilio documents that such a request is never processed
// and is safe to retry after backing off), and a request that never left
// because no connection could be made (refused, unreachable). A request
// Twilio may have acted on (a 5xx, a timeout or a connection cut after it
// was sent, an answer that cannot be read) is never repeated: a repeated
// message is worse than a logged one.
const (
	// DefaultRetryWithin bounds the time one Send spends waiting to retry,
	// counted from its first request; a retry whose wait would end later
	// is not made.
	DefaultRetryWithin = 30 * time.Second
	// DefaultRetryBase is the first backoff. It doubles with each retry,
	// up to maxBackoff; each wait is drawn at random between half of it
	// and all of it, so that senders refused together do not come back
	// together. A Retry-After header (seconds or a date) sets the wait
	// instead.
	DefaultRetryBase = 500 * time.Millisecond
	// maxBackoff caps the backoff.
	maxBackoff = 8 * time.Second
)

// Options configure a Sender.
type Options struct {
	// AccountSID and AuthToken authenticate with Twilio; the token never
	// appears in errors or logs.
	AccountSID string
	AuthToken  string
	// BaseURL replaces https://api.twilio.com (scheme, host and an
	// optional path prefix), for simulators and proxies.
	BaseURL string
	// HTTPClient sends the requests; its Transport, Timeout (applied to
	// each message) and CheckRedirect are used (a client with
	// DefaultTimeout if nil).
	HTTPClient *http.Client
	// From is the sender used when a message has none, for example
	// "whatsapp:+14155238886" (optional).
	From string
	// MessagingServiceSID sends messages that have no From, and when From
	// is empty, through a Messaging Service ("MG...", optional).
	MessagingServiceSID string
	// RetryWithin bounds the time one Send spends waiting to retry a
	// request Twilio did not take. Zero means DefaultRetryWithin; a
	// negative value turns retries off.
	RetryWithin time.Duration
	// RetryBase is the first backoff between retries. Zero means
	// DefaultRetryBase.
	RetryBase time.Duration
	// Logger receives a warning for each retry (nil discards them). It
	// never gets a message's text or recipient.
	Logger *slog.Logger
}

var _ ports.MessageSender = (*Sender)(nil)

// Sender is a ports.MessageSender on Twilio's Messages API. It is safe for
// concurrent use.
type Sender struct {
	rc                     *restclient.Client
	from, serviceSID       string
	retryWithin, retryBase time.Duration
	log                    *slog.Logger
}

// NewSender returns a Sender. It does not contact Twilio. A BaseURL that
// does not parse as an absolute URL makes every Send fail with
// ports.ErrRejected.
func NewSender(opts Options) *Sender {
	if opts.RetryWithin == 0 {
		opts.RetryWithin = DefaultRetryWithin
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = DefaultRetryBase
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{
		rc:   restclient.New(opts.AccountSID, opts.AuthToken, opts.BaseURL, opts.HTTPClient),
		from: opts.From, serviceSID: opts.MessagingServiceSID,
		retryWithin: opts.RetryWithin, retryBase: opts.RetryBase,
		log: opts.Logger,
	}
}

// Send delivers msg and returns its MessageSid. It blocks until Twilio
// accepted or refused the message, or ctx is done (the request is then
// aborted and Send returns ctx.Err()), each request bounded by the
// client's timeout. A request Twilio did not take (429, or no connection)
// is retried with a backoff for at most RetryWithin (see
// DefaultRetryWithin); every retry is logged at warn level.
//
// Errors: ports.ErrRejected (a 4xx other than 429 from Twilio, with its
// error code, e.g. 63016 outside the WhatsApp 24-hour window or 21211 for
// a bad number; or a message that cannot be sent: no recipient, no sender,
// neither or both of Body and ContentSID): not sent;
// ports.ErrUnavailable alone (rate limited or unreachable until the
// retries gave up): not sent; ports.ErrUnavailable with
// ports.ErrOutcomeUnknown (a 5xx, a timeout or a connection cut after the
// request was sent, an answer without a message sid): Twilio may or may
// not have sent the message, and the request is not repeated. Errors name
// the URL the request went to (TWILIO_API_BASE_URL), never the auth token.
func (s *Sender) Send(ctx context.Context, msg ports.OutboundMessage) (string, error) {
	params, err := s.params(msg)
	if err != nil {
		return "", fmt.Errorf("messaging: send: %w", err)
	}
	deadline := time.Now().Add(s.retryWithin)
	backoff := s.retryBase
	for attempt := 1; ; attempt++ {
		sid, retry, err := s.attempt(ctx, params)
		if err == nil {
			return sid, nil
		}
		if !retry.ok || s.retryWithin < 0 {
			return "", fmt.Errorf("messaging: send: %w", err)
		}
		wait := retry.after
		if wait <= 0 {
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, maxBackoff)
		}
		if time.Now().Add(wait).After(deadline) {
			return "", fmt.Errorf("messaging: send: gave up after %d attempts within %v: %w", attempt, s.retryWithin, err)
		}
		s.log.Warn("twilio did not take the message: retrying", "reason", retry.reason, "attempt", attempt, "retry_in", wait.String(), "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return "", fmt.Errorf("messaging: send: waiting to retry: %w", ctx.Err())
		}
	}
}

// retry says whether and when a failed request may be made again.
type retry struct {
	ok     bool
	reason string        // "rate limited", "unreachable"
	after  time.Duration // Twilio's Retry-After; 0: the backoff decides
}

// attempt makes one request for params. On failure it says whether the
// request may be retried (Twilio did not take it).
func (s *Sender) attempt(ctx context.Context, params *api.CreateMessageParams) (string, retry, error) {
	var sid string
	ex, err := s.rc.Do(ctx, func(a *api.ApiService) error {
		resp, err := a.CreateMessage(params)
		if err == nil && resp.Sid != nil {
			sid = *resp.Sid
		}
		return err
	})
	if err != nil {
		f := ex.Failure(err)
		return "", retryOf(f, ex.RetryAfter()), f.PortErr()
	}
	if sid == "" {
		return "", retry{}, fmt.Errorf("no message sid in the answer: %w: %w", ports.ErrUnavailable, ports.ErrOutcomeUnknown)
	}
	return sid, retry{}, nil
}

// params checks msg and turns it into the API's parameters.
func (s *Sender) params(msg ports.OutboundMessage) (*api.CreateMessageParams, error) {
	if !s.rc.Valid() {
		return nil, fmt.Errorf("invalid Twilio base URL: %w", ports.ErrRejected)
	}
	if msg.To == "" {
		return nil, fmt.Errorf("no recipient: %w", ports.ErrRejected)
	}
	if (msg.Body == "") == (msg.ContentSID == "") {
		return nil, fmt.Errorf("exactly one of Body and ContentSID must be set: %w", ports.ErrRejected)
	}
	p := (&api.CreateMessageParams{}).SetTo(msg.To)
	switch from := msg.From; {
	case from != "":
		p.SetFrom(from)
	case s.from != "":
		p.SetFrom(s.from)
	case s.serviceSID != "":
		p.SetMessagingServiceSid(s.serviceSID)
	default:
		return nil, fmt.Errorf("no sender (From) configured: %w", ports.ErrRejected)
	}
	if msg.Body != "" {
		return p.SetBody(msg.Body), nil
	}
	p.SetContentSid(msg.ContentSID)
	if len(msg.ContentVariables) > 0 {
		vars, err := json.Marshal(msg.ContentVariables)
		if err != nil {
			return nil, fmt.Errorf("content variables: %w: %w", ports.ErrRejected, err)
		}
		p.SetContentVariables(string(vars))
	}
	return p, nil
}

// retryOf says whether the request that failed as f may be made again:
// Twilio refused it as rate limited (429), or no connection was made, so
// that nothing was sent. Not after the context is done.
func retryOf(f restclient.Failure, after string) retry {
	switch {
	case f.Ctx != nil:
		return retry{}
	case f.Status == http.StatusTooManyRequests:
		return retry{ok: true, reason: "rate limited", after: retryAfter(after)}
	case f.Status == 0 && !f.Sent:
		return retry{ok: true, reason: "unreachable"}
	}
	return retry{}
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date; 0 when
// there is none or it does not parse.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(time.Until(at), 0)
	}
	return 0
}
