package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/twilio/messaging"
	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/openairest/contract"
	"github.com/convgateway/gateway/test/sim/twiliorest"
)

// The WhatsApp (and SMS) flow end to end: wire.Build with the real OpenAI
// adapters pointed at the OpenAI REST simulator, the real Twilio sender
// pointed at the Twilio REST simulator and the real SQLite store in a
// temporary file, served on loopback and driven by signed webhooks.
//
// Inline answers are tested with the default REPLY_INLINE_TIMEOUT (10 s),
// far above what the simulators need; answers that must go out later are
// tested with a short timeout and a reply the simulator holds until the test
// releases it, so that which path a message takes never depends on the
// machine's speed.

// msgLaterTimeout is the REPLY_INLINE_TIMEOUT of the tests of answers sent
// later; those answers are held by the simulator, so its size matters only
// for how long the tests take.
const msgLaterTimeout = 100 * time.Millisecond

func msgShortInlineTimeout(c *configs.Config) { c.ReplyInlineTimeout = msgLaterTimeout }

// msgQuickParts shortens the pause between the parts of an answer sent
// later (a second by default), for tests of answers of many parts that
// are not about the pause.
var msgQuickParts = wire.WithPartInterval(10 * time.Millisecond)

// TestMessagesThreadReuse: each user gets one thread, created on the first
// message and used for every later one, so the assistant sees the whole
// conversation; users do not share threads. The requests the adapters send
// are those of the OpenAI API (schemas, model, instructions, assistant).
func TestMessagesThreadReuse(t *testing.T) {
	for _, b := range msgBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newMessagingEnv(t, b.name, nil)
			gw := e.newMessagingGateway()
			const bob = "whatsapp:+15551230002"
			anaSays := []string{"hello", "what did I just say?", "thanks"}
			for i, text := range anaSays {
				assert.Equal(t, []string{"echo: " + text}, gw.post(msgInbound{Sid: fmt.Sprintf("SMana%d", i), Body: text}))
			}
			assert.Equal(t, []string{"echo: hi, Bob here"}, gw.post(msgInbound{Sid: "SMbob", From: bob, Body: "hi, Bob here"}))

			assert.Equal(t, 2, e.threadsCreated(), "one thread per user")
			ana, bobs := e.replies.threadOf("hello"), e.replies.threadOf("hi, Bob here")
			require.NotEmpty(t, ana)
			require.NotEmpty(t, bobs)
			assert.NotEqual(t, ana, bobs, "users do not share a thread")
			for _, text := range anaSays {
				assert.Equal(t, ana, e.replies.threadOf(text), "%q went to Ana's thread", text)
			}
			assert.Equal(t, msgHistory(anaSays...), e.openai.History(ana))
			assert.Equal(t, msgHistory("hi, Bob here"), e.openai.History(bobs))
			assert.Zero(t, e.twilio.Requests(), "inline answers need no REST send")

			switch b.name {
			case configs.BackendResponses:
				for _, body := range e.openai.Bodies(openairest.RouteCreateConversation) {
					assert.NoError(t, contract.Validate("CreateConversationBody", body))
				}
				bodies := e.openai.Bodies(openairest.RouteCreateResponse)
				require.Len(t, bodies, 4)
				for _, body := range bodies {
					require.NoError(t, contract.Validate("CreateResponse", body), "%s", body)
					var req struct{ Model, Instructions string }
					require.NoError(t, json.Unmarshal(body, &req))
					assert.Equal(t, msgModel, req.Model, "OPENAI_MODEL")
					assert.Equal(t, msgSystem, req.Instructions, "SYSTEM_MESSAGE")
				}
			case configs.BackendAssistants:
				for _, body := range e.openai.Bodies(openairest.RouteCreateMessage) {
					assert.NoError(t, contract.Validate("CreateMessageRequest", body), "%s", body)
				}
				bodies := e.openai.Bodies(openairest.RouteCreateRun)
				require.Len(t, bodies, 4)
				for _, body := range bodies {
					require.NoError(t, contract.Validate("CreateRunRequest", body), "%s", body)
					var req struct {
						AssistantID string `json:"assistant_id"`
					}
					require.NoError(t, json.Unmarshal(body, &req))
					assert.Equal(t, msgAssistantID, req.AssistantID, "OPENAI_ASSISTANT_ID")
				}
			}
		})
	}
}

