package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
)

// session is one open Realtime session. It implements ports.SpeechSession.
type session struct {
	stream *wsstream.Stream[ports.SpeechEvent]
	dec    decoder // used by whichever goroutine reads (one at a time)
}

var _ ports.SpeechSession = (*session)(nil)

func newSession(conn *websocket.Conn, log *slog.Logger) *session {
	log = log.With("component", "realtime")
	s := &session{dec: decoder{log: log}}
	s.stream = wsstream.Start(wsstream.Config[ports.SpeechEvent]{
		Conn:   conn,
		Log:    log,
		Decode: s.decode,
		Reason: s.endReason,
	})
	return s
}

// decode decodes a server event, and sends the response.create it made
// due, if any (tool results waited for a response to end). It runs on the
// reading goroutine: the request goes out before the next event is read.
func (s *session) decode(b []byte) (ports.SpeechEvent, error) {
	ev, err := s.dec.decode(b)
	if id := s.dec.flush; id != "" {
		s.dec.flush = ""
		if werr := s.sendEvent(context.Background(), "tool results: respond", responseCreate(id, "")); werr != nil {
			s.dec.turns.unsent(id)
			s.dec.logf(slog.LevelInfo, "tool results: respond", "err", werr)
		}
	}
	return ev, err
}

// reasonFatal is the end of a session the API closed right after an error.
const reasonFatal = "fatal_error"

// endReason names the end of a session the server closed: the 60-minute
// limit ends with 1001 (going away); a close right after an error event
// ends a session that error made fatal.
func (s *session) endReason(code int) string {
	switch {
	case code == int(websocket.StatusGoingAway):
		return "session_limit"
	case s.dec.lastWasError:
		return reasonFatal
	case code < 0:
		return "connection_lost"
	default:
		return "remote_closed"
	}
}

// configure sends update and waits for session.updated. ctx bounds the
// wait by closing the session when it ends, so that the session's reads
// stay inline (wsstream) for the rest of its life.
func (s *session) configure(ctx context.Context, update json.Marshaler) error {
	if err := s.sendEvent(ctx, "session update", update); err != nil {
		return fmt.Errorf("%w: %w", err, ports.ErrUnavailable)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.stream.Close(websocket.StatusNormalClosure, "open cancelled") })
	err := s.awaitUpdated()
	if !stop() { // ctx ended: the session is closed or being closed
		return fmt.Errorf("realtime: open: %w", ctx.Err())
	}
	return err
}

func (s *session) awaitUpdated() error {
	for {
		ev, err := s.stream.Recv(context.Background())
		switch {
		case err != nil:
			return fmt.Errorf("realtime: open: %w: %w", ports.ErrUnavailable, err)
		case ev.Type == ports.SpeechError:
			return fmt.Errorf("realtime: open: %w: %w", ports.ErrRejected, ev.Err)
		case ev.Type == ports.SpeechUnknown: // session.updated, while opening
			s.dec.opened = true
			return nil
		}
	}
}

// AppendAudio sends input_audio_buffer.append with the base64 audio, copied
// into the frame before it returns. Frames go out in the order of the
// calls. It blocks while the connection is congested; if ctx ends during
// the write the connection is closed. Errors wrap ports.ErrClosed once the
// session has ended. Safe for concurrent use.
func (s *session) AppendAudio(ctx context.Context, audio []byte) error {
	if err := s.stream.Write(ctx, func(b []byte) []byte { return appendAudio(b, audio) }); err != nil {
		return fmt.Errorf("realtime: append audio: %w", err)
	}
	return nil
}

// Format is 8 kHz mu-law (audio/pcmu), in both directions.
func (s *session) Format() ports.AudioFormat { return ports.Mulaw8k }

// Interruptions is ports.InterruptedByGateway: the API reports the caller's
// speech (input_audio_buffer.speech_started) and is told what was heard.
func (s *session) Interruptions() ports.Interruptions { return ports.InterruptedByGateway }

// Respond sends response.create, with instructions for this response only
// when not empty, at once: a response in progress makes the API refuse it
// (an error Recv returns). Tool results wait for the response it asks for
// (see ToolResult). Errors, blocking and concurrency as for AppendAudio.
func (s *session) Respond(ctx context.Context, instructions string) error {
	id := s.dec.turns.respond()
	if err := s.sendEvent(ctx, "respond", responseCreate(id, instructions)); err != nil {
		s.dec.turns.unsent(id)
		return err
	}
	return nil
}

