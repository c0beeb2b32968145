package realtimesim_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/openai/realtime"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func frame(audio []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(audio)) }

// until receives events until one of type typ, returning the types seen.
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
	sim := realtimesim.New(realtimesim.Options{Auto: &realtimesim.Auto{
		Reply:            mulaw.Tone(440, 5000), // long enough to be interrupted
		Transcript:       "a long answer",
		CallerTranscript: "hello there",
		Silence:          60 * time.Millisecond,
		ChunkEvery:       5 * time.Millisecond,
	}})
	defer sim.Close()
	model := realtime.New(realtime.Options{URL: sim.URL(), APIKey: "sk-test", TurnDetection: realtime.TurnServerVAD, TranscriptionModel: "whisper-1"})
	ctx := t.Context()
	s, err := model.Open(ctx, ports.SpeechConfig{})
	require.NoError(t, err)
	defer s.Close()

	speech, quiet := frame(mulaw.Tone(300, 20)), frame(mulaw.Quiet(20))
	for _, f := range [][]byte{speech, speech, quiet, quiet, quiet, quiet} {
		require.NoError(t, s.AppendAudio(ctx, f))
	}
	assert.Equal(t, []ports.SpeechEventType{
		ports.SpeechCallerStarted, ports.SpeechCallerStopped, ports.SpeechCallerText, ports.SpeechAudio,
	}, until(t, s, ports.SpeechAudio), "a turn, then the reply")

	require.NoError(t, s.AppendAudio(ctx, speech)) // the caller talks over the reply
	seen := until(t, s, ports.SpeechUsage)
	assert.Contains(t, seen, ports.SpeechCallerStarted, "barge-in is reported")
	assert.NotContains(t, seen, ports.SpeechUtteranceDone, "the interrupted reply does not finish")

	sess, err := sim.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, 7, sess.Frames())
}

func TestAutoAnswersResponseCreate(t *testing.T) {
	sim := realtimesim.New(realtimesim.Options{Auto: &realtimesim.Auto{Reply: mulaw.Tone(440, 100), Transcript: "hi", ChunkEvery: time.Millisecond}})
	defer sim.Close()
	s, err := realtime.New(realtime.Options{URL: sim.URL(), APIKey: "sk-test"}).Open(t.Context(), ports.SpeechConfig{})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Respond(t.Context(), "Greet the caller."))
	seen := until(t, s, ports.SpeechUsage)
	assert.Equal(t, []ports.SpeechEventType{
		ports.SpeechAudio, ports.SpeechUtteranceDone, ports.SpeechAssistantText, ports.SpeechUsage,
	}, seen, "the AI speaks first")
	assert.Equal(t, 1, sim.Responds())
}

// TestAutoAnswersCallerSpeaks: a scripted caller turn is answered as one
// the simulator detected.
func TestAutoAnswersCallerSpeaks(t *testing.T) {
	sim := realtimesim.New(realtimesim.Options{Auto: &realtimesim.Auto{Reply: mulaw.Tone(440, 40), Transcript: "yes", ChunkEvery: time.Millisecond}})
	defer sim.Close()
	s, err := realtime.New(realtime.Options{URL: sim.URL(), APIKey: "sk-test", TranscriptionModel: "whisper-1"}).Open(t.Context(), ports.SpeechConfig{})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, sim.CallerSpeaks(t.Context(), "Are you there?"))
	assert.Equal(t, []ports.SpeechEventType{
		ports.SpeechCallerStarted, ports.SpeechCallerStopped, ports.SpeechCallerText,
		ports.SpeechAudio, ports.SpeechUtteranceDone, ports.SpeechAssistantText, ports.SpeechUsage,
	}, until(t, s, ports.SpeechUsage))
}
