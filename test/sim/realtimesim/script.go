package realtimesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// StartSpeech reports that the caller started speaking
// (input_audio_buffer.speech_started).
func (s *Session) StartSpeech(ctx context.Context, itemID string, audioStartMs int) error {
	return s.send(ctx, speechEvent{EventID: s.nextID("event"), Type: "input_audio_buffer.speech_started", ItemID: itemID, AudioStartMs: &audioStartMs})
}

// stopSpeech reports that the caller stopped speaking
// (input_audio_buffer.speech_stopped).
func (s *Session) stopSpeech(ctx context.Context, itemID string, audioEndMs int) error {
	return s.send(ctx, speechEvent{EventID: s.nextID("event"), Type: "input_audio_buffer.speech_stopped", ItemID: itemID, AudioEndMs: &audioEndMs})
}

// transcribed reports the caller's item's transcript, ms of audio long
// (conversation.item.input_audio_transcription.completed).
func (s *Session) transcribed(ctx context.Context, itemID, text string, ms int) error {
	e := transcriptionEvent{EventID: s.nextID("event"), Type: "conversation.item.input_audio_transcription.completed",
		ItemID: itemID, Transcript: text}
	e.Usage.Type, e.Usage.Seconds = "duration", float64(ms)/1000
	return s.send(ctx, e)
}

// errNoTranscription: the caller's words cannot be reported to a session
// that asked for no transcription, as the real API would not.
var errNoTranscription = errors.New("realtimesim: the session asked for no transcription")

// CallerSpeaks makes the model hear the caller say text, as a new caller
// item at the current position of the input audio: speech_started,
// speech_stopped, then the completed transcription. The session must have
// asked for transcription (errNoTranscription otherwise). With
// Options.Auto the model then answers, as after a turn it detected.
func (s *Session) CallerSpeaks(ctx context.Context, text string) error {
	s.mu.Lock()
	transcribe := s.conf.TranscriptionModel != ""
	at := s.inputMs
	s.mu.Unlock()
	if !transcribe {
		return fmt.Errorf("realtimesim: caller speaks: %w", errNoTranscription)
	}
	item := s.nextID("item")
	if err := s.StartSpeech(ctx, item, at); err != nil {
		return err
	}
	if err := s.stopSpeech(ctx, item, at); err != nil {
		return err
	}
	if err := s.transcribed(ctx, item, text, 0); err != nil {
		return err
	}
	if s.srv.opts.Auto != nil {
		s.autoReply(ctx)
	}
	return nil
}

// Fail sends an error event; a fatal one then closes the session with 1011
// (internal error).
func (s *Session) Fail(ctx context.Context, e ports.ModelError) error {
	if err := s.sendError(ctx, e.Type, e.Code, e.Message, ""); err != nil {
		return err
	}
	if e.Fatal {
		return s.Hangup(ctx, websocket.StatusInternalError, "fatal error")
	}
	return nil
}

// Hangup closes the session from the server side with code (1001 is what
// the real API sends at the 60-minute limit) and waits for the close
// handshake.
func (s *Session) Hangup(ctx context.Context, code websocket.StatusCode, reason string) error {
	err := s.conn.Close(code, reason)
	if err != nil && websocket.CloseStatus(err) < 0 {
		return fmt.Errorf("realtimesim: hang up: %w", err)
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("realtimesim: hang up: %w", ctx.Err())
	}
}

func (s *Session) sendError(ctx context.Context, typ, code, message, eventID string) error {
	e := errorEvent{EventID: s.nextID("event"), Type: "error", Error: errorInfo{Type: typ, Message: message}}
	if code != "" {
		e.Error.Code = &code
	}
	if eventID != "" {
		e.Error.EventID = &eventID
	}
	return s.send(ctx, e)
}

func (s *Session) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("realtimesim: encode: %w", err)
	}
	return s.write(ctx, b)
}

func (s *Session) write(ctx context.Context, b []byte) error {
	if f := s.srv.opts.OnEvent; f != nil {
		f(b)
	}
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("realtimesim: write: %w", err)
	}
	return nil
}

// Raw sends event as it is, as a text message: for tests of malformed or
// unusual server events.
func (s *Session) Raw(ctx context.Context, event []byte) error { return s.write(ctx, event) }

// Done is closed when the session's connection has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// WaitConfig waits until the client has configured the session and
// returns the configuration.
func (s *Session) WaitConfig(ctx context.Context) (Config, error) {
	select {
	case <-s.configured:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.conf, nil
	case <-ctx.Done():
		return Config{}, fmt.Errorf("realtimesim: wait for session.update: %w", ctx.Err())
	}
}

// ReceivedAudio returns the caller audio frames, in order, as the base64
// text the client sent (none with Options.DropAudio).
func (s *Session) ReceivedAudio() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.audio...)
}

// Frames counts the caller audio frames received.
func (s *Session) Frames() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames
}

// Responds counts response.create events.
func (s *Session) Responds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.responses
}

// Heard returns the truncations received (conversation.item.truncate), in
// order, those the session refused as well.
func (s *Session) Heard() []peer.Heard {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]peer.Heard(nil), s.heard...)
}

// Cancels counts response.cancel events.
func (s *Session) Cancels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancels
}
