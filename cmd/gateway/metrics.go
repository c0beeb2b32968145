package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// metricsServer serves the Prometheus metrics at GET /metrics on a
// listener of its own (METRICS_ADDR), so that the public port, which
// Twilio and so the internet reaches, does not.
type metricsServer struct {
	srv    *http.Server
	served chan error
}

// metricsStopTimeout bounds how long stop waits for scrapes in progress.
const metricsStopTimeout = 5 * time.Second

// startMetrics listens on addr and serves h there until stop.
func startMetrics(addr string, h http.Handler, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics (METRICS_ADDR): %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	s := &metricsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       15 * time.Second, // as on PORT (httpapi.DefaultReadTimeout)
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		served: make(chan error, 1),
	}
	log.Info("gateway: metrics listening", "addr", ln.Addr().String())
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// stop closes the listener, lets scrapes in progress finish for up to
// metricsStopTimeout, then cuts them. It returns once the server's
// goroutines are gone, with the error that stopped serving early, if any.
func (s *metricsServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), metricsStopTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	if err := <-s.served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}
