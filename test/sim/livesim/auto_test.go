package livesim_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/openai/live"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/livesim"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

func frame(audio []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(audio)) }

func openAuto(t *testing.T, auto *livesim.Auto) (*livesim.Server, ports.SpeechSession) {
	t.Helper()
	sim := livesim.New(livesim.Options{Auto: auto})
	t.Cleanup(sim.Close)
	s, err := live.New(live.Options{URL: sim.URL(), APIKey: "sk-test", BackendModel: "gpt-5.5"}).Open(t.Context(), ports.SpeechConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return sim, s
}

// until receives events until one of type typ, returning the types seen
// (repeats folded).
func until(t *testing.T, s ports.SpeechSession, typ ports.SpeechEventType) []ports.SpeechEventType {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var seen []ports.SpeechEventType
	for {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		if len(seen) == 0 || seen[len(seen)-1] != ev.Type {
			seen = append(seen, ev.Type)
		}
		if ev.Type == typ {
			return seen
		}
	}
}

func TestAutoTurnAndBargeIn(t *testing.T) {
	sim, s := openAuto(t, &livesim.Auto{
		Reply:            mulaw.Tone(440, 5000), // long enough to be talked over
		Transcript:       "a long answer indeed",
		CallerTranscript: "hello there",
		Silence:          60 * time.Millisecond,
		ChunkEvery:       5 * time.Millisecond,
	})
	ctx := t.Context()
	speech, quiet := frame(mulaw.Tone(300, 20)), frame(mulaw.Quiet(20))
	for _, f := range [][]byte{speech, speech, quiet, quiet, quiet, quiet} {
		require.NoError(t, s.AppendAudio(ctx, f))
	}
	assert.Equal(t, []ports.SpeechEventType{ports.SpeechCallerText, ports.SpeechAudio},
		until(t, s, ports.SpeechAudio), "a turn: its words, then the reply, without speech events")

	require.NoError(t, s.AppendAudio(ctx, speech)) // the caller talks over the reply
	audio := 1
	for {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		assert.NotContains(t, []ports.SpeechEventType{ports.SpeechCallerStarted, ports.SpeechUtteranceDone}, ev.Type,
			"full duplex: it stops by itself, silently")
		if ev.Type == ports.SpeechAudio {
			audio++
		}
		if ev.Type == ports.SpeechUsage {
			break
		}
	}
	assert.Less(t, audio, 250, "the reply stopped before its end")
	sess, err := sim.Latest(ctx)
	require.NoError(t, err)
	assert.Len(t, sess.ReceivedAudio(), 7)
}

func TestAutoSpeaksOnRespond(t *testing.T) {
	_, s := openAuto(t, &livesim.Auto{Reply: mulaw.Tone(440, 100), Transcript: "Hello, how can I help?", ChunkEvery: time.Millisecond})
	require.NoError(t, s.Respond(t.Context(), "Greet the caller."))
	var text string
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	chunks := 0
	for {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		switch ev.Type {
		case ports.SpeechAudio:
			chunks++
			assert.Equal(t, "u1", ev.Utterance)
		case ports.SpeechAssistantText:
			text += ev.Text
		}
		if ev.Type == ports.SpeechUsage {
			break
		}
	}
	assert.Equal(t, 5, chunks, "100 ms in 20 ms chunks")
	assert.Equal(t, "Hello, how can I help?", text)
}

func TestAutoSpeaksToolResults(t *testing.T) {
	sim, s := openAuto(t, &livesim.Auto{ChunkEvery: time.Millisecond})
	require.NoError(t, sim.CallTool(t.Context(), ports.ToolCall{ID: "call_1", Name: "check_availability"}))
	until(t, s, ports.SpeechToolCall)
	sent := time.Now()
	require.NoError(t, s.ToolResult(t.Context(), ports.ToolResult{CallID: "call_1", Output: "3 tables at 8 pm"}))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var said, utterance string
	for said != livesim.SaysResult("3 tables at 8 pm") {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		switch {
		case ev.Type == ports.SpeechAudio && utterance == "":
			utterance = ev.Utterance
			t.Logf("from the tool's result to the first audio of the reply: %v", time.Since(sent))
		case ev.Type == ports.SpeechAssistantText:
			assert.Equal(t, utterance, ev.Utterance, "the reply's words come with its audio")
			said += ev.Text
		}
	}
	sess, err := sim.Latest(ctx)
	require.NoError(t, err)
	assert.Empty(t, sess.Refusals())
}
