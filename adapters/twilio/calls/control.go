package calls

import (
	"context"
	"fmt"
	"net/http"
	"regexp"

	api "github.com/twilio/twilio-go/rest/api/v2010"
	"github.com/twilio/twilio-go/twiml"

	"github.com/convgateway/gateway/adapters/twilio/internal/restclient"
	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

// DefaultTimeout bounds one request when Options.HTTPClient is nil.
const DefaultTimeout = restclient.DefaultTimeout

// codeNotInProgress is Twilio's error 21220, "Invalid call state": the
// call is not in progress (it is over).
const codeNotInProgress = 21220

// callSID is what a call id may hold: it becomes a segment of the
// request's path, which twilio-go does not escape.
var callSID = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

// Options configure a Control.
type Options struct {
	// AccountSID and AuthToken authenticate with Twilio; the token never
	// appears in errors.
	AccountSID string
	AuthToken  string
	// BaseURL replaces https://api.twilio.com (scheme, host and an
	// optional path prefix), for simulators and proxies.
	BaseURL string
	// HTTPClient sends the requests; its Transport, Timeout (applied to
	// each request) and CheckRedirect are used (a client with
	// DefaultTimeout if nil).
	HTTPClient *http.Client
}

var _ ports.CallControl = (*Control)(nil)

// Control is a ports.CallControl on Twilio's Calls API. It is safe for
// concurrent use.
type Control struct {
	rc *restclient.Client
}

// New returns a Control. It does not contact Twilio. A BaseURL that does
// not parse as an absolute URL makes every request fail with
// ports.ErrRejected.
func New(opts Options) *Control {
	return &Control{rc: restclient.New(opts.AccountSID, opts.AuthToken, opts.BaseURL, opts.HTTPClient)}
}

// End completes the call callID (a CallSid): the caller is hung up on. It
// blocks until Twilio answered, the client's timeout passed, or ctx is
// done (the request is then aborted and End returns ctx's error). Errors
// are those of Transfer.
func (c *Control) End(ctx context.Context, callID string) error {
	if err := c.check(callID); err != nil {
		return fmt.Errorf("calls: end call: %w", err)
	}
	return c.update(ctx, "end", callID, (&api.UpdateCallParams{}).SetStatus("completed"))
}

// Transfer makes the call callID (a CallSid) dial to, an E.164 number or a
// sip: address, with callerID (an E.164 number the account owns, such as
// the number that was called) as the caller id. The call's media stream
// then ends. It blocks like End.
//
// Errors: ports.ErrNotFound (Twilio knows no such call: a 404; or the call
// is over: error 21220); ports.ErrRejected (a call id, target or caller id
// of the wrong form, not sent; or another 4xx from Twilio, with its status
// and error code); ports.ErrUnavailable (a 429, a 5xx, Twilio unreachable,
// a timeout), with ports.ErrOutcomeUnknown when Twilio may have acted on
// the request (a 5xx, or a failure after it was sent); ctx's error. Errors
// name the URL the request went to, never the auth token.
func (c *Control) Transfer(ctx context.Context, callID, to, callerID string) error {
	if err := c.check(callID); err != nil {
		return fmt.Errorf("calls: transfer call: %w", err)
	}
	doc, err := transferTwiML(to, callerID)
	if err != nil {
		return fmt.Errorf("calls: transfer call %s: %w", callID, err)
	}
	return c.update(ctx, "transfer", callID, (&api.UpdateCallParams{}).SetTwiml(doc))
}

// transferTwiML returns the TwiML that dials to with callerID.
func transferTwiML(to, callerID string) (string, error) {
	var noun twiml.Element
	switch {
	case domain.IsE164(to):
		noun = twiml.VoiceNumber{PhoneNumber: to}
	case domain.IsSIPAddress(to):
		noun = twiml.VoiceSip{SipUrl: to}
	default:
		return "", fmt.Errorf("%q is neither an E.164 number nor a sip: address: %w", to, ports.ErrRejected)
	}
	if !domain.IsE164(callerID) {
		return "", fmt.Errorf("caller id %q is not an E.164 number: %w", callerID, ports.ErrRejected)
	}
	doc, err := twiml.Voice([]twiml.Element{twiml.VoiceDial{CallerId: callerID, InnerElements: []twiml.Element{noun}}})
	if err != nil {
		return "", fmt.Errorf("build twiml: %w: %w", ports.ErrRejected, err)
	}
	return doc, nil
}

// check refuses what cannot be sent: an unusable base URL, a call id that
// is not a sid.
func (c *Control) check(callID string) error {
	if !c.rc.Valid() {
		return fmt.Errorf("invalid Twilio base URL: %w", ports.ErrRejected)
	}
	if !callSID.MatchString(callID) {
		return fmt.Errorf("call id %q is not a call sid: %w", callID, ports.ErrRejected)
	}
	return nil
}

// update sends one update of the call callID.
func (c *Control) update(ctx context.Context, op, callID string, params *api.UpdateCallParams) error {
	ex, err := c.rc.Do(ctx, func(a *api.ApiService) error {
		_, err := a.UpdateCall(callID, params)
		return err
	})
	if err != nil {
		return fmt.Errorf("calls: %s call %s: %w", op, callID, callErr(ex.Failure(err)))
	}
	return nil
}

// callErr translates a failed request (see Transfer).
func callErr(f restclient.Failure) error {
	if f.Ctx == nil && (f.Status == http.StatusNotFound || f.Code == codeNotInProgress) {
		return fmt.Errorf("%w: %w", ports.ErrNotFound, f.Err)
	}
	return f.PortErr()
}
