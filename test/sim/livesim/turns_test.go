package livesim_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/openai/live"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/livesim"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

// heard receives events until one of type stop, and returns the caller's
// words, the assistant's words and the audio chunks received meanwhile.
func heard(t *testing.T, s ports.SpeechSession, stop ports.SpeechEventType) (caller, assistant string, chunks int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		switch ev.Type {
		case ports.SpeechCallerText:
			caller += ev.Text
		case ports.SpeechAssistantText:
			assistant += ev.Text
		case ports.SpeechAudio:
			chunks++
		}
		if ev.Type == stop {
			return caller, assistant, chunks
		}
	}
}

// TestAutoTurnsYieldAndOnEvent: Auto.Turns script each caller turn's words
// and answer; with Auto.Yield the model goes on speaking through less
// caller speech than that, then stops and transcribes the caller's first
// word, the rest at the end of the turn; OnEvent sees every event sent.
func TestAutoTurnsYieldAndOnEvent(t *testing.T) {
	var mu sync.Mutex
	var types []string
	sim := livesim.New(livesim.Options{
		Auto: &livesim.Auto{
			Turns: []livesim.Turn{
				{Caller: "hello there", Reply: mulaw.Tone(440, 5000), Transcript: "a long answer"},
				{Caller: "stop please now", Reply: mulaw.Tone(440, 100), Transcript: "all right"},
			},
			Silence:    60 * time.Millisecond,
			Yield:      60 * time.Millisecond,
			ChunkEvery: 5 * time.Millisecond,
		},
		OnEvent: func(event []byte) {
			var e struct{ Type string }
			_ = json.Unmarshal(event, &e)
			mu.Lock()
			types = append(types, e.Type)
			mu.Unlock()
		},
	})
	t.Cleanup(sim.Close)
	s, err := live.New(live.Options{URL: sim.URL(), APIKey: "sk-test", BackendModel: "gpt-5.5"}).Open(t.Context(), ports.SpeechConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	speech, quiet := frame(mulaw.Tone(300, 20)), frame(mulaw.Quiet(20))
	send := func(frames ...[]byte) {
		for _, f := range frames {
			require.NoError(t, s.AppendAudio(ctx, f))
		}
	}

	send(speech, speech, quiet, quiet, quiet)
	caller, _, _ := heard(t, s, ports.SpeechAudio)
	assert.Equal(t, "hello there", caller, "the first turn's words")

	send(speech, speech) // 40 ms: less than Yield
	_, _, chunks := heard(t, s, ports.SpeechAudio)
	assert.Positive(t, chunks, "it speaks on")
	send(speech) // 60 ms: it yields
	caller, said, chunks := heard(t, s, ports.SpeechUsage)
	assert.Equal(t, "stop ", caller, "the first word, as it yields")
	assert.Less(t, chunks, 240, "it stopped before the end of its answer")
	assert.NotEqual(t, "a long answer", said)

	send(quiet, quiet, quiet)
	caller, said, _ = heard(t, s, ports.SpeechUsage)
	assert.Equal(t, "please now", caller, "the rest of the words at the end of the turn")
	assert.Equal(t, "all right", said, "the second turn's answer")

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, "session.started", types[0])
	assert.Contains(t, types, "session.input_transcript.delta")
	assert.Contains(t, types, "session.output_audio.delta")
}
