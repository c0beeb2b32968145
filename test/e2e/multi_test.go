package e2e_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

// multiLaterTimeout is the REPLY_INLINE_TIMEOUT of the multi-instance tests
// whose answers all go out later through the Twilio REST API, where their
// order can be observed.
const multiLaterTimeout = 50 * time.Millisecond

func multiShortInlineTimeout(c *configs.Config) { c.ReplyInlineTimeout = multiLaterTimeout }

// multiQuiet is 20 ms of caller silence as a media payload.
var multiQuiet = []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20)))

// TestMultiTokenAcceptedOnceAcrossInstances: the load balancer sends
// /incoming-call to A and the media stream to B. The token A minted (kept
// in Redis by its hash, under REDIS_KEY_PREFIX) is accepted on B, whose
// Realtime session then carries the call; presented again, on A or on B,
// it is refused with 1008 before any session is used. A's pre-warmed
// session, which B could not use, is discarded, and the call on B goes on.
func TestMultiTokenAcceptedOnceAcrossInstances(t *testing.T) {
	m := newMultiEnv(t, 2, nil)
	a, b := m.gws[0], m.gws[1]

	sid, answer := m.placeCall(a, 1)
	token := answer.Params["token"]
	require.NotEmpty(t, token)
	m.until("A's pre-warmed session", func() bool { return len(a.rt.Sessions()) == 1 })
	keys := m.redisKeys()
	require.Len(t, keys, 2, "the token and its call's record are kept in the shared Redis, under the prefix")
	for _, k := range keys {
		assert.NotContains(t, k, token, "by its hash, not the token itself")
	}

	caller := m.dial(b, answer)
	sess := m.connect(b, caller, sid, answer)
	require.NoError(t, caller.Audio(m.ctx, 20, multiQuiet))
	m.until("the caller's audio at B's model", func() bool { return sess.Frames() == 1 })
	assert.Empty(t, m.redisKeys(), "the consumed token is gone from Redis")

	for _, g := range []*multiGateway{a, b} {
		sessions := len(g.rt.Sessions())
		replay := m.dial(g, answer)
		require.NoError(t, replay.Start(m.ctx, callInfo(sid, answer.Params)))
		_ = replay.Audio(m.ctx, 20, multiQuiet)
		assert.Equal(t, int(websocket.StatusPolicyViolation), m.closedWith(replay), "the replay on %s is a policy violation", g.name)
		m.logged(g, `"msg":"media stream refused"`, `"reason":"invalid_token"`, `"call_id":"`+sid+`"`)
		assert.Equal(t, sessions, len(g.rt.Sessions()), "no session was opened for the replay on %s", g.name)
	}
	prewarmed := a.rt.Sessions()[0]
	select {
	case <-prewarmed.Done():
	case <-m.ctx.Done():
		t.Fatal("A's pre-warmed session was not discarded")
	}
	assert.Zero(t, prewarmed.Frames(), "A's pre-warmed session never carried audio")

	require.NoError(t, caller.Audio(m.ctx, 40, multiQuiet))
	m.until("more audio at B's model", func() bool { return sess.Frames() == 2 })
	closed, _ := caller.Closed()
	assert.False(t, closed, "the call on B is unaffected by the replays")
	require.NoError(t, caller.HangUp(m.ctx))
	select {
	case <-sess.Done():
	case <-m.ctx.Done():
		t.Fatal("B did not close the Realtime session after the caller's stop")
	}
	m.logged(b, `"msg":"call ended"`, `"call_id":"`+sid+`"`, `"end_reason":"caller_hangup"`)
	for _, g := range m.gws {
		assert.NotContains(t, g.logs.String(), token, "the token is never logged")
	}
}

