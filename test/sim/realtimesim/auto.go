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
	startMs  int // where the caller's current turn began
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
		v.speaking, v.startMs = true, start
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
	_ = s.stopSpeech(ctx, v.itemID, end)
	s.mu.Lock()
	transcribe := s.conf.TranscriptionModel != ""
	s.mu.Unlock()
	if transcribe {
		_ = s.transcribed(ctx, v.itemID, s.srv.opts.Auto.CallerTranscript, end-v.startMs)
	}
	s.autoReply(ctx)
}

// autoReply streams the scripted reply in the background: Auto.Transcript,
// or, with Auto.SayToolOutputs after tool results, their outputs. The
// response is active when it returns. It may run on any goroutine.
func (s *Session) autoReply(ctx context.Context) {
	a := s.srv.opts.Auto
	transcript := a.Transcript
	responseID, itemID := s.nextID("resp"), s.nextID("item")
	s.mu.Lock()
	if s.ended { // run is waiting for the responders, or has
		s.mu.Unlock()
		return
	}
	if said := s.toolOutputs(); a.SayToolOutputs && said != "" {
		transcript = said
	}
	s.wg.Add(1)
	s.mu.Unlock()
	r := s.begin(responseID)
	go func() {
		defer s.wg.Done()
		_ = s.speak(ctx, r, itemID, transcript, s.srv.reply, a.chunkEvery())
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
