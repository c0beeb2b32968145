package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

// TestCallHappyPath: the model's session is configured with the call's
// settings; the caller's audio reaches the model in order and untouched,
// the model's audio reaches the caller and plays, marks come back, and the
// caller's hang-up closes the model session; the summary names the call,
// its turns and its frames.
func TestCallHappyPath(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newCallEnv(t, b, simOptions{}, nil)
			sid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})

			cfg, err := sess.configured(e.ctx)
			require.NoError(t, err)
			assert.Equal(t, b.session(e.cfg), cfg, "the session carries the call's settings")

			speech := mulaw.Tone(300, 1000)
			require.NoError(t, caller.Speak(e.ctx, speech, false))
			e.until("50 caller frames at the model", func() bool { return sess.Frames() >= 50 })
			var got []byte
			for _, f := range sess.ReceivedAudio() {
				b, err := base64.StdEncoding.DecodeString(string(f))
				require.NoError(t, err)
				got = append(got, b...)
			}
			assert.Equal(t, speech, got, "caller audio arrives in order, nothing lost, no transcoding")

			deltas, raw := chunks(5, 100)
			require.NoError(t, sess.Say(e.ctx, "Hello there.", deltas...))
			e.until("5 marks played", func() bool { return len(caller.Marks()) >= 5 })
			for _, m := range caller.Marks() {
				assert.False(t, m.Flushed)
			}
			assert.Equal(t, raw, caller.Played(), "the assistant's audio plays untouched")
			frames := caller.Frames()
			require.Len(t, frames, 10)
			for i, f := range frames {
				want := "media"
				if i%2 == 1 {
					want = "mark"
				}
				assert.Equal(t, want, f.Event, "frame %d: each media frame is followed by its mark", i)
			}

			require.NoError(t, caller.Key(e.ctx, "5"))
			e.logged(`"msg":"caller pressed a key"`, `"keys_pressed":1`) // the key itself is not logged (LOG_DIGITS)

			require.NoError(t, caller.HangUp(e.ctx))
			took := ended(e, sess)
			t.Logf("model session closed %v after the caller's stop", took)
			assert.Less(t, took, 5*time.Second)

			s := e.summary(sid)
			assert.Equal(t, "caller_hangup", s["end_reason"])
			assert.Equal(t, true, s["prewarmed"])
			assert.EqualValues(t, 1, s["digits_count"])
			assert.NotContains(t, s, "digits", "keys pressed are not logged by default")
			assert.EqualValues(t, 50, s["frames_in"])
			assert.EqualValues(t, 5, s["frames_out"])
			assert.EqualValues(t, 0, s["frames_dropped"])
			turns := s["turns"].([]any)
			require.Len(t, turns, 1)
			turn := turns[0].(map[string]any)
			assert.Equal(t, "assistant", turn["speaker"])
			assert.Equal(t, "Hello there.", turn["text"])
			assert.NotEmpty(t, turn["utterance"])
			assert.EqualValues(t, 500, turn["heard_ms"])
			assert.EqualValues(t, 500, turn["sent_ms"])
			assert.NotContains(t, turn, "interrupted")
			assert.Positive(t, s["usage"].(map[string]any)[b.usage], "the model's usage is summed up")
			assert.Empty(t, e.modelErrors(), "the gateway never provoked an error event")

			logs := e.logs.String()
			assert.NotContains(t, logs, callAuthToken)
			assert.NotContains(t, logs, callAPIKey)
			assert.NotContains(t, logs, string(frames[0].Audio), "no audio in the logs")
		})
	}
}

// TestCallAISpeaksFirst: with AI_SPEAKS_FIRST the gateway asks the model
// to speak, with GREETING, as soon as the stream starts, and the greeting
// reaches the caller.
func TestCallAISpeaksFirst(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newCallEnv(t, b, simOptions{Reply: "Hi!"}, func(c *configs.Config) {
				c.AISpeaksFirst = true
				c.Greeting = "Say hi."
			})
			sid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})
			e.until("the greeting's audio", func() bool { _, ok := caller.FirstAudio(); return ok })
			assert.Equal(t, 1, sess.Responds())
			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)
			s := e.summary(sid)
			assert.Positive(t, s["frames_out"], "the greeting was handed to the caller")
			assert.Empty(t, e.modelErrors(), "the greeting's request is one the model takes")
		})
	}
}

