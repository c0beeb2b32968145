package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/adapters/httpapi"
	"github.com/convgateway/gateway/ports"
)

func getJSON(t *testing.T, e *env, path string) (int, map[string]any) {
	t.Helper()
	resp, err := e.ts.Client().Get(e.url + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	code, body := getJSON(t, e, "/health")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, map[string]any{"status": "ok"}, body)
}

// hangingPinger answers only when its context ends.
type hangingPinger struct{}

func (hangingPinger) Ping(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestReady(t *testing.T) {
	threads, tokens := fake.NewThreadStore(), fake.NewTokenStore()
	e := newEnv(t, func(d *httpapi.Deps) {
		d.Checks = map[string]ports.Pinger{"threads": threads, "tokens": tokens}
		d.ReadyTimeout = 100 * time.Millisecond
	})

	code, body := getJSON(t, e, "/ready")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, map[string]any{"status": "ok", "checks": map[string]any{"threads": "ok", "tokens": "ok"}}, body)

	tokens.Down(errors.New("redis://:hunter2@cache:6379 unreachable"))
	code, body = getJSON(t, e, "/ready")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, map[string]any{"status": "unavailable", "checks": map[string]any{"threads": "ok", "tokens": "failed"}}, body)
	assert.Contains(t, e.logs.String(), `"check":"tokens"`, "the failure is logged")
}

func TestReadyBoundsHangingChecks(t *testing.T) {
	e := newEnv(t, func(d *httpapi.Deps) {
		d.Checks = map[string]ports.Pinger{"db": hangingPinger{}}
		d.ReadyTimeout = 50 * time.Millisecond
	})
	code, body := getJSON(t, e, "/ready")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "failed", body["checks"].(map[string]any)["db"])
}

func TestReadyWithoutChecks(t *testing.T) {
	e := newEnv(t)
	code, _ := getJSON(t, e, "/ready")
	assert.Equal(t, http.StatusOK, code)
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	e := newEnv(t)
	code, body := getJSON(t, e, "/nope")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, "error")
}

func TestRequestIDIsEchoedAndLogged(t *testing.T) {
	e := newEnv(t)
	req, err := http.NewRequest(http.MethodGet, e.url+"/health", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-Id", "req-123")
	resp, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	readBody(t, resp)
	assert.Equal(t, "req-123", resp.Header.Get("X-Request-Id"))
	assert.Contains(t, e.logs.String(), `"request_id":"req-123"`)

	resp, err = e.ts.Client().Get(e.url + "/health")
	require.NoError(t, err)
	readBody(t, resp)
	id := resp.Header.Get("X-Request-Id")
	require.NotEmpty(t, id, "an id is made when the client sends none")
	assert.Contains(t, e.logs.String(), `"request_id":"`+id+`"`)
}
