package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

// TestCallHappyPath: the caller's audio reaches the model in order and
// untouched, the model's audio reaches the caller and plays, marks come
// back, and the caller's hang-up closes the model session; the summary
// names the call, its turns and its token usage.
func TestCallHappyPath(t *testing.T) {
	e := newCallEnv(t, realtimesim.Options{}, nil)
	caller, sess := e.call(mediasim.Faster(20))

	cfg, err := sess.WaitConfig(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, ports.SpeechConfig{
		Instructions: callSystem, Voice: "marin", TurnDetection: "server_vad", TranscriptionModel: configs.DefaultTranscriptionModel,
	}, cfg, "session.update carries the call's settings")

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
	require.NoError(t, sess.Say(e.ctx, "resp_1", "item_a1", "Hello there.", deltas...))
	e.until("5 marks played", func() bool { return len(caller.Marks()) >= 5 })
	for _, m := range caller.Marks() {
		assert.False(t, m.Flushed)
	}
	assert.Equal(t, raw, caller.Played(), "the assistant's audio plays untouched")
	out := caller.Received()
	require.Len(t, out, 10)
	for i, f := range out {
		want := "media"
		if i%2 == 1 {
			want = "mark"
		}
		assert.Equal(t, want, f.Kind, "frame %d: each media frame is followed by its mark", i)
	}

	require.NoError(t, caller.DTMF(e.ctx, "5"))
	e.logged(`"msg":"caller pressed a key"`, `"keys_pressed":1`) // the key itself is not logged (LOG_DIGITS)

	callSid := e.logged(`"msg":"call answered"`)["call_sid"].(string)
	require.NoError(t, caller.Stop(e.ctx))
	took := ended(e, sess)
	t.Logf("Realtime session closed %v after the caller's stop", took)
	assert.Less(t, took, 5*time.Second)

	s := e.summary(callSid)
	assert.Equal(t, "caller_hangup", s["end_reason"])
	assert.Equal(t, true, s["prewarmed"])
	assert.EqualValues(t, 1, s["digits_count"])
	assert.NotContains(t, s, "digits", "keys pressed are not logged by default")
	assert.EqualValues(t, 50, s["frames_in"])
	assert.EqualValues(t, 5, s["frames_out"])
	turns := s["turns"].([]any)
	require.Len(t, turns, 1)
	turn := turns[0].(map[string]any)
	assert.Equal(t, "assistant", turn["speaker"])
	assert.Equal(t, "Hello there.", turn["text"])
	assert.EqualValues(t, 500, turn["heard_ms"])
	assert.Positive(t, s["usage"].(map[string]any)["total_tokens"])
	assert.Empty(t, e.events.Errors(), "the gateway never provoked an error event")

	logs := e.logs.String()
	assert.NotContains(t, logs, callAuthToken)
	assert.NotContains(t, logs, callAPIKey)
	assert.NotContains(t, logs, caller.Received()[0].Audio, "no audio in the logs")
}