// TestCallTokenFailures: a stream whose token is missing, wrong, expired,
// replayed or minted for another call is closed with 1008 before any model
// session is used.
func TestCallTokenFailures(t *testing.T) {
	tests := []struct {
		name string
		// params turns the answer's parameters (and call sid) into what
		// the stream presents.
		params func(e *callEnv, sid string, a mediasim.Answer) (string, map[string]string)
	}{
		{"missing", func(_ *callEnv, sid string, _ mediasim.Answer) (string, map[string]string) {
			return sid, map[string]string{}
		}},
		{"wrong", func(_ *callEnv, sid string, _ mediasim.Answer) (string, map[string]string) {
			return sid, map[string]string{"token": ports.NewToken()}
		}},
		{"other call", func(_ *callEnv, _ string, a mediasim.Answer) (string, map[string]string) {
			return "CA99999999999999999999999999999999", a.Params
		}},
		{"expired", func(e *callEnv, sid string, a mediasim.Answer) (string, map[string]string) {
			time.Sleep(e.cfg.WSTokenTTL + 100*time.Millisecond)
			return sid, a.Params
		}},
		{"replayed", func(e *callEnv, sid string, a mediasim.Answer) (string, map[string]string) {
			first := e.dial(a, nil)
			require.NoError(e.tb, first.Start(e.ctx, callInfo(sid, a.Params)))
			s := e.session()
			require.NoError(e.tb, first.Audio(e.ctx, 20, quiet))
			e.until("the first stream's audio at the model", func() bool { return s.Frames() == 1 })
			return sid, a.Params
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCallEnv(t, realtimeBackend, simOptions{}, func(c *configs.Config) { c.WSTokenTTL = 500 * time.Millisecond })
			sid, a := e.placeCall(callFrom)
			// The session is pre-warmed while the webhook is answered.
			e.session()
			sid, params := tt.params(e, sid, a)
			sessionsBefore := len(e.model.sessions())
			framesBefore := 0
			for _, s := range e.model.sessions() {
				framesBefore += s.Frames()
			}

			caller := e.dial(a, nil)
			require.NoError(t, caller.Start(e.ctx, callInfo(sid, params)))
			_ = caller.Audio(e.ctx, 20, quiet)
			assert.Equal(t, int(websocket.StatusPolicyViolation), closed(e, caller), "a token failure is a policy violation")
			over, reason := caller.Ended()
			assert.True(t, over)
			assert.Equal(t, ports.EndRefused, reason)

			frames := 0
			for _, s := range e.model.sessions() {
				frames += s.Frames()
			}
			assert.Equal(t, framesBefore, frames, "no audio of the refused stream reached the model")
			assert.Equal(t, sessionsBefore, len(e.model.sessions()), "no session was opened for the refused stream")
			e.logged(`"msg":"media stream refused"`)
			assert.NotContains(t, e.logs.String(), a.Params["token"], "the token is never logged")
			if tt.name != "replayed" {
				for _, s := range e.model.sessions() { // the pre-warmed one is discarded
					ended(e, s)
				}
			}
		})
	}
}

// TestCallSignatures: an unsigned or wrongly signed voice webhook gets 403
// and starts nothing; a wrongly signed or unsigned stream upgrade is
// refused, a signed one goes on to the token check.
func TestCallSignatures(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, nil)
	for name, req := range map[string]mediasim.CallRequest{
		"missing":      {URL: e.base + "/incoming-call", CallSid: "CA1", From: callFrom},
		"other token":  {URL: e.base + "/incoming-call", AuthToken: "not-the-token", CallSid: "CA1", From: callFrom},
		"other url":    {URL: e.base + "/incoming-call", SignedURL: "https://elsewhere.example.com/incoming-call", AuthToken: callAuthToken, CallSid: "CA1", From: callFrom},
		"webhook path": {URL: e.base + "/incoming-call", SignedURL: e.base + "/webhook", AuthToken: callAuthToken, CallSid: "CA1", From: callFrom},
	} {
		_, err := mediasim.PlaceCall(e.ctx, req)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "status 403", name)
	}
	time.Sleep(50 * time.Millisecond) // a pre-warm would have started by now
	assert.Empty(t, e.model.sessions(), "nothing was started for unsigned calls")

	sid, a := e.placeCall(callFrom)
	_, err := mediasim.Dial(e.ctx, mediasim.Options{URL: a.StreamURL, Signature: mediasim.StreamSignature("not-the-token", a.StreamURL)})
	require.Error(t, err, "a wrongly signed upgrade is refused")
	assert.Contains(t, err.Error(), "403")

	_, err = mediasim.Dial(e.ctx, mediasim.Options{URL: a.StreamURL})
	require.Error(t, err, "an unsigned upgrade is refused")
	assert.Contains(t, err.Error(), "403")

	signed := e.dial(a, mediasim.Faster(20))
	require.NoError(t, signed.Start(e.ctx, callInfo(sid, a.Params)))
	s := e.session()
	require.NoError(t, signed.HangUp(e.ctx))
	ended(e, s)
}