// TestMessagesThreadsPersistAcrossRestart: a gateway shut down and built
// again on the same SQLite file (DATABASE_URL) keeps using the thread made
// before the restart, and still recognises a delivery it processed before.
func TestMessagesThreadsPersistAcrossRestart(t *testing.T) {
	for _, b := range msgBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newMessagingEnv(t, b.name, nil)
			first := msgInbound{Sid: "SMbefore", Body: "before the restart", IdempotencyToken: "idem-before"}

			gw := e.newMessagingGateway()
			assert.Equal(t, []string{"echo: before the restart"}, gw.post(first))
			gw.stop()
			thread := e.replies.threadOf("before the restart")
			require.NotEmpty(t, thread)
			_, err := os.Stat(e.cfg.DatabaseURL)
			require.NoError(t, err, "the SQLite file is created at DATABASE_URL")

			gw = e.newMessagingGateway()
			assert.Equal(t, []string{"echo: after the restart"}, gw.post(msgInbound{Sid: "SMafter", Body: "after the restart"}))
			assert.Equal(t, 1, e.threadsCreated(), "no new thread after the restart")
			assert.Equal(t, thread, e.replies.threadOf("after the restart"), "the thread made before the restart is reused")
			assert.Equal(t, msgHistory("before the restart", "after the restart"), e.openai.History(thread))

			assert.Empty(t, gw.post(first), "a retry of a delivery processed before the restart is ignored")
			assert.Empty(t, gw.post(msgInbound{Sid: first.Sid, Body: first.Body}), "also when it lacks the token")
			assert.Equal(t, 2, e.assistantCalls())
			gw.stop()
			assert.Zero(t, e.twilio.Requests())
		})
	}
}

