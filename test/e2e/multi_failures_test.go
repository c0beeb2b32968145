package e2e_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/store/storetest"
	"github.com/convgateway/gateway/configs"
)

// What users are told while a store is down (app's and httpapi's texts).
const (
	multiUnavailable = "Sorry, the service is temporarily unavailable. Please try again in a few minutes."
	multiCallApology = "Sorry, we cannot take your call right now. Please try again later."
	multiAfterStream = "Sorry, the assistant can't continue this call. Please call again later. Goodbye."
)

// multiDBPassword is put in DATABASE_URL to check that it never reaches a
// log; the test server trusts loopback connections and never asks for it.
const multiDBPassword = "e2e-Secret-pw"

// multiProxies returns loopback proxies to the real PostgreSQL and Redis,
// which a test stops and starts to take a server away and bring it back.
func multiProxies(t *testing.T) (pg, rd *storetest.Proxy) {
	t.Helper()
	pgURL, err := url.Parse(multiPostgresURL(t))
	require.NoError(t, err)
	rdURL, err := url.Parse(multiRedisURL(t))
	require.NoError(t, err)
	return storetest.NewProxy(t, pgURL.Host), storetest.NewProxy(t, rdURL.Host)
}

// multiThrough points the Config's stores at the proxies, with a password
// in DATABASE_URL.
func multiThrough(t *testing.T, pg, rd *storetest.Proxy) func(*configs.Config) {
	return func(c *configs.Config) {
		u, err := url.Parse(storetest.WithHost(t, c.DatabaseURL, pg.Addr()))
		require.NoError(t, err)
		u.User = url.UserPassword(u.User.Username(), multiDBPassword)
		c.DatabaseURL = u.String()
		c.RedisURL = storetest.WithHost(t, c.RedisURL, rd.Addr())
	}
}

// noSecrets checks that no instance logged the database password.
func (m *multiEnv) noSecrets() {
	m.tb.Helper()
	for _, g := range m.gws {
		assert.NotContains(m.tb, g.logs.String(), multiDBPassword, "instance %s logged the database password", g.name)
	}
}

// TestMultiStoresDownAtStart: PostgreSQL and Redis are both down when two
// instances start. They start all the same; each log says which stores
// are down; /ready answers 503 naming the failed checks, and names the
// one still down when the other is back; meanwhile a message gets a
// polite text and a call a spoken apology. When the servers are back the
// instances become ready without a restart (PostgreSQL is migrated then),
// log it, and serve messages and calls across instances.
func TestMultiStoresDownAtStart(t *testing.T) {
	pg, rd := multiProxies(t)
	pg.Stop()
	rd.Stop()
	m := newMultiEnv(t, 2, multiThrough(t, pg, rd))
	a, b := m.gws[0], m.gws[1]

	for _, g := range m.gws {
		m.logged(g, `"level":"ERROR"`, "the PostgreSQL thread store is unavailable at start", pg.Addr())
		m.logged(g, `"level":"ERROR"`, "the Redis token store is unavailable at start", rd.Addr())
		m.requireReady(g, http.StatusServiceUnavailable, map[string]string{"threads": "failed", "tokens": "failed"})
	}

	assert.Equal(t, []string{multiUnavailable}, a.post(msgInbound{Sid: "SMdown", Body: "anyone there?"}),
		"a message is answered politely")
	m.logged(a, "idempotency store failed", `"message_sid":"SMdown"`)
	_, answer := m.placeCall(a, 1)
	assert.Equal(t, []string{"Say", "Hangup"}, answer.Verbs, "a call is answered with an apology, not connected")
	assert.Equal(t, []string{multiCallApology}, answer.Say)
	assert.Zero(t, m.assistantCalls())

	rd.Start()
	m.until("Redis ready on B while PostgreSQL is still down", func() bool {
		code, checks, err := b.ready(m.ctx)
		return err == nil && code == http.StatusServiceUnavailable && checks["tokens"] == "ok" && checks["threads"] == "failed"
	})
	pg.Start()
	for _, g := range m.gws {
		m.waitReady(g)
		m.logged(g, "the PostgreSQL thread store answers again")
		m.logged(g, "the Redis token store answers again")
	}
	assert.Equal(t, 1, m.count("schema_migrations", "version = 1"), "the schema was migrated once the database answered")

	assert.Equal(t, []string{"echo: back?"}, b.post(msgInbound{Sid: "SMback", Body: "back?"}))
	sid, answer := m.placeCall(a, 2)
	caller := m.dial(b, answer)
	sess := m.connect(b, caller, sid, answer)
	require.NoError(t, caller.Audio(m.ctx, 20, multiQuiet))
	m.until("the caller's audio at B's model", func() bool { return sess.Frames() == 1 })
	require.NoError(t, caller.HangUp(m.ctx))
	m.noSecrets()
}

