package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	oai "github.com/openai/openai-go/v3/live"

	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
)

// session is one open GPT-Live session. It implements ports.SpeechSession.
type session struct {
	stream *wsstream.Stream[ports.SpeechEvent]
	dec    decoder // used by whichever goroutine reads (one at a time)
	log    *slog.Logger

	// recvMu is held by Recv, and by Close while it reads the goodbye.
	recvMu sync.Mutex
	// closing is set when Close begins: sends fail from then on.
	closing atomic.Bool
	// saidBye is set once session.close is sent: a session.closed that
	// follows ends the session as "local_close".
	saidBye atomic.Bool
	// ended is closed once Recv has seen the session end.
	ended     chan struct{}
	endedOnce sync.Once
	closeOnce sync.Once
	closeErr  error
}

var _ ports.SpeechSession = (*session)(nil)

func newSession(conn *websocket.Conn, log *slog.Logger, now func() time.Time) *session {
	s := &session{ended: make(chan struct{}), log: log.With("component", "live")}
	s.dec.turns.now = now
	s.dec.backend = newBackend()
	s.stream = wsstream.Start(wsstream.Config[ports.SpeechEvent]{
		Conn:   conn,
		Log:    s.log,
		Decode: s.dec.decode,
		Reason: s.endReason,
	})
	return s
}

// endReason names the end of a session whose socket the server closed:
// after session.closed, its reason; a close right after an error event
// ends a session that error made fatal.
func (s *session) endReason(code int) string {
	switch {
	case s.dec.closed != "":
		return s.closedReason(s.dec.closed)
	case s.dec.lastWasError:
		return "fatal_error"
	case code < 0:
		return "connection_lost"
	default:
		return "remote_closed"
	}
}

// closedReasons names the ends session.closed reports.
var closedReasons = map[string]string{
	"close_requested": "remote_closed", // a hangup through the REST API
	"expired":         "session_limit",
	"content":         "content_filter",
	"remote_hangup":   "remote_closed",
	"connection_lost": "connection_lost",
}

// start sends session.start and waits for session.started. ctx bounds the
// wait by closing the session when it ends, so that the session's reads
// stay inline (wsstream) for the rest of its life.
func (s *session) start(ctx context.Context, start oai.ClientEventUnionParam) error {
	if err := s.write(ctx, start); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("live: open: %w", ctx.Err())
		}
		return fmt.Errorf("live: open: %w: %w", ports.ErrUnavailable, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.stream.Close(websocket.StatusNormalClosure, "open cancelled") })
	err := s.awaitStarted()
	if !stop() { // ctx ended: the session is closed or being closed
		return fmt.Errorf("live: open: %w", ctx.Err())
	}
	return err
}

func (s *session) awaitStarted() error {
	for {
		ev, err := s.stream.Recv(context.Background())
		switch {
		case err != nil:
			return fmt.Errorf("live: open: %w: %w", ports.ErrUnavailable, err)
		case ev.Type == ports.SpeechError && ev.Err.Type == "server_error":
			return fmt.Errorf("live: open: %w: %w", ports.ErrUnavailable, ev.Err)
		case ev.Type == ports.SpeechError:
			return fmt.Errorf("live: open: %w: %w", ports.ErrRejected, ev.Err)
		case ev.Type == evClosed:
			return fmt.Errorf("live: open: %w: session closed (%s)", ports.ErrUnavailable, ev.Text)
		case ev.Type == evStarted:
			return nil
		}
	}
}

// Format is 8 kHz mu-law, as session.start asked, in both directions.
func (s *session) Format() ports.AudioFormat { return ports.Mulaw8k }

// Interruptions is InterruptedByModel: GPT-Live is full duplex.
func (s *session) Interruptions() ports.Interruptions { return ports.InterruptedByModel }

// AppendAudio sends session.input_audio.append with the base64 audio,
// copied into the frame before it returns. Frames go out in the order of
// the calls; the API acknowledges none. It blocks while the connection is
// congested; if ctx ends during the write the connection is closed. Errors
// wrap ports.ErrClosed once Close has begun or the session has ended.
// Safe for concurrent use.
func (s *session) AppendAudio(ctx context.Context, audio []byte) error {
	if err := s.closed("append audio"); err != nil {
		return err
	}
	if err := s.stream.Write(ctx, func(b []byte) []byte { return appendAudio(b, audio) }); err != nil {
		return fmt.Errorf("live: append audio: %w", err)
	}
	return nil
}

// Respond sends session.commentary.append asking the model to speak now,
// with instructions for what to say when not empty: GPT-Live has no
// request for a response; it speaks what commentary gives it. Errors wrap
// ports.ErrClosed, ctx.Err(), or ports.ErrUnavailable when the event could
// not be sent. Blocking and concurrency as for AppendAudio.
func (s *session) Respond(ctx context.Context, instructions string) error {
	if err := s.closed("respond"); err != nil {
		return err
	}
	return s.send(ctx, "respond", commentary(instructions))
}

// send writes a client event for op. Errors wrap ports.ErrClosed,
// ctx.Err(), or else ports.ErrUnavailable.
func (s *session) send(ctx context.Context, op string, event oai.ClientEventUnionParam) error {
	err := s.write(ctx, event)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ports.ErrClosed):
		return fmt.Errorf("live: %s: %w", op, err)
	case ctx.Err() != nil:
		return fmt.Errorf("live: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("live: %s: %w: %w", op, ports.ErrUnavailable, err)
}