// TestMessagesRetriedDelivery: Twilio retries webhooks. A delivery whose
// MessageSid or I-Twilio-Idempotency-Token was already processed gets 200
// and an empty <Response/>, and causes no second assistant call and no
// second reply, whether the first answer went inline or is still being
// prepared.
func TestMessagesRetriedDelivery(t *testing.T) {
	for _, b := range msgBackends {
		t.Run(b.name+"/inline", func(t *testing.T) {
			t.Parallel()
			e := newMessagingEnv(t, b.name, nil)
			gw := e.newMessagingGateway()
			in := msgInbound{Sid: "SMretry", Body: "are you there?", IdempotencyToken: "idem-retry"}

			assert.Equal(t, []string{"echo: are you there?"}, gw.post(in))
			assert.Empty(t, gw.post(in), "same MessageSid and token")
			assert.Empty(t, gw.post(msgInbound{Sid: in.Sid, Body: in.Body}), "same MessageSid, no token")
			assert.Empty(t, gw.post(msgInbound{Sid: "SMretry-other", Body: in.Body, IdempotencyToken: in.IdempotencyToken}),
				"same token, other MessageSid")

			// Retries that arrive together: exactly one is answered.
			concurrent := msgInbound{Sid: "SMtogether", Body: "twice at once", IdempotencyToken: "idem-together"}
			const copies = 5
			answers := make([]msgAnswer, copies)
			errs := make([]error, copies)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range copies {
				wg.Go(func() {
					<-start
					answers[i], errs[i] = gw.postAnswer(concurrent)
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
			assert.Equal(t, [][]string{{"echo: twice at once"}}, answered, "one answer for deliveries of one message")

			gw.stop() // drains: nothing can be sent after this
			assert.Equal(t, 2, e.assistantCalls(), "one assistant call per message")
			assert.Equal(t, msgHistory("are you there?", "twice at once"), e.openai.History(e.replies.threadOf("are you there?")))
			assert.Zero(t, e.twilio.Requests(), "no reply sent through the REST API")
		})

		t.Run(b.name+"/later", func(t *testing.T) {
			t.Parallel()
			e := newMessagingEnv(t, b.name, msgShortInlineTimeout)
			gw := e.newMessagingGateway()
			in := msgInbound{Sid: "SMslowretry", Body: "slow question", IdempotencyToken: "idem-slow"}
			release := e.replies.hold(in.Body)

			assert.Empty(t, gw.post(in), "the answer is not ready: empty <Response/>")
			e.waitAsked(in.Body)
			assert.Empty(t, gw.post(in), "Twilio's retry while the answer is being prepared")
			assert.Empty(t, gw.post(msgInbound{Sid: in.Sid, Body: in.Body}), "a retry without the token")
			release()
			sent := e.waitSent(1)
			assert.Equal(t, "echo: slow question", sent[0].Body)

			gw.stop() // drains: nothing can be sent after this
			assert.Equal(t, []string{"echo: slow question"}, e.sentBodies(), "one reply, sent once")
			assert.Equal(t, 1, e.assistantCalls(), "one assistant call")
		})
	}
}

// TestMessagesConcurrentFromOneUser: many messages from one user arriving
// at once are answered one at a time against one thread: concurrent first
// messages create exactly one thread, the simulator never sees two replies
// in progress on it, each question is followed by its own answer in the
// thread, and every message gets exactly its answer (inline, or later
// through the REST API in the order the answers were made).
func TestMessagesConcurrentFromOneUser(t *testing.T) {
	for _, b := range msgBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			const n = 24
			e := newMessagingEnv(t, b.name, nil)
			switch b.name {
			case configs.BackendResponses:
				e.openai.SetDelay(5 * time.Millisecond) // let the messages pile up
			case configs.BackendAssistants:
				// One poll per run (the adapter polls every 500 ms).
				for range n {
					e.openai.Next(openairest.Script{Steps: []string{"in_progress"}})
				}
			}
			gw := e.newMessagingGateway()

			answers := make([]msgAnswer, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					answers[i], errs[i] = gw.postAnswer(msgInbound{Sid: fmt.Sprintf("SMburst%02d", i), Body: fmt.Sprintf("message %02d", i)})
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
			e.waitSent(len(later))
			gw.stop()
			t.Logf("%d answered inline, %d later", n-len(later), len(later))

			assert.Equal(t, 1, e.threadsCreated(), "concurrent first messages make one thread")
			assert.Zero(t, e.openai.Overlaps(), "never two replies at once on the thread")
			turns := e.replies.all()
			require.Len(t, turns, n, "one assistant call per message")
			var order, sentOrder []string
			for _, turn := range turns {
				assert.Equal(t, turns[0].Thread, turn.Thread, "every message went to the one thread")
				order = append(order, turn.Text)
				if later["echo: "+turn.Text] {
					sentOrder = append(sentOrder, "echo: "+turn.Text)
				}
			}
			assert.Equal(t, msgHistory(order...), e.openai.History(turns[0].Thread), "each answer right after its question")
			assert.Equal(t, sentOrder, e.sentBodies(), "answers sent later, once each, in the order they were made")
		})
	}
}

// TestMessagesAnsweredInArrivalOrder: messages from one user are answered
// in the order they arrived. The first answer is held, so every later
// message queues behind it and all answers go out through the REST API:
// they must arrive in the order the webhooks were posted.
func TestMessagesAnsweredInArrivalOrder(t *testing.T) {
	for _, b := range msgBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			const n = 20
			e := newMessagingEnv(t, b.name, msgShortInlineTimeout)
			if b.name == configs.BackendAssistants {
				for range n {
					e.openai.Next(openairest.Script{Steps: []string{"in_progress"}})
				}
			}
			gw := e.newMessagingGateway()
			release := e.replies.hold("message 00")
			var want, asked []string
			for i := range n {
				text := fmt.Sprintf("message %02d", i)
				assert.Empty(t, gw.post(msgInbound{Sid: fmt.Sprintf("SMorder%02d", i), Body: text}), "queued behind a held answer")
				want, asked = append(want, "echo: "+text), append(asked, text)
			}
			release()
			e.waitSent(n)
			gw.stop()

			assert.Equal(t, want, e.sentBodies(), "answered in arrival order")
			assert.Equal(t, msgHistory(asked...), e.openai.History(e.replies.threadOf("message 00")))
			assert.Equal(t, 1, e.threadsCreated())
			assert.Zero(t, e.openai.Overlaps())
		})
	}
}

