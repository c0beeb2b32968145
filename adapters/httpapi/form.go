package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/labstack/echo/v4"

	"github.com/convgateway/gateway/adapters/twilio/signature"
)

// signedForm parses the request's form and checks its Twilio signature. It
// returns the form (query and body parameters) or an error the error
// handler turns into 403 (missing or invalid signature, logged here with
// the reason), 413 (body over the limit), 408 (body not read within the
// server's read timeout) or 400 (malformed form).
func signedForm(c echo.Context, v *signature.Validator) (url.Values, error) {
	r := c.Request()
	if r.Header.Get(signature.Header) == "" {
		return nil, forbidden(c, signature.ErrMissing)
	}
	if err := r.ParseForm(); err != nil {
		var he *echo.HTTPError // the body limit's 413
		if errors.As(err, &he) {
			return nil, he
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, echo.NewHTTPError(http.StatusRequestTimeout, "request body too slow").SetInternal(err)
		}
		return nil, echo.NewHTTPError(http.StatusBadRequest, "malformed form").SetInternal(err)
	}
	if err := v.ValidateForm(r, r.PostForm); err != nil {
		return nil, forbidden(c, err)
	}
	return r.Form, nil
}

// forbidden logs a refused signature (err is signature.ErrMissing or
// ErrInvalid, which the error handler answers with 403) and returns it.
func forbidden(c echo.Context, err error) error {
	path := c.Request().URL.Path
	logFrom(c).Warn("httpapi: twilio signature refused", "path", path, "err", err)
	return fmt.Errorf("httpapi: %s: %w", path, err)
}
