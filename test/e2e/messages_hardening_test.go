package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/twiliorest"
)

// The WhatsApp/SMS path when its dependencies misbehave: Twilio refusing
// a send for a while (rate limited, unreachable), Twilio failing in a way
// that leaves the send's outcome unknown, a gateway dying while it
// prepares an answer, and a user's thread gone at OpenAI.

// msgLogLines returns the gateway's log lines with message msg, decoded.
func (e *msgEnv) msgLogLines(msg string) []map[string]any {
	e.tb.Helper()
	var out []map[string]any
	for line := range strings.Lines(e.logs.String()) {
		var entry map[string]any
		require.NoError(e.tb, json.Unmarshal([]byte(line), &entry), line)
		if entry["msg"] == msg {
			out = append(out, entry)
		}
	}
	return out
}

// TestMessagesRateLimitedSendRetried: Twilio refuses an answer sent later
// with 429 (error 20429, which Twilio documents as never processed and safe
// to retry) and a Retry-After header: the gateway waits as asked and sends
// it again; the user gets the answer once.
func TestMessagesRateLimitedSendRetried(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
	e.twilio.FailNext(twiliorest.Failure{Status: http.StatusTooManyRequests, Code: 20429, RetryAfter: time.Second})
	gw := e.newMessagingGateway()
	release := e.replies.hold("busy hour")
	assert.Empty(t, gw.post(msgInbound{Sid: "SMbusy", Body: "busy hour"}))
	release()

	e.waitSent(1)
	gw.stop()
	assert.Equal(t, []string{"echo: busy hour"}, e.sentBodies(), "delivered once")
	attempts := e.twilio.Attempts()
	require.Len(t, attempts, 2, "refused once, then accepted")
	assert.Equal(t, []int{http.StatusTooManyRequests, http.StatusCreated}, []int{attempts[0].Status, attempts[1].Status})
	assert.GreaterOrEqual(t, attempts[1].At.Sub(attempts[0].At), 900*time.Millisecond,
		"the retry waited for Retry-After (1 s)")
}

// TestMessagesUnreachableTwilioRetried: Twilio cannot be reached at all
// (nothing listens: the request never left) when an answer is sent later;
// the gateway retries it, and once Twilio listens again the user gets the
// answer, once.
func TestMessagesUnreachableTwilioRetried(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
	gw := e.newMessagingGateway()
	release := e.replies.hold("anyone there?")
	assert.Empty(t, gw.post(msgInbound{Sid: "SMunreachable", Body: "anyone there?"}))
	e.twilio.Refuse()
	release()
	require.Eventually(t, func() bool {
		for _, entry := range e.msgLogLines("twilio did not take the message: retrying") {
			if entry["reason"] == "unreachable" {
				return true
			}
		}
		return false
	}, msgWait, 5*time.Millisecond, "waiting for a refused send to be retried")
	require.NoError(t, e.twilio.Listen())

	e.waitSent(1)
	gw.stop()
	assert.Equal(t, []string{"echo: anyone there?"}, e.sentBodies(), "delivered once")
	assert.Len(t, e.twilio.Attempts(), 1, "the refused attempts never reached Twilio")
}

// msgPartsAnswer is an answer that the gateway splits into n messages: n
// numbered sentences ("Part 01: ..."), each too long to share a message
// with another.
func msgPartsAnswer(n int) string {
	filler := strings.Repeat("all work and no play makes Jack a dull boy, ", 22) // 968 characters
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "Part %02d: %s.", i, strings.TrimSuffix(filler, ", "))
	}
	return b.String()
}