// TestMessagesSlowAssistantRepliesThroughREST: when the assistant takes
// longer than REPLY_INLINE_TIMEOUT the webhook answers an empty
// <Response/> at once (here: while the simulator still holds the answer,
// and well within Twilio's 15 s, the client's timeout) and the answer goes
// out through the Twilio Messages REST API when it is ready, to the user
// and from the number the user wrote to.
func TestMessagesSlowAssistantRepliesThroughREST(t *testing.T) {
	for _, b := range msgBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newMessagingEnv(t, b.name, msgShortInlineTimeout)
			gw := e.newMessagingGateway()
			release := e.replies.hold("a hard question")

			assert.Empty(t, gw.post(msgInbound{Sid: "SMslow", Body: "a hard question"}), "the webhook does not wait for the answer")
			e.waitAsked("a hard question")
			assert.Zero(t, e.twilio.Requests(), "nothing is sent before the answer exists")

			release()
			sent := e.waitSent(1)
			assert.Equal(t, twiliorest.Message{
				SID: sent[0].SID, To: msgUser, From: msgNumber, Body: "echo: a hard question",
			}, sent[0])
			assert.True(t, strings.HasPrefix(sent[0].SID, "SM"))
			gw.stop()
			assert.Len(t, e.twilio.Messages(), 1)
		})
	}
}

// TestMessagesShutdownDeliversAnswerInFlight: a graceful shutdown waits for
// an answer still being prepared and sends it.
func TestMessagesShutdownDeliversAnswerInFlight(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
	gw := e.newMessagingGateway()
	release := e.replies.hold("still thinking")
	assert.Empty(t, gw.post(msgInbound{Sid: "SMdrain", Body: "still thinking"}))
	e.waitAsked("still thinking")

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), msgWait)
		defer cancel()
		stopped <- gw.shutdown(ctx)
	}()
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while an answer was still being prepared", err)
	case <-time.After(200 * time.Millisecond):
	}
	assert.Zero(t, e.twilio.Requests())
	release()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(msgWait):
		t.Fatal("Shutdown did not return after the answer was released")
	}
	assert.Equal(t, []string{"echo: still thinking"}, e.sentBodies(), "the drained answer was sent")
}

// TestMessagesShutdownDeadlineLogsUndelivered: an answer that cannot be
// finished before the drain deadline is not lost silently: the log names
// its MessageSid (and not its text).
func TestMessagesShutdownDeadlineLogsUndelivered(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
	gw := e.newMessagingGateway()
	e.replies.hold("never answered")
	assert.Empty(t, gw.post(msgInbound{Sid: "SMcut", Body: "never answered"}))
	e.waitAsked("never answered")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := gw.shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Zero(t, e.twilio.Requests())
	logs := e.logs.String()
	assert.Contains(t, logs, `"msg":"answer not delivered: shutting down"`)
	assert.Contains(t, logs, `"message_sid":"SMcut"`)
	assert.NotContains(t, logs, "never answered", "message text is not logged")
}

