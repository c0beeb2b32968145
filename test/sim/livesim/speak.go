package livesim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

// speech is an utterance being spoken.
type speech struct {
	stop chan struct{} // closed to stop it
	once sync.Once
}

func (sp *speech) halt() { sp.once.Do(func() { close(sp.stop) }) }

// Say makes the model speak one utterance: the chunks (base64 mu-law) as
// session.output_audio.delta events, then its transcript as
// session.output_transcript.delta pieces (a word each) on the session
// timeline, then session.usage.updated. It returns when all are sent. If
// the model spoke last and the caller has not spoken since, it first
// pauses (Options.Gap), as a live speaker does.
func (s *Session) Say(ctx context.Context, transcript string, chunks ...[]byte) error {
	return s.speak(ctx, transcript, chunks, 0, false)
}

// speak streams one utterance, waiting every between chunks; progressive
// sends each word of the transcript when its audio has gone out rather
// than all after the audio. Caller speech (Auto) or another utterance
// stops it: what was not said is not sent.
func (s *Session) speak(ctx context.Context, transcript string, chunks [][]byte, every time.Duration, progressive bool) error {
	if err := s.pause(ctx); err != nil {
		return err
	}
	sp := &speech{stop: make(chan struct{})}
	s.mu.Lock()
	if s.speaking != nil {
		s.speaking.halt()
	}
	s.speaking = sp
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.speaking == sp {
			s.speaking = nil
		}
		s.lastOutput, s.callerSince = time.Now(), false
		s.mu.Unlock()
	}()

	words := pieces(transcript)
	startMs, totalMs := s.timeline(), 0
	for _, c := range chunks {
		totalMs += base64.StdEncoding.DecodedLen(len(c)) / 8
	}
	said := 0 // words sent
	sayWords := func(upTo int) error {
		for ; said < upTo; said++ {
			from, to := startMs+int64(totalMs*said/len(words)), startMs+int64(totalMs*(said+1)/len(words))
			if err := s.send(ctx, timedEvent{EventID: s.nextID("event"), Type: "session.output_transcript.delta",
				Delta: &words[said], StartMs: from, EndMs: to}); err != nil {
				return err
			}
		}
		return nil
	}
	for i, chunk := range chunks {
		if i > 0 && every > 0 {
			select {
			case <-time.After(every):
			case <-sp.stop:
			case <-ctx.Done():
				return fmt.Errorf("livesim: say: %w", ctx.Err())
			}
		}
		select {
		case <-sp.stop:
			return s.sendUsage(ctx) // full duplex: it just stops
		default:
		}
		if err := s.Raw(ctx, audioDelta(chunk)); err != nil {
			return err
		}
		if progressive {
			if err := sayWords(len(words) * (i + 1) / len(chunks)); err != nil {
				return err
			}
		}
	}
	if err := sayWords(len(words)); err != nil {
		return err
	}
	return s.sendUsage(ctx)
}

// pause waits out Options.Gap after the model's last words, unless the
// caller has spoken since.
func (s *Session) pause(ctx context.Context) error {
	s.mu.Lock()
	wait := time.Until(s.lastOutput.Add(s.srv.opts.Gap))
	if s.lastOutput.IsZero() || s.callerSince {
		wait = 0
	}
	s.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	select {
	case <-time.After(wait):
		return nil
	case <-s.done:
		return errors.New("livesim: say: the session has ended")
	case <-ctx.Done():
		return fmt.Errorf("livesim: say: %w", ctx.Err())
	}
}

