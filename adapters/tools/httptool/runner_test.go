package httptool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/tools/httptool"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "test-signing-secret-0123456789"

// call is what a tool's server received, as the README documents it.
type call struct {
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
	Channel   string          `json:"channel"`
	CallSID   string          `json:"call_sid"`
	User      string          `json:"user"`
}

// toolServer is a tool's server: it checks the signature (401 when it is
// wrong), records the calls and answers with answer, which may read the
// body again.
type toolServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls []call
	raw   []map[string]any
}

func newToolServer(t *testing.T, answer http.HandlerFunc) *toolServer {
	t.Helper()
	s := &toolServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			!verifyGatewaySignature([]byte(secret), body, r.Header.Get("X-Gateway-Signature")) {
			http.Error(w, "bad request or signature", http.StatusUnauthorized)
			return
		}
		var c call
		var raw map[string]any
		if json.Unmarshal(body, &c) != nil || json.Unmarshal(body, &raw) != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.calls, s.raw = append(s.calls, c), append(s.raw, raw)
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *toolServer) received() ([]call, []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...), append([]map[string]any(nil), s.raw...)
}

func text(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }
}

// blocked answers only when the request's context ends; started gets a
// value when a request arrives.
func blocked(started chan<- struct{}) http.HandlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) {
		if started != nil {
			started <- struct{}{}
		}
		<-r.Context().Done()
	}
}

func tool(name, url string, channels ...ports.Channel) httptool.Tool {
	return httptool.Tool{
		Spec:     ports.ToolSpec{Name: name, Description: "the " + name + " tool", Parameters: json.RawMessage(`{"type":"object"}`)},
		URL:      url,
		Channels: channels,
	}
}

func newRunner(t *testing.T, opts httptool.Options, tools ...httptool.Tool) *httptool.Runner {
	t.Helper()
	opts.Tools = tools
	if opts.Secret == "" {
		opts.Secret = secret
	}
	r, err := httptool.New(opts)
	require.NoError(t, err)
	return r
}

func voiceCall(name, args string) ports.ToolRequest {
	return ports.ToolRequest{Call: ports.ToolCall{ID: "call_1", Name: name, Arguments: json.RawMessage(args)},
		Channel: ports.ChannelVoice, CallID: "CA123"}
}

func TestToolsPerChannel(t *testing.T) {
	r := newRunner(t, httptool.Options{},
		tool("everywhere", "https://t.example.com/a"),
		tool("phone", "https://t.example.com/b", ports.ChannelVoice),
		tool("chat", "http://127.0.0.1:1/c", ports.ChannelWhatsApp, ports.ChannelSMS))
	names := func(ch ports.Channel) []string {
		var out []string
		for _, s := range r.Tools(ch) {
			out = append(out, s.Name)
		}
		return out
	}
	assert.Equal(t, []string{"everywhere", "phone"}, names(ports.ChannelVoice))
	assert.Equal(t, []string{"everywhere", "chat"}, names(ports.ChannelWhatsApp))
	assert.Equal(t, []string{"everywhere", "chat"}, names(ports.ChannelSMS))
	assert.Equal(t, "the phone tool", r.Tools(ports.ChannelVoice)[1].Description)
	assert.JSONEq(t, `{"type":"object"}`, string(r.Tools(ports.ChannelVoice)[1].Parameters))
}

