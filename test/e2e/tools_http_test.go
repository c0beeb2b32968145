package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/livesim"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/openairest"
)

// noHold turns the holding phrase off (TOOL_HOLD_AFTER=0), for the tests
// that count the model's requests to speak.
func noHold(c *configs.Config) { c.ToolHoldAfter = 0 }

// TestToolHTTP: the user's tools from a tools file, on a call. The tool
// server checks each request's signature and answers; the model gets the
// answer. A failing tool (500) and a slow one (past its timeout) give
// error results the model can talk about, and the call goes on.
func TestToolHTTP(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			ts := newToolServer(t)
			e := newCallEnv(t, b, simOptions{}, edits(withTools(t, ts), noHold, func(c *configs.Config) {
				c.ToolMaxCallsPerTurn = 10
			}))
			sid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})

			assert.Equal(t, []string{"lookup", "broken", "slow"}, e.declared(),
				"the tools file's tools are offered to the model; no built-in one can work without Twilio's REST API")

			e.callTool(sess, "call_a", "lookup", `{"date":"today"}`)
			assert.Equal(t, toolAnswer, e.toolResult(sess, "call_a"))
			e.goesOn(sess, 1)
			got := ts.received()
			require.Len(t, got, 1)
			assert.Equal(t, "lookup", got[0].Tool)
			assert.Equal(t, "voice", got[0].Channel)
			assert.Equal(t, sid, got[0].CallSID)
			assert.JSONEq(t, `{"date":"today"}`, string(got[0].Arguments))

			e.callTool(sess, "call_b", "broken", `{}`)
			assert.Contains(t, e.toolResult(sess, "call_b"), "error")
			e.goesOn(sess, 2)
			start := time.Now()
			e.callTool(sess, "call_c", "slow", `{}`)
			out := e.toolResult(sess, "call_c")
			assert.Contains(t, out, "no answer within 300ms")
			assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "the slow tool had its timeout")
			e.goesOn(sess, 3)

			// The call goes on: tools and speech.
			e.callTool(sess, "call_d", "lookup", `{"date":"tomorrow"}`)
			assert.Equal(t, toolAnswer, e.toolResult(sess, "call_d"))
			e.goesOn(sess, 4)
			deltas, _ := chunks(2, 100)
			require.NoError(t, sess.Say(e.ctx, "Three tables tomorrow.", deltas...))
			e.until("the answer at the caller", func() bool { return countEvent(caller.Frames(), "media") >= 2 })
			assertSigned(t, ts)

			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)
			s := e.summary(sid)
			assert.Equal(t, "caller_hangup", s["end_reason"])
			used := toolsUsed(t, s)
			require.Len(t, used, 4)
			assert.Equal(t, []string{"lookup:ok", "broken:error"}, used[:2])
			// The run's outcome is "error": the runner reports its timeout
			// as ErrUnavailable, not as a deadline (see the report).
			assert.Contains(t, []string{"slow:timeout", "slow:error"}, used[2])
			assert.Equal(t, "lookup:ok", used[3])
			assert.Empty(t, e.modelErrors())
			body := e.metricsShowing("gateway_tool_run_seconds")
			assert.Contains(t, body, `tool="lookup"`)
			assert.NotContains(t, e.logs.String(), toolSecret)
		})
	}
}

// declared returns the names of the function tools the gateway declared
// to the newest model session.
func (e *callEnv) declared() []string {
	e.tb.Helper()
	type configs interface {
		WaitSession(ctx context.Context) (ports.SpeechConfig, error)
	}
	var srv configs
	switch m := e.model.(type) {
	case *rtSim:
		srv = m.srv
	case sim[*livesim.Session]:
		srv = m.srv.(configs)
	}
	require.NotNil(e.tb, srv, "a simulator that reports its sessions' tools")
	cfg, err := srv.WaitSession(e.ctx)
	require.NoError(e.tb, err)
	var names []string
	for _, t := range cfg.Tools {
		names = append(names, t.Name)
	}
	return names
}

// TestToolHoldingPhrase: a tool slower than TOOL_HOLD_AFTER makes the
// gateway ask the model for one holding phrase; the result then reaches
// the model.
func TestToolHoldingPhrase(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			ts := newToolServer(t)
			e := newCallEnv(t, b, simOptions{}, edits(withTools(t, ts), func(c *configs.Config) {
				c.ToolHoldAfter = 50 * time.Millisecond
			}))
			_, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})
			release := ts.hold()
			defer release()

			e.callTool(sess, "call_a", "lookup", `{"date":"today"}`)
			e.until("the holding phrase asked for", func() bool { return sess.Responds() >= 1 })
			// Held for ten times TOOL_HOLD_AFTER more: still one phrase.
			time.Sleep(500 * time.Millisecond)
			assert.Equal(t, 1, sess.Responds(), "one holding phrase for a slow tool")
			assert.Empty(t, sess.(toolModel).ToolResults())
			release()
			assert.Equal(t, toolAnswer, e.toolResult(sess, "call_a"))
			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)
			assert.Empty(t, e.modelErrors())
		})
	}
}

