package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/labstack/echo/v4"

	"github.com/convgateway/gateway/adapters/twilio/signature"
)

// signedForm reads the request's body and form and checks its Twilio
// signature. It returns the form (query and body parameters) or an error
// the error handler turns into 403 (missing or invalid signature, logged
// here with the reason), 413 (body over the limit), 408 (body not read
// within the server's read timeout) or 400 (malformed form).
func signedForm(c echo.Context, v *signature.Validator) (url.Values, error) {
	r := c.Request()
	if r.Header.Get(signature.Header) == "" {
		return nil, forbidden(c, signature.ErrMissing)
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

// readError maps a failure to read a request body to its status: the body
// limit's 413, 408 for a body still arriving at the read timeout, else 400.
func readError(err error) error {
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, os.ErrDeadlineExceeded):
		return echo.NewHTTPError(http.StatusRequestTimeout, "request body too slow").SetInternal(err)
	}
	return echo.NewHTTPError(http.StatusBadRequest, "unreadable body").SetInternal(err)
}

// forbidden logs a refused signature (err is signature.ErrMissing or
// ErrInvalid, which the error handler answers with 403) and returns it.
func forbidden(c echo.Context, err error) error {
	path := c.Request().URL.Path
	logFrom(c).Warn("httpapi: twilio signature refused", "path", path, "err", err)
	return fmt.Errorf("httpapi: %s: %w", path, err)
}
