package httpapi

import (
	"context"
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

// requestID takes the X-Request-Id header or makes one, echoes it in the
// response and puts a logger carrying it on the request's context.
func requestID(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		RequestIDHandler: func(c echo.Context, id string) {
			r := c.Request()
			ctx := context.WithValue(r.Context(), loggerKey{}, log.With("request_id", id))
			c.SetRequest(r.WithContext(ctx))
		},
	})
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
