package realtimesim

import (
	"context"
	"encoding/base64"
	"time"

	"github.com/convgateway/gateway/test/sim/mulaw"
)

// vad is the Auto policy's view of the caller: mu-law silence is quiet,
// anything else is speech.
type vad struct {
	speaking bool
	posMs    int // position in the input audio
	quietMs  int // quiet since the caller last spoke
	itemID   string
	pcm      []byte // decode buffer
}

// listen runs the Auto policy on one caller frame, on the reader goroutine.
func (s *Session) listen(ctx context.Context, audio []byte) {
	v := &s.vad
	v.pcm = v.pcm[:cap(v.pcm)]
	if need := base64.StdEncoding.DecodedLen(len(audio)); need > len(v.pcm) {
		v.pcm = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(v.pcm, audio)
	if err != nil {
		return
	}
	frame := v.pcm[:n]
	ms := n / 8
	start := v.posMs
	v.posMs += ms
	if mulaw.Voiced(frame) {
		v.quietMs = 0
		if v.speaking {
			return
		}
		v.speaking = true
		v.itemID = s.nextID("item")
		_ = s.StartSpeech(ctx, v.itemID, start)
		s.mu.Lock()
		if s.active != nil {
			s.active.stop("turn_detected") // barge-in
		}
		s.mu.Unlock()
		return
	}
	if !v.speaking {
		return
	}
	v.quietMs += ms
	if time.Duration(v.quietMs)*time.Millisecond < s.srv.opts.Auto.silence() {
		return
	}
	v.speaking = false
	end := v.posMs
	_ = s.send(ctx, speechEvent{EventID: s.nextID("event"), Type: "input_audio_buffer.speech_stopped", ItemID: v.itemID, AudioEndMs: &end})
	s.mu.Lock()
	transcribe := s.cfg.TranscriptionModel != ""
	s.mu.Unlock()
	if transcribe {
		e := transcriptionEvent{EventID: s.nextID("event"), Type: "conversation.item.input_audio_transcription.completed",
			ItemID: v.itemID, Transcript: s.srv.opts.Auto.CallerTranscript}
		e.Usage.Type, e.Usage.Seconds = "duration", float64(end-start)/1000
		_ = s.send(ctx, e)
	}
	s.autoReply(ctx)
}

// autoReply streams the scripted reply in the background.
func (s *Session) autoReply(ctx context.Context) {
	a := s.srv.opts.Auto
	responseID, itemID := s.nextID("resp"), s.nextID("item")
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.respond(ctx, responseID, itemID, a.Transcript, s.srv.reply, a.chunkEvery())
	}()
}

func (a *Auto) silence() time.Duration {
	if a.Silence > 0 {
		return a.Silence
	}
	return 400 * time.Millisecond
}

func (a *Auto) chunkEvery() time.Duration {
	if a.ChunkEvery > 0 {
		return a.ChunkEvery
	}
	return 10 * time.Millisecond
}