// msgLongAnswer is an answer of about 4,000 characters: numbered sentences, so
// that order and completeness show, with accented letters, so that
// characters and bytes differ.
func msgLongAnswer() string {
	var b strings.Builder
	for i := 1; i <= 60; i++ {
		if i > 1 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "Sentence %02d of a long answer, with ação, naïveté and crème brûlée.", i)
	}
	return b.String()
}

// assertMsgSplit checks that parts are the text split into messages Twilio
// accepts, at sentence ends, nothing lost, in order.
func assertMsgSplit(t *testing.T, text string, parts []string) {
	t.Helper()
	require.Greater(t, len(parts), 2, "a %d-character answer takes at least three messages", utf8.RuneCountInString(text))
	for i, p := range parts {
		assert.LessOrEqual(t, utf8.RuneCountInString(p), twiliorest.MaxBody, "part %d", i)
		assert.True(t, strings.HasSuffix(p, "."), "part %d ends a sentence: %q", i, p[max(0, len(p)-20):])
	}
	assert.Equal(t, text, strings.Join(parts, " "), "the parts, in order, are the whole answer")
}

// TestMessagesLongReplySplit: an answer over 1,600 characters is split at
// sentence ends into messages Twilio accepts, sent in order, nothing lost:
// several <Message> verbs inline, several REST messages later.
func TestMessagesLongReplySplit(t *testing.T) {
	long := msgLongAnswer()
	require.Greater(t, utf8.RuneCountInString(long), 2*twiliorest.MaxBody)
	answer := func(text string) string {
		if strings.HasPrefix(text, "tell me everything") {
			return long
		}
		return "echo: " + text
	}
	for _, b := range msgBackends {
		t.Run(b.name+"/inline", func(t *testing.T) {
			t.Parallel()
			e := newMessagingEnv(t, b.name, nil)
			e.replies.setAnswer(answer)
			gw := e.newMessagingGateway()
			assertMsgSplit(t, long, gw.post(msgInbound{Sid: "SMlong", Body: "tell me everything"}))
		})
	}
	t.Run("later", func(t *testing.T) {
		t.Parallel()
		e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
		e.replies.setAnswer(answer)
		gw := e.newMessagingGateway()
		release := e.replies.hold("tell me everything, later")
		assert.Empty(t, gw.post(msgInbound{Sid: "SMlonglater", Body: "tell me everything, later"}))
		release()
		e.waitSent(1)
		gw.stop() // drains: every part has been sent
		for _, m := range e.twilio.Messages() {
			assert.Equal(t, msgUser, m.To)
		}
		assertMsgSplit(t, long, e.sentBodies())
	})
}

// TestMessagesTooManyPartsForInline: Twilio sends at most 10 <Message>
// replies to one incoming message (warning 14109) and drops the rest, so an
// answer that needs more parts goes out through the REST API, every part,
// in order, and the webhook answers an empty <Response/>.
func TestMessagesTooManyPartsForInline(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 250; i++ { // about 17,500 characters: 11 or 12 parts
		if i > 1 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "Sentence %03d of a very long answer, about seventy characters long.", i)
	}
	huge := b.String()
	require.Greater(t, utf8.RuneCountInString(huge), 10*twiliorest.MaxBody)
	e := newMessagingEnv(t, configs.BackendResponses, nil)
	e.replies.setAnswer(func(string) string { return huge })
	gw := e.newMessagingGatewayWith(e.log, msgQuickParts) // eleven parts

	got := gw.post(msgInbound{Sid: "SMhuge", Body: "tell me absolutely everything"})
	assert.LessOrEqual(t, len(got), 10, "Twilio sends at most 10 <Message> replies")
	gw.stop() // drains: every part has been sent
	assert.Equal(t, huge, strings.Join(append(got, e.sentBodies()...), " "), "every part sent, in order")
	assert.Zero(t, len(got), "all parts go one way, so that they arrive in order")
}