func TestRunPostsASignedCall(t *testing.T) {
	srv := newToolServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"free": ["19:00", "20:30"]}`)
	})
	r := newRunner(t, httptool.Options{}, tool("check_availability", srv.URL+"/availability"))

	out, err := r.Run(context.Background(), voiceCall("check_availability", `{"date": "2026-05-01", "people": 4}`))
	require.NoError(t, err)
	assert.Equal(t, `{"free": ["19:00", "20:30"]}`, out, "the body is the output, as is")

	out, err = r.Run(context.Background(), ports.ToolRequest{
		Call:    ports.ToolCall{ID: "call_2", Name: "check_availability", Arguments: json.RawMessage(" \n")},
		Channel: ports.ChannelWhatsApp, User: "whatsapp:+15551234567", CallID: "ignored on chats",
	})
	require.NoError(t, err)
	assert.NotEmpty(t, out)

	calls, raw := srv.received()
	require.Len(t, calls, 2)
	assert.Equal(t, call{Tool: "check_availability", Arguments: json.RawMessage(`{"date":"2026-05-01","people":4}`),
		Channel: "voice", CallSID: "CA123"}, calls[0])
	assert.Equal(t, call{Tool: "check_availability", Arguments: json.RawMessage(`{}`),
		Channel: "whatsapp", User: "whatsapp:+15551234567"}, calls[1], "no arguments are an empty object")
	assert.NotContains(t, raw[0], "user", "a voice call has a call_sid and no user")
	assert.NotContains(t, raw[1], "call_sid", "a chat has a user and no call_sid")
}

func TestRunTextAndEmptyAnswers(t *testing.T) {
	srv := newToolServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/empty") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.WriteString(w, "Table for 4 booked at 19:00.\xff")
	})
	r := newRunner(t, httptool.Options{}, tool("book", srv.URL+"/book"), tool("nothing", srv.URL+"/empty"))
	out, err := r.Run(context.Background(), voiceCall("book", `{}`))
	require.NoError(t, err)
	assert.Equal(t, "Table for 4 booked at 19:00.\uFFFD", out, "text as is, made valid UTF-8")
	out, err = r.Run(context.Background(), voiceCall("nothing", `{}`))
	require.NoError(t, err)
	assert.Empty(t, out)
}

func TestRunRefusesWithoutCalling(t *testing.T) {
	srv := newToolServer(t, text("ok"))
	r := newRunner(t, httptool.Options{}, tool("phone", srv.URL, ports.ChannelVoice))

	_, err := r.Run(context.Background(), voiceCall("nope", `{}`))
	assert.ErrorIs(t, err, ports.ErrNotFound)
	req := voiceCall("phone", `{}`)
	req.Channel = ports.ChannelSMS
	_, err = r.Run(context.Background(), req)
	assert.ErrorIs(t, err, ports.ErrNotFound, "a tool not offered on the channel")
	for _, args := range []string{`[1]`, `{"a":`, `"x"`} {
		_, err = r.Run(context.Background(), voiceCall("phone", args))
		assert.ErrorIs(t, err, ports.ErrInvalidInput, args)
	}
	calls, _ := srv.received()
	assert.Empty(t, calls)
}

// assertSafe checks that err is ErrUnavailable and its text names the tool
// and nothing of where it lives.
func assertSafe(t *testing.T, err error, srvURL string, want string) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Contains(t, err.Error(), "tool lookup: "+want)
	host := strings.TrimPrefix(srvURL, "http://")
	hostOnly, port, _ := net.SplitHostPort(host)
	for _, s := range []string{srvURL, host, hostOnly, port, secret, "/lookup"} {
		assert.NotContains(t, err.Error(), s)
	}
}

func TestRunFailuresAreUnavailable(t *testing.T) {
	tests := []struct {
		name   string
		answer http.HandlerFunc
		want   string
	}{
		{"server error", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "stack trace with internals", http.StatusInternalServerError)
		}, "answered with HTTP status 500"},
		{"not found", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, "answered with HTTP status 404"},
		{"redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, "answered with HTTP status 307"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newToolServer(t, tt.answer)
			r := newRunner(t, httptool.Options{}, tool("lookup", srv.URL+"/lookup"))
			out, err := r.Run(context.Background(), voiceCall("lookup", `{}`))
			assertSafe(t, err, srv.URL, tt.want)
			assert.NotContains(t, err.Error(), "internals", "a failed answer's body is not the model's")
			assert.Empty(t, out)
			calls, _ := srv.received()
			assert.Len(t, calls, 1, "the signature was accepted and nothing retried")
		})
	}
}

func TestRunTimeout(t *testing.T) {
	srv := newToolServer(t, blocked(nil))
	lookup := tool("lookup", srv.URL+"/lookup")
	lookup.Timeout = 50 * time.Millisecond
	r := newRunner(t, httptool.Options{}, lookup)
	_, err := r.Run(context.Background(), voiceCall("lookup", `{}`))
	assertSafe(t, err, srv.URL, "no answer within 50ms")
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the tool's timeout is not the caller's deadline")
}

func TestRunRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	r := newRunner(t, httptool.Options{}, tool("lookup", url+"/lookup"))
	_, err = r.Run(context.Background(), voiceCall("lookup", `{}`))
	assertSafe(t, err, url, "could not be reached")
}

func TestRunContextCancel(t *testing.T) {
	started := make(chan struct{}, 1)
	srv := newToolServer(t, blocked(started))
	lookup := tool("lookup", srv.URL+"/lookup")
	lookup.Timeout = time.Minute
	var logs testlog.Buffer
	r := newRunner(t, httptool.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, lookup)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, voiceCall("lookup", `{}`))
		done <- err
	}()
	<-started
	cancel()
	err := <-done
	assert.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, logs.String(), `"msg":"tool cancelled"`, "a caller giving up is no tool failure")
	assert.NotErrorIs(t, err, ports.ErrUnavailable, "the caller gave up; the tool did not fail")
}

func TestRunCutsBigAnswers(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"at the limit", strings.Repeat("a", httptool.MaxOutput), strings.Repeat("a", httptool.MaxOutput)},
		{"over the limit", strings.Repeat("b", 20<<10), strings.Repeat("b", httptool.MaxOutput) + httptool.CutMark},
		// "é" is two bytes: with one "a" in front the limit falls inside one.
		{"inside a character", "a" + strings.Repeat("é", httptool.MaxOutput),
			"a" + strings.Repeat("é", httptool.MaxOutput/2-1) + httptool.CutMark},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newToolServer(t, text(tt.body))
			r := newRunner(t, httptool.Options{}, tool("big", srv.URL))
			out, err := r.Run(context.Background(), voiceCall("big", `{}`))
			require.NoError(t, err)
			assert.Equal(t, tt.want, out)
			assert.True(t, utf8.ValidString(out))
			assert.LessOrEqual(t, len(out), httptool.MaxOutput+len(httptool.CutMark))
		})
	}
}

func TestRunLogsNamesStatusAndDurationOnly(t *testing.T) {
	srv := newToolServer(t, text("the secret output"))
	failing := newToolServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	const args = `{"card":"4111-secret-argument"}`

	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logs testlog.Buffer
		r := newRunner(t, httptool.Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: level}))},
			tool("lookup", srv.URL+"/lookup?key=url-token"), tool("broken", failing.URL+"/broken?key=url-token"))
		_, err := r.Run(context.Background(), voiceCall("lookup", args))
		require.NoError(t, err)
		_, err = r.Run(context.Background(), voiceCall("broken", args))
		require.Error(t, err)

		lines := decodeLines(t, logs.String())
		ran, failed := find(lines, "tool ran"), find(lines, "tool failed")
		require.NotNil(t, ran, logs.String())
		require.NotNil(t, failed, logs.String())
		assert.Equal(t, "lookup", ran["tool"])
		assert.EqualValues(t, 200, ran["status"])
		assert.Contains(t, ran, "duration_ms")
		assert.Equal(t, "broken", failed["tool"])
		assert.EqualValues(t, 502, failed["status"])

		for _, never := range []string{secret, "url-token", "/lookup", srv.URL, "the secret output"} {
			assert.NotContains(t, logs.String(), never)
		}
		if level == slog.LevelDebug {
			assert.Contains(t, logs.String(), "4111-secret-argument", "arguments at debug")
		} else {
			assert.NotContains(t, logs.String(), "4111-secret-argument", "no arguments above debug")
		}
	}
}

func decodeLines(t *testing.T, logs string) []map[string]any {
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

func find(lines []map[string]any, msg string) map[string]any {
	for _, l := range lines {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

// roundTripper is an http.RoundTripper made of a function.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRunUsesTheInjectedClient(t *testing.T) {
	var seen atomic.Int32
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		seen.Add(1)
		body, _ := io.ReadAll(r.Body)
		if !verifyGatewaySignature([]byte(secret), body, r.Header.Get(httptool.SignatureHeader)) {
			return nil, errors.New("bad signature")
		}
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("via the injected client")), Request: r}, nil
	})}
	r := newRunner(t, httptool.Options{HTTPClient: hc}, tool("lookup", "https://tools.example.com/lookup"))
	out, err := r.Run(context.Background(), voiceCall("lookup", `{}`))
	require.NoError(t, err)
	assert.Equal(t, "via the injected client", out)
	assert.EqualValues(t, 1, seen.Load())
}

func TestRunConcurrently(t *testing.T) {
	srv := newToolServer(t, func(w http.ResponseWriter, r *http.Request) {
		var c call
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(c.Arguments)
	})
	r := newRunner(t, httptool.Options{}, tool("echo", srv.URL))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			args := fmt.Sprintf(`{"n":%d}`, i)
			out, err := r.Run(context.Background(), voiceCall("echo", args))
			assert.NoError(t, err)
			assert.Equal(t, args, out, "each run gets its own answer")
		})
	}
	wg.Wait()
	calls, _ := srv.received()
	assert.Len(t, calls, 20)
}

func TestNewRefusesBadTools(t *testing.T) {
	tests := []struct {
		name string
		opts httptool.Options
	}{
		{"no secret", httptool.Options{Tools: []httptool.Tool{tool("a", "https://t.example.com")}}},
		{"repeated name", httptool.Options{Secret: secret, Tools: []httptool.Tool{tool("a", "https://t.example.com"), tool("a", "https://t.example.com")}}},
		{"no name", httptool.Options{Secret: secret, Tools: []httptool.Tool{tool("", "https://t.example.com")}}},
		{"relative url", httptool.Options{Secret: secret, Tools: []httptool.Tool{tool("a", "/lookup")}}},
		{"other scheme", httptool.Options{Secret: secret, Tools: []httptool.Tool{tool("a", "ftp://t.example.com")}}},
	}
	for _, tt := range tests {
		_, err := httptool.New(tt.opts)
		assert.ErrorIs(t, err, ports.ErrInvalidInput, tt.name)
	}
	r, err := httptool.New(httptool.Options{})
	require.NoError(t, err, "no tools need no secret")
	assert.Empty(t, r.Tools(ports.ChannelVoice))
}
