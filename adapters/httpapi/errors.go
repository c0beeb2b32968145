package httpapi

import (
	"errors"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"

	"github.com/convgateway/gateway/ports"
)

// statusOf maps an error from a handler to a status code and the text the
// client may see. Deliberate responses (*echo.HTTPError) keep their code
// and message; the port error vocabulary maps to its status with the
// standard status text only, so no internal detail leaks.
func statusOf(err error) (int, string) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if msg, ok := he.Message.(string); ok {
			return he.Code, msg
		}
		return he.Code, http.StatusText(he.Code)
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, errUnverified):
		code = http.StatusForbidden
	case errors.Is(err, ports.ErrInvalidInput):
		code = http.StatusBadRequest
	case errors.Is(err, ports.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ports.ErrUnavailable):
		code = http.StatusServiceUnavailable
	}
	return code, http.StatusText(code)
}

// errorHandler is echo's central error handler: it answers
// {"error": text} with the mapped status and logs failures that are the
// server's own (5xx not chosen by a handler).
func errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := statusOf(err)
	var he *echo.HTTPError
	if code >= http.StatusInternalServerError && !errors.As(err, &he) {
		logFrom(c).Error("httpapi: request failed", "err", err)
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(code)
	} else {
		err = c.JSON(code, map[string]string{"error": msg})
	}
	if err != nil {
		logFrom(c).Warn("httpapi: write error response", "err", err)
	}
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
