package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/store/storetest"
	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/realtimesim"
	"github.com/convgateway/gateway/test/testlog"
)

// The multi-instance tests run several gateways, as a deployment behind a
// load balancer does, on a real PostgreSQL and Redis (TEST_POSTGRES_URL,
// TEST_REDIS_URL; see the README, "Running several instances"). Without
// them they skip, or fail when CI=true (storetest.Require). Each test has a
// PostgreSQL schema (DATABASE_SCHEMA) and a Redis key prefix
// (REDIS_KEY_PREFIX) of its own, so that runs sharing the servers never
// see each other, and removes them when it ends.

// multiWait bounds every wait of the multi-instance tests: generous, for a
// busy two-core machine, and finite, so that a bug fails instead of hanging.
const multiWait = 60 * time.Second

// The parties of the multi-instance calls.
const (
	multiCaller  = "+15551230042"
	multiCallee  = "+15550009999"
	multiAccount = "AC00000000000000000000000000000042"
)

// multiPostgresURL returns the PostgreSQL the tests use.
func multiPostgresURL(tb testing.TB) string {
	tb.Helper()
	return storetest.Require(tb, "PostgreSQL", "TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// multiRedisURL returns the Redis the tests use.
func multiRedisURL(tb testing.TB) string {
	tb.Helper()
	return storetest.Require(tb, "Redis", "TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
}

// multiRandom returns 16 random hex digits.
func multiRandom() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// multiEnv is the world of several gateway instances: the messaging
// simulators and Config of an msgEnv (shared, as OpenAI and Twilio are),
// pointed at PostgreSQL and Redis under a schema and a key prefix of the
// test's own, and the instances, each with a Realtime simulator and a log
// of its own.
type multiEnv struct {
	*msgEnv
	ctx      context.Context
	pgURL    string // the real server, directly (not through a proxy)
	redisURL string
	schema   string
	prefix   string
	gws      []*multiGateway
}

// multiGateway is one instance: a served gateway, its Realtime simulator
// and its log.
type multiGateway struct {
	*msgGateway
	name string
	rt   *realtimesim.Server
	logs *testlog.Buffer
}

// newMultiEnv starts n instances sharing the test's schema and key
// prefix. edit, when not nil, changes the Config (after the stores are
// set, so it may point them elsewhere, at a proxy for example) before it
// is validated. Everything stops, and the schema and keys are removed,
// when the test ends.
func newMultiEnv(tb testing.TB, n int, edit func(*configs.Config)) *multiEnv {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), multiWait)
	tb.Cleanup(cancel)
	m := &multiEnv{
		ctx:      ctx,
		pgURL:    multiPostgresURL(tb),
		redisURL: multiRedisURL(tb),
		schema:   "gw_e2e_" + multiRandom(),
		prefix:   "gateway-e2e-" + multiRandom() + ":",
	}
	// Registered first, so it runs last: after every gateway has closed
	// its stores.
	tb.Cleanup(func() { m.dropSchemaAndKeys() })
	m.msgEnv = newMessagingEnv(tb, configs.BackendResponses, func(c *configs.Config) {
		c.DatabaseURL, c.DatabaseSchema = m.pgURL, m.schema
		c.RedisURL, c.RedisKeyPrefix = m.redisURL, m.prefix
		if edit != nil {
			edit(c)
		}
	})
	for i := range n {
		m.gws = append(m.gws, m.start(string(rune('A'+i))))
	}
	return m
}

// start builds an instance from the shared Config with a Realtime
// simulator of its own, and opts, and serves it on a loopback port until
// the test ends.
func (m *multiEnv) start(name string, opts ...wire.Option) *multiGateway {
	tb := m.tb
	tb.Helper()
	rt := realtimesim.New(realtimesim.Options{APIKey: string(m.cfg.OpenAIAPIKey)})
	tb.Cleanup(rt.Close)
	cfg := m.cfg
	cfg.OpenAIRealtimeURL = rt.URL()
	require.NoError(tb, cfg.Validate())
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("instance", name)
	gw, err := wire.Build(m.ctx, cfg, log, opts...)
	require.NoError(tb, err, "instance %s", name)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		require.NoError(tb, errors.Join(err, gw.Close()))
	}
	mg := &msgGateway{env: m.msgEnv, gw: gw, url: "http://" + ln.Addr().String(), served: make(chan error, 1)}
	go func() { mg.served <- gw.Serve(ln) }()
	tb.Cleanup(func() {
		m.replies.releaseAll() // a held reply would hold the drain
		mg.stop()
	})
	return &multiGateway{msgGateway: mg, name: name, rt: rt, logs: logs}
}

// dropSchemaAndKeys removes what the test left in PostgreSQL and Redis.
func (m *multiEnv) dropSchemaAndKeys() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, m.pgURL); err == nil {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{m.schema}.Sanitize()+" CASCADE"); err != nil {
			m.tb.Errorf("drop schema %s: %v", m.schema, err)
		}
		_ = conn.Close(ctx)
	} else {
		m.tb.Errorf("drop schema %s: %v", m.schema, err)
	}
	o, err := redis.ParseURL(m.redisURL)
	if err != nil {
		m.tb.Errorf("parse redis url: %v", err)
		return
	}
	c := redis.NewClient(o)
	defer c.Close()
	keys, err := multiKeys(ctx, c, m.prefix)
	if err == nil && len(keys) > 0 {
		err = c.Del(ctx, keys...).Err()
	}
	if err != nil {
		m.tb.Errorf("delete keys %s*: %v", m.prefix, err)
	}
}

