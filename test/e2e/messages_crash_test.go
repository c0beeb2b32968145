package e2e_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/store/postgres"
	"github.com/convgateway/gateway/adapters/store/sqlite"
	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/testlog"
)

// The report of an answer lost in a crash, end to end.
//
// A real crash (SIGKILL, OOM, power loss) cannot happen inside a test
// process, and must not: the test would leak every goroutine of the
// crashed gateway. What a crash leaves behind is what matters to the next
// gateway: a delivery recorded in the database and never marked answered,
// owned by an instance whose lease is no longer renewed. The test gets
// there with a gateway that freezes instead: its answer is held by the
// OpenAI simulator and never released, so the gateway never sends it and
// never marks it, and its lease is frozen (msgCrash: neither renewed nor
// released, so that it expires after its ttl; on PostgreSQL its sessions
// end too), exactly as if it had died, for as long as the test needs. Only after the gateways that
// follow it have done their part is it disposed of, with a Shutdown whose
// context is already cancelled: that cancels the held answer at once,
// which (like a crash) marks nothing, and leaves no goroutine behind.

// msgCrashTTL is the lease ttl of the gateways of the crash tests: a
// frozen gateway counts as stopped this long after its last renewal.
const msgCrashTTL = 500 * time.Millisecond

// msgCrash is the database of a gateway the test will "kill": its own
// store, opened apart, whose lease's Renew and Release do nothing once the
// gateway has crashed, as with a dead process. On PostgreSQL the crash also
// ends the gateway's sessions, as a dead process's connections end, which
// releases the user locks it held.
type msgCrash struct {
	ports.Leases
	frozen  atomic.Bool
	session string // application_name of the gateway's PostgreSQL sessions
	pgURL   string
	tb      testing.TB
}

func (c *msgCrash) Renew(ctx context.Context, instance string, ttl time.Duration) error {
	if c.frozen.Load() {
		return nil
	}
	return c.Leases.Renew(ctx, instance, ttl)
}

func (c *msgCrash) Release(ctx context.Context, instance string) error {
	if c.frozen.Load() {
		return nil
	}
	return c.Leases.Release(ctx, instance)
}

// crash stops the lease's renewal, so that the gateway is dead to the
// other gateways once msgCrashTTL has passed, and ends its database
// sessions. The gateway's held answer stays held.
func (c *msgCrash) crash() {
	c.frozen.Store(true)
	if c.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), msgWait)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.pgURL)
	require.NoError(c.tb, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", c.session)
	require.NoError(c.tb, err)
}

// msgCrashable opens the database of e's Config (SQLite or PostgreSQL,
// closed when the test ends, after the gateways) for a gateway that the
// test will crash, and returns it with the options that build the gateway
// on it.
func (e *msgEnv) msgCrashable() (*msgCrash, []wire.Option) {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), msgWait)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	c := &msgCrash{tb: e.tb}
	opts := []wire.Option{wire.WithLeases(c), wire.WithLeaseTTL(msgCrashTTL)}
	if !e.cfg.Postgres() {
		s, err := sqlite.Open(ctx, e.cfg.DatabaseURL, quiet)
		require.NoError(e.tb, err)
		e.tb.Cleanup(func() { _ = s.Close() })
		c.Leases = s
		return c, opts
	}
	c.session, c.pgURL = "gw-crash-"+multiRandom(), e.cfg.DatabaseURL
	u, err := url.Parse(e.cfg.DatabaseURL)
	require.NoError(e.tb, err)
	q := u.Query()
	q.Set("application_name", c.session)
	u.RawQuery = q.Encode()
	s, err := postgres.Open(ctx, u.String(), quiet, postgres.WithSchema(e.cfg.DatabaseSchema))
	require.NoError(e.tb, err)
	e.tb.Cleanup(func() { _ = s.Close() })
	c.Leases = s
	return c, append(opts, wire.WithThreadStore(s))
}

// dispose makes a frozen gateway go away without answering (see above).
func (mg *msgGateway) dispose() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(mg.env.tb, mg.shutdown(ctx), context.Canceled)
}

// msgReportsLog collects the log of one gateway, so that each gateway's
// reports can be told apart.
type msgReportsLog struct {
	buf testlog.Buffer
	log *slog.Logger
}

