package wire

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/twiliorest"
	"github.com/convgateway/gateway/test/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(t *testing.T) configs.Config {
	t.Helper()
	cfg := configs.Defaults()
	cfg.OpenAIAPIKey, cfg.TwilioAuthToken = "sk-test", "auth-token"
	cfg.OpenAIBaseURL = "http://127.0.0.1:1/v1" // never reached in these tests
	cfg.OpenAIRealtimeURL = configs.RealtimeURL(cfg.OpenAIBaseURL, cfg.OpenAIRealtimeModel)
	cfg.DatabaseURL = filepath.Join(t.TempDir(), "gw.db")
	require.NoError(t, cfg.Validate())
	return cfg
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// serve runs g on a loopback listener until the test ends.
func serve(t *testing.T, g *Gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, g.Shutdown(context.Background()))
		require.NoError(t, <-done)
		require.NoError(t, g.Close())
	})
	return "http://" + ln.Addr().String()
}

func TestBuildDefaultsServeReady(t *testing.T) {
	cfg := testConfig(t)
	g, err := Build(context.Background(), cfg, discard())
	require.NoError(t, err)
	base := serve(t, g)

	res, err := http.Get(base + "/ready")
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	assert.Equal(t, http.StatusOK, res.StatusCode, string(body))
	assert.Contains(t, string(body), `"threads":"ok"`)
	assert.Contains(t, string(body), `"tokens":"ok"`)
	_, err = os.Stat(cfg.DatabaseURL)
	assert.NoError(t, err, "the SQLite thread store is the default")
}

// TestBuildWiresMessagesThroughInjectedAdapters is the component-test twin:
// the same wiring, with fakes in place of OpenAI and the stores.
func TestBuildWiresMessagesThroughInjectedAdapters(t *testing.T) {
	cfg := testConfig(t)
	cfg.PublicURL = "https://gw.example.com"
	assistant := fake.NewChatAssistant()
	assistant.QueueReplies("Hello Ana!")
	g, err := Build(context.Background(), cfg, discard(),
		WithChatAssistant(assistant),
		WithThreadStore(fake.NewThreadStore()),
		WithTokenStore(fake.NewTokenStore()),
		WithMessageSender(fake.NewMessageSender()),
		WithCalls(fake.NewCalls()),
	)
	require.NoError(t, err)
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	defer func() { require.NoError(t, g.Shutdown(context.Background())) }()

	assert.Equal(t, []string{"Hello Ana!"}, postMessage(t, srv.URL, cfg, "SM1", "hi"))
	require.Len(t, assistant.Threads(), 1)
	assert.Equal(t, []string{"hi"}, assistant.Texts(assistant.Threads()[0]))
	_, err = os.Stat(cfg.DatabaseURL)
	assert.True(t, os.IsNotExist(err), "an injected thread store replaces SQLite")
}

// postMessage posts a signed WhatsApp webhook and returns the inline
// replies.
func postMessage(t *testing.T, base string, cfg configs.Config, sid, text string) []string {
	t.Helper()
	form := url.Values{"MessageSid": {sid}, "AccountSid": {"AC1"}, "From": {"whatsapp:+15551234567"}, "To": {"whatsapp:+14155238886"}, "Body": {text}, "NumMedia": {"0"}}
	req, err := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(signature.Header, signature.Sign(string(cfg.TwilioAuthToken), cfg.PublicURL+"/webhook", form))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var twiml struct {
		Messages []string `xml:"Message"`
	}
	require.NoError(t, xml.NewDecoder(res.Body).Decode(&twiml))
	return twiml.Messages
}

// TestBuildPicksTheAssistantBackend runs the real OpenAI adapters, chosen by
// ASSISTANT_BACKEND, against the OpenAI REST simulator.
func TestBuildPicksTheAssistantBackend(t *testing.T) {
	for _, tt := range []struct{ backend, route string }{
		{configs.BackendResponses, openairest.RouteCreateConversation},
		{configs.BackendAssistants, openairest.RouteCreateThread},
	} {
		t.Run(tt.backend, func(t *testing.T) {
			sim := openairest.New(openairest.Options{})
			defer sim.Close()
			cfg := testConfig(t)
			cfg.PublicURL = "https://gw.example.com"
			cfg.OpenAIBaseURL, cfg.OpenAIAPIKey = sim.URL(), configs.Secret(sim.APIKey())
			cfg.AssistantBackend, cfg.OpenAIAssistantID = tt.backend, "asst_sim"
			require.NoError(t, cfg.Validate())
			g, err := Build(context.Background(), cfg, discard())
			require.NoError(t, err)
			base := serve(t, g)

			assert.Equal(t, []string{"echo: hi"}, postMessage(t, base, cfg, "SM1", "hi"))
			assert.Equal(t, []string{"echo: again"}, postMessage(t, base, cfg, "SM2", "again"))
			assert.Equal(t, 1, sim.Calls(tt.route), "one thread for the user, reused")
		})
	}
}

