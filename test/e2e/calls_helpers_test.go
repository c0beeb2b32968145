package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/testlog"
)

// callWait bounds every wait of the call tests: generous, so that a busy
// machine never fails them, and finite, so that a bug fails a test instead
// of hanging it.
const callWait = 30 * time.Second

const (
	callAuthToken = "e2eVoiceAuthToken0123456789abcdef"
	callAPIKey    = "sk-e2e-voice"
	callSystem    = "You answer phone calls in the e2e tests."
	callFrom      = "+15551230001"
	callTo        = "+15550009999"
)

// callEnv is a gateway serving phone calls on a loopback port, the
// simulator of its speech model, and its log. PUBLIC_URL is the gateway's
// own http://127.0.0.1 address, so the TwiML's stream URL is the one to
// dial.
type callEnv struct {
	tb      testing.TB
	ctx     context.Context
	cfg     configs.Config
	backend speechBackend
	model   speechSim
	logs    *testlog.Buffer
	base    string // http://127.0.0.1:port
	seq     atomic.Int64

	stopOnce sync.Once
	stopErr  error
	stopped  atomic.Bool // a test called shutdown itself
	stop     func(drain time.Duration) error
}

// shutdown stops the gateway as SIGTERM does, giving live calls drain; it
// returns what did not finish in time. Later calls return the first
// result.
func (e *callEnv) shutdown(drain time.Duration) error {
	e.stopped.Store(true)
	return e.stopGateway(drain)
}

func (e *callEnv) stopGateway(drain time.Duration) error {
	e.stopOnce.Do(func() { e.stopErr = e.stop(drain) })
	return e.stopErr
}

