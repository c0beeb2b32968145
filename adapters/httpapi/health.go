package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/convgateway/gateway/ports"
)

// handleHealth is the liveness probe: the process answers.
func handleHealth() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

// readiness is the body of /ready: the overall status and each check's
// "ok" or "failed" (never the error text, which may name hosts or users).
type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleReady is the readiness probe: it pings every check at once, each
// bounded by timeout, and answers 200 when all succeed, 503 otherwise.
// Failures are logged with their error.
func handleReady(checks map[string]ports.Pinger, timeout time.Duration) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), timeout)
		defer cancel()

		res := readiness{Status: "ok", Checks: make(map[string]string, len(checks))}
		var (
			mu sync.Mutex
			wg sync.WaitGroup
		)
		for name, p := range checks {
			wg.Go(func() {
				err := p.Ping(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					logFrom(c).Warn("httpapi: readiness check failed", "check", name, "err", err)
					res.Checks[name], res.Status = "failed", "unavailable"
					return
				}
				res.Checks[name] = "ok"
			})
		}
		wg.Wait()

		code := http.StatusOK
		if res.Status != "ok" {
			code = http.StatusServiceUnavailable
		}
		return c.JSON(code, res)
	}
}
