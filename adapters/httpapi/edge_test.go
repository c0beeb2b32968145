package httpapi_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/httpapi"
	"github.com/convgateway/gateway/ports"
)

// requestIDShape is what the server echoes and logs as a request id.
var requestIDShape = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// TestRequestIDIsBoundedAndSanitised: a client's X-Request-Id is echoed
// and logged only when it is a short token; anything else (10 kB, quotes,
// tabs, bytes that are not UTF-8) is replaced by an id of the server's.
func TestRequestIDIsBoundedAndSanitised(t *testing.T) {
	e := newEnv(t)
	hostile := "evil-" + strings.Repeat("A\t\"}{\xff\xfe ", 1000) + "-end"
	for name, tt := range map[string]struct {
		id   string
		keep bool
	}{
		"plain":          {id: "req-42.abc_DEF", keep: true},
		"64 characters":  {id: strings.Repeat("a", 64), keep: true},
		"65 characters":  {id: strings.Repeat("b", 65)},
		"10 kB, hostile": {id: hostile},
		"json breaker":   {id: `x","level":"ERROR`},
		"space":          {id: "a b"},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, e.url+"/health", nil)
			require.NoError(t, err)
			req.Header["X-Request-Id"] = []string{tt.id} // as is: the client does not vet it
			resp, err := e.ts.Client().Do(req)
			require.NoError(t, err)
			readBody(t, resp)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got := resp.Header.Get("X-Request-Id")
			assert.Regexp(t, requestIDShape, got, "the echoed id is a short token")
			if tt.keep {
				assert.Equal(t, tt.id, got)
			} else {
				assert.NotEqual(t, tt.id, got)
				assert.NotContains(t, e.logs.String(), tt.id, "the client's id is not logged")
			}
			assert.Contains(t, e.logs.String(), `"request_id":"`+got+`"`, "the id echoed is the id logged")
		})
	}
	assert.NotContains(t, e.logs.String(), "evil-")
}

// TestRequestIDWithControlCharacters: a header value with control
// characters never reaches a handler or the log (net/http answers 400
// itself), and a line feed ends the header line: it never gets into an id.
func TestRequestIDWithControlCharacters(t *testing.T) {
	e := newEnv(t)
	send := func(id string) *http.Response {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + id + strings.Repeat("z", 10_000) + "\r\n\r\n"))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		readBody(t, resp)
		return resp
	}
	for _, id := range []string{"ctl-\x1b[31mred\x00", "cr-a\rb", "del-\x7f"} {
		resp := send(id)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%q", id)
		assert.Empty(t, resp.Header.Get("X-Request-Id"))
		assert.NotContains(t, e.logs.String(), id[:4])
	}
	resp := send("lf-a\nInjected: 1")
	assert.Regexp(t, requestIDShape, resp.Header.Get("X-Request-Id"), "no line feed in an id")
	assert.NotContains(t, e.logs.String(), "Injected")
}

// slowBody sends a request whose headers are complete and whose body then
// comes at one byte every interval, and returns when the server answers
// or drops the connection: the status (0 when dropped) and how long the
// server held it. It gives up after limit (status -1).
func slowBody(t *testing.T, addr, path string, every, limit time.Duration) (status int, held time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	body := strings.Repeat("x", 4096)
	_, err = conn.Write([]byte("POST " + path + " HTTP/1.1\r\nHost: gw.example.com\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: c2lnbmVk\r\n" +
		"Content-Length: 4096\r\n\r\n"))
	require.NoError(t, err)
	start := time.Now()
	answered := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	tick := time.NewTicker(every)
	defer tick.Stop()
	giveUp := time.After(limit)
	for i := 0; ; i++ {
		select {
		case status := <-answered:
			return status, time.Since(start)
		case <-giveUp:
			return -1, time.Since(start)
		case <-tick.C:
			if i < len(body) {
				_, _ = conn.Write([]byte{body[i]}) // fails once the server closed
			}
		}
	}
}