// TestCallBargeIn: when the caller speaks over the assistant, the caller's
// playback is cleared at once and the item being heard is truncated at the
// audio the caller's marks acknowledged, also with responses queued.
func TestCallBargeIn(t *testing.T) {
	const chunkMs = 300
	tests := []struct {
		name string
		// responses are the chunk counts of the responses queued.
		responses []int
		// heard is how many marks play before the caller speaks.
		heard int
		want  porttest.Truncation
	}{
		{"mid-item", []int{5}, 2, porttest.Truncation{ItemID: "item_0", AudioEndMs: 2 * chunkMs}},
		{"nothing heard yet", []int{3}, 0, porttest.Truncation{ItemID: "item_0", AudioEndMs: 0}},
		{"two queued, the second playing", []int{2, 3}, 3, porttest.Truncation{ItemID: "item_1", AudioEndMs: chunkMs}},
		{"two queued, the first playing", []int{2, 3}, 1, porttest.Truncation{ItemID: "item_0", AudioEndMs: chunkMs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCallEnv(t, realtimesim.Options{}, nil)
			caller, sess := e.call(mediasim.RealTime)
			total := 0
			for i, n := range tt.responses {
				deltas, _ := chunks(n, chunkMs)
				id := string(rune('0' + i))
				require.NoError(t, sess.Say(e.ctx, "resp_"+id, "item_"+id, "Part "+id, deltas...))
				total += n
			}
			e.until("all the audio at the caller", func() bool { return len(caller.Received()) >= 2*total })
			if tt.heard > 0 {
				e.until("marks played", func() bool { return len(caller.Marks()) >= tt.heard })
				// A key press after the echo: once the gateway logged it,
				// it has applied the echo too (one socket, in order).
				require.NoError(t, caller.DTMF(e.ctx, "9"))
				e.logged(`"msg":"caller pressed a key"`)
				require.Len(t, caller.Marks(), tt.heard, "the test must speak before the next mark (chunks of %d ms)", chunkMs)
			}

			// The model has begun another response when the caller speaks:
			// the barge-in cuts it too.
			require.NoError(t, sess.Raw(e.ctx, []byte(`{"type":"response.created","response":{"object":"realtime.response","id":"resp_late","status":"in_progress","output":[]}}`)))
			require.NoError(t, sess.StartSpeech(e.ctx, "item_caller", 0))
			e.until("the truncation", func() bool { return len(sess.Truncations()) > 0 })
			assert.Equal(t, []porttest.Truncation{tt.want}, sess.Truncations())
			e.until("the clear", func() bool { return len(caller.Clears()) > 0 })
			out := caller.Received()
			assert.Equal(t, "clear", out[len(out)-1].Kind, "the clear follows the audio")

			// The clear flushed the pending marks: they come back flushed.
			e.until("every mark echoed", func() bool { return len(caller.Marks()) == total })
			for i, m := range caller.Marks() {
				assert.Equal(t, i >= tt.heard, m.Flushed, "mark %d", i)
			}
			assert.LessOrEqual(t, len(caller.Played()), (tt.heard+1)*chunkMs*8, "playback stopped at the clear")

			// The interrupted response's late audio is dropped, a new
			// response plays.
			late, _ := chunks(1, 20)
			require.NoError(t, sess.Raw(e.ctx, []byte(`{"type":"response.output_audio.delta","response_id":"resp_late",`+
				`"item_id":"item_late","output_index":0,"content_index":0,"delta":"`+string(late[0])+`"}`)))
			fresh, _ := chunks(1, 40)
			require.NoError(t, sess.Say(e.ctx, "resp_9", "item_9", "Yes?", fresh...))
			e.until("the new response", func() bool { return porttest.CountKind(caller.Received(), "media") == total+1 })
			assert.Equal(t, fresh[0], lastMedia(caller.Received()), "only the new response's audio followed the clear")
			assert.Empty(t, e.events.Errors(), "the truncation was within the item's audio")
			assert.Zero(t, sess.Cancels(), "no response.cancel")
			require.NoError(t, caller.Stop(e.ctx))
			ended(e, sess)
		})
	}
}

func lastMedia(out []porttest.Outbound) []byte {
	for i := len(out) - 1; i >= 0; i-- {
		if out[i].Kind == "media" {
			return out[i].Audio
		}
	}
	return nil
}

// TestCallAISpeaksFirst: with AI_SPEAKS_FIRST the gateway asks for a
// response with GREETING as soon as the stream starts.
func TestCallAISpeaksFirst(t *testing.T) {
	e := newCallEnv(t, realtimesim.Options{Auto: &realtimesim.Auto{Transcript: "Hi!"}}, func(c *configs.Config) {
		c.AISpeaksFirst = true
		c.Greeting = "Say hi."
	})
	caller, sess := e.call(mediasim.Faster(20))
	e.until("the greeting's audio", func() bool { _, ok := caller.FirstAudio(); return ok })
	assert.Equal(t, 1, sess.ResponseRequests())
	require.NoError(t, caller.Stop(e.ctx))
	ended(e, sess)
}