// TestToolBargeIn: the caller talks while a tool runs; the result still
// reaches the model.
func TestToolBargeIn(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			ts := newToolServer(t)
			e := newCallEnv(t, b, simOptions{}, edits(withTools(t, ts), noHold))
			sid, caller, sess := e.callWith(mediasim.Options{Clock: stoppedClock{}})
			release := ts.hold()
			defer release()

			deltas, _ := chunks(2, 100)
			require.NoError(t, sess.Say(e.ctx, "Let me check that for you.", deltas...))
			e.callTool(sess, "call_a", "lookup", `{"date":"today"}`)
			e.until("the tool running", func() bool { return len(ts.received()) == 1 })
			e.until("the words at the caller", func() bool { return countEvent(caller.Frames(), "media") >= 2 })
			require.NoError(t, sess.CallerSpeaks(e.ctx, "Actually, make it tomorrow."))
			e.until("the clear", func() bool { return len(caller.Clears()) == 1 })
			release()
			assert.Equal(t, toolAnswer, e.toolResult(sess, "call_a"))

			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)
			s := e.summary(sid)
			assert.EqualValues(t, 1, s["barge_ins"])
			assert.Equal(t, []string{"lookup:ok"}, toolsUsed(t, s))
			assert.Empty(t, e.modelErrors())
		})
	}
}

// TestToolLoop: a model that keeps calling tools gets, past
// TOOL_MAX_CALLS_PER_TURN calls in a turn, a result telling it to answer
// without tools; the tool is not run. The caller's next words start a new
// turn.
func TestToolLoop(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			ts := newToolServer(t)
			e := newCallEnv(t, b, simOptions{}, edits(withTools(t, ts), noHold, func(c *configs.Config) {
				c.ToolMaxCallsPerTurn = 2
			}))
			sid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})

			for i, id := range []string{"call_1", "call_2"} {
				e.callTool(sess, id, "lookup", `{"date":"today"}`)
				assert.Equal(t, toolAnswer, e.toolResult(sess, id), "call %d", i+1)
				e.goesOn(sess, i+1)
			}
			e.callTool(sess, "call_3", "lookup", `{"date":"today"}`)
			out := e.toolResult(sess, "call_3")
			assert.Contains(t, out, "too many tool calls")
			assert.Contains(t, out, "without tools")
			assert.Len(t, ts.received(), 2, "the call past the limit is not run")
			e.goesOn(sess, 3)

			require.NoError(t, sess.CallerSpeaks(e.ctx, "And for Friday?"))
			e.callTool(sess, "call_4", "lookup", `{"date":"friday"}`)
			assert.Equal(t, toolAnswer, e.toolResult(sess, "call_4"), "a new turn, new calls")
			e.goesOn(sess, 4)

			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)
			s := e.summary(sid)
			assert.Equal(t, []string{"lookup:ok", "lookup:ok", "lookup:refused", "lookup:ok"}, toolsUsed(t, s))
			assert.Empty(t, e.modelErrors())
		})
	}
}

// TestToolWhatsApp: a WhatsApp question the assistant answers with the
// user's HTTP tool, on both assistant backends: the tool server gets the
// signed request for the user, the model gets the tool's answer, and the
// reply comes inline, within REPLY_INLINE_TIMEOUT.
func TestToolWhatsApp(t *testing.T) {
	for _, b := range msgBackends {
		t.Run(b.name, func(t *testing.T) {
			ts := newToolServer(t)
			e := newMessagingEnv(t, b.name, withTools(t, ts))
			e.openai.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Arguments: `{"date":"today"}`}})
			gw := e.newMessagingGateway()

			got := gw.post(msgInbound{Sid: "SM00000000000000000000000000000001", Body: "Any table today?"})
			assert.Equal(t, []string{"echo: " + toolAnswer}, got, "the answer uses the tool's output, inline")
			assert.Empty(t, e.twilio.Messages(), "nothing sent later through the REST API")

			reqs := ts.received()
			require.Len(t, reqs, 1)
			assert.Equal(t, "lookup", reqs[0].Tool)
			assert.Equal(t, "whatsapp", reqs[0].Channel)
			assert.Equal(t, msgUser, reqs[0].User)
			assert.Empty(t, reqs[0].CallSID)
			assert.JSONEq(t, `{"date":"today"}`, string(reqs[0].Arguments))
			assertSigned(t, ts)

			thread := e.replies.threadOf(toolAnswer)
			require.NotEmpty(t, thread, "the model answered after the tool's output")
			outs := e.openai.ToolOutputs(thread)
			require.Len(t, outs, 1)
			assert.Equal(t, toolAnswer, outs[0].Output)
			assert.NotContains(t, e.logs.String(), toolSecret)
		})
	}
}
