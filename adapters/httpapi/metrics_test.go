package httpapi_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/httpapi"
)

// observed records what the server reports of its requests.
type observed struct {
	mu   sync.Mutex
	seen []string
}

func (o *observed) observe(route string, status int, elapsed time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if elapsed < 0 {
		route = "negative"
	}
	o.seen = append(o.seen, route+" "+http.StatusText(status))
}

func (o *observed) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen...)
}

func TestMetricsRouteAndRequestObserver(t *testing.T) {
	var obs observed
	e := newEnv(t, func(d *httpapi.Deps) {
		d.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("gateway_up 1\n")) })
		d.ObserveRequest = obs.observe
	})

	res, err := http.Get(e.url + "/metrics")
	require.NoError(t, err)
	body := readBody(t, res)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "gateway_up 1\n", body)

	readBody(t, e.post(t, "/webhook", messageForm("SM1", "hi"), true))
	readBody(t, e.post(t, "/incoming-call", callForm(), false)) // unsigned: 403
	res, err = http.Get(e.url + "/no/such/path/123")
	require.NoError(t, err)
	readBody(t, res)

	// A media stream is not a request to time: it lasts a call.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := dialStream(t, e.url, wssSig)
	require.NoError(t, err)
	require.NoError(t, conn.Close(websocket.StatusNormalClosure, ""))
	require.NoError(t, e.calls.WaitServed(ctx, 1))

	assert.Equal(t, []string{"/metrics OK", "/webhook OK", "/incoming-call Forbidden", "unmatched Not Found"}, obs.all(),
		"route patterns, never raw paths; no media stream")
}

func TestNoMetricsRouteWithoutMetrics(t *testing.T) {
	e := newEnv(t)
	res, err := http.Get(e.url + "/metrics")
	require.NoError(t, err)
	readBody(t, res)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}
