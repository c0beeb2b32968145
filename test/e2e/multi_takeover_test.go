package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/app/wire"
)

// TestMultiRetryAfterCrashAnswered: instance A takes a message and dies
// while the assistant prepares the answer (see messages_crash_test.go);
// Twilio's retry reaches B, which waits for A's lease to expire, takes the
// message over and answers it, once, whichever instance the next retries
// reach.
func TestMultiRetryAfterCrashAnswered(t *testing.T) {
	m := newMultiEnv(t, 0, nil)
	lease, opts := m.msgCrashable()
	a := m.start("A", opts...)
	b := m.start("B", wire.WithLeaseTTL(msgCrashTTL))
	c := m.start("C", wire.WithLeaseTTL(msgCrashTTL))
	const text = "answer me after A crashed"
	m.msgHoldFirst(text)
	in := msgInbound{Sid: "SMcrashmulti", Body: text, IdempotencyToken: "tok-crashmulti"}
	a.postCut(in, func() { m.waitAsked(text) })
	lease.crash()

	// The retry reaches B and C at once (Twilio retries, the load
	// balancer spreads): one answers.
	answers := make(chan []string, 2)
	for _, g := range []*multiGateway{b, c} {
		go func() {
			ans, err := g.postAnswer(in)
			assert.NoError(t, err)
			answers <- ans.Messages
		}()
	}
	var got [][]string
	for range 2 {
		if msgs := <-answers; len(msgs) > 0 {
			got = append(got, msgs)
		}
	}
	assert.Equal(t, [][]string{{"echo: " + text}}, got, "one answer")
	assert.Empty(t, b.post(in), "a later retry is a duplicate")

	a.dispose()
	b.stop()
	c.stop()
	assert.Empty(t, m.sentBodies(), "nothing sent through the REST API")
	assert.Equal(t, 2, m.assistantCalls(), "asked by A, then by the instance that took over")
	assert.Equal(t, 1, m.count("deliveries", "key = $1 AND delivered_at IS NOT NULL", "sid:"+in.Sid))
}

// TestMultiRetryWhileOwnerAnswers: a retry that reaches B while A, alive,
// is still preparing the answer is not answered twice, whether A answers
// while B looks (B's retry is then a duplicate as soon as A has answered),
// or A takes longer than B looks (a lease's ttl: B gives up, since A kept
// its lease alive all that time).
func TestMultiRetryWhileOwnerAnswers(t *testing.T) {
	for name, c := range map[string]struct {
		ttl, hold time.Duration
		gaveUp    bool // B stopped looking before A answered
	}{
		"owner answers while the retry waits": {ttl: 5 * time.Second, hold: 200 * time.Millisecond},
		"owner takes longer than a lease ttl": {ttl: msgCrashTTL, hold: 3 * msgCrashTTL, gaveUp: true},
	} {
		t.Run(name, func(t *testing.T) {
			m := newMultiEnv(t, 0, nil)
			a := m.start("A", wire.WithLeaseTTL(c.ttl))
			b := m.start("B", wire.WithLeaseTTL(c.ttl))
			text := fmt.Sprintf("held for %v", c.hold)
			release := m.replies.hold(text)
			in := msgInbound{Sid: "SMalive", Body: text}
			first := make(chan []string, 1)
			go func() { first <- a.post(in) }()
			m.waitAsked(text)
			time.AfterFunc(c.hold, release)

			assert.Empty(t, b.post(in), "the retry on B")
			assert.Equal(t, []string{"echo: " + text}, <-first, "A answers, inline")
			a.stop()
			b.stop()
			assert.Equal(t, 1, m.assistantCalls(), "one assistant call")
			assert.Empty(t, m.sentBodies(), "nothing sent through the REST API")
			require.NotEmpty(t, m.logged(b, `"msg":"duplicate delivery ignored"`, `"message_sid":"SMalive"`))
			assert.Equal(t, c.gaveUp, strings.Contains(b.logs.String(), "the gateway that took this message is alive"),
				"whether B gave up looking before A answered")
		})
	}
}