// TestMessagesInlineTwiMLWithinTwilioLimit: Twilio refuses a TwiML
// response over 64 kB (error 11750). The longest answer the gateway sends
// inline, all of it characters XML escapes at the greatest cost, fits; one
// byte more goes out through the REST API.
func TestMessagesInlineTwiMLWithinTwilioLimit(t *testing.T) {
	const twilioLimit = 64_000 // bytes of TwiML; 64 kB read as the smaller 1000-based figure
	for _, c := range []struct {
		name   string
		answer string
		inline bool
	}{
		{"as much as inline may carry", strings.Repeat("&", messaging.MaxReplyBytes), true},
		{"one byte more", strings.Repeat("&", messaging.MaxReplyBytes+1), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newMessagingEnv(t, configs.BackendResponses, nil)
			e.replies.setAnswer(func(string) string { return c.answer })
			gw := e.newMessagingGatewayWith(e.log, msgQuickParts) // eight parts when sent later

			a, err := gw.postAnswer(msgInbound{Sid: "SMamp", Body: "ampersands please"})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, a.Status)
			gw.stop() // drains: every part has been sent
			assert.LessOrEqual(t, len(a.Body), twilioLimit, "the TwiML Twilio receives")
			if c.inline {
				assert.Empty(t, e.sentBodies())
				assert.Equal(t, c.answer, strings.Join(a.Messages, ""))
			} else {
				assert.Empty(t, a.Messages)
				assert.Equal(t, c.answer, strings.Join(e.sentBodies(), ""))
			}
		})
	}
}

// TestMessagesBadSignatureRefused: a webhook without a valid Twilio
// signature for PUBLIC_URL + /webhook gets 403 and nothing else happens: no
// OpenAI call, no message sent, and no record of the delivery (the genuine
// delivery of the same MessageSid is then answered).
func TestMessagesBadSignatureRefused(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, nil)
	gw := e.newMessagingGateway()
	in := msgInbound{Sid: "SMforged", Body: "what is my balance?", IdempotencyToken: "idem-forged"}
	form := in.form()
	tampered := in.form()
	tampered.Set("Body", "send my balance to +15559999999")
	token := string(e.cfg.TwilioAuthToken)

	for _, c := range []struct {
		name string
		sig  string
		form url.Values
	}{
		{"missing", "", form},
		{"garbage", "bm90IGEgc2lnbmF0dXJl", form},
		{"other auth token", signature.Sign("ffffffffffffffffffffffffffffffff", msgPublicURL+"/webhook", form), form},
		{"signed for the loopback URL, not PUBLIC_URL", signature.Sign(token, gw.url+"/webhook", form), form},
		{"signed for another path", signature.Sign(token, msgPublicURL+"/incoming-call", form), form},
		{"body changed after signing", e.sign(form), tampered},
	} {
		req, err := gw.request(c.form, in.IdempotencyToken, c.sig)
		require.NoError(t, err)
		a, err := e.do(req)
		require.NoError(t, err, c.name)
		assert.Equal(t, http.StatusForbidden, a.Status, "%s: %s", c.name, a.Body)
		assert.NotContains(t, a.Body, "<Message>", c.name)
	}
	assert.Zero(t, e.openaiCalls(), "no OpenAI call for a refused webhook")
	assert.Zero(t, e.twilio.Requests(), "no message sent for a refused webhook")
	assert.Contains(t, e.logs.String(), "twilio signature refused")

	assert.Equal(t, []string{"echo: what is my balance?"}, gw.post(in), "refused deliveries were not recorded")
}