// modelErrors returns the errors the model reported during the test: the
// gateway's log lines about them and, with Realtime, the error events the
// simulator sent (those the gateway would not report too).
func (e *callEnv) modelErrors() []string {
	var errs []string
	if rt, ok := e.model.(*rtSim); ok {
		errs = rt.events.Errors()
	}
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"model reported an error"`) {
			errs = append(errs, line)
		}
	}
	return errs
}

// serverEvents collects the error events a simulator sent.
type serverEvents struct {
	mu     sync.Mutex
	errors []string
}

func (s *serverEvents) record(b []byte) {
	if !bytes.Contains(b, []byte(`"type":"error"`)) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors = append(s.errors, string(b))
}

// Errors returns the error events the simulator sent.
func (s *serverEvents) Errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errors...)
}

// newCallEnv starts the simulator of backend b (with o) and a gateway
// wired to it; edit, when not nil, changes the Config before it is
// validated. Everything stops when the test ends.
func newCallEnv(tb testing.TB, b speechBackend, o simOptions, edit func(*configs.Config)) *callEnv {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	tb.Cleanup(cancel)
	e := &callEnv{tb: tb, ctx: ctx, backend: b, logs: &testlog.Buffer{}}
	e.model = b.start(tb, o)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	e.base = "http://" + ln.Addr().String()

	cfg := configs.Defaults()
	cfg.OpenAIAPIKey = callAPIKey
	cfg.TwilioAuthToken = callAuthToken
	cfg.PublicURL = e.base
	cfg.OpenAIBaseURL = "http://127.0.0.1:1/v1" // the REST API is not used by calls
	b.point(&cfg, e.model.url())
	cfg.SystemMessage = callSystem
	cfg.Voice = "marin"
	cfg.DatabaseURL = filepath.Join(tb.TempDir(), "gw.db")
	if edit != nil {
		edit(&cfg)
	}
	require.NoError(tb, cfg.Validate())
	e.cfg = cfg

	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := wire.Build(ctx, cfg, log)
	require.NoError(tb, err)
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	e.stop = func(drain time.Duration) error {
		sctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		err := g.Shutdown(sctx)
		require.NoError(tb, <-served)
		require.NoError(tb, g.Close())
		return err
	}
	tb.Cleanup(func() {
		err := e.stopGateway(callWait)
		if !e.stopped.Load() {
			require.NoError(tb, err)
		}
	})
	return e
}

// placeCall POSTs a signed voice webhook for a new call and returns its
// sid and the TwiML answer.
func (e *callEnv) placeCall(from string) (string, mediasim.Answer) {
	e.tb.Helper()
	sid := fmt.Sprintf("CA%032d", e.seq.Add(1))
	a, err := mediasim.PlaceCall(e.ctx, mediasim.CallRequest{
		URL: e.base + "/incoming-call", AuthToken: callAuthToken,
		CallSid: sid, AccountSid: "AC00000000000000000000000000000001", From: from, To: callTo,
	})
	require.NoError(e.tb, err)
	return sid, a
}

// dial opens the media stream of an answer as Twilio does: to the TwiML's
// stream URL, with the upgrade signed.
func (e *callEnv) dial(a mediasim.Answer, clock mediasim.Clock) *mediasim.Caller {
	e.tb.Helper()
	return e.dialWith(a, mediasim.Options{Clock: clock})
}

// dialWith is dial with the caller's options (its URL and signature are
// the answer's).
func (e *callEnv) dialWith(a mediasim.Answer, opts mediasim.Options) *mediasim.Caller {
	e.tb.Helper()
	require.Equal(e.tb, []string{"Connect", "Say", "Hangup"}, a.Verbs, "the call is connected to a stream")
	opts.URL, opts.Signature = a.StreamURL, mediasim.StreamSignature(callAuthToken, a.StreamURL)
	c, err := mediasim.Dial(e.ctx, opts)
	require.NoError(e.tb, err)
	e.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// callInfo is the start of call sid's stream with the parameters params.
func callInfo(sid string, params map[string]string) ports.CallInfo {
	return ports.CallInfo{CallID: sid, Params: params}
}

// call places a call, dials its stream and starts it with the TwiML's
// parameters: a connected call with its caller and the model session it
// uses, configured.
func (e *callEnv) call(clock mediasim.Clock) (*mediasim.Caller, modelSession) {
	e.tb.Helper()
	_, c, s := e.callWith(mediasim.Options{Clock: clock})
	return c, s
}

// callWith is call with the caller's options; it returns the call's sid
// too.
func (e *callEnv) callWith(opts mediasim.Options) (string, *mediasim.Caller, modelSession) {
	e.tb.Helper()
	sid, a := e.placeCall(callFrom)
	c := e.dialWith(a, opts)
	require.NoError(e.tb, c.Start(e.ctx, callInfo(sid, a.Params)))
	return sid, c, e.session()
}

// session waits for the newest model session and its configuration.
func (e *callEnv) session() modelSession {
	e.tb.Helper()
	s, err := e.model.latest(e.ctx)
	require.NoError(e.tb, err)
	_, err = s.configured(e.ctx)
	require.NoError(e.tb, err)
	return s
}

// until polls cond every few milliseconds until it holds, failing the
// test after callWait.
func (e *callEnv) until(what string, cond func() bool) {
	e.tb.Helper()
	for !cond() {
		select {
		case <-e.ctx.Done():
			e.tb.Fatalf("timed out waiting for %s", what)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// stoppedClock is a caller clock that never moves: the caller's playback
// advances only when the test calls PlayOut, so that the test decides
// what the caller has heard, whatever the machine's load.
type stoppedClock struct{}

func (stoppedClock) Now() time.Time { return time.Unix(1_700_000_000, 0) }

// After never fires.
func (stoppedClock) After(time.Duration) <-chan time.Time { return nil }

// logged waits until a log line contains every one of parts.
func (e *callEnv) logged(parts ...string) map[string]any {
	e.tb.Helper()
	var found map[string]any
	e.until("a log line with "+strings.Join(parts, ", "), func() bool {
		for _, line := range strings.Split(e.logs.String(), "\n") {
			ok := line != ""
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				require.NoError(e.tb, json.Unmarshal([]byte(line), &found), line)
				return true
			}
		}
		return false
	})
	return found
}

// summary waits for the call's summary log line.
func (e *callEnv) summary(callSid string) map[string]any {
	e.tb.Helper()
	return e.logged(`"msg":"call ended"`, `"call_id":"`+callSid+`"`)
}

// metrics returns the gateway's /metrics page.
func (e *callEnv) metrics() string {
	e.tb.Helper()
	req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, e.base+"/metrics", nil)
	require.NoError(e.tb, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.tb, err)
	return string(b)
}

// metricsShowing waits until the /metrics page contains every one of
// parts, and returns it. A scrape gathers the metrics one by one,
// concurrently with what counts them (the end of a call counts several).
func (e *callEnv) metricsShowing(parts ...string) string {
	e.tb.Helper()
	var body string
	e.until("the metrics with "+strings.Join(parts, ", "), func() bool {
		body = e.metrics()
		for _, p := range parts {
			if !strings.Contains(body, p) {
				return false
			}
		}
		return true
	})
	return body
}

// closed waits until the gateway closed the caller's stream and returns
// the close code.
func closed(e *callEnv, c *mediasim.Caller) int {
	e.tb.Helper()
	select {
	case <-c.Done():
	case <-e.ctx.Done():
		e.tb.Fatal("the gateway did not close the stream")
	}
	_, code := c.Closed()
	return code
}

// ended waits until the model session's connection has ended and returns
// how long that took.
func ended(e *callEnv, s interface{ Done() <-chan struct{} }) time.Duration {
	e.tb.Helper()
	start := time.Now()
	select {
	case <-s.Done():
	case <-e.ctx.Done():
		e.tb.Fatal("the model session was not closed")
	}
	return time.Since(start)
}

// chunks returns n chunks of ms milliseconds of tone, base64-encoded as
// the models' audio deltas carry them, and the raw mu-law of all of them.
func chunks(n, ms int) ([][]byte, []byte) {
	var out [][]byte
	var raw []byte
	for i := range n {
		b := make([]byte, ms*8)
		for j := range b {
			b[j] = byte(0x10 + (i*7+j)%0x60) // loud, and different per chunk
		}
		raw = append(raw, b...)
		out = append(out, []byte(base64.StdEncoding.EncodeToString(b)))
	}
	return out, raw
}