// TestCallTokenFailures: a stream whose token is missing, wrong, expired,
// replayed or minted for another call is closed with 1008 before any
// Realtime session is used.
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
			require.NoError(e.tb, first.Start(e.ctx, sid, "MZfirst", a.Params))
			s, err := e.rt.Latest(e.ctx)
			require.NoError(e.tb, err)
			_, err = s.WaitConfig(e.ctx)
			require.NoError(e.tb, err)
			require.NoError(e.tb, first.Media(e.ctx, 20, []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20)))))
			e.until("the first stream's audio at the model", func() bool { return s.Frames() == 1 })
			return sid, a.Params
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCallEnv(t, realtimesim.Options{}, func(c *configs.Config) { c.WSTokenTTL = 500 * time.Millisecond })
			sid, a := e.placeCall(callFrom)
			prewarmed, err := e.rt.Latest(e.ctx)
			require.NoError(t, err, "the session is pre-warmed while the webhook is answered")
			_, err = prewarmed.WaitConfig(e.ctx)
			require.NoError(t, err)
			sid, params := tt.params(e, sid, a)
			sessionsBefore := len(e.rt.Sessions())
			framesBefore := 0
			for _, s := range e.rt.Sessions() {
				framesBefore += s.Frames()
			}

			caller := e.dial(a, nil)
			require.NoError(t, caller.Start(e.ctx, sid, "MZ2", params))
			_ = caller.Media(e.ctx, 20, []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20))))
			assert.Equal(t, int(websocket.StatusPolicyViolation), closed(e, caller), "a token failure is a policy violation")

			frames := 0
			for _, s := range e.rt.Sessions() {
				frames += s.Frames()
			}
			assert.Equal(t, framesBefore, frames, "no audio of the refused stream reached the model")
			assert.Equal(t, sessionsBefore, len(e.rt.Sessions()), "no session was opened for the refused stream")
			e.logged(`"msg":"media stream refused"`)
			assert.NotContains(t, e.logs.String(), a.Params["token"], "the token is never logged")
			if tt.name != "replayed" {
				for _, s := range e.rt.Sessions() { // the pre-warmed one is discarded
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
	e := newCallEnv(t, realtimesim.Options{}, nil)
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
	assert.Empty(t, e.rt.Sessions(), "nothing was started for unsigned calls")

	sid, a := e.placeCall(callFrom)
	_, err := mediasim.Dial(e.ctx, mediasim.Options{URL: a.StreamURL, Signature: mediasim.StreamSignature("not-the-token", a.StreamURL)})
	require.Error(t, err, "a wrongly signed upgrade is refused")
	assert.Contains(t, err.Error(), "403")

	_, err = mediasim.Dial(e.ctx, mediasim.Options{URL: a.StreamURL})
	require.Error(t, err, "an unsigned upgrade is refused")
	assert.Contains(t, err.Error(), "403")

	signed := e.dial(a, mediasim.Faster(20))
	require.NoError(t, signed.Start(e.ctx, sid, "MZ1", a.Params))
	s, err := e.rt.Latest(e.ctx)
	require.NoError(t, err)
	require.NoError(t, signed.Stop(e.ctx))
	ended(e, s)
}

// TestCallAllowlist: with ALLOWED_NUMBERS, other callers get <Reject/>.
func TestCallAllowlist(t *testing.T) {
	e := newCallEnv(t, realtimesim.Options{}, func(c *configs.Config) { c.AllowedNumbers = []string{callFrom} })
	_, a := e.placeCall("+15559990000")
	assert.True(t, a.Reject)
	assert.Equal(t, []string{"Reject"}, a.Verbs)
	_, a = e.placeCall(callFrom)
	assert.False(t, a.Reject)
	assert.NotEmpty(t, a.Params["token"])
}

// TestCallModelEnds: when the model closes, fails fatally or reaches its
// session limit, the caller's stream is closed (ending <Connect>, so the
// caller hears the apology that follows instead of silence) and the reason
// is logged.
func TestCallModelEnds(t *testing.T) {
	tests := []struct {
		name   string
		end    func(e *callEnv, s *realtimesim.Session) error
		reason string
	}{
		{"remote close", func(e *callEnv, s *realtimesim.Session) error {
			return s.Hangup(e.ctx, websocket.StatusNormalClosure, "bye")
		}, "model_closed"},
		{"session limit", func(e *callEnv, s *realtimesim.Session) error {
			return s.Hangup(e.ctx, websocket.StatusGoingAway, "Your session hit the maximum duration of 60 minutes.")
		}, "model_session_limit"},
		{"fatal error", func(e *callEnv, s *realtimesim.Session) error {
			return s.Fail(e.ctx, ports.ModelError{Type: "server_error", Code: "server_error", Message: "The server had an error.", Fatal: true})
		}, "model_fatal_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCallEnv(t, realtimesim.Options{}, nil)
			caller, sess := e.call(nil)
			callSid := e.logged(`"msg":"call answered"`)["call_sid"].(string)
			require.NoError(t, tt.end(e, sess))
			assert.Equal(t, int(websocket.StatusNormalClosure), closed(e, caller))
			s := e.summary(callSid)
			assert.Equal(t, tt.reason, s["end_reason"])
		})
	}
}

