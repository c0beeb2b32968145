package httpapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Keys of the values handlers leave on the echo context for the request log.
const (
	keyCallSid    = "call_sid"
	keyMessageSid = "message_sid"
)

type loggerKey struct{}

// logFrom returns the request's logger (with its request id). requestID
// runs first for every request, so the logger is always there.
func logFrom(c echo.Context) *slog.Logger {
	if log, ok := c.Request().Context().Value(loggerKey{}).(*slog.Logger); ok {
		return log
	}
	return slog.New(slog.DiscardHandler)
}

// maxRequestID is the longest X-Request-Id the server adopts.
const maxRequestID = 64

// requestID takes the X-Request-Id header when it is a short token (see
// validRequestID) or makes one, sets it on the request (where the request
// log reads it) and the response, and puts a logger carrying it on the
// request's context. A client's id of any other length or content is
// neither echoed nor logged.
func requestID(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			id := r.Header.Get(echo.HeaderXRequestID)
			if !validRequestID(id) {
				id = rand.Text() // 26 characters of base32
			}
			r.Header.Set(echo.HeaderXRequestID, id)
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			ctx := context.WithValue(r.Context(), loggerKey{}, log.With("request_id", id))
			c.SetRequest(r.WithContext(ctx))
			return next(c)
		}
	}
}

// validRequestID reports whether id is 1 to maxRequestID characters of
// [A-Za-z0-9._-]: safe to echo and to log as it is.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// requestLogger logs one structured line per request: method, path, status,
// latency, request id, and the call or message sid when the handler found
// one. Bodies are never logged: TwiML carries stream tokens. For a media
// stream the line is written when the call ends. observe, when not nil,
// sees every request but media streams.
func requestLogger(log *slog.Logger, observe func(route string, status int, elapsed time.Duration)) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError:  true, // run the error handler first so the status is final
		LogMethod:    true,
		LogURIPath:   true,
		LogStatus:    true,
		LogLatency:   true,
		LogRequestID: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			attrs := []slog.Attr{
				slog.String("method", v.Method),
				slog.String("path", v.URIPath),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency),
				slog.String("request_id", v.RequestID),
			}
			for _, k := range []string{keyCallSid, keyMessageSid} {
				if sid, ok := c.Get(k).(string); ok {
					attrs = append(attrs, slog.String(k, sid))
				}
			}
			if route := c.Path(); observe != nil && route != pathMediaStream {
				if route == "" {
					route = "unmatched" // a 404: the raw path is unbounded
				}
				observe(route, v.Status, v.Latency)
			}
			level := slog.LevelInfo
			switch {
			case v.Status >= http.StatusInternalServerError:
				level = slog.LevelError
			case v.Status >= http.StatusBadRequest:
				level = slog.LevelWarn
			}
			log.LogAttrs(c.Request().Context(), level, "http request", attrs...)
			return nil
		},
	})
}

// recoverPanics turns a panic in a handler into a logged error with its
// stack and a plain 500 for the client.
func recoverPanics() echo.MiddlewareFunc {
	return middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			logFrom(c).Error("httpapi: panic in handler", "err", err, "stack", string(stack))
			return echo.ErrInternalServerError
		},
	})
}