// TestSlowBodyIsCut: a request whose headers arrived but whose body comes
// at a byte every 100 ms is released once the read timeout has passed, on
// every route, many at once: the webhooks answer 408 (or drop the
// connection); a route that does not read bodies answers as it would, once
// net/http has given up discarding the body.
func TestSlowBodyIsCut(t *testing.T) {
	const bound = 500 * time.Millisecond
	e, shutdown := serving(t, func(d *httpapi.Deps) { d.ReadTimeout = bound })
	addr := strings.TrimPrefix(e.url, "http://")
	type result struct {
		path   string
		status int
		held   time.Duration
	}
	paths := []string{"/webhook", "/incoming-call", "/health", "/no/such/route"}
	const each = 5
	results := make(chan result, len(paths)*each)
	for _, path := range paths {
		for range each {
			go func() {
				status, held := slowBody(t, addr, path, 100*time.Millisecond, 30*bound)
				results <- result{path, status, held}
			}()
		}
	}
	for range len(paths) * each {
		r := <-results
		t.Logf("%s: status %d after %v", r.path, r.status, r.held.Round(time.Millisecond))
		assert.NotEqual(t, -1, r.status, "%s: still held after %v", r.path, r.held)
		if r.path == "/webhook" || r.path == "/incoming-call" {
			assert.Contains(t, []int{http.StatusRequestTimeout, 0}, r.status, "%s: 408 or the connection closed (got %d after %v)", r.path, r.status, r.held)
			assert.GreaterOrEqual(t, r.held, bound/2, "%s: cut by the read timeout, not at once", r.path)
		}
		assert.Less(t, r.held, 10*bound, "%s: held %v", r.path, r.held)
	}
	assert.Empty(t, e.messages.Received(), "no webhook reached the use case")
	assert.Empty(t, e.calls.Incoming())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, shutdown(ctx), "no request is left running")
}

// TestLongCallOutlivesReadTimeout: the read timeout bounds requests, not
// the media stream that an upgrade becomes: a call many times longer, with
// a silence longer than the bound, goes on until the caller hangs up.
func TestLongCallOutlivesReadTimeout(t *testing.T) {
	const bound = 300 * time.Millisecond
	e, shutdown := serving(t, func(d *httpapi.Deps) { d.ReadTimeout = bound })
	type served struct {
		events int
		err    error
	}
	done := make(chan served, 1)
	e.calls.SetServe(func(ctx context.Context, ch ports.TelephonyChannel) error {
		defer ch.End(ports.EndCompleted)
		n := 0
		for {
			ev, err := ch.Recv(context.Background())
			if err != nil {
				done <- served{n, err}
				return nil
			}
			n++
			if ev.Type == ports.CallHungUp {
				done <- served{n, nil}
				return nil
			}
		}
	})
	conn, _, err := dialStream(t, e.url, wssSig)
	require.NoError(t, err)
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	closed := conn.CloseRead(ctx) // answer the server's close as Twilio does
	write := func(frame string) { require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(frame))) }
	for _, f := range startFrames(streamToken) {
		write(f)
	}
	began := time.Now()
	const media = `{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"f39/fw=="},"streamSid":"MZ00000000000000000000000000000000"}`
	for range 10 {
		write(media)
		time.Sleep(bound / 3)
	}
	time.Sleep(3 * bound) // silence: no byte on the connection for longer than the bound
	for range 10 {
		write(media)
		time.Sleep(bound / 3)
	}
	write(`{"event":"stop","sequenceNumber":"23","streamSid":"MZ00000000000000000000000000000000","stop":{"callSid":"CA00000000000000000000000000000000"}}`)
	var got served
	select {
	case got = <-done:
	case <-ctx.Done():
		t.Fatal("the call was not served to its end")
	}
	t.Logf("the call lasted %v with a read timeout of %v", time.Since(began), bound)
	require.NoError(t, got.err, "the stream was not cut")
	assert.Equal(t, 1+20+1, got.events, "start, 20 media and stop (connected is not an event)")
	assert.Greater(t, time.Since(began), 5*bound)
	<-closed.Done()
	require.NoError(t, shutdown(ctx))
}