func newMsgReportsLog() *msgReportsLog {
	l := &msgReportsLog{}
	l.log = slog.New(slog.NewJSONHandler(&l.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return l
}

// entries returns the log lines with message msg, decoded.
func (l *msgReportsLog) entries(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var entry map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &entry), line)
		if entry["msg"] == msg {
			out = append(out, entry)
		}
	}
	return out
}

// reported returns the MessageSids reported as never delivered, in order.
func (l *msgReportsLog) reported(t *testing.T) []string {
	t.Helper()
	var sids []string
	for _, e := range l.entries(t, msgNeverDelivered) {
		assert.Equal(t, "ERROR", e["level"])
		sid, _ := e["message_sid"].(string)
		sids = append(sids, sid)
	}
	return sids
}

// awaitSweeps waits until the gateway has looked for abandoned deliveries
// n more times than when it was called. Sweeps run one after the other, so
// every report of the sweeps before the last is in the log by then.
func (l *msgReportsLog) awaitSweeps(t *testing.T, n int) {
	t.Helper()
	want := len(l.entries(t, msgSwept)) + n
	require.Eventually(t, func() bool { return len(l.entries(t, msgSwept)) >= want }, msgWait, 5*time.Millisecond,
		"waiting for %d more looks for abandoned deliveries", n)
}

// The log messages of the report (app's texts).
const (
	msgNeverDelivered = "answer never delivered: the gateway that took this message stopped before sending it"
	msgSwept          = "looked for answers never delivered"
)

// msgFastReports makes a gateway report a delivery unanswered for 50 ms,
// looking every 10 ms: far less than any real setting, far more than the
// deliveries of the test need to be marked.
var msgFastReports = wire.WithAbandonedReports(50*time.Millisecond, 10*time.Millisecond)

// TestMessagesCrashReportedOnce: an answer lost because its gateway died
// while preparing it is reported, with its MessageSid, by the next gateway
// on the same database, once; answers that were delivered are never
// reported; a third start reports nothing more.
func TestMessagesCrashReportedOnce(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)

	// A gateway that answers, inline and later, and stops gracefully.
	gw := e.newMessagingGateway()
	assert.Equal(t, []string{"echo: inline"}, gw.post(msgInbound{Sid: "SMinline", Body: "inline", IdempotencyToken: "tok-inline"}))
	release := e.replies.hold("later")
	assert.Empty(t, gw.post(msgInbound{Sid: "SMlater", Body: "later"}))
	release()
	e.waitSent(1)
	assert.Equal(t, []string{msgMedia}, gw.post(msgInbound{Sid: "SMmedia", NumMedia: 1}))
	gw.stop()

	// A gateway that takes a message and dies while the assistant is
	// preparing its answer.
	crashedLog := newMsgReportsLog()
	lease, opts := e.msgCrashable()
	crashed := e.newMessagingGatewayWith(crashedLog.log, opts...)
	e.replies.hold("lost in the crash")
	assert.Empty(t, crashed.post(msgInbound{Sid: "SMcrash", Body: "lost in the crash", IdempotencyToken: "tok-crash"}))
	e.waitAsked("lost in the crash")
	lease.crash()

	// The next gateway on the same database reports it, once, when the
	// dead gateway's lease has expired.
	nextLog := newMsgReportsLog()
	next := e.newMessagingGatewayWith(nextLog.log, msgFastReports, wire.WithLeaseTTL(msgCrashTTL))
	require.Eventually(t, func() bool { return len(nextLog.reported(t)) > 0 }, msgWait, 5*time.Millisecond,
		"waiting for the lost answer to be reported")
	nextLog.awaitSweeps(t, 3)
	next.stop()
	assert.Equal(t, []string{"SMcrash"}, nextLog.reported(t), "the lost answer, once; nothing delivered")
	assert.NotContains(t, nextLog.buf.String(), "lost in the crash", "the message text is not logged")
	assert.NotContains(t, nextLog.buf.String(), "tok-crash", "the idempotency token is not reported on its own")

	// The crashed gateway goes away without answering (see above).
	crashed.dispose()
	assert.Empty(t, crashedLog.reported(t))

	// A third start reports nothing more.
	thirdLog := newMsgReportsLog()
	third := e.newMessagingGatewayWith(thirdLog.log, msgFastReports)
	thirdLog.awaitSweeps(t, 3)
	third.stop()
	assert.Empty(t, thirdLog.reported(t))
	assert.Equal(t, []string{"echo: later"}, e.sentBodies(), "the lost answer was never sent")
}
