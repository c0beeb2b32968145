package e2e_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/twiliorest"
)

// The tool tests run the assistant's tools through the real server: the
// built-in ones (end_call, transfer_call, send_message) against the Twilio
// REST simulator, the user's HTTP tools against a tool server of the
// test's that checks every request's signature.

// transferTo is the TRANSFER_NUMBER of the transfer test.
const transferTo = "+15550001111"

// finishes has the model say its last words on a call whose caller's
// playback only moves when told (stoppedClock) and then call tool (end_call
// or transfer_call); it requires that the call is not updated through the
// REST API before those words played, then plays them and returns the
// update. Twilio then ends the media stream, before its answer to the
// update arrives.
func finishes(t *testing.T, e *callEnv, tw *twilioSim, caller *mediasim.Caller, sess modelSession, tool string) twiliorest.CallUpdate {
	t.Helper()
	deltas, _ := chunks(2, 100) // within GPT-Live's playback lead: all handed at once
	require.NoError(t, sess.Say(e.ctx, "Thank you for calling, goodbye!", deltas...))
	e.callTool(sess, "call_finish", tool, "{}")
	e.until("the last words at the caller", func() bool { return countEvent(caller.Frames(), "media") >= 2 })
	// Not played yet: the call must not be touched, however long the
	// model stays quiet (well past the gateway's quiet time).
	time.Sleep(2 * time.Second)
	require.Empty(t, tw.CallUpdates(), "the call is updated only once the last words played")
	played := time.Now()
	release := tw.holdCallAnswers()
	defer release()
	require.NoError(t, caller.PlayOut(e.ctx))
	ups, err := tw.WaitCallUpdates(e.ctx, 1)
	require.NoError(t, err)
	require.Len(t, ups, 1)
	assert.False(t, ups[0].At.Before(played), "the update came after the caller's marks")
	require.NoError(t, caller.HangUp(e.ctx))
	release()
	return ups[0]
}

// TestToolEndCall: the model says goodbye, then calls end_call; the
// gateway completes the call through the REST API once the goodbye has
// played at the caller (the caller's marks say so), and the summary says
// the assistant ended the call.
func TestToolEndCall(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			tw, twilio := withTwilio(t)
			e := newCallEnv(t, b, simOptions{}, twilio)
			sid, caller, sess := e.callWith(mediasim.Options{Clock: stoppedClock{}})
			assert.Equal(t, []string{"end_call"}, e.declared(), "no transfer without TRANSFER_NUMBER, no texting without TWILIO_FROM")

			u := finishes(t, e, tw, caller, sess, "end_call")
			assert.Equal(t, sid, u.CallSID)
			assert.Equal(t, twiliorest.CallCompleted, u.Status)
			assert.Empty(t, u.Twiml)

			ended(e, sess)
			s := e.summary(sid)
			assert.Equal(t, "assistant_ended", s["end_reason"])
			assert.Equal(t, []string{"end_call:ok"}, toolsUsed(t, s))
			assert.Empty(t, e.modelErrors())
		})
	}
}

// TestToolTransferCall: with TRANSFER_NUMBER, transfer_call updates the
// live call with TwiML that dials the number, the called number as caller
// id, once the assistant's words played; the summary says "transferred".
func TestToolTransferCall(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			tw, twilio := withTwilio(t)
			e := newCallEnv(t, b, simOptions{}, edits(twilio, func(c *configs.Config) { c.TransferNumber = transferTo }))
			sid, caller, sess := e.callWith(mediasim.Options{Clock: stoppedClock{}})
			assert.Equal(t, []string{"end_call", "transfer_call"}, e.declared())

			u := finishes(t, e, tw, caller, sess, "transfer_call")
			assert.Equal(t, sid, u.CallSID)
			assert.Empty(t, u.Status, "a transfer does not end the call")
			d, ok := u.Dial()
			require.True(t, ok, "the TwiML dials: %s", u.Twiml)
			assert.Equal(t, twiliorest.Dial{CallerID: callTo, Numbers: []string{transferTo}}, d)

			ended(e, sess)
			s := e.summary(sid)
			assert.Equal(t, "transferred", s["end_reason"])
			assert.Equal(t, []string{"transfer_call:ok"}, toolsUsed(t, s))
			assert.Empty(t, e.modelErrors())
		})
	}
}

// TestToolSendMessage: send_message texts the caller, by SMS from a phone
// number and by WhatsApp from a WhatsApp sender; a refusal (WhatsApp's
// 24-hour window, 63016) is the tool's result, as an error the model can
// talk about, and the call goes on.
func TestToolSendMessage(t *testing.T) {
	senders := []struct{ name, from, to string }{
		{"sms", "+15550002222", callFrom},
		{"whatsapp", "whatsapp:+14155238886", "whatsapp:" + callFrom},
	}
	for _, b := range speechBackends {
		for _, sd := range senders {
			t.Run(b.name+"/"+sd.name, func(t *testing.T) {
				tw, twilio := withTwilio(t)
				e := newCallEnv(t, b, simOptions{}, edits(twilio, func(c *configs.Config) { c.TwilioFrom = sd.from }))
				sid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})
				assert.Equal(t, []string{"end_call", "send_message"}, e.declared())

				e.callTool(sess, "call_text", "send_message", `{"text":"We are at 12 Main Street."}`)
				assert.Contains(t, e.toolResult(sess, "call_text"), "sent")
				e.goesOn(sess, 1)
				msgs := tw.Messages()
				require.Len(t, msgs, 1)
				assert.Equal(t, sd.to, msgs[0].To)
				assert.Equal(t, sd.from, msgs[0].From)
				assert.Equal(t, "We are at 12 Main Street.", msgs[0].Body)

				tw.FailNext(twiliorest.Failure{Status: 400, Code: 63016})
				e.callTool(sess, "call_text2", "send_message", `{"text":"Again."}`)
				out := e.toolResult(sess, "call_text2")
				assert.Contains(t, out, "error")
				assert.Contains(t, out, "refused")
				e.goesOn(sess, 2)
				assert.Len(t, tw.Messages(), 1)

				// The call goes on.
				deltas, _ := chunks(2, 100)
				require.NoError(t, sess.Say(e.ctx, "I could not text you that.", deltas...))
				e.until("the answer at the caller", func() bool { return countEvent(caller.Frames(), "media") >= 2 })
				require.NoError(t, caller.HangUp(e.ctx))
				ended(e, sess)
				s := e.summary(sid)
				assert.Equal(t, "caller_hangup", s["end_reason"])
				assert.Equal(t, []string{"send_message:ok", "send_message:error"}, toolsUsed(t, s))
				assert.Empty(t, e.modelErrors())
			})
		}
	}
}