// ToolResult sends r at once as a function_call_output item
// (conversation.item.create; a failed run's output is {"error": r.Error}).
// The response.create that lets the model go on with it is sent by Recv
// (the reading goroutine) once the API has added the item and the model
// is free: at once if it is; after the response in progress, if any (one
// for all the results added during it); after the caller's turn, if they
// are speaking (a barge-in during a tool run keeps the result: it is in
// the conversation, and the next response sees it). A call_id the API
// does not know makes it answer with an error, which Recv returns as a
// SpeechError. Errors, blocking and concurrency as for AppendAudio.
func (s *session) ToolResult(ctx context.Context, r ports.ToolResult) error {
	return s.sendEvent(ctx, "tool result", functionCallOutput(r))
}

// Heard sends conversation.item.truncate for content 0 of the assistant
// item utterance, at ms clamped to the item's audio the session delivered
// (the API refuses an audio_end_ms beyond it). An item the session does not
// remember (not one of its last few) is sent as it is: the API answers an
// unknown one with an error event, which Recv returns as a SpeechError.
// Errors, blocking and concurrency as for AppendAudio.
func (s *session) Heard(ctx context.Context, utterance string, ms int) error {
	if n, ok := s.dec.spoken.bytesOf(utterance); ok {
		ms = min(ms, ports.Mulaw8k.Millis(int(n)))
	}
	return s.sendEvent(ctx, "heard", truncate(utterance, max(ms, 0)))
}

func (s *session) sendEvent(ctx context.Context, op string, event json.Marshaler) error {
	var encErr error
	err := s.stream.Write(ctx, func(b []byte) []byte {
		b, encErr = appendJSON(b, event)
		return b
	})
	if err == nil {
		err = encErr
	}
	if err != nil {
		return fmt.Errorf("realtime: %s: %w", op, err)
	}
	return nil
}

// Recv returns the next event. It blocks until one arrives, ctx is done
// (the error wraps ctx.Err(); the session goes on) or the session ends: the
// error then wraps ports.ErrClosed and a *ports.SessionEnded whose Reason is
// "local_close" (Close), "session_limit" (closed with 1001 at the 60-minute
// limit), "fatal_error" (closed right after an error event, which Recv
// returned first), "remote_closed", "connection_lost" or "message_too_big".
//
// Server events map to SpeechEvents thus: response.output_audio.delta to
// SpeechAudio and response.output_audio.done to SpeechUtteranceDone (the
// utterance is the item id), input_audio_buffer.speech_started and
// speech_stopped to SpeechCallerStarted and SpeechCallerStopped (the
// caller's item id), the completed input transcription to SpeechCallerText
// and response.output_audio_transcript.done to SpeechAssistantText (both
// Final), response.done's usage to SpeechUsage (a response that neither
// completed nor was cancelled is logged), error to SpeechError. The API
// does not say which errors end the session: it closes the session right
// after a fatal one, so an error is returned as it comes, with Fatal unset,
// and a fatal one is followed by the end of the session (reason
// "fatal_error"). The client event id an error names is logged, not
// returned. Malformed and unused events are logged and skipped.
//
// An audio delta's Audio is valid until the next call. Recv must not be
// called concurrently with itself. With a context that cannot end
// (context.Background()) it reads the connection itself, which is
// cheapest: no goroutine and no hand-over per event (then only Close, or
// the session's end, makes it return); with a context that can end, the
// session reads through a goroutine.
func (s *session) Recv(ctx context.Context) (ports.SpeechEvent, error) {
	ev, err := s.stream.Recv(ctx)
	if err != nil {
		return ev, fmt.Errorf("realtime: recv: %w", err)
	}
	return ev, nil
}

// Close ends the session with a normal WebSocket close (reason
// "local_close"). It blocks until the close handshake is done (at most a
// few seconds when the server does not answer) and the session's reader
// goroutine, if Recv started one, has returned; it makes a blocked Recv
// return. Later calls return nil at
// once. Safe for concurrent use.
func (s *session) Close() error {
	if err := s.stream.Close(websocket.StatusNormalClosure, "local_close"); err != nil {
		return fmt.Errorf("realtime: %w", err)
	}
	return nil
}
