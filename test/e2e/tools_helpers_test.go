package e2e_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/tools/httptool"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/twiliorest"
)

// toolSecret is the TOOLS_SIGNING_SECRET of the tool tests.
const toolSecret = "e2e-tools-signing-secret"

// toolAnswer is what the tool server's lookup tool answers.
const toolAnswer = `{"tables":3}`

// toolRequest is a request the gateway sent the tool server, as the
// tools' documentation describes it.
type toolRequest struct {
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
	Channel   string          `json:"channel"`
	CallSID   string          `json:"call_sid"`
	User      string          `json:"user"`
}

// toolServer is the test's tool server. Its tools, one per path: lookup
// answers toolAnswer (after the test releases it, when held), broken
// answers 500, slow answers only when the gateway gives up. A request
// whose X-Gateway-Signature is not the HMAC of its body is refused with
// 401 and counted.
type toolServer struct {
	srv    *httptest.Server
	closed chan struct{}

	held holder // lookup

	mu       sync.Mutex
	requests []toolRequest
	badSigs  int
	answered []time.Time // when lookup's answers were written
}

func newToolServer(tb testing.TB) *toolServer {
	ts := &toolServer{closed: make(chan struct{})}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	tb.Cleanup(func() {
		close(ts.closed) // releases the held and slow requests
		ts.srv.Close()
	})
	return ts
}

func (ts *toolServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	want := httptool.Sign([]byte(toolSecret), body)
	if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Gateway-Signature"))) {
		ts.mu.Lock()
		ts.badSigs++
		ts.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var req toolRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ts.mu.Lock()
	ts.requests = append(ts.requests, req)
	ts.mu.Unlock()
	switch r.URL.Path {
	case "/lookup":
		if !ts.held.wait(r.Context(), ts.closed) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, toolAnswer)
		w.(http.Flusher).Flush()
		ts.mu.Lock()
		ts.answered = append(ts.answered, time.Now())
		ts.mu.Unlock()
	case "/broken":
		http.Error(w, "database down", http.StatusInternalServerError)
	case "/slow":
		select {
		case <-r.Context().Done():
		case <-ts.closed:
		}
	default:
		http.NotFound(w, r)
	}
}

// hold makes lookup wait until the returned function is called (or the
// test ends).
func (ts *toolServer) hold() (release func()) { return ts.held.hold() }

// holder holds requests while a hold is on.
type holder struct {
	mu   sync.Mutex
	gate chan struct{} // closed when the hold is released; nil when none is on
}

// hold starts a hold; release ends it.
func (h *holder) hold() (release func()) {
	gate := make(chan struct{})
	h.mu.Lock()
	h.gate = gate
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			h.gate = nil
			h.mu.Unlock()
			close(gate)
		})
	}
}

// wait blocks while a hold is on, until it is released or closed is
// closed; it returns false when ctx is done first.
func (h *holder) wait(ctx context.Context, closed <-chan struct{}) bool {
	h.mu.Lock()
	gate := h.gate
	h.mu.Unlock()
	if gate == nil {
		return true
	}
	select {
	case <-gate:
	case <-closed:
	case <-ctx.Done():
		return false
	}
	return true
}

// received returns the requests with a good signature, in order.
func (ts *toolServer) received() []toolRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]toolRequest(nil), ts.requests...)
}

// badSignatures counts the requests refused for their signature.
func (ts *toolServer) badSignatures() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.badSigs
}

// answers returns when lookup's answers were written.
func (ts *toolServer) answers() []time.Time {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]time.Time(nil), ts.answered...)
}

// toolsYAML is the tools file of the tool tests, for a tool server at
// base.
const toolsYAML = `tools:
  - name: lookup
    description: Free tables for a date.
    parameters:
      type: object
      properties: {date: {type: string}}
      required: [date]
    url: BASE/lookup
  - name: broken
    description: A tool whose server fails.
    parameters: {type: object, properties: {}}
    url: BASE/broken
  - name: slow
    description: A tool that never answers in time.
    parameters: {type: object, properties: {}}
    url: BASE/slow
    timeout: 300ms
`