// pieces splits text into transcript deltas: words, each with the space
// after it, so that their concatenation is text.
func pieces(text string) []string {
	if text == "" {
		return nil
	}
	out := strings.SplitAfter(text, " ")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// audioDelta is a session.output_audio.delta: on the primary WebSocket it
// has no event_id and no timestamps.
func audioDelta(chunk []byte) []byte {
	delta, _ := json.Marshal(string(chunk)) // a string always marshals
	return fmt.Appendf(nil, `{"type":"session.output_audio.delta","delta":%s}`, delta)
}

// sendUsage reports the session's cumulative duration.
func (s *Session) sendUsage(ctx context.Context) error {
	s.mu.Lock()
	s.usageSec = max(s.usageSec+0.001, time.Since(s.startedAt).Seconds())
	sec := s.usageSec
	s.mu.Unlock()
	return s.send(ctx, usageEvent{EventID: s.nextID("event"), Type: "session.usage.updated", Usage: usage{Seconds: sec}})
}

// CallerSpeaks makes the model hear the caller say text: full duplex, it
// only transcribes it (session.input_transcript.delta pieces).
func (s *Session) CallerSpeaks(ctx context.Context, text string) error {
	now := s.timeline()
	words := pieces(text)
	for i, w := range words {
		if err := s.send(ctx, timedEvent{EventID: s.nextID("event"), Type: "session.input_transcript.delta",
			Delta: &w, StartMs: now + int64(300*i), EndMs: now + int64(300*(i+1))}); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.callerSince = true
	s.mu.Unlock()
	return nil
}

// Fail sends an error event (its code, which the API always gives, is the
// type when e has none); a fatal one then closes the socket with 1011
// (internal error), the session unfinished. A client that closes first is
// no failure.
func (s *Session) Fail(ctx context.Context, e ports.ModelError) error {
	code := e.Code
	if code == "" {
		code = e.Type
	}
	s.sendError(ctx, e.Type, code, e.Message, "", "")
	if !e.Fatal {
		return nil
	}
	if err := s.shut(websocket.StatusInternalError, "fatal error"); err != nil {
		return err
	}
	return s.wait(ctx)
}

// Hangup ends the session from the server's side: session.closed with
// reason (and the final usage), then a normal close of the socket; it waits
// for the close handshake and the end of the connection. A client that
// closes first is no failure.
func (s *Session) Hangup(ctx context.Context, reason string) error {
	if err := s.finish(ctx, reason); err != nil {
		return err
	}
	return s.wait(ctx)
}

// finish sends session.closed and closes the socket, without waiting for
// the connection's end: the reader goroutine calls it for session.close.
func (s *Session) finish(ctx context.Context, reason string) error {
	s.mu.Lock()
	if s.speaking != nil {
		s.speaking.halt()
	}
	s.usageSec = max(s.usageSec, time.Since(s.startedAt).Seconds())
	u := &usage{Seconds: s.usageSec}
	s.mu.Unlock()
	_ = s.send(ctx, sessionEvent{EventID: s.nextID("event"), Type: "session.closed", Reason: reason, Session: s.resource(), Usage: u})
	return s.shut(websocket.StatusNormalClosure, "")
}

// shut closes the socket with code; a client that closed first is no
// failure.
func (s *Session) shut(code websocket.StatusCode, reason string) error {
	err := s.conn.Close(code, reason)
	if err == nil || websocket.CloseStatus(err) >= 0 || errors.Is(err, net.ErrClosed) {
		return nil
	}
	select {
	case <-s.done: // the client closed first
		return nil
	default:
		return fmt.Errorf("livesim: hang up: %w", err)
	}
}

// wait waits for the end of the connection.
func (s *Session) wait(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("livesim: hang up: %w", ctx.Err())
	}
}

// callerTurn is the Auto policy's view of the caller: mu-law silence is
// quiet, anything else is speech.
type callerTurn struct {
	n        int // turns ended so far
	speaking bool
	voicedMs int  // speech in the current turn
	yielded  bool // the model yielded to the current turn's first word
	quietMs  int
	pcm      []byte
}

// listen runs the Auto policy on one caller chunk, on the reader goroutine.
func (s *Session) listen(ctx context.Context, audio []byte) {
	t := &s.turn
	if need := base64.StdEncoding.DecodedLen(len(audio)); need > cap(t.pcm) {
		t.pcm = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(t.pcm[:cap(t.pcm)], audio)
	if err != nil {
		return
	}
	a := s.srv.opts.Auto
	if mulaw.Voiced(t.pcm[:n]) {
		t.quietMs = 0
		t.speaking = true
		t.voicedMs += n / 8
		if a.Yield > 0 && (t.yielded || time.Duration(t.voicedMs)*time.Millisecond < a.Yield) {
			return
		}
		s.mu.Lock()
		sp := s.speaking
		s.mu.Unlock()
		if sp == nil {
			return
		}
		sp.halt() // talked over, it stops by itself
		if a.Yield > 0 {
			t.yielded = true
			caller, _, _ := s.script(t.n + 1)
			if words := pieces(caller); len(words) > 0 {
				_ = s.CallerSpeaks(ctx, words[0])
			}
		}
		return
	}
	if !t.speaking {
		return
	}
	t.quietMs += n / 8
	if time.Duration(t.quietMs)*time.Millisecond < a.silence() {
		return
	}
	t.n++
	caller, transcript, reply := s.script(t.n)
	if words := pieces(caller); t.yielded && len(words) > 0 {
		caller = strings.Join(words[1:], "") // the first word went with the yield
	}
	t.speaking, t.voicedMs, t.yielded = false, 0, false
	_ = s.CallerSpeaks(ctx, caller)
	s.autoReply(ctx, transcript, reply)
}

// script returns the Auto policy's caller turn n (from 1): what the
// caller says, and the model's answer to it.
func (s *Session) script(n int) (caller, transcript string, reply [][]byte) {
	a := s.srv.opts.Auto
	if n >= 1 && n <= len(a.Turns) {
		return a.Turns[n-1].Caller, a.Turns[n-1].Transcript, s.srv.turns[n-1]
	}
	return a.CallerTranscript, a.Transcript, s.srv.reply
}

// autoReply speaks a reply in the background.
func (s *Session) autoReply(ctx context.Context, transcript string, reply [][]byte) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.speak(ctx, transcript, reply, s.srv.opts.Auto.chunkEvery(), true)
	}()
}