// TestMultiRedisDownMidCall: Redis goes away while calls are under way.
// A call already connected goes on (its token was consumed at its start;
// the token store is not needed after that). A call whose webhook A
// answered before the outage cannot have its token checked when its
// stream reaches B: B ends the stream normally (not as a policy
// violation), so Twilio moves on to the apology after <Connect>, logs why,
// and opens no Realtime session. A call coming in during the outage is
// answered with a spoken apology. When Redis is back both instances are
// ready and calls go through again.
func TestMultiRedisDownMidCall(t *testing.T) {
	pg, rd := multiProxies(t)
	m := newMultiEnv(t, 2, multiThrough(t, pg, rd))
	a, b := m.gws[0], m.gws[1]

	sid1, answer1 := m.placeCall(a, 1)
	live := m.dial(b, answer1)
	sess1 := m.connect(b, live, sid1, answer1)
	sid2, answer2 := m.placeCall(a, 2)
	require.Equal(t, []string{multiAfterStream}, answer2.Say, "what Twilio plays if the gateway ends the stream")

	rd.Stop()
	require.NoError(t, live.Audio(m.ctx, 20, multiQuiet))
	m.until("the live call's audio at B's model", func() bool { return sess1.Frames() == 1 })

	sessions := len(b.rt.Sessions())
	caller2 := m.dial(b, answer2)
	require.NoError(t, caller2.Start(m.ctx, callInfo(sid2, answer2.Params)))
	assert.Equal(t, int(websocket.StatusNormalClosure), m.closedWith(caller2),
		"a normal end of <Connect>, so that the caller hears the apology; not a policy violation")
	line := m.logged(b, `"msg":"media stream refused"`, `"reason":"token_store_unavailable"`, `"call_id":"`+sid2+`"`)
	assert.Contains(t, line, "redisstore: consume", "the log says which store failed")
	assert.Equal(t, sessions, len(b.rt.Sessions()), "no Realtime session for a stream whose token was not checked")

	_, answer3 := m.placeCall(a, 3)
	assert.Equal(t, []string{"Say", "Hangup"}, answer3.Verbs, "a call coming in during the outage hears an apology")
	assert.Equal(t, []string{multiCallApology}, answer3.Say)
	m.logged(a, `"msg":"httpapi: answer call"`, "redisstore: issue", fmt.Sprintf(`"call_sid":"CA%032d"`, 3))
	m.requireReady(a, http.StatusServiceUnavailable, map[string]string{"threads": "ok", "tokens": "failed"})

	ended, _ := live.Closed()
	assert.False(t, ended, "the live call was not ended")
	require.NoError(t, live.Audio(m.ctx, 40, multiQuiet))
	m.until("the live call's audio at B's model during the outage", func() bool { return sess1.Frames() == 2 })

	rd.Start()
	m.waitReady(a)
	m.waitReady(b)
	sid4, answer4 := m.placeCall(a, 4)
	caller4 := m.dial(b, answer4)
	sess4 := m.connect(b, caller4, sid4, answer4)
	require.NoError(t, caller4.Audio(m.ctx, 20, multiQuiet))
	m.until("the new call's audio at B's model", func() bool { return sess4.Frames() == 1 })
	require.NoError(t, caller4.HangUp(m.ctx))
	require.NoError(t, live.HangUp(m.ctx))
	m.noSecrets()
}

// TestMultiPostgresDownMidMessage: PostgreSQL goes away while A is
// preparing an answer (holding the user's lock in the database) and comes
// back. The answer being prepared is still delivered; a message reaching B
// during the outage gets a polite text at once (its delivery cannot be
// recorded, so it is not processed); /ready names the thread store and
// the log says it stopped answering. When the database is back the
// instances serve the user again, on the same thread.
func TestMultiPostgresDownMidMessage(t *testing.T) {
	pg, rd := multiProxies(t)
	through := multiThrough(t, pg, rd)
	m := newMultiEnv(t, 2, func(c *configs.Config) {
		through(c)
		multiShortInlineTimeout(c)
	})
	a, b := m.gws[0], m.gws[1]

	release := m.replies.hold("first")
	assert.Empty(t, a.post(msgInbound{Sid: "SMfirst", Body: "first"}), "answered later")
	release()
	m.waitSent(1)
	release = m.replies.hold("second")
	assert.Empty(t, a.post(msgInbound{Sid: "SMsecond", Body: "second"}))
	m.waitAsked("second")

	pg.Stop()
	assert.Equal(t, []string{multiUnavailable}, b.post(msgInbound{Sid: "SMthird", Body: "third"}),
		"during the outage a message is answered politely at once")
	line := m.logged(b, `"msg":"message not processed: idempotency store failed"`, `"message_sid":"SMthird"`)
	assert.Contains(t, line, "postgres: first seen", "the log says which store failed")
	for _, g := range m.gws {
		m.requireReady(g, http.StatusServiceUnavailable, map[string]string{"threads": "failed", "tokens": "ok"})
		m.logged(g, "the PostgreSQL thread store stopped answering")
	}
	release()
	sent := m.waitSent(2)
	assert.Equal(t, "echo: second", sent[1].Body, "the answer being prepared when the database went away is delivered")

	pg.Start()
	m.waitReady(a)
	m.waitReady(b)
	m.logged(b, "the PostgreSQL thread store answers again")
	// A pooled connection that broke in the outage fails once when it is
	// next used (pgxpool pings only connections idle for over a second):
	// the user may be told to try again, as a user would.
	tries := 0
	release = m.replies.hold("fourth") // so that a message taken in is answered later
	m.until("B serving the user again", func() bool {
		tries++
		ans, err := b.postAnswer(msgInbound{Sid: fmt.Sprintf("SMfourth-%d", tries), Body: "fourth"})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, ans.Status, ans.Body)
		if len(ans.Messages) == 0 {
			return true // taken: the answer comes later
		}
		require.Equal(t, []string{multiUnavailable}, ans.Messages)
		return false
	})
	t.Logf("messages sent until one was taken after the database came back: %d", tries)
	release()
	m.waitSent(3)
	for _, g := range m.gws {
		g.stop()
	}

	assert.Equal(t, []string{"echo: first", "echo: second", "echo: fourth"}, m.sentBodies())
	assert.Equal(t, 1, m.threadsCreated(), "the user's thread survived the outage")
	assert.Equal(t, msgHistory("first", "second", "fourth"), m.openai.History(m.replies.threadOf("first")))
	m.noSecrets()
}