// TestCallAllowlist: with ALLOWED_NUMBERS, other callers get <Reject/>.
func TestCallAllowlist(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, func(c *configs.Config) { c.AllowedNumbers = []string{callFrom} })
	_, a := e.placeCall("+15559990000")
	assert.True(t, a.Reject)
	assert.Equal(t, []string{"Reject"}, a.Verbs)
	_, a = e.placeCall(callFrom)
	assert.False(t, a.Reject)
	assert.NotEmpty(t, a.Params["token"])
}

// TestCallModelEnds: when the model closes, fails fatally or reaches its
// session limit, the caller's stream is closed normally (ending
// <Connect>, so the caller hears the apology that follows instead of
// silence) and the reason is logged.
func TestCallModelEnds(t *testing.T) {
	tests := []struct {
		name   string
		end    func(ctx context.Context, s modelSession) error
		reason string
	}{
		{"remote close", func(ctx context.Context, s modelSession) error { return s.Hangup(ctx) }, "model_closed"},
		{"session limit", func(ctx context.Context, s modelSession) error { return s.Expire(ctx) }, "model_session_limit"},
		{"fatal error", func(ctx context.Context, s modelSession) error {
			return s.Fail(ctx, ports.ModelError{Type: "server_error", Code: "server_error", Message: "The server had an error.", Fatal: true})
		}, "model_fatal_error"},
	}
	for _, b := range speechBackends {
		for _, tt := range tests {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				e := newCallEnv(t, b, simOptions{}, nil)
				sid, caller, sess := e.callWith(mediasim.Options{})
				require.NoError(t, tt.end(e.ctx, sess))
				assert.Equal(t, int(websocket.StatusNormalClosure), closed(e, caller))
				s := e.summary(sid)
				assert.Equal(t, tt.reason, s["end_reason"])
				if tt.name == "fatal error" {
					assert.EqualValues(t, 1, s["model_errors"])
					e.logged(`"msg":"model reported an error"`, `"code":"server_error"`, `"call_id":"`+sid+`"`)
				}
			})
		}
	}
}

// TestCallModelErrorIsNotTheEnd: a non-fatal error event is logged and the
// call goes on.
func TestCallModelErrorIsNotTheEnd(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newCallEnv(t, b, simOptions{}, nil)
			sid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})
			require.NoError(t, sess.Fail(e.ctx, ports.ModelError{Type: "invalid_request_error", Code: "invalid_value", Message: "nope"}))
			e.logged(`"msg":"model reported an error"`, `"code":"invalid_value"`)
			deltas, _ := chunks(1, 40)
			require.NoError(t, sess.Say(e.ctx, "Still here.", deltas...))
			e.until("audio after the error", func() bool { _, ok := caller.FirstAudio(); return ok })
			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)
			s := e.summary(sid)
			assert.Equal(t, "caller_hangup", s["end_reason"])
			assert.EqualValues(t, 1, s["model_errors"])
			assert.Contains(t, e.metrics(), `gateway_openai_errors_total{api="`+b.name+`",code="invalid_value"} 1`)
		})
	}
}

// TestCallCallerDrops: a caller socket that drops without stop ends the
// call and closes the model session.
func TestCallCallerDrops(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newCallEnv(t, b, simOptions{}, nil)
			sid, caller, sess := e.callWith(mediasim.Options{})
			require.NoError(t, caller.Close())
			took := ended(e, sess)
			t.Logf("model session closed %v after the caller's socket dropped", took)
			s := e.summary(sid)
			assert.Contains(t, []string{"stream_closed", "stream_lost"}, s["end_reason"])
		})
	}
}

// TestCallMalformedFrames: bad frames from either side are skipped and
// logged; the call goes on. A frame over the read limit ends the stream
// with 1009 and the model session with it.
func TestCallMalformedFrames(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newCallEnv(t, b, simOptions{}, nil)
			sid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})

			for _, f := range []string{
				`not json`,
				`{"event":"media","media":{"payload":12}}`,
				`{"event":"bogus"}`,
				`{"event":"media","media":{"timestamp":"x","payload":"AAAA"}}`,
				`[]`,
			} {
				require.NoError(t, caller.Raw(e.ctx, []byte(f)))
			}
			for _, ev := range malformedEvents[b.name] {
				require.NoError(t, sess.Raw(e.ctx, []byte(ev)))
			}
			good := []byte(base64.StdEncoding.EncodeToString(mulaw.Tone(200, 20)))
			require.NoError(t, caller.Audio(e.ctx, 20, good))
			e.until("the good frame at the model", func() bool { return sess.Frames() >= 1 })
			assert.Equal(t, [][]byte{good}, sess.ReceivedAudio(), "only the good frame reached the model")
			deltas, _ := chunks(1, 20)
			require.NoError(t, sess.Say(e.ctx, "Fine.", deltas...))
			e.until("audio after bad events", func() bool { _, ok := caller.FirstAudio(); return ok })
			assert.Contains(t, e.logs.String(), `"msg":"skipped frames"`)

			require.NoError(t, caller.Raw(e.ctx, bytes.Repeat([]byte("x"), 70<<10)))
			assert.Equal(t, int(websocket.StatusMessageTooBig), closed(e, caller))
			ended(e, sess)
			s := e.summary(sid)
			assert.Equal(t, "stream_frame_too_big", s["end_reason"])
			assert.EqualValues(t, 5, s["frames_skipped"], "the caller's bad frames are counted")
			assert.EqualValues(t, 0, s["model_errors"], "the model's bad events are no errors")
		})
	}
}