// TestMultiConcurrentMessagesOneUser: 50 messages from one user arrive at
// once, half on each instance. PostgreSQL coordinates them: the first
// messages racing on both instances make exactly one thread (one
// conversation at OpenAI, one row), the assistant never has two replies
// in progress on it (each instance takes the user's lock in the database,
// not just in its process), every message is handed to the assistant
// exactly once and gets exactly its own answer, each answer follows its
// question in the thread, and the answers sent later leave in the order
// they were made.
func TestMultiConcurrentMessagesOneUser(t *testing.T) {
	const n = 50
	m := newMultiEnv(t, 2, nil)
	m.openai.SetDelay(5 * time.Millisecond) // let the messages pile up

	answers := make([]msgAnswer, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		g := m.gws[i%2]
		wg.Go(func() {
			<-start
			answers[i], errs[i] = g.postAnswer(msgInbound{Sid: fmt.Sprintf("SMmulti%02d", i), Body: fmt.Sprintf("message %02d", i)})
		})
	}
	close(start)
	wg.Wait()

	later := map[string]bool{}
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, http.StatusOK, answers[i].Status, answers[i].Body)
		want := fmt.Sprintf("echo: message %02d", i)
		switch len(answers[i].Messages) {
		case 0:
			later[want] = true
		case 1:
			assert.Equal(t, want, answers[i].Messages[0], "message %d got its own answer", i)
		default:
			t.Errorf("message %d answered with %q", i, answers[i].Messages)
		}
	}
	m.waitSent(len(later))
	for _, g := range m.gws {
		g.stop() // drains: nothing is sent after this
	}
	t.Logf("%d answered inline, %d later", n-len(later), len(later))

	assert.Equal(t, 1, m.threadsCreated(), "concurrent first messages on both instances make one thread")
	assert.Equal(t, 1, m.count("threads", ""), "one row for the user")
	assert.Equal(t, n, m.count("deliveries", "key LIKE 'sid:%'"), "every delivery recorded once")
	assert.Zero(t, m.openai.Overlaps(), "never two replies at once on the thread, across instances")
	turns := m.replies.all()
	require.Len(t, turns, n, "one assistant call per message")
	var order, sentOrder []string
	seen := map[string]int{}
	for _, turn := range turns {
		assert.Equal(t, turns[0].Thread, turn.Thread, "every message went to the one thread")
		seen[turn.Text]++
		order = append(order, turn.Text)
		if later["echo: "+turn.Text] {
			sentOrder = append(sentOrder, "echo: "+turn.Text)
		}
	}
	for i := range n {
		assert.Equal(t, 1, seen[fmt.Sprintf("message %02d", i)], "message %d handed to the assistant once", i)
	}
	assert.Equal(t, msgHistory(order...), m.openai.History(turns[0].Thread), "each answer right after its question")
	assert.Equal(t, sentOrder, m.sentBodies(), "answers sent later, once each, in the order they were made")
}