// TestBuildSlowReplyGoesThroughTwilioREST: an answer that misses
// REPLY_INLINE_TIMEOUT is sent by the real Twilio sender to
// TWILIO_API_BASE_URL.
func TestBuildSlowReplyGoesThroughTwilioREST(t *testing.T) {
	twilio := twiliorest.New(twiliorest.Options{})
	defer twilio.Close()
	cfg := testConfig(t)
	cfg.PublicURL = "https://gw.example.com"
	cfg.TwilioAccountSID, cfg.TwilioAuthToken, cfg.TwilioAPIBaseURL = twilio.AccountSID(), configs.Secret(twilio.AuthToken()), twilio.URL()
	cfg.ReplyInlineTimeout = 50 * time.Millisecond
	require.NoError(t, cfg.Validate())
	assistant := fake.NewChatAssistant()
	assistant.QueueReplies("Sorry for the wait.")
	release := assistant.Hold()
	g, err := Build(context.Background(), cfg, discard(), WithChatAssistant(assistant))
	require.NoError(t, err)
	base := serve(t, g)

	assert.Empty(t, postMessage(t, base, cfg, "SM1", "hi"), "no inline answer once the deadline passed")
	release()
	require.Eventually(t, func() bool { return len(twilio.Messages()) == 1 }, time.Minute, 10*time.Millisecond)
	got := twilio.Messages()[0]
	assert.Equal(t, "whatsapp:+15551234567", got.To)
	assert.Equal(t, "Sorry for the wait.", got.Body)
}

// drainingCalls is a Calls use case that records its Shutdown.
type drainingCalls struct {
	*fake.Calls
	shutdowns int
}

func (c *drainingCalls) Shutdown(context.Context) error { c.shutdowns++; return nil }

func TestShutdownDrainsTheCallsUseCase(t *testing.T) {
	calls := &drainingCalls{Calls: fake.NewCalls()}
	g, err := Build(context.Background(), testConfig(t), discard(), WithCalls(calls))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()

	require.NoError(t, g.Shutdown(context.Background()))
	require.NoError(t, <-done)
	require.NoError(t, g.Close())
	assert.Equal(t, 1, calls.shutdowns)
}

// TestBuildFailsNamingTheStore: what waiting cannot fix fails the start,
// with an error that names the store and never a password: a DATABASE_URL
// or REDIS_URL that does not parse, a SQLite file that cannot be opened.
func TestBuildFailsNamingTheStore(t *testing.T) {
	tests := []struct {
		name   string
		change func(*configs.Config)
		want   string
		is     error
	}{
		{"redis url", func(c *configs.Config) { c.RedisURL = "redis://gw:secret-pw@127.0.0.1:6379/not-a-db" },
			"Redis token store", ports.ErrInvalidInput},
		{"postgres url", func(c *configs.Config) {
			c.DatabaseURL = "postgres://gw:secret-pw@127.0.0.1:5432/gw?sslmode=bogus"
		}, "PostgreSQL thread store", ports.ErrInvalidInput},
		{"sqlite", func(c *configs.Config) { c.DatabaseURL = filepath.Join(os.DevNull, "gw.db") },
			"SQLite thread store", ports.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.change(&cfg)
			require.NoError(t, cfg.Validate(), "a valid Config: the store's own check refuses it")
			_, err := Build(context.Background(), cfg, discard())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.ErrorIs(t, err, tt.is)
			assert.NotContains(t, err.Error(), "secret-pw")
		})
	}
}

// ready GETs /ready and returns its status and the state of each check.
func ready(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	res, err := http.Get(base + "/ready")
	require.NoError(t, err)
	defer res.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	return res.StatusCode, body.Checks
}