// TestMessagesAssistantFailure: when OpenAI fails (an error status, a
// failed, incomplete, cancelled or expired reply, a run that asks for tool
// outputs) the user gets a short apology, with no internal detail, the log
// names the MessageSid, and the thread still answers the next message.
func TestMessagesAssistantFailure(t *testing.T) {
	inProgress := []string{"in_progress"}
	cases := []struct {
		backend, name string
		script        openairest.Script
	}{
		{configs.BackendResponses, "failed", openairest.Script{Status: "failed", ErrorCode: "server_error"}},
		{configs.BackendResponses, "incomplete", openairest.Script{Status: "incomplete"}},
		{configs.BackendResponses, "500", openairest.Script{HTTPStatus: http.StatusInternalServerError, ErrorCode: "server_error"}},
		{configs.BackendResponses, "429", openairest.Script{HTTPStatus: http.StatusTooManyRequests, ErrorCode: "rate_limit_exceeded"}},
		{configs.BackendResponses, "400", openairest.Script{HTTPStatus: http.StatusBadRequest, ErrorCode: "invalid_prompt"}},
		{configs.BackendAssistants, "failed", openairest.Script{Status: "failed", ErrorCode: "server_error", Steps: inProgress}},
		{configs.BackendAssistants, "cancelled", openairest.Script{Status: "cancelled", Steps: inProgress}},
		{configs.BackendAssistants, "expired", openairest.Script{Status: "expired", Steps: inProgress}},
		{configs.BackendAssistants, "incomplete", openairest.Script{Status: "incomplete", Steps: inProgress}},
		{configs.BackendAssistants, "requires_action", openairest.Script{Status: "requires_action", Steps: inProgress}},
		{configs.BackendAssistants, "500", openairest.Script{HTTPStatus: http.StatusInternalServerError, ErrorCode: "server_error"}},
	}
	for _, c := range cases {
		t.Run(c.backend+"/"+c.name, func(t *testing.T) {
			t.Parallel()
			e := newMessagingEnv(t, c.backend, nil)
			e.openai.Next(c.script, openairest.Script{Steps: inProgress})
			gw := e.newMessagingGateway()

			assert.Equal(t, []string{msgApology}, gw.post(msgInbound{Sid: "SMfail", Body: "please answer"}))
			logs := e.logs.String()
			assert.Contains(t, logs, `"msg":"assistant failed"`)
			assert.Contains(t, logs, `"message_sid":"SMfail"`)
			assert.NotContains(t, logs, "please answer", "message text is not logged")

			assert.Equal(t, []string{"echo: are you back?"}, gw.post(msgInbound{Sid: "SMback", Body: "are you back?"}),
				"the thread answers the next message")
			assert.Equal(t, 1, e.threadsCreated())
			assert.Equal(t, 2, e.assistantCalls())
		})
	}
	t.Run("later", func(t *testing.T) {
		t.Parallel()
		e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
		e.openai.Next(openairest.Script{Status: "failed", ErrorCode: "server_error"})
		gw := e.newMessagingGateway()
		release := e.replies.hold("please answer")
		assert.Empty(t, gw.post(msgInbound{Sid: "SMfaillater", Body: "please answer"}))
		release()
		sent := e.waitSent(1)
		assert.Equal(t, msgApology, sent[0].Body, "the apology is sent when the failure comes late")
		assert.Equal(t, msgUser, sent[0].To)
	})
}

// TestMessagesSMS: a message whose From has no "whatsapp:" prefix is an SMS
// and goes through the same path: answered inline as TwiML, or later
// through the REST API to the plain number.
func TestMessagesSMS(t *testing.T) {
	const phone, gatewayNumber = "+15551230003", "+14155550100"
	t.Run("inline", func(t *testing.T) {
		t.Parallel()
		e := newMessagingEnv(t, configs.BackendResponses, nil)
		gw := e.newMessagingGateway()
		assert.Equal(t, []string{"echo: hello by SMS"}, gw.post(msgInbound{Sid: "SMsms1", From: phone, To: gatewayNumber, Body: "hello by SMS"}))
		assert.Equal(t, []string{"echo: again"}, gw.post(msgInbound{Sid: "SMsms2", From: phone, To: gatewayNumber, Body: "again"}))
		assert.Equal(t, 1, e.threadsCreated())
		assert.Equal(t, msgHistory("hello by SMS", "again"), e.openai.History(e.replies.threadOf("again")))
	})
	t.Run("later", func(t *testing.T) {
		t.Parallel()
		e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
		gw := e.newMessagingGateway()
		release := e.replies.hold("slow SMS")
		assert.Empty(t, gw.post(msgInbound{Sid: "SMsms3", From: phone, To: gatewayNumber, Body: "slow SMS"}))
		release()
		sent := e.waitSent(1)
		assert.Equal(t, phone, sent[0].To)
		assert.Equal(t, gatewayNumber, sent[0].From)
		assert.Equal(t, "echo: slow SMS", sent[0].Body)
	})
}