// TestMultiMessagesInArrivalOrder: what "arrival order" means with two
// instances. One user's messages are posted in sequence to A and, at the
// same time, in sequence to B, while the assistant holds its answer to
// A's first message, so all of them queue. Each instance takes its
// messages in the order they reached it (a webhook answered means taken
// in) and the database decides how the two sequences interleave: the
// user's advisory lock is granted in the order the instances asked for
// it. So what holds, and is asserted, is that each instance's messages
// reach the assistant in the order that instance received them, one at a
// time, and that every answer is sent (all go out later, through the REST
// API, where their order shows) before the next message is handed to the
// assistant: the user gets the answers in the order the assistant made
// them. How A's and B's messages interleave is the database's choice; it
// is only logged.
func TestMultiMessagesInArrivalOrder(t *testing.T) {
	const perInstance = 25
	m := newMultiEnv(t, 2, multiShortInlineTimeout)
	text := func(g *multiGateway, i int) string { return fmt.Sprintf("%s%02d", strings.ToLower(g.name), i) }
	a, b := m.gws[0], m.gws[1]

	release := m.replies.hold(text(a, 0))
	assert.Empty(t, a.post(msgInbound{Sid: "SM" + text(a, 0), Body: text(a, 0)}), "the answer comes later")
	m.waitAsked(text(a, 0))

	send := func(g *multiGateway, from int) {
		for i := from; i < perInstance; i++ {
			ans, err := g.postAnswer(msgInbound{Sid: "SM" + text(g, i), Body: text(g, i)})
			if !assert.NoError(t, err) || !assert.Equal(t, http.StatusOK, ans.Status, ans.Body) {
				return
			}
			assert.Empty(t, ans.Messages, "%s is queued behind the held answer", text(g, i))
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { send(a, 1) })
	wg.Go(func() { send(b, 0) })
	wg.Wait()
	require.False(t, t.Failed())
	release()
	m.waitSent(2 * perInstance)
	for _, g := range m.gws {
		g.stop()
	}

	turns := m.replies.all()
	require.Len(t, turns, 2*perInstance, "one assistant call per message")
	var order, fromA, fromB, wantA, wantB []string
	switches := 0
	for i, turn := range turns {
		order = append(order, turn.Text)
		if strings.HasPrefix(turn.Text, "a") {
			fromA = append(fromA, turn.Text)
		} else {
			fromB = append(fromB, turn.Text)
		}
		if i > 0 && turn.Text[0] != turns[i-1].Text[0] {
			switches++
		}
	}
	for i := range perInstance {
		wantA, wantB = append(wantA, text(a, i)), append(wantB, text(b, i))
	}
	assert.Equal(t, wantA, fromA, "A's messages reach the assistant in the order A received them")
	assert.Equal(t, wantB, fromB, "B's messages reach the assistant in the order B received them")
	var wantSent []string
	for _, o := range order {
		wantSent = append(wantSent, "echo: "+o)
	}
	assert.Equal(t, wantSent, m.sentBodies(), "each answer is sent before the next message reaches the assistant")
	assert.Zero(t, m.openai.Overlaps(), "one reply at a time on the thread")
	assert.Equal(t, 1, m.threadsCreated())
	assert.Equal(t, msgHistory(order...), m.openai.History(turns[0].Thread))
	t.Logf("the database interleaved the instances' sequences with %d switches between A and B (49 = strict alternation): %s",
		switches, strings.Join(order, " "))
}

// TestMultiRetryOnOtherInstance: Twilio retries a webhook, and the load
// balancer sends the retry to the other instance. Whether the first
// delivery was answered inline or its answer is still being prepared, the
// retry gets 200 and an empty <Response/>, and the user gets one answer:
// the delivery is recorded in PostgreSQL (MessageSid and
// I-Twilio-Idempotency-Token), not in the instance's memory.
func TestMultiRetryOnOtherInstance(t *testing.T) {
	t.Run("inline", func(t *testing.T) {
		m := newMultiEnv(t, 2, nil)
		a, b := m.gws[0], m.gws[1]
		in := msgInbound{Sid: "SMretry", Body: "are you there?", IdempotencyToken: "idem-retry"}

		assert.Equal(t, []string{"echo: are you there?"}, a.post(in))
		assert.Empty(t, b.post(in), "the retry, on B")
		assert.Empty(t, b.post(msgInbound{Sid: in.Sid, Body: in.Body}), "a retry without the token, on B")
		assert.Empty(t, b.post(msgInbound{Sid: "SMretry-other", Body: in.Body, IdempotencyToken: in.IdempotencyToken}),
			"same token, other MessageSid, on B")

		// Copies of one delivery reaching both instances at once.
		together := msgInbound{Sid: "SMtogether", Body: "twice at once", IdempotencyToken: "idem-together"}
		const copies = 6
		answers := make([]msgAnswer, copies)
		errs := make([]error, copies)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range copies {
			g := m.gws[i%2]
			wg.Go(func() {
				<-start
				answers[i], errs[i] = g.postAnswer(together)
			})
		}
		close(start)
		wg.Wait()
		var answered [][]string
		for i := range copies {
			require.NoError(t, errs[i])
			require.Equal(t, http.StatusOK, answers[i].Status, answers[i].Body)
			if len(answers[i].Messages) > 0 {
				answered = append(answered, answers[i].Messages)
			}
		}
		assert.Equal(t, [][]string{{"echo: twice at once"}}, answered, "one answer for the copies of one delivery")

		for _, g := range m.gws {
			g.stop()
		}
		assert.Equal(t, 2, m.assistantCalls(), "one assistant call per message")
		assert.Zero(t, m.twilio.Requests(), "nothing sent through the REST API")
	})

	t.Run("later", func(t *testing.T) {
		m := newMultiEnv(t, 2, multiShortInlineTimeout)
		a, b := m.gws[0], m.gws[1]
		in := msgInbound{Sid: "SMslowretry", Body: "slow question", IdempotencyToken: "idem-slow"}
		release := m.replies.hold(in.Body)

		assert.Empty(t, a.post(in), "the answer is not ready: empty <Response/>")
		m.waitAsked(in.Body)
		assert.Empty(t, b.post(in), "the retry reaches B while A prepares the answer")
		release()
		m.waitSent(1)
		assert.Empty(t, b.post(in), "another retry on B after A sent the answer")
		assert.Empty(t, a.post(in), "and one on A")

		for _, g := range m.gws {
			g.stop()
		}
		assert.Equal(t, []string{"echo: slow question"}, m.sentBodies(), "one answer, sent once")
		assert.Equal(t, 1, m.assistantCalls(), "one assistant call")
	})
}