// TestMessagesLongAnswerPaced: an answer of 25 messages goes out through
// the REST API one part at a time, in order, with a pause between parts
// (so that one answer is not a burst of 25 requests for one sender). The
// pause is shortened from app.DefaultPartInterval (a second) to keep the
// test short; the gaps are checked against half of it, a bound a busy
// machine can only make longer.
func TestMessagesLongAnswerPaced(t *testing.T) {
	const parts = 25
	const interval = 100 * time.Millisecond
	e := newMessagingEnv(t, configs.BackendResponses, nil)
	e.replies.setAnswer(func(string) string { return msgPartsAnswer(parts) })
	gw := e.newMessagingGatewayWith(e.log, wire.WithPartInterval(interval))
	assert.Empty(t, gw.post(msgInbound{Sid: "SMtwentyfive", Body: "everything, please"}), "too many parts for an inline reply")
	e.waitSent(parts)
	gw.stop()

	attempts := e.twilio.Attempts()
	require.Len(t, attempts, parts, "one request per part, none repeated")
	for i, a := range attempts {
		assert.Equal(t, http.StatusCreated, a.Status)
		assert.True(t, strings.HasPrefix(a.Body, fmt.Sprintf("Part %02d: ", i+1)), "request %d carries part %d: %.10q", i+1, i+1, a.Body)
		if i > 0 {
			gap := a.At.Sub(attempts[i-1].At)
			assert.GreaterOrEqual(t, gap, interval/2, "pause between parts %d and %d", i, i+1)
		}
	}
}

// TestMessagesSendOutcomeUnknown: when Twilio may have accepted an answer
// but the gateway cannot know (a 5xx, or the connection closed after the
// request was sent), the send is not repeated (a repeated answer is worse
// than a logged one) and the log says the outcome is unknown, with the
// MessageSid, not that the answer was not delivered.
func TestMessagesSendOutcomeUnknown(t *testing.T) {
	for name, c := range map[string]struct {
		failure  twiliorest.Failure
		accepted int // messages the simulator accepted
	}{
		"5xx":    {twiliorest.Failure{Status: http.StatusInternalServerError, Code: 20500}, 0},
		"hangup": {twiliorest.Failure{Hangup: true}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
			e.twilio.FailNext(c.failure)
			gw := e.newMessagingGateway()
			release := e.replies.hold("did you get this?")
			assert.Empty(t, gw.post(msgInbound{Sid: "SMunknown", Body: "did you get this?"}))
			release()
			require.Eventually(t, func() bool { return len(e.msgLogLines(msgOutcomeUnknown)) > 0 }, msgWait, 5*time.Millisecond,
				"waiting for the unknown outcome to be logged")
			gw.stop()

			assert.Len(t, e.twilio.Attempts(), 1, "not retried")
			assert.Len(t, e.twilio.Messages(), c.accepted)
			entry := e.msgLogLines(msgOutcomeUnknown)[0]
			assert.Equal(t, "SMunknown", entry["message_sid"])
			assert.Equal(t, "ERROR", entry["level"])
			assert.Empty(t, e.msgLogLines(msgSendFailed), "not reported as not delivered")
		})
	}
}

// The log messages of a later send that did not go well (app's texts).
const (
	msgOutcomeUnknown = "answer may or may not have been delivered: the send's outcome is unknown"
	msgSendFailed     = "answer not delivered: send failed"
)

// TestMessagesSendTimeoutNamesBaseURL: a send that times out is logged
// with the URL it was sent to, TWILIO_API_BASE_URL, not Twilio's default
// host, and without credentials.
func TestMessagesSendTimeoutNamesBaseURL(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
	e.twilio.SetDelay(time.Minute)
	gw := e.newMessagingGatewayWith(e.log, wire.WithHTTPClient(&http.Client{Timeout: 300 * time.Millisecond}))
	release := e.replies.hold("slow twilio")
	assert.Empty(t, gw.post(msgInbound{Sid: "SMtimeout", Body: "slow twilio"}))
	release()
	var line string
	require.Eventually(t, func() bool {
		for l := range strings.Lines(e.logs.String()) {
			if strings.Contains(l, `"message_sid":"SMtimeout"`) && strings.Contains(l, `"err":`) {
				line = l
				return true
			}
		}
		return false
	}, msgWait, 5*time.Millisecond, "waiting for the send's error to be logged")
	gw.stop()

	assert.Contains(t, line, e.twilio.URL()+"/2010-04-01/Accounts/", "the URL the request went to")
	assert.NotContains(t, line, "api.twilio.com")
	assert.NotContains(t, line, e.twilio.AuthToken())
}