// TestMessagesUnusualInput: media messages and empty bodies get a polite
// text and never reach the assistant.
func TestMessagesUnusualInput(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, nil)
	gw := e.newMessagingGateway()
	assert.Equal(t, []string{msgMedia}, gw.post(msgInbound{Sid: "SMimage", NumMedia: 1}))
	assert.Equal(t, []string{msgMedia}, gw.post(msgInbound{Sid: "SMcaption", NumMedia: 2, Body: "look at these"}))
	assert.Equal(t, []string{msgEmpty}, gw.post(msgInbound{Sid: "SMblank", Body: " \n\t"}))
	assert.Zero(t, e.openaiCalls())
	assert.Zero(t, e.twilio.Requests())

	// Markup and emoji reach the assistant and come back intact (escaped
	// in the TwiML, unescaped by Twilio).
	odd := `1 < 2 && "x" > 'y' </Message><Message>hi]]> 🙂 ação`
	assert.Equal(t, []string{"echo: " + odd}, gw.post(msgInbound{Sid: "SModd", Body: odd}))
	assert.Equal(t, odd, e.replies.all()[0].Text)
}

// TestMessagesSendFailureLogged: when Twilio refuses an answer sent later
// (here 63016, outside WhatsApp's 24-hour window) the failure is logged
// with the MessageSid and what was not delivered; the send is not repeated
// and the rest of a split answer is not sent (the user never gets an
// answer with a hole).
func TestMessagesSendFailureLogged(t *testing.T) {
	e := newMessagingEnv(t, configs.BackendResponses, msgShortInlineTimeout)
	e.replies.setAnswer(func(string) string { return msgLongAnswer() })
	e.twilio.FailNext(twiliorest.Failure{Status: http.StatusBadRequest, Code: 63016})
	gw := e.newMessagingGateway()
	release := e.replies.hold("long, outside the window")
	assert.Empty(t, gw.post(msgInbound{Sid: "SMrefused", Body: "long, outside the window"}))
	release()
	require.Eventually(t, func() bool {
		return strings.Contains(e.logs.String(), `"msg":"answer not delivered: send failed"`)
	}, msgWait, 5*time.Millisecond)
	gw.stop()

	assert.Equal(t, 1, e.twilio.Requests(), "the refused part is not retried, the later parts are not sent")
	assert.Empty(t, e.twilio.Messages())
	var entry struct {
		MessageSid       string `json:"message_sid"`
		Err              string `json:"err"`
		Part             int    `json:"part"`
		Parts            int    `json:"parts"`
		UndeliveredChars int    `json:"undelivered_chars"`
	}
	for line := range strings.Lines(e.logs.String()) {
		if strings.Contains(line, `"msg":"answer not delivered: send failed"`) {
			require.NoError(t, json.Unmarshal([]byte(line), &entry))
		}
	}
	assert.Equal(t, "SMrefused", entry.MessageSid)
	assert.Equal(t, 1, entry.Part)
	assert.Greater(t, entry.Parts, 2)
	// Every character but the spaces dropped at the cuts.
	assert.Equal(t, utf8.RuneCountInString(msgLongAnswer())-(entry.Parts-1), entry.UndeliveredChars)
	assert.Contains(t, entry.Err, "63016")
	assert.NotContains(t, e.logs.String(), "Sentence 01", "the answer's text is not logged")
}
