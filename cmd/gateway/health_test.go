package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/store/storetest"
	"github.com/convgateway/gateway/configs"
)

// portOf returns the port of a base URL such as http://127.0.0.1:4242.
func portOf(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	return u.Port()
}

// serveHealth serves h on a loopback port until the test ends and returns
// the port.
func serveHealth(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	return port
}

// closedPort returns a loopback port on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	return portOf(t, "http://"+storetest.ClosedAddr(t))
}

// gateway health asks the real gateway, with nothing but PORT in its
// environment: a HEALTHCHECK runs without the secrets the server needs.
func TestHealthAnswersZeroForTheRunningGateway(t *testing.T) {
	t.Chdir(t.TempDir())
	bases, _ := runGateway(t, validEnv())
	var out strings.Builder
	err := run(context.Background(), []string{"gateway", "health"}, getenv(map[string]string{"PORT": portOf(t, bases[0])}), &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "/health: 200 OK")
}

func TestHealthFailsUnlessTheGatewayAnswers200(t *testing.T) {
	unavailable := serveHealth(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		http.Error(w, "draining", http.StatusServiceUnavailable)
	})
	redirect := serveHealth(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/health", http.StatusFound)
	})
	for _, tt := range []struct{ name, port, want string }{
		{"503", unavailable, "GET http://127.0.0.1:" + unavailable + "/health: 503 Service Unavailable"},
		{"redirect not followed", redirect, "302 Found"},
		{"nothing listening", closedPort(t), "connection refused"},
		{"PORT not a number", "http", `PORT must be a port between 1 and 65535 (got "http")`},
		{"PORT 0", "0", `PORT must be a port between 1 and 65535 (got "0")`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), []string{"gateway", "health"}, getenv(map[string]string{"PORT": tt.port}), &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, out.String(), "nothing is printed as healthy")
		})
	}
}

// A gateway that accepts the connection and never answers fails the check
// within healthTimeout instead of hanging the runtime's probe.
func TestHealthGivesUpOnAGatewayThatDoesNotAnswer(t *testing.T) {
	release := make(chan struct{})
	port := serveHealth(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"gateway", "health"}, getenv(map[string]string{"PORT": port}), &strings.Builder{})
	}()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.True(t, errors.Is(err, context.DeadlineExceeded), "want the timeout, got %v", err)
	case <-time.After(time.Minute): // a hang guard, far above healthTimeout
		t.Fatal("gateway health did not give up")
	}
}

func TestHealthRejectsArguments(t *testing.T) {
	err := run(context.Background(), []string{"gateway", "health", "--port", "5050"}, getenv(nil), &strings.Builder{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unexpected arguments")
}

// Without PORT, gateway health asks the port the server listens on without
// PORT.
func TestHealthDefaultPortIsTheServersDefault(t *testing.T) {
	env := validEnv()
	delete(env, "PORT")
	cfg, err := configs.Load(configs.LoadOptions{Getenv: getenv(env), Dir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, defaultHealthPort, strconv.Itoa(cfg.Port))
}

// The exit code is what a HEALTHCHECK reads: 1 when the gateway is not
// there, with the reason on stderr.
func TestProcessHealthExitsOneWhenNothingAnswers(t *testing.T) {
	cmd := command(t, map[string]string{"PORT": closedPort(t)}, "health")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit interface{ ExitCode() int }
	require.True(t, errors.As(err, &exit), "want a non-zero exit, got %v", err)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, stderr.String(), "gateway: health:")
	assert.Contains(t, stderr.String(), "connection refused")
}

func TestVersionIsPrintedAndLoggedAtStart(t *testing.T) {
	old := version
	version = "v1.2.3-test"
	t.Cleanup(func() { version = old })

	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"gateway", "version"}, getenv(nil), &out))
	assert.Regexp(t, `^gateway v1\.2\.3-test go1\.\d+\S* \w+/\w+\n$`, out.String())

	// A start that fails at listen has logged its first line already.
	taken, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer taken.Close()
	t.Chdir(t.TempDir())
	env := validEnv()
	env["PORT"] = portOf(t, "http://"+taken.Addr().String())
	var logs strings.Builder
	require.Error(t, run(context.Background(), []string{"gateway"}, getenv(env), &logs))
	var starting struct{ Msg, Version string }
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), &starting) == nil && starting.Msg == "gateway: starting" {
			break
		}
	}
	assert.Equal(t, "gateway: starting", starting.Msg)
	assert.Equal(t, "v1.2.3-test", starting.Version)
}