// ToolResult sends the result as a function_call_output item
// (response.item.create) at once, then response.create, which lets the
// Responses backend go on with it, once no delegated response is in
// progress and every call handed over has its result; if a response is in
// progress, Recv sends it when the last one ends. A call the session never
// handed over gets its item only: the API's error event about it comes as
// a non-fatal SpeechError. Errors wrap ports.ErrClosed, ctx.Err(), or
// ports.ErrUnavailable when an event could not be sent. Blocking and
// concurrency as for AppendAudio.
func (s *session) ToolResult(ctx context.Context, r ports.ToolResult) error {
	if err := s.closed("tool result"); err != nil {
		return err
	}
	if err := s.send(ctx, "tool result", toolOutput(r)); err != nil {
		return err
	}
	if s.dec.backend.answered(r.CallID) {
		return s.send(ctx, "tool result", responseCreate())
	}
	return nil
}

// goOn sends the response.create owed to tool results, if one is owed now
// that no delegated response is in progress. It runs in Recv; the write is
// bounded by CloseWait.
func (s *session) goOn() {
	if !s.dec.backend.idle() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), CloseWait)
	defer cancel()
	if err := s.send(ctx, "go on", responseCreate()); err != nil {
		s.log.Warn("response.create after tool results not sent", "err", err)
	}
}

// Heard returns nil at once: a full duplex model knows what it said before
// it was talked over. After Close it returns an error wrapping
// ports.ErrClosed.
func (s *session) Heard(context.Context, string, int) error { return s.closed("heard") }

// closed returns an error wrapping ports.ErrClosed once Close has begun or
// the session has ended, nil before.
func (s *session) closed(op string) error {
	if err := s.stream.Err(); err != nil {
		return fmt.Errorf("live: %s: %w", op, err)
	}
	if s.closing.Load() {
		return fmt.Errorf("live: %s: %w", op, ports.ErrClosed)
	}
	return nil
}

func (s *session) write(ctx context.Context, event oai.ClientEventUnionParam) error {
	var encErr error
	err := s.stream.Write(ctx, func(b []byte) []byte {
		b, encErr = appendEvent(b, event)
		return b
	})
	if err == nil {
		err = encErr
	}
	return err
}

// Recv returns the next event. It blocks until one arrives, ctx is done
// (the error wraps ctx.Err(); the session goes on) or the session ends: the
// error then wraps ports.ErrClosed and a *ports.SessionEnded whose Reason is
// "local_close" (Close), "fatal_error" (after a fatal SpeechError, which
// Recv returned first, or a close right after an error), "session_limit",
// "content_filter", "remote_closed", "connection_lost" or
// "message_too_big". A session.closed the server sent on its own carrying
// usage not yet reported is returned as a last SpeechUsage first (after
// Close, the caller has stopped counting). Error events are SpeechErrors;
// Fatal ones (a server_error, or a code saying the key or account cannot
// pay) end the session: the adapter closes it, and Recv returns ErrClosed
// next. A function call of the delegated backend is a SpeechToolCall; when
// the last delegated response in progress ends and tool results wait for
// a response.create, Recv sends it (bounded by CloseWait) before reading
// on. Malformed and unknown events are logged and skipped. An audio
// event's Audio is valid until the next call. Recv must not be called
// concurrently with itself; Close makes it return. With a context that
// cannot end (context.Background()) it reads the connection itself, which
// is cheapest (see wsstream).
func (s *session) Recv(ctx context.Context) (ports.SpeechEvent, error) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	for {
		ev, err := s.stream.Recv(ctx)
		if err != nil {
			if errors.Is(err, ports.ErrClosed) {
				s.endedOnce.Do(func() { close(s.ended) })
			}
			return ev, fmt.Errorf("live: recv: %w", err)
		}
		switch ev.Type {
		case evStarted:
			continue // the handshake's, never twice
		case evBackendIdle:
			s.goOn()
			continue
		case evClosed:
			s.end(s.closedReason(ev.Text))
			if ev.Usage != (ports.Usage{}) && !s.saidBye.Load() {
				return ports.SpeechEvent{Type: ports.SpeechUsage, Usage: ev.Usage}, nil
			}
			return ports.SpeechEvent{}, fmt.Errorf("live: recv: %w", s.stream.Err())
		case ports.SpeechError:
			if ev.Err.Fatal {
				s.end("fatal_error")
			}
		}
		return ev, nil
	}
}

func (s *session) closedReason(reason string) string {
	if s.saidBye.Load() {
		return "local_close"
	}
	if r, ok := closedReasons[reason]; ok {
		return r
	}
	return "remote_closed"
}

// end finishes the session with reason and closes its socket.
func (s *session) end(reason string) {
	_ = s.stream.Close(websocket.StatusNormalClosure, reason)
	s.endedOnce.Do(func() { close(s.ended) })
}

// Close ends the session: it sends session.close and waits up to
// CloseWait for session.closed, reading it itself unless a Recv is
// running (which then receives the last events), then closes the socket
// normally (reason "local_close"). It makes a blocked Recv return. Later
// calls return the first call's result at once. Safe for concurrent use.
func (s *session) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		if s.stream.Err() == nil {
			s.goodbye()
		}
		if err := s.stream.Close(websocket.StatusNormalClosure, "local_close"); err != nil {
			s.closeErr = fmt.Errorf("live: %w", err)
		}
	})
	return s.closeErr
}

func (s *session) goodbye() {
	ctx, cancel := context.WithTimeout(context.Background(), CloseWait)
	defer cancel()
	s.saidBye.Store(true)
	if err := s.write(ctx, sessionClose()); err != nil {
		return
	}
	if !s.recvMu.TryLock() { // a Recv runs and will see the end
		select {
		case <-s.ended:
		case <-ctx.Done():
		}
		return
	}
	defer s.recvMu.Unlock()
	for {
		if ev, err := s.stream.Recv(ctx); err != nil || ev.Type == evClosed {
			return
		}
	}
}