// TestMessagesStaleThreadReplaced: when the user's thread no longer exists
// at OpenAI (deleted, or expired), the gateway starts a new thread for the
// user and answers the message on it, and the next messages use the new
// thread: the user is not apologised to forever.
func TestMessagesStaleThreadReplaced(t *testing.T) {
	for _, b := range msgBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newMessagingEnv(t, b.name, nil)
			gw := e.newMessagingGateway()
			assert.Equal(t, []string{"echo: first"}, gw.post(msgInbound{Sid: "SMstale1", Body: "first"}))
			old := e.replies.threadOf("first")
			require.True(t, e.openai.Delete(old))

			assert.Equal(t, []string{"echo: second"}, gw.post(msgInbound{Sid: "SMstale2", Body: "second"}),
				"answered on a new thread")
			assert.Equal(t, []string{"echo: third"}, gw.post(msgInbound{Sid: "SMstale3", Body: "third"}))
			assert.Equal(t, 2, e.threadsCreated(), "one new thread, made once")
			fresh := e.replies.threadOf("second")
			assert.NotEqual(t, old, fresh)
			assert.Equal(t, msgHistory("second", "third"), e.openai.History(fresh))
		})
	}
}

// msgHoldFirst makes the assistant's first reply to text wait until the
// test ends (the gateway that asked never gets it, as if it had died), and
// every later reply to it answer at once. It replaces the echo answer.
func (e *msgEnv) msgHoldFirst(text string) {
	var asked atomic.Bool
	e.replies.setAnswer(func(got string) string {
		if got == text && asked.CompareAndSwap(false, true) {
			<-e.replies.closed
		}
		return "echo: " + got
	})
}

// postCut posts in, signed, and cuts the request off once until has
// returned, as Twilio's request to a gateway that dies is: the answer is
// never read.
func (mg *msgGateway) postCut(in msgInbound, until func()) {
	mg.env.tb.Helper()
	form := in.form()
	req, err := mg.request(form, in.IdempotencyToken, mg.env.sign(form))
	require.NoError(mg.env.tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = mg.env.do(req.WithContext(ctx))
	}()
	until()
	cancel()
	<-done
}

// TestMessagesRetryAfterCrashAnswered: a gateway takes a message and dies
// while the assistant prepares the answer (see messages_crash_test.go); a
// gateway started on the same database (a restart, faster than the dead
// one's lease) gets Twilio's retry of the message: it waits for the dead
// gateway's lease to expire, takes the message over and answers it,
// inline, once.
func TestMessagesRetryAfterCrashAnswered(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, nil)
	const text = "answer me after the crash"
	e.msgHoldFirst(text)
	in := msgInbound{Sid: "SMcrashretry", Body: text, IdempotencyToken: "tok-crashretry"}

	lease, opts := e.msgCrashable()
	crashed := e.newMessagingGatewayWith(e.log, opts...)
	crashed.postCut(in, func() { e.waitAsked(text) })
	lease.crash()

	next := e.newMessagingGatewayWith(e.log, wire.WithLeaseTTL(msgCrashTTL))
	assert.Equal(t, []string{"echo: " + text}, next.post(in), "Twilio's retry is answered")
	assert.Empty(t, next.post(in), "and only once")
	assert.Len(t, e.msgLogLines("message taken over: the gateway that took it stopped before answering it"), 1)

	crashed.dispose()
	next.stop()
	assert.Empty(t, e.sentBodies(), "nothing sent through the REST API")
	assert.Equal(t, 2, e.assistantCalls(), "asked by the crashed gateway, then by the next")
}