// TestCallModelErrorIsNotTheEnd: a non-fatal error event is logged and the
// call goes on.
func TestCallModelErrorIsNotTheEnd(t *testing.T) {
	e := newCallEnv(t, realtimesim.Options{}, nil)
	caller, sess := e.call(mediasim.Faster(20))
	require.NoError(t, sess.Fail(e.ctx, ports.ModelError{Type: "invalid_request_error", Code: "invalid_value", Message: "nope"}))
	e.logged(`"msg":"model reported an error"`, `"code":"invalid_value"`)
	deltas, _ := chunks(1, 40)
	require.NoError(t, sess.Say(e.ctx, "resp_1", "item_1", "Still here.", deltas...))
	e.until("audio after the error", func() bool { _, ok := caller.FirstAudio(); return ok })
	require.NoError(t, caller.Stop(e.ctx))
	ended(e, sess)
}

// TestCallCallerDrops: a caller socket that drops without stop ends the
// call and closes the model session.
func TestCallCallerDrops(t *testing.T) {
	e := newCallEnv(t, realtimesim.Options{}, nil)
	caller, sess := e.call(nil)
	callSid := e.logged(`"msg":"call answered"`)["call_sid"].(string)
	require.NoError(t, caller.Close())
	took := ended(e, sess)
	t.Logf("Realtime session closed %v after the caller's socket dropped", took)
	s := e.summary(callSid)
	assert.Contains(t, []string{"stream_closed", "stream_lost"}, s["end_reason"])
}

// TestCallMalformedFrames: bad frames from either side are skipped and
// logged; the call goes on. A frame over the read limit ends the stream
// with 1009 and the model session with it.
func TestCallMalformedFrames(t *testing.T) {
	e := newCallEnv(t, realtimesim.Options{}, nil)
	caller, sess := e.call(mediasim.Faster(20))

	for _, f := range []string{
		`not json`,
		`{"event":"media","media":{"payload":12}}`,
		`{"event":"bogus"}`,
		`{"event":"media","media":{"timestamp":"x","payload":"AAAA"}}`,
		`[]`,
	} {
		require.NoError(t, caller.Raw(e.ctx, []byte(f)))
	}
	for _, ev := range []string{
		`{{{`,
		`{"type":"response.output_audio.delta","response_id":"r","item_id":"i"}`,
		`{"type":"something.new","x":1}`,
		`{"no":"type"}`,
	} {
		require.NoError(t, sess.Raw(e.ctx, []byte(ev)))
	}
	good := []byte(base64.StdEncoding.EncodeToString(mulaw.Tone(200, 20)))
	require.NoError(t, caller.Media(e.ctx, 20, good))
	e.until("the good frame at the model", func() bool { return sess.Frames() >= 1 })
	assert.Equal(t, [][]byte{good}, sess.ReceivedAudio(), "only the good frame reached the model")
	deltas, _ := chunks(1, 20)
	require.NoError(t, sess.Say(e.ctx, "resp_1", "item_1", "Fine.", deltas...))
	e.until("audio after bad events", func() bool { _, ok := caller.FirstAudio(); return ok })
	assert.Contains(t, e.logs.String(), `"msg":"skipped frames"`)

	callSid := e.logged(`"msg":"call answered"`)["call_sid"].(string)
	require.NoError(t, caller.Raw(e.ctx, bytes.Repeat([]byte("x"), 70<<10)))
	assert.Equal(t, int(websocket.StatusMessageTooBig), closed(e, caller))
	ended(e, sess)
	s := e.summary(callSid)
	assert.Equal(t, "stream_frame_too_big", s["end_reason"])
	assert.EqualValues(t, 5, s["frames_skipped"], "the caller's bad frames are counted")
}

