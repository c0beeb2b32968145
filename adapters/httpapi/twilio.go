package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/convgateway/gateway/ports"
)

// Verifier tells the requests Twilio sent from others by their
// X-Twilio-Signature. app/wire gives the signature adapter's Validator,
// built with the auth token, the webhook shared key and the public URL
// Twilio calls. Its methods do not block and are safe for concurrent use.
type Verifier interface {
	// Signed reports whether r carries a signature at all, right or
	// wrong; an unsigned webhook is refused before its body is read.
	Signed(r *http.Request) bool
	// ValidateForm checks the signature of a webhook whose body has been
	// read: form holds its POST parameters (r.PostForm), body its raw
	// bytes. Any error refuses the request with 403; the error is logged,
	// never sent, and must not contain a secret.
	ValidateForm(r *http.Request, form url.Values, body []byte) error
	// ValidateUpgrade checks the signature of a WebSocket upgrade request.
	// Errors as for ValidateForm.
	ValidateUpgrade(r *http.Request) error
	// WebSocketURL returns the URL Twilio is to connect to for the
	// WebSocket at path, as seen by Twilio (behind the public URL).
	WebSocketURL(r *http.Request, path string) string
}

// AcceptStream upgrades a media-stream request to a WebSocket and returns
// the call's channel, which the handler gives to ports.Calls.Serve and
// closes after it. log is the request's logger (it carries the request id).
// On error the request has been answered (the upgrade refused) and there is
// nothing to close. It is called after the upgrade's signature was checked.
// app/wire gives the mediastream adapter's Accept.
type AcceptStream func(w http.ResponseWriter, r *http.Request, log *slog.Logger) (ports.TelephonyChannel, error)

// errUnverified marks a request refused because it is not signed by
// Twilio: the error handler answers it with 403.
var errUnverified = errors.New("not signed by Twilio")

// errUnsigned is why a request without X-Twilio-Signature is refused.
var errUnsigned = errors.New("missing X-Twilio-Signature")

// signedForm reads the request's body and form and checks its Twilio
// signature. It returns the form (query and body parameters) or an error
// the error handler turns into 403 (missing or invalid signature, logged
// here with the reason), 413 (body over the limit), 408 (body not read
// within the server's read timeout) or 400 (malformed form).
func signedForm(c echo.Context, v Verifier) (url.Values, error) {
	r := c.Request()
	if !v.Signed(r) {
		return nil, forbidden(c, errUnsigned)
	}
	// The raw body is kept for the signature: a JSON webhook is signed
	// through its hash (bodySHA256).
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, readError(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := r.ParseForm(); err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "malformed form").SetInternal(err)
	}
	if err := v.ValidateForm(r, r.PostForm, body); err != nil {
		return nil, forbidden(c, err)
	}
	return r.Form, nil
}

// signedUpgrade checks the signature of a WebSocket upgrade. An unsigned
// upgrade is refused unless allowUnsigned is set; a wrongly signed one
// always is. The error is answered with 403.
func signedUpgrade(c echo.Context, v Verifier, allowUnsigned bool) error {
	r := c.Request()
	if !v.Signed(r) {
		if allowUnsigned {
			return nil
		}
		return forbidden(c, errUnsigned)
	}
	if err := v.ValidateUpgrade(r); err != nil {
		return forbidden(c, err)
	}
	return nil
}

// forbidden logs a refused signature with the reason err and returns an
// error the error handler answers with 403.
func forbidden(c echo.Context, err error) error {
	path := c.Request().URL.Path
	logFrom(c).Warn("httpapi: twilio signature refused", "path", path, "err", err)
	return fmt.Errorf("httpapi: %s: %w: %w", path, errUnverified, err)
}