// withTools returns a Config edit that gives the gateway the tools of ts:
// a tools file written to a temporary directory and read as the gateway
// reads it at start (configs.Load with TOOLS_FILE).
func withTools(tb testing.TB, ts *toolServer) func(*configs.Config) {
	tb.Helper()
	dir := tb.TempDir()
	path := filepath.Join(dir, "tools.yaml")
	require.NoError(tb, os.WriteFile(path, []byte(strings.ReplaceAll(toolsYAML, "BASE", ts.srv.URL)), 0o600))
	env := map[string]string{
		"OPENAI_API_KEY": "sk-e2e-tools", "TWILIO_AUTH_TOKEN": "e2e-tools-token",
		"TOOLS_FILE": path, "TOOLS_SIGNING_SECRET": toolSecret,
	}
	loaded, err := configs.Load(configs.LoadOptions{Getenv: func(k string) string { return env[k] }, Dir: dir})
	require.NoError(tb, err)
	require.Len(tb, loaded.Tools.Tools, 3)
	return func(c *configs.Config) {
		c.ToolsFile, c.Tools, c.ToolsSigningSecret = path, loaded.Tools, toolSecret
	}
}

// twilioSim is the Twilio REST simulator of the call tests, reached
// through a proxy that can hold the answers to call updates.
type twilioSim struct {
	*twiliorest.Server
	closed chan struct{}
	held   holder // answers to call updates
}

// holdCallAnswers makes the answers to call updates wait (the updates are
// made) until release is called or the test ends: Twilio may end a call's
// media stream before its answer to the update arrives.
func (tw *twilioSim) holdCallAnswers() (release func()) { return tw.held.hold() }

// withTwilio starts a Twilio REST simulator for calls and returns it and a
// Config edit that points the gateway at it (call control, and texting
// with TWILIO_FROM).
func withTwilio(tb testing.TB) (*twilioSim, func(*configs.Config)) {
	tw := &twilioSim{Server: twiliorest.New(twiliorest.Options{AuthToken: callAuthToken}), closed: make(chan struct{})}
	target, err := url.Parse(tw.URL())
	require.NoError(tb, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(res *http.Response) error {
		if strings.Contains(res.Request.URL.Path, "/Calls/") {
			tw.held.wait(res.Request.Context(), tw.closed)
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	tb.Cleanup(func() {
		close(tw.closed)
		srv.Close()
		tw.Close()
	})
	return tw, func(c *configs.Config) {
		c.TwilioAccountSID, c.TwilioAPIBaseURL = tw.AccountSID(), srv.URL
	}
}

// edits applies each of fs in turn.
func edits(fs ...func(*configs.Config)) func(*configs.Config) {
	return func(c *configs.Config) {
		for _, f := range fs {
			f(c)
		}
	}
}

// toolModel is a model session that can call tools: both simulators'
// sessions are.
type toolModel interface {
	CallTool(ctx context.Context, call ports.ToolCall) error
	ToolResults() []ports.ToolResult
}

// callTool makes the model call the tool name with the JSON arguments
// args, as call id.
func (e *callEnv) callTool(s modelSession, id, name, args string) {
	e.tb.Helper()
	require.NoError(e.tb, s.(toolModel).CallTool(e.ctx, ports.ToolCall{ID: id, Name: name, Arguments: json.RawMessage(args)}))
}

// toolResult waits for the result of call id at the model and returns
// its output as the model reads it (an error result is an output too).
func (e *callEnv) toolResult(s modelSession, id string) string {
	e.tb.Helper()
	var out string
	e.until("the result of "+id+" at the model", func() bool {
		for _, r := range s.(toolModel).ToolResults() {
			if r.CallID == id {
				out = r.Output
				return true
			}
		}
		return false
	})
	return out
}

// toolsUsed returns the tools of a call summary as "name:outcome".
func toolsUsed(t *testing.T, summary map[string]any) []string {
	t.Helper()
	list, ok := summary["tools"].([]any)
	require.True(t, ok, "the summary lists the tools: %v", summary)
	var out []string
	for _, u := range list {
		m := u.(map[string]any)
		out = append(out, m["name"].(string)+":"+m["outcome"].(string))
	}
	return out
}

// assertSigned requires that the tool server refused no request for its
// signature.
func assertSigned(t *testing.T, ts *toolServer) {
	t.Helper()
	assert.Zero(t, ts.badSignatures(), "every tool request is signed with TOOLS_SIGNING_SECRET")
}

// goesOn waits until the gateway has asked the model n times to go on
// after tool results (Realtime: response.create; GPT-Live: the backend's
// response.create, taken), so that the model's next call does not race
// the request: a model calls tools only while it responds.
func (e *callEnv) goesOn(s modelSession, n int) {
	e.tb.Helper()
	count := s.Responds
	if l, ok := s.(liveSession); ok {
		count = l.Creates
	}
	e.until("the model asked to go on", func() bool { return count() >= n })
}