// TestCallShutdownEndsCalls: a gateway that stops closes its live calls
// at the drain deadline, and their model sessions.
func TestCallShutdownEndsCalls(t *testing.T) {
	e := newCallEnv(t, realtimesim.Options{}, nil)
	caller, sess := e.call(nil)
	callSid := e.logged(`"msg":"call answered"`)["call_sid"].(string)
	err := e.shutdown(300 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the live call outlasted the drain deadline")
	assert.Equal(t, int(websocket.StatusNormalClosure), closed(e, caller))
	ended(e, sess)
	assert.Equal(t, "shutdown", e.summary(callSid)["end_reason"])
}

// TestCallShutdownWaitsForCalls: a call that ends within the drain
// deadline ends normally.
func TestCallShutdownWaitsForCalls(t *testing.T) {
	e := newCallEnv(t, realtimesim.Options{}, nil)
	caller, sess := e.call(nil)
	callSid := e.logged(`"msg":"call answered"`)["call_sid"].(string)
	stopped := make(chan error, 1)
	go func() { stopped <- e.shutdown(callWait) }()
	e.until("the shutdown to begin", func() bool {
		_, err := mediasim.PlaceCall(e.ctx, mediasim.CallRequest{URL: e.base + "/incoming-call", AuthToken: callAuthToken, CallSid: "CAlate", From: callFrom})
		return err != nil
	})
	require.NoError(t, caller.Stop(e.ctx))
	ended(e, sess)
	require.NoError(t, <-stopped)
	assert.Equal(t, "caller_hangup", e.summary(callSid)["end_reason"])
}

// TestCallMetrics: /metrics shows a finished call: its end reason, its
// barge-in, its time to first audio, its frames and the webhook's latency.
func TestCallMetrics(t *testing.T) {
	e := newCallEnv(t, realtimesim.Options{}, nil)
	caller, sess := e.call(mediasim.Faster(20))
	require.NoError(t, caller.Speak(e.ctx, mulaw.Tone(300, 100), false))
	deltas, _ := chunks(3, 100)
	require.NoError(t, sess.Say(e.ctx, "resp_1", "item_1", "Hi.", deltas...))
	e.until("the audio at the caller", func() bool { return porttest.CountKind(caller.Received(), "mark") == 3 })
	// The clear answers speech that came after response.done: the call's
	// usage is known when it arrives.
	require.NoError(t, sess.StartSpeech(e.ctx, "item_c", 0))
	e.until("the clear", func() bool { return len(caller.Clears()) == 1 })
	require.NoError(t, caller.Stop(e.ctx))
	ended(e, sess)

	var body string
	e.until("the call in the metrics", func() bool {
		res, err := http.Get(e.base + "/metrics")
		require.NoError(t, err)
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		body = string(b)
		// A scrape gathers the metrics one by one, concurrently with the
		// call's end: wait until it shows both ends of CallEnded.
		return strings.Contains(body, `gateway_calls_total{end_reason="caller_hangup"} 1`) &&
			strings.Contains(body, `gateway_openai_tokens_total{kind="output"} `)
	})
	for _, want := range []string{
		"gateway_calls_active 0",
		"gateway_barge_ins_total 1",
		"gateway_first_audio_seconds_count 1",
		`gateway_audio_frames_total{direction="caller_to_model"} 5`,
		`gateway_audio_frames_total{direction="model_to_caller"} 3`,
		`gateway_http_request_duration_seconds_count{code="200",route="/incoming-call"} 1`,
		`gateway_openai_tokens_total{kind="output"} `,
	} {
		assert.Contains(t, body, want)
	}
}