// TestBuildStartsWhileAStoreIsDown: PostgreSQL or Redis not answering at
// start does not stop the gateway: it starts, the log names the store that
// is down (never its password), /ready answers 503 naming its check, and
// a message is answered politely instead of failing.
func TestBuildStartsWhileAStoreIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())

	tests := []struct {
		name   string
		change func(*configs.Config)
		store  string // how the log names it
		check  string // its /ready check
	}{
		{"redis", func(c *configs.Config) { c.RedisURL = "redis://gw:secret-pw@" + closed + "/0" },
			"the Redis token store", "tokens"},
		{"postgres", func(c *configs.Config) {
			c.DatabaseURL = "postgres://gw:secret-pw@" + closed + "/gw?sslmode=disable&connect_timeout=2"
			c.DatabaseSchema = "gw_down"
		}, "the PostgreSQL thread store", "threads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.PublicURL = "https://gw.example.com"
			tt.change(&cfg)
			require.NoError(t, cfg.Validate())
			logs := &testlog.Buffer{}
			log := slog.New(slog.NewJSONHandler(logs, nil))
			assistant := fake.NewChatAssistant()
			g, err := Build(context.Background(), cfg, log, WithChatAssistant(assistant), WithCalls(fake.NewCalls()))
			require.NoError(t, err, "a store that is down does not stop the start")
			base := serve(t, g)

			assert.Contains(t, logs.String(), tt.store+" is unavailable at start", "the log says which store is down")
			code, checks := ready(t, base)
			assert.Equal(t, http.StatusServiceUnavailable, code)
			assert.Equal(t, "failed", checks[tt.check], "/ready names the store's check")
			for name, state := range checks {
				if name != tt.check {
					assert.Equal(t, "ok", state, "the other store is fine")
				}
			}
			if tt.check == "threads" {
				assert.Equal(t, []string{"Sorry, the service is temporarily unavailable. Please try again in a few minutes."},
					postMessage(t, base, cfg, "SM1", "hi"), "the user is answered politely")
				assert.Empty(t, assistant.Threads(), "the assistant was not asked")
			}
			assert.NotContains(t, logs.String(), "secret-pw")
		})
	}
}

// TestStoreCheckLogsOutages: the /ready check of a store logs, naming the
// store, when it stops answering and when it answers again, once each.
func TestStoreCheckLogsOutages(t *testing.T) {
	logs := &testlog.Buffer{}
	store := fake.NewTokenStore()
	c := &storeCheck{name: "the Redis token store", store: store, log: slog.New(slog.NewJSONHandler(logs, nil))}
	ctx := context.Background()

	require.NoError(t, c.Ping(ctx))
	assert.Empty(t, logs.String(), "nothing to say while it answers")
	store.Down(ports.ErrUnavailable)
	require.ErrorIs(t, c.Ping(ctx), ports.ErrUnavailable)
	require.ErrorIs(t, c.Ping(ctx), ports.ErrUnavailable)
	assert.Equal(t, 1, strings.Count(logs.String(), "the Redis token store stopped answering"))
	store.Down(nil)
	require.NoError(t, c.Ping(ctx))
	require.NoError(t, c.Ping(ctx))
	assert.Equal(t, 1, strings.Count(logs.String(), "the Redis token store answers again"))
}

// TestSenderRequestsTimeOut: the gateway's shared HTTP client has no
// timeout (it dials the Realtime WebSockets, which last a call), but a send
// through Twilio's REST API must not hang and hold the user's turn.
func TestSenderRequestsTimeOut(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	cfg := testConfig(t)
	cfg.TwilioAccountSID = "AC00000000000000000000000000000000"
	cfg.TwilioAPIBaseURL = srv.URL
	cfg.TwilioFrom = "whatsapp:+14155238886"
	cfg.TwilioAuthToken = "0123456789abcdef0123456789abcdef"
	shared := &http.Client{}
	s := NewSender(cfg, shared)
	start := time.Now()
	_, err := s.Send(context.Background(), ports.OutboundMessage{To: "whatsapp:+15551234567", Body: "hi"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Less(t, time.Since(start), time.Minute, "bounded by messaging.DefaultTimeout")
	assert.Zero(t, shared.Timeout, "the shared client is not changed")
}
