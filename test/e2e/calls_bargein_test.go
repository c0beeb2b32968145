package e2e_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/app"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

// A barge-in works differently with each speech model, and each test here
// asserts one model's own semantics.

// TestCallBargeInRealtime: Realtime reports the caller's speech
// (speech_started) and leaves the interruption to the gateway. When the
// caller speaks over the assistant, the caller's playback is cleared at
// once and the item being heard is truncated at the audio the caller's
// marks acknowledged, also with several responses queued; the late audio
// of an answer in progress is dropped.
func TestCallBargeInRealtime(t *testing.T) {
	const chunkMs = 300
	tests := []struct {
		name string
		// responses are the chunk counts of the responses queued.
		responses []int
		// heard is how many marks play before the caller speaks.
		heard int
		want  peer.Heard
	}{
		{"mid-item", []int{5}, 2, peer.Heard{Utterance: "item_0", Ms: 2 * chunkMs}},
		{"nothing heard yet", []int{3}, 0, peer.Heard{Utterance: "item_0", Ms: 0}},
		{"two queued, the second playing", []int{2, 3}, 3, peer.Heard{Utterance: "item_1", Ms: chunkMs}},
		{"two queued, the first playing", []int{2, 3}, 1, peer.Heard{Utterance: "item_0", Ms: chunkMs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCallEnv(t, realtimeBackend, simOptions{}, nil)
			sid, caller, model := e.callWith(mediasim.Options{Clock: mediasim.RealTime})
			sess := model.(rtSession)
			total := 0
			for i, n := range tt.responses {
				deltas, _ := chunks(n, chunkMs)
				id := string(rune('0' + i))
				require.NoError(t, sess.SayAs(e.ctx, "resp_"+id, "item_"+id, "Part "+id, deltas...))
				total += n
			}
			// The model has begun another answer when the caller speaks:
			// its first audio is queued behind the rest.
			late, _ := chunks(2, 20)
			require.NoError(t, sess.Raw(e.ctx, lateDelta(late[0])))
			total++
			e.until("all the audio at the caller", func() bool { return countEvent(caller.Frames(), "mark") >= total })
			if tt.heard > 0 {
				e.until("marks played", func() bool { return len(caller.Marks()) >= tt.heard })
				// A key press after the echo: once the gateway logged it,
				// it has applied the echo too (one socket, in order).
				require.NoError(t, caller.Key(e.ctx, "9"))
				e.logged(`"msg":"caller pressed a key"`)
				require.Len(t, caller.Marks(), tt.heard, "the test must speak before the next mark (chunks of %d ms)", chunkMs)
			}

			require.NoError(t, sess.StartSpeech(e.ctx, "item_caller", 0))
			e.until("the truncation", func() bool { return len(sess.Heard()) > 0 })
			assert.Equal(t, []peer.Heard{tt.want}, sess.Heard())
			e.until("the clear", func() bool { return len(caller.Clears()) > 0 })
			frames := caller.Frames()
			assert.Equal(t, "clear", frames[len(frames)-1].Event, "the clear follows the audio")

			// The clear flushed the pending marks: they come back flushed.
			e.until("every mark echoed", func() bool { return len(caller.Marks()) == total })
			for i, m := range caller.Marks() {
				assert.Equal(t, i >= tt.heard, m.Flushed, "mark %d", i)
			}
			assert.LessOrEqual(t, len(caller.Played()), (tt.heard+1)*chunkMs*8, "playback stopped at the clear")

			// The interrupted answer's late audio is dropped, a new answer
			// plays.
			require.NoError(t, sess.Raw(e.ctx, lateDelta(late[1])))
			fresh, _ := chunks(1, 40)
			require.NoError(t, sess.SayAs(e.ctx, "resp_9", "item_9", "Yes?", fresh...))
			e.until("the new answer", func() bool { return countEvent(caller.Frames(), "media") == total+1 })
			assert.Equal(t, fresh[0], lastMedia(caller.Frames()), "only the new answer's audio followed the clear")
			assert.Empty(t, e.modelErrors(), "the truncation was within the item's audio")
			assert.Zero(t, sess.Cancels(), "no response.cancel")
			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)

			s := e.summary(sid)
			assert.EqualValues(t, 1, s["barge_ins"])
			assert.EqualValues(t, 1, s["frames_dropped"], "the late audio")
			in := e.logged(`"msg":"caller interrupted the assistant"`, `"call_id":"`+sid+`"`)
			assert.Equal(t, tt.want.Utterance, in["utterance"])
			assert.EqualValues(t, tt.want.Ms, in["heard_ms"])
		})
	}
}