// TestCallShutdownEndsCalls: a gateway that stops closes its live calls
// at the drain deadline, and their model sessions.
func TestCallShutdownEndsCalls(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newCallEnv(t, b, simOptions{}, nil)
			sid, caller, sess := e.callWith(mediasim.Options{})
			err := e.shutdown(300 * time.Millisecond)
			require.ErrorIs(t, err, context.DeadlineExceeded, "the live call outlasted the drain deadline")
			assert.Equal(t, int(websocket.StatusNormalClosure), closed(e, caller))
			ended(e, sess)
			assert.Equal(t, "shutdown", e.summary(sid)["end_reason"])
		})
	}
}

// TestCallShutdownWaitsForCalls: a call that ends within the drain
// deadline ends normally.
func TestCallShutdownWaitsForCalls(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newCallEnv(t, b, simOptions{}, nil)
			sid, caller, sess := e.callWith(mediasim.Options{})
			stopped := make(chan error, 1)
			go func() { stopped <- e.shutdown(callWait) }()
			e.until("the shutdown to begin", func() bool {
				_, err := mediasim.PlaceCall(e.ctx, mediasim.CallRequest{URL: e.base + "/incoming-call", AuthToken: callAuthToken, CallSid: "CAlate", From: callFrom})
				return err != nil
			})
			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)
			require.NoError(t, <-stopped)
			assert.Equal(t, "caller_hangup", e.summary(sid)["end_reason"])
		})
	}
}

// TestCallMetrics: /metrics shows a finished call: its end reason, its
// barge-in, its time to first audio, its frames and the webhook's latency.
func TestCallMetrics(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newCallEnv(t, b, simOptions{}, nil)
			// The caller's playback stands still: the assistant's audio is
			// outstanding when the caller talks over it.
			caller, sess := e.call(stoppedClock{})
			require.NoError(t, caller.Speak(e.ctx, mulaw.Tone(300, 100), false))
			deltas, _ := chunks(3, 100)
			require.NoError(t, sess.Say(e.ctx, "Hi.", deltas...))
			e.until("the audio at the caller", func() bool { return countEvent(caller.Frames(), "mark") == 3 })
			require.NoError(t, sess.CallerSpeaks(e.ctx, "Wait, one question."))
			e.until("the clear", func() bool { return len(caller.Clears()) == 1 })
			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)

			body := e.metricsShowing(`gateway_calls_total{end_reason="caller_hangup"} 1`,
				`gateway_audio_frames_total{direction="model_to_caller"} 3`)
			for _, want := range []string{
				"gateway_calls_active 0",
				"gateway_barge_ins_total 1",
				"gateway_first_audio_seconds_count 1",
				`gateway_audio_frames_total{direction="caller_to_model"} 5`,
				`gateway_http_request_duration_seconds_count{code="200",route="/incoming-call"} 1`,
			} {
				assert.Contains(t, body, want)
			}
			assert.Positive(t, metricValue(t, body, b.usageMetric), "the model's usage is counted")
		})
	}
}

// metricValue returns the value of the metric (its name and labels, as
// the page shows them) on the /metrics page body.
func metricValue(t *testing.T, body, metric string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, metric+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	t.Fatalf("no %s in the metrics", metric)
	return 0
}

// countEvent counts the frames of event among frames.
func countEvent(frames []mediasim.Frame, event string) int {
	n := 0
	for _, f := range frames {
		if f.Event == event {
			n++
		}
	}
	return n
}

// lastMedia returns the audio of the last media frame.
func lastMedia(frames []mediasim.Frame) []byte {
	for i := len(frames) - 1; i >= 0; i-- {
		if frames[i].Event == "media" {
			return frames[i].Audio
		}
	}
	return nil
}
