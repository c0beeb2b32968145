package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// healthTimeout bounds gateway health from the connection to the answer: a
// container runtime or orchestrator runs it on a timer and counts a hang
// as a failure anyway.
const healthTimeout = 3 * time.Second

// defaultHealthPort is the PORT that gateway health asks when the
// environment sets none: configs' default PORT (a test keeps them equal).
const defaultHealthPort = "5050"

// health asks the gateway on this machine whether it is alive: it GETs
// http://127.0.0.1:PORT/health, with PORT from the environment (default
// 5050), within healthTimeout, prints the answer and returns nil on 200 OK,
// an error naming the URL and the status or the failure otherwise. It
// reads no other setting, no .env and no --config, so that it runs where
// the configuration is incomplete and without a shell: it is the image's
// HEALTHCHECK. It never follows redirects and never uses a proxy.
func health(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("health: unexpected arguments %q (it takes none: PORT comes from the environment)", args)
	}
	port := getenv("PORT")
	if port == "" {
		port = defaultHealthPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("health: PORT must be a port between 1 and 65535 (got %q)", port)
	}
	url := "http://" + net.JoinHostPort("127.0.0.1", port) + "/health"

	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	transport := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("health: GET %s: %s", url, res.Status)
	}
	fmt.Fprintf(stdout, "gateway health: GET %s: %s\n", url, res.Status)
	return nil
}