// lateDelta is an audio delta of an answer the model began last
// (resp_late, item_late), carrying chunk.
func lateDelta(chunk []byte) []byte {
	return []byte(`{"type":"response.output_audio.delta","event_id":"event_late","response_id":"resp_late",` +
		`"item_id":"item_late","output_index":0,"content_index":0,"delta":"` + string(chunk) + `"}`)
}

// TestCallBargeInLive: GPT-Live is full duplex: it stops talking by
// itself when the caller talks over it, and reports no speech, only the
// caller's words. The gateway keeps only a small lead of the assistant's
// audio queued at Twilio (app.DefaultPlaybackLead), holding the rest; when
// the caller's words take the turn it withdraws what it holds and clears
// the lead, so that the caller hears nothing more of the answer; nothing
// is truncated (the model knows what it said). A backchannel ("mm-hmm")
// takes no turn: the answer plays on.
//
// The caller's playback stands still (stoppedClock) and advances only
// with PlayOut, so what the caller has heard at the talk-over is the
// test's choice, not the machine's.
func TestCallBargeInLive(t *testing.T) {
	const chunkMs = 100
	lead := int(app.DefaultPlaybackLead.Milliseconds()) / chunkMs // chunks
	answer, raw := chunks(50, chunkMs)                            // 5 s

	// start has the model speak the answer and the caller play its first
	// lead; it returns when the gateway has handed the next lead.
	start := func(t *testing.T) (*callEnv, string, *mediasim.Caller, liveSession) {
		e := newCallEnv(t, liveBackend, simOptions{}, nil)
		sid, caller, model := e.callWith(mediasim.Options{Clock: stoppedClock{}})
		sess := model.(liveSession)
		require.NoError(t, sess.Say(e.ctx, "Let me tell you a long story.", answer...))
		e.until("the first lead at the caller", func() bool { return countEvent(caller.Frames(), "mark") == lead })
		require.NoError(t, caller.PlayOut(e.ctx))
		e.until("the next lead at the caller", func() bool { return countEvent(caller.Frames(), "mark") == 2*lead })
		return e, sid, caller, sess
	}

	t.Run("the caller takes the turn", func(t *testing.T) {
		e, sid, caller, sess := start(t)
		require.NoError(t, sess.CallerSpeaks(e.ctx, "Wait, stop, I have a question."))
		e.until("the clear", func() bool { return len(caller.Clears()) == 1 })
		frames := caller.Frames()
		assert.Equal(t, "clear", frames[len(frames)-1].Event, "the clear follows the lead")
		e.until("every mark echoed", func() bool { return len(caller.Marks()) == 2*lead })
		for i, m := range caller.Marks() {
			assert.Equal(t, i >= lead, m.Flushed, "mark %d: the lead queued at the talk-over is flushed", i)
		}
		assert.Equal(t, raw[:lead*chunkMs*8], caller.Played(), "the caller heard what played before the talk-over, nothing after")

		// The model answers the caller: its new words play at once; the
		// withdrawn rest of the story never does.
		fresh, _ := chunks(1, 40)
		require.NoError(t, sess.Say(e.ctx, "Yes?", fresh...))
		e.until("the new answer", func() bool { return countEvent(caller.Frames(), "media") == 2*lead+1 })
		assert.Equal(t, fresh[0], lastMedia(caller.Frames()))
		require.NoError(t, caller.PlayOut(e.ctx))
		require.NoError(t, caller.HangUp(e.ctx))
		ended(e, sess)

		assert.Equal(t, []string{"session.start", "session.close"}, commandTypes(t, sess),
			"nothing is truncated: the model is told nothing but the session's start and end")
		assert.Empty(t, e.modelErrors())
		s := e.summary(sid)
		assert.EqualValues(t, 1, s["barge_ins"])
		assert.EqualValues(t, 2*lead+1, s["frames_out"], "what was handed to the caller")
		assert.EqualValues(t, len(answer)-2*lead, s["frames_dropped"], "the rest of the story, withdrawn")
		turns := s["turns"].([]any)
		require.Len(t, turns, 3)
		story, words, yes := turns[0].(map[string]any), turns[1].(map[string]any), turns[2].(map[string]any)
		assert.Equal(t, "assistant", story["speaker"])
		assert.Equal(t, true, story["interrupted"])
		assert.EqualValues(t, lead*chunkMs, story["heard_ms"])
		assert.EqualValues(t, 2*lead*chunkMs, story["sent_ms"], "what was handed: the played lead and the cleared one; the held rest never was")
		assert.Equal(t, "caller", words["speaker"])
		assert.Equal(t, "Wait, stop, I have a question.", words["text"])
		assert.Equal(t, "assistant", yes["speaker"])
		assert.NotEqual(t, story["utterance"], yes["utterance"], "the answer after the caller's words is a new utterance")
		in := e.logged(`"msg":"caller interrupted the assistant"`, `"call_id":"`+sid+`"`)
		assert.Equal(t, story["utterance"], in["utterance"])
		assert.EqualValues(t, lead*chunkMs, in["heard_ms"])
	})

	t.Run("the model stops by itself", func(t *testing.T) {
		// The model on its own, as on a real call: it greets the caller
		// with a 5 s answer in real time, 20 ms at a time, its words as
		// its audio goes out; the caller talks over it and pauses; the
		// model stops talking when it hears the caller's voice and, once
		// the caller paused, reports the words and answers them.
		const auto = 20 // ms, the simulator's chunks
		words := strings.TrimSpace(strings.Repeat("and then ", 25))
		e := newCallEnv(t, liveBackend, simOptions{Reply: words, ReplyAudio: mulaw.Tone(440, 5000),
			CallerWords: "Wait, stop, I have a question."}, func(c *configs.Config) { c.AISpeaksFirst = true })
		sid, caller, model := e.callWith(mediasim.Options{Clock: stoppedClock{}})
		sess := model.(liveSession)
		leadChunks := int(app.DefaultPlaybackLead.Milliseconds()) / auto
		// The caller hears the first three leads, and the gateway hands it
		// the next one as the model speaks on.
		for played := 0; played < 3*leadChunks; played += leadChunks {
			e.until("a lead at the caller", func() bool { return countEvent(caller.Frames(), "mark") == played+leadChunks })
			require.NoError(t, caller.PlayOut(e.ctx))
		}
		e.until("the next lead at the caller", func() bool { return countEvent(caller.Frames(), "mark") == 4*leadChunks })
		heard := caller.Played()
		require.Len(t, heard, 3*leadChunks*auto*8)

		require.NoError(t, caller.Speak(e.ctx, append(mulaw.Tone(300, 200), mulaw.Quiet(600)...), false))
		e.until("the clear", func() bool { return len(caller.Clears()) == 1 })
		e.until("the lead's marks echoed", func() bool { return len(caller.Marks()) == 4*leadChunks })
		for i, m := range caller.Marks() {
			assert.Equal(t, i >= 3*leadChunks, m.Flushed, "mark %d: the lead queued at the talk-over is flushed", i)
		}
		assert.Equal(t, heard, caller.Played(), "nothing more of the first answer played after the talk-over")
		// The model answers the caller's words: a new answer plays.
		e.until("the new answer at the caller", func() bool { return countEvent(caller.Frames(), "media") > 4*leadChunks })
		require.NoError(t, caller.HangUp(e.ctx))
		ended(e, sess)

		assert.Equal(t, []string{"session.start", "session.commentary.append", "session.close"}, commandTypes(t, sess),
			"nothing is truncated: the model is told nothing but the greeting's request")
		s := e.summary(sid)
		assert.EqualValues(t, 1, s["barge_ins"])
		turns := s["turns"].([]any)
		require.Len(t, turns, 3)
		first, caller3, second := turns[0].(map[string]any), turns[1].(map[string]any), turns[2].(map[string]any)
		assert.Equal(t, true, first["interrupted"])
		assert.EqualValues(t, 3*leadChunks*auto, first["heard_ms"])
		assert.EqualValues(t, 4*leadChunks*auto, first["sent_ms"], "what the caller got; what the gateway held was withdrawn")
		said, _ := first["text"].(string)
		assert.NotEmpty(t, said, "the model said some of its words")
		assert.True(t, strings.HasPrefix(words, said) && len(said) < len(words),
			"the model stopped by itself, mid-answer: it said %q", said)
		assert.Equal(t, "Wait, stop, I have a question.", caller3["text"])
		assert.Equal(t, "assistant", second["speaker"])
		assert.NotEqual(t, first["utterance"], second["utterance"])
	})

	t.Run("a backchannel does not", func(t *testing.T) {
		e, sid, caller, sess := start(t)
		require.NoError(t, sess.CallerSpeaks(e.ctx, "Mm-hmm."))
		// A marker after the caller's words: once the gateway has logged
		// it, it has handled them, and any clear they caused is on the
		// socket ahead of the audio handed after the next PlayOut.
		require.NoError(t, sess.Fail(e.ctx, ports.ModelError{Type: "invalid_request_error", Code: "marker", Message: "marker"}))
		e.logged(`"msg":"model reported an error"`, `"code":"marker"`)
		for played := 2 * lead; played < len(answer); {
			require.NoError(t, caller.PlayOut(e.ctx))
			played = min(played+lead, len(answer))
			e.until("the next lead", func() bool { return countEvent(caller.Frames(), "mark") == played })
		}
		require.NoError(t, caller.PlayOut(e.ctx))
		assert.Empty(t, caller.Clears(), "a backchannel does not clear")
		assert.Equal(t, raw, caller.Played(), "the caller heard the whole answer")
		require.NoError(t, caller.HangUp(e.ctx))
		ended(e, sess)

		s := e.summary(sid)
		assert.EqualValues(t, 0, s["barge_ins"])
		assert.EqualValues(t, len(answer), s["frames_out"])
		assert.EqualValues(t, 0, s["frames_dropped"])
		turns := s["turns"].([]any)
		require.Len(t, turns, 2)
		story := turns[0].(map[string]any)
		assert.NotContains(t, story, "interrupted")
		assert.EqualValues(t, len(answer)*chunkMs, story["heard_ms"])
		assert.Equal(t, "Mm-hmm.", turns[1].(map[string]any)["text"])
	})
}

