package app

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	codec "github.com/convgateway/gateway/adapters/audio"
	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// newDuplexTest is a call test on a full duplex model, with the given
// playback lead, whose owner reports every model event it applied.
func newDuplexTest(t *testing.T, lead int) (*callTest, chan ports.SpeechEvent) {
	t.Helper()
	k := newCallTest(t, func(d *CallsDeps) {
		d.Speech = fake.NewFullDuplexModel()
		d.PlaybackLead = msDuration(lead)
	})
	k.model = k.svc.speech.(*fake.SpeechModel)
	applied := make(chan ports.SpeechEvent, 100)
	k.svc.testHookModelEvent = func(ev ports.SpeechEvent) { applied <- ev }
	return k, applied
}

// waitModel waits until the owner applied an event of type typ.
func (k *callTest) waitModel(applied chan ports.SpeechEvent, typ ports.SpeechEventType) {
	k.t.Helper()
	for {
		select {
		case ev := <-applied:
			if ev.Type == typ {
				return
			}
		case <-k.ctx.Done():
			k.t.Fatalf("the call did not apply %s", typ)
		}
	}
}

func chunks(n, ms int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = audio(ms)
	}
	return out
}

// A full duplex model's audio is handed to the caller only a lead ahead
// of playback: the rest waits for the caller to hear what came before.
func TestFullDuplexPacesPlayback(t *testing.T) {
	k, applied := newDuplexTest(t, 100)
	sess := k.start("CA1")
	require.NoError(t, sess.SayAs(k.ctx, "u1", "A long answer.", chunks(10, 20)...))
	k.waitModel(applied, ports.SpeechUsage) // every chunk is with the player
	k.received(peer.OutAudio, 5)
	assert.Equal(t, 5, peer.Count(k.peer.Received(), peer.OutAudio), "100 ms of lead: five chunks of 20 ms")

	k.play() // 20 ms heard: one more may go
	k.received(peer.OutAudio, 6)
	require.NoError(t, k.peer.PlayOut(k.ctx))
	k.received(peer.OutAudio, 10) // what playback frees goes out, to the end
	for range 4 {
		if k.peer.Queued() == 0 {
			break
		}
		k.play()
	}
	s := k.hangUp(sess)
	assert.Equal(t, 10, s.FramesOut)
	assert.Zero(t, s.BargeIns)
}

// When the caller's words take the turn from a full duplex model, the
// audio held back is dropped and what was handed is cleared; the model is
// told nothing (it stopped by itself). A backchannel takes nothing.
func TestFullDuplexTalkOver(t *testing.T) {
	k, applied := newDuplexTest(t, 100)
	sess := k.start("CA1")
	require.NoError(t, sess.SayAs(k.ctx, "u1", "A long answer.", chunks(10, 20)...))
	k.waitModel(applied, ports.SpeechUsage)
	k.received(peer.OutAudio, 5)
	k.play()
	k.play() // 40 ms heard; two more handed
	k.received(peer.OutAudio, 7)

	require.NoError(t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechCallerText, Text: "Mm-hmm."}))
	k.waitModel(applied, ports.SpeechCallerText)
	assert.Zero(t, peer.Count(k.peer.Received(), peer.OutClear), "a backchannel does not take the turn")

	require.NoError(t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechCallerText, Text: " Wait, what about Tuesday?"}))
	out := k.received(peer.OutClear, 1)
	assert.Equal(t, peer.OutClear, out[len(out)-1].Kind)
	assert.Equal(t, 7, peer.Count(out, peer.OutAudio), "nothing held is handed after the clear")

	// The model's next answer plays.
	require.NoError(t, sess.SayAs(k.ctx, "u2", "Tuesday works.", audio(20)))
	k.received(peer.OutAudio, 8)
	s := k.hangUp(sess)
	assert.Equal(t, 1, s.BargeIns)
	assert.Equal(t, 3, s.FramesDropped, "the chunks held back were dropped")
	assert.Empty(t, sess.Heards(), "a full duplex model is told nothing")
	require.GreaterOrEqual(t, len(s.Turns), 2)
	first := s.Turns[0]
	assert.Equal(t, "u1", first.Utterance)
	assert.True(t, first.Interrupted)
	assert.Equal(t, 40, first.HeardMs)
	assert.Equal(t, 140, first.SentMs, "what was handed, not what was held back")
	assert.Equal(t, "Mm-hmm. Wait, what about Tuesday?", s.Turns[1].Text)
}

// When the model's audio format differs from the caller's, audio is
// converted both ways; without a converter the call is refused.
func TestFormatsDiffer(t *testing.T) {
	pcm24k := ports.AudioFormat{Encoding: ports.EncodingPCM16, SampleRate: 24000}
	t.Run("converted", func(t *testing.T) {
		k := newCallTest(t, func(d *CallsDeps) { d.Transcoders = codec.NewTranscoder })
		k.model.SetFormat(pcm24k)
		sess := k.start("CA1")
		require.NoError(t, k.peer.Audio(k.ctx, 20, audio(20)))
		got, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.Audio) == 1 })
		require.NoError(t, err)
		raw, err := base64.StdEncoding.DecodeString(string(got.Audio[0]))
		require.NoError(t, err)
		assert.Len(t, raw, 20*24*2, "20 ms of 16-bit samples at 24 kHz")

		model := base64.StdEncoding.EncodeToString(make([]byte, 20*24*2)) // 20 ms of PCM16 silence
		require.NoError(t, sess.SayAs(k.ctx, "u1", "Hi.", []byte(model)))
		out := k.received(peer.OutAudio, 1)
		raw, err = base64.StdEncoding.DecodeString(string(out[0].Audio))
		require.NoError(t, err)
		assert.Len(t, raw, 160, "20 ms of mu-law at 8 kHz")
		k.hangUp(sess)
	})
	t.Run("no converter", func(t *testing.T) {
		k := newCallTest(t, nil)
		k.model.SetFormat(pcm24k)
		token := k.answer("CA1")
		k.serve()
		k.startStream("CA1", token)
		assert.Equal(t, ports.EndFailed, k.waitEnded())
		require.ErrorIs(t, k.waitServed(), ports.ErrInvalidInput)
		assert.Contains(t, k.logs.String(), `"reason":"audio_formats"`)
	})
}

func msDuration(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }
