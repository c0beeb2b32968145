package messaging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/convgateway/gateway/ports"
)

// DefaultBaseURL is Twilio's REST API.
const DefaultBaseURL = "https://api.twilio.com"

// DefaultTimeout bounds one request when Options.HTTPClient is nil.
const DefaultTimeout = 10 * time.Second

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
}

var _ ports.MessageSender = (*Sender)(nil)

// Sender is a ports.MessageSender on Twilio's Messages API. It is safe for
// concurrent use.
type Sender struct {
	accountSID, authToken string
	base                  *url.URL
	hc                    *http.Client
	timeout               time.Duration // per message; 0 for none
	from, serviceSID      string
}

// NewSender returns a Sender. It does not contact Twilio. A BaseURL that
// does not parse as an absolute URL makes every Send fail with
// ports.ErrRejected.
func NewSender(opts Options) *Sender {
	raw := opts.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		base = nil
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Sender{
		accountSID: opts.AccountSID, authToken: opts.AuthToken,
		base: base, hc: hc, timeout: hc.Timeout,
		from: opts.From, serviceSID: opts.MessagingServiceSID,
	}
}

// Send delivers msg and returns its MessageSid. It blocks until Twilio
// accepted or refused the message, or ctx is done (the request is then
// aborted and Send returns ctx.Err()) or the client's timeout has passed
// (ports.ErrUnavailable). Errors: ports.ErrRejected (a 4xx
// from Twilio, with its error code, e.g. 63016 outside the WhatsApp 24-hour
// window or 21211 for a bad number; or a message that cannot be sent: no
// recipient, no sender, neither or both of Body and ContentSID),
// ports.ErrUnavailable (network, 5xx, 429).
func (s *Sender) Send(ctx context.Context, msg ports.OutboundMessage) (string, error) {
	params, err := s.params(msg)
	if err != nil {
		return "", fmt.Errorf("messaging: send: %w", err)
	}
	reqCtx := ctx
	if s.timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	resp, err := s.api(reqCtx).CreateMessage(params)
	if err != nil {
		return "", fmt.Errorf("messaging: send: %w", sendErr(ctx, err))
	}
	if resp.Sid == nil || *resp.Sid == "" {
		return "", fmt.Errorf("messaging: send: Twilio returned no message sid: %w", ports.ErrUnavailable)
	}
	return *resp.Sid, nil
}

// params checks msg and turns it into the API's parameters.
func (s *Sender) params(msg ports.OutboundMessage) (*api.CreateMessageParams, error) {
	if s.base == nil {
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

// api returns a Messages API client whose requests go to s.base and end
// with ctx. Its http.Client has no Timeout (ctx carries it), so that no
// timer goroutine outlives a request whose body twilio-go leaves open.
func (s *Sender) api(ctx context.Context) *api.ApiService {
	next := s.hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c := &client.Client{
		Credentials: client.NewCredentials(s.accountSID, s.authToken),
		HTTPClient: &http.Client{
			Transport:     &transport{ctx: ctx, base: s.base, next: next},
			CheckRedirect: s.hc.CheckRedirect,
		},
	}
	c.SetAccountSid(s.accountSID)
	return api.NewApiService(client.NewRequestHandler(c))
}

// maxErrorBody bounds the error bodies read from Twilio.
const maxErrorBody = 64 << 10

// transport sends each request to base instead of the host twilio-go chose,
// under ctx. It reads error bodies into memory and closes them, because
// twilio-go does not close the body of an error response.
type transport struct {
	ctx  context.Context
	base *url.URL
	next http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r.Clone(t.ctx)
	out.URL.Scheme = t.base.Scheme
	out.URL.Host = t.base.Host
	out.URL.Path = t.base.Path + r.URL.Path
	out.URL.RawPath = ""
	out.Host = ""
	resp, err := t.next.RoundTrip(out)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// sendErr translates a twilio-go error: ctx's error if ctx is done;
// ports.ErrUnavailable for 429, 5xx and network failures;
// ports.ErrRejected for other 4xx, with Twilio's status, code and message.
func sendErr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var tErr *client.TwilioRestError
	if !errors.As(err, &tErr) {
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	}
	kind := ports.ErrRejected
	if tErr.Status == http.StatusTooManyRequests || tErr.Status >= 500 {
		kind = ports.ErrUnavailable
	}
	return fmt.Errorf("%w: twilio status %d, error %d: %s", kind, tErr.Status, tErr.Code, tErr.Message)
}
