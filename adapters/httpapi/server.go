package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/convgateway/gateway/ports"
)

// Defaults for the zero values of Deps.
const (
	DefaultBodyLimit    = 64 << 10 // Twilio's webhook forms are a few KiB
	DefaultReadyTimeout = 2 * time.Second
	// DefaultReadTimeout bounds reading a whole request, headers and body:
	// Twilio gives up on a webhook after 15 s, so a request still arriving
	// then is nobody's.
	DefaultReadTimeout = 15 * time.Second
)

// readHeaderTimeout bounds reading a request's headers.
const readHeaderTimeout = 10 * time.Second

// Deps is what the server serves and needs; app/wire builds every part.
// Logger, Calls, Messages, Verifier and AcceptStream are required.
type Deps struct {
	Logger   *slog.Logger
	Calls    ports.Calls
	Messages ports.Messages
	// Verifier checks Twilio's signature on webhooks and on media-stream
	// upgrades.
	Verifier Verifier
	// AcceptStream turns a media-stream upgrade into the call's channel.
	AcceptStream AcceptStream

	// Checks are pinged by /ready, reported under their names.
	Checks map[string]ports.Pinger
	// ReadyTimeout bounds each check of /ready (default DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// BodyLimit is the largest request body in bytes (default
	// DefaultBodyLimit); larger bodies get 413.
	BodyLimit int64
	// ReadTimeout bounds reading a whole request, headers and body, on
	// every route (default DefaultReadTimeout). A body not read by then
	// gets 408 (or the connection is closed). It does not bound a media stream: the
	// deadline is lifted when the connection becomes a WebSocket.
	ReadTimeout time.Duration
	// AllowUnsignedStreams accepts a media-stream upgrade without
	// X-Twilio-Signature (a wrong signature is still refused). Twilio
	// signs every upgrade, so the default refuses unsigned ones with 403;
	// this is for a proxy that strips the header (STREAM_SIGNATURE_REQUIRED
	// =false), where the stream token alone guards the stream.
	AllowUnsignedStreams bool

	// Metrics, when set, is served at GET /metrics (the Prometheus text
	// format).
	Metrics http.Handler
	// ObserveRequest, when set, is called once per HTTP request, media
	// streams excepted (they last a call), with the route pattern (never
	// the raw path), the status code and the time taken. It must be fast
	// and safe for concurrent use.
	ObserveRequest func(route string, status int, elapsed time.Duration)
}

// Server is the gateway's HTTP server. Create it with New, run it with
// Serve and stop it with Shutdown. Its methods are safe for concurrent use.
type Server struct {
	log  *slog.Logger
	echo *echo.Echo
	http *http.Server
	live *liveCalls

	// requests is the parent of every request's context; Shutdown cancels
	// it when webhooks are still running at the drain deadline.
	requests     context.Context
	stopRequests context.CancelFunc
}

// New builds the server and its routes. It panics when a required
// dependency is missing: that is a wiring bug, not a runtime condition.
func New(d Deps) *Server {
	if d.Logger == nil || d.Calls == nil || d.Messages == nil || d.Verifier == nil || d.AcceptStream == nil {
		panic("httpapi: New: Logger, Calls, Messages, Verifier and AcceptStream are required")
	}
	if d.ReadyTimeout <= 0 {
		d.ReadyTimeout = DefaultReadyTimeout
	}
	if d.BodyLimit <= 0 {
		d.BodyLimit = DefaultBodyLimit
	}
	if d.ReadTimeout <= 0 {
		d.ReadTimeout = DefaultReadTimeout
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler
	e.Use(requestID(d.Logger), requestLogger(d.Logger, d.ObserveRequest), recoverPanics(), middleware.BodyLimit(strconv.FormatInt(d.BodyLimit, 10)))

	s := &Server{
		log:  d.Logger,
		echo: e,
		live: newLiveCalls(),
	}
	s.requests, s.stopRequests = context.WithCancel(context.Background())
	s.http = &http.Server{
		Handler:     e,
		BaseContext: func(net.Listener) context.Context { return s.requests },
		// ReadTimeout is a deadline on the connection from the start of a
		// request. net/http lifts it once the body has been read and when
		// the handler hijacks the connection (Go 1.26 server.go,
		// connReader.startBackgroundRead and conn.hijackLocked), and
		// coder/websocket sets no deadline of its own, so a media stream
		// lives as long as its call.
		ReadTimeout:       d.ReadTimeout,
		ReadHeaderTimeout: min(readHeaderTimeout, d.ReadTimeout),
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(d.Logger.Handler(), slog.LevelWarn),
	}
	addRoutes(e, d, s.live)
	return s
}

// Handler returns the server's routes as an http.Handler, for tests and
// for embedding in another server. Calls served through it are tracked by
// Shutdown like any other.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve accepts connections on ln until Shutdown is called. It blocks; it
// returns nil after Shutdown, and the listener's error otherwise. ln is
// closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpapi: serve: %w", err)
	}
	return nil
}

// ActiveCalls returns the number of media streams being served.
func (s *Server) ActiveCalls() int { return s.live.count() }

// Shutdown stops the server gracefully. It stops accepting connections and
// new media streams, waits for in-flight webhook requests, then waits for
// live calls until ctx is done (the drain deadline). Calls still running at
// the deadline are cancelled, and Shutdown returns once their handlers have
// returned, with an error wrapping ctx.Err(). Webhook requests still running
// at the deadline have their contexts cancelled but are not waited for. It
// blocks until then.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.stopRequests()
	s.live.close()
	httpErr := s.http.Shutdown(ctx)
	if httpErr != nil {
		s.stopRequests()
		httpErr = fmt.Errorf("httpapi: shutdown: webhooks: %w", httpErr)
	}
	n, err := s.live.drain(ctx)
	if err != nil {
		s.log.Warn("httpapi: live calls cancelled at the drain deadline", "calls", n)
		err = fmt.Errorf("httpapi: shutdown: %d live calls cancelled: %w", n, err)
	}
	return ports.JoinErrors(httpErr, err)
}