// TestCallLivePlaybackLead: with GPT-Live the gateway hands the assistant's
// audio to the caller only a small lead ahead of playback, however fast
// the model sends it: a 5 s answer that arrives at once never runs more
// than the lead and a chunk ahead of the marks the caller played, and all
// of it plays, in order.
func TestCallLivePlaybackLead(t *testing.T) {
	const chunkMs = 20
	lead := int(app.DefaultPlaybackLead.Milliseconds())
	answer, raw := chunks(250, chunkMs)

	var caller atomic.Pointer[mediasim.Caller]
	var received, worst atomic.Int64 // ms of audio received; the most it ran ahead of the marks
	onMedia := func([]byte) {
		// Before this chunk is recorded: the marks echoed so far played
		// chunks received earlier.
		ms := received.Add(chunkMs)
		if c := caller.Load(); c != nil {
			if ahead := ms - int64(len(c.Marks())*chunkMs); ahead > worst.Load() {
				worst.Store(ahead)
			}
		}
	}
	e := newCallEnv(t, liveBackend, simOptions{}, nil)
	sid, a := e.placeCall(callFrom)
	c := e.dialWith(a, mediasim.Options{Clock: mediasim.Faster(10), OnMedia: onMedia})
	caller.Store(c)
	require.NoError(t, c.Start(e.ctx, callInfo(sid, a.Params)))
	sess := e.session()
	require.NoError(t, sess.Say(e.ctx, "A long answer.", answer...))
	e.until("the whole answer played", func() bool { return len(c.Marks()) == len(answer) })
	t.Logf("the caller's audio ran at most %d ms ahead of its playback (lead %d ms)", worst.Load(), lead)
	assert.LessOrEqual(t, worst.Load(), int64(lead+chunkMs), "never more than the lead and a chunk ahead")
	assert.Equal(t, raw, c.Played())
	assert.Empty(t, c.Clears())
	require.NoError(t, c.HangUp(e.ctx))
	ended(e, sess)
	assert.EqualValues(t, len(answer), e.summary(sid)["frames_out"])
}

// commandTypes returns the types of the events, other than audio, the
// gateway sent to a GPT-Live session.
func commandTypes(t *testing.T, s liveSession) []string {
	t.Helper()
	var types []string
	for _, c := range s.Commands() {
		var e struct {
			Type string `json:"type"`
		}
		require.NoError(t, json.NewDecoder(bytes.NewReader(c)).Decode(&e))
		types = append(types, e.Type)
	}
	return types
}
