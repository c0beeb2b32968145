package e2e_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/cmd/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/testlog"
)

// The report of an answer lost in a crash, end to end.
//
// A real crash (SIGKILL, OOM, power loss) cannot happen inside a test
// process, and must not: the test would leak every goroutine of the
// crashed gateway. What a crash leaves behind is what matters to the next
// gateway: a delivery recorded in the database and never marked answered.
// The test gets there with a gateway that freezes instead: its answer is
// held by the OpenAI simulator and never released, so the gateway never
// sends it and never marks it, exactly as if it had died, for as long as
// the test needs. Only after the gateways that follow it have made their
// reports is it disposed of, with a Shutdown whose context is already
// cancelled: that cancels the held answer at once, which (like a crash)
// marks nothing, and leaves no goroutine behind.

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
	crashed := e.newMessagingGatewayWith(crashedLog.log)
	e.replies.hold("lost in the crash")
	assert.Empty(t, crashed.post(msgInbound{Sid: "SMcrash", Body: "lost in the crash", IdempotencyToken: "tok-crash"}))
	e.waitAsked("lost in the crash")

	// The next gateway on the same database reports it, once.
	nextLog := newMsgReportsLog()
	next := e.newMessagingGatewayWith(nextLog.log, msgFastReports)
	require.Eventually(t, func() bool { return len(nextLog.reported(t)) > 0 }, msgWait, 5*time.Millisecond,
		"waiting for the lost answer to be reported")
	nextLog.awaitSweeps(t, 3)
	next.stop()
	assert.Equal(t, []string{"SMcrash"}, nextLog.reported(t), "the lost answer, once; nothing delivered")
	assert.NotContains(t, nextLog.buf.String(), "lost in the crash", "the message text is not logged")
	assert.NotContains(t, nextLog.buf.String(), "tok-crash", "the idempotency token is not reported on its own")

	// The crashed gateway goes away without answering (see above).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, crashed.shutdown(ctx), context.Canceled)
	assert.Empty(t, crashedLog.reported(t))

	// A third start reports nothing more.
	thirdLog := newMsgReportsLog()
	third := e.newMessagingGatewayWith(thirdLog.log, msgFastReports)
	thirdLog.awaitSweeps(t, 3)
	third.stop()
	assert.Empty(t, thirdLog.reported(t))
	assert.Equal(t, []string{"echo: later"}, e.sentBodies(), "the lost answer was never sent")
}