// redisKeys lists the keys under the test's prefix.
func (m *multiEnv) redisKeys() []string {
	m.tb.Helper()
	o, err := redis.ParseURL(m.redisURL)
	require.NoError(m.tb, err)
	c := redis.NewClient(o)
	defer c.Close()
	keys, err := multiKeys(m.ctx, c, m.prefix)
	require.NoError(m.tb, err)
	return keys
}

// multiKeys lists the keys under prefix.
func multiKeys(ctx context.Context, c *redis.Client, prefix string) ([]string, error) {
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// count runs a count(*) query on a table of the test's schema.
func (m *multiEnv) count(table, where string, args ...any) int {
	m.tb.Helper()
	conn, err := pgx.Connect(m.ctx, m.pgURL)
	require.NoError(m.tb, err)
	defer conn.Close(context.Background())
	q := "SELECT count(*) FROM " + pgx.Identifier{m.schema, table}.Sanitize()
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	require.NoError(m.tb, conn.QueryRow(m.ctx, q, args...).Scan(&n))
	return n
}

// until polls cond until it holds, failing the test after multiWait.
func (m *multiEnv) until(what string, cond func() bool) {
	m.tb.Helper()
	for !cond() {
		select {
		case <-m.ctx.Done():
			m.tb.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ready GETs the instance's /ready and returns its status and checks.
func (g *multiGateway) ready(ctx context.Context) (int, map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/ready", nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return res.StatusCode, nil, err
	}
	return res.StatusCode, body.Checks, nil
}

// requireReady requires /ready's status and the state of each check.
func (m *multiEnv) requireReady(g *multiGateway, status int, checks map[string]string) {
	m.tb.Helper()
	code, got, err := g.ready(m.ctx)
	require.NoError(m.tb, err)
	require.Equal(m.tb, status, code, "/ready of instance %s: %v", g.name, got)
	require.Equal(m.tb, checks, got, "/ready checks of instance %s", g.name)
}

// waitReady waits until the instance's /ready answers 200.
func (m *multiEnv) waitReady(g *multiGateway) {
	m.tb.Helper()
	m.until("instance "+g.name+" ready", func() bool {
		code, _, err := g.ready(m.ctx)
		return err == nil && code == http.StatusOK
	})
}

// logged waits until a line of the instance's log contains every one of
// parts, and returns it.
func (m *multiEnv) logged(g *multiGateway, parts ...string) string {
	m.tb.Helper()
	var found string
	m.until("a log line of instance "+g.name+" with "+strings.Join(parts, ", "), func() bool {
		for line := range strings.SplitSeq(g.logs.String(), "\n") {
			ok := line != ""
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				found = line
				return true
			}
		}
		return false
	})
	return found
}

// placeCall POSTs a signed voice webhook for a new call to the instance,
// as Twilio does through the load balancer (signed over PUBLIC_URL), and
// returns the call sid and the TwiML answer.
func (m *multiEnv) placeCall(g *multiGateway, n int) (string, mediasim.Answer) {
	m.tb.Helper()
	sid := fmt.Sprintf("CA%032d", n)
	a, err := mediasim.PlaceCall(m.ctx, mediasim.CallRequest{
		URL: g.url + "/incoming-call", SignedURL: m.cfg.PublicURL + "/incoming-call",
		AuthToken: string(m.cfg.TwilioAuthToken), CallSid: sid, AccountSid: multiAccount,
		From: multiCaller, To: multiCallee,
	})
	require.NoError(m.tb, err)
	return sid, a
}

// dial opens the media stream of answer a on the instance, as Twilio does
// when the load balancer sends the WebSocket there: the TwiML's URL is the
// public one (PUBLIC_URL), which signs the upgrade.
func (m *multiEnv) dial(g *multiGateway, a mediasim.Answer) *mediasim.Caller {
	m.tb.Helper()
	require.Equal(m.tb, []string{"Connect", "Say", "Hangup"}, a.Verbs, "the call is connected to a stream")
	public, err := url.Parse(a.StreamURL)
	require.NoError(m.tb, err)
	require.Equal(m.tb, strings.Replace(m.cfg.PublicURL, "https://", "wss://", 1)+"/media-stream", a.StreamURL,
		"the stream URL is the public one, the same whichever instance answered")
	c, err := mediasim.Dial(m.ctx, mediasim.Options{
		URL:       "ws://" + strings.TrimPrefix(g.url, "http://") + public.Path,
		Signature: mediasim.StreamSignature(string(m.cfg.TwilioAuthToken), a.StreamURL),
	})
	require.NoError(m.tb, err)
	m.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// connect starts the stream c for call sid with a's parameters and waits
// until the instance's Realtime simulator has the call's session,
// configured; it returns the session. The call must have been answered by
// another instance (g has not pre-warmed a session for it), so the session
// is the first one g opens from now on.
func (m *multiEnv) connect(g *multiGateway, c *mediasim.Caller, sid string, a mediasim.Answer) *realtimesim.Session {
	m.tb.Helper()
	before := len(g.rt.Sessions())
	require.NoError(m.tb, c.Start(m.ctx, callInfo(sid, a.Params)))
	m.until("a Realtime session on instance "+g.name, func() bool { return len(g.rt.Sessions()) > before })
	s := g.rt.Sessions()[before]
	_, err := s.WaitConfig(m.ctx)
	require.NoError(m.tb, err)
	return s
}

// closedWith waits until the instance closed the caller's stream and
// returns the close code.
func (m *multiEnv) closedWith(c *mediasim.Caller) int {
	m.tb.Helper()
	select {
	case <-c.Done():
	case <-m.ctx.Done():
		m.tb.Fatal("the gateway did not close the stream")
	}
	_, code := c.Closed()
	return code
}
