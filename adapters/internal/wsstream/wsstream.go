// Package wsstream runs one side of a JSON-over-WebSocket stream for the
// adapters: a single reader goroutine that decodes frames into events and
// hands them over one at a time, the record of why the stream ended, and
// writes serialised through one reused buffer.
//
// It exists because coder/websocket closes a connection whose read context
// ends: a Stream reads with a context that never ends (closing the
// connection is what stops the reader, and a context without a Done channel
// spares coder/websocket a timer per frame) and lets Recv wait on the
// caller's context instead.
package wsstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
)

// ErrIgnore, returned by a Config.Decode, drops a frame quietly (logged at
// debug level): a well-formed event the adapter does not use.
var ErrIgnore = errors.New("ignored event")

// Config describes a Stream.
type Config[E any] struct {
	Conn *websocket.Conn
	Log  *slog.Logger
	// Decode turns a text frame into an event. The event may alias frame,
	// which stays unchanged until the Recv after the one that returns the
	// event. Errors other than ErrIgnore are logged as skipped frames. It
	// runs on the reader goroutine only.
	Decode func(frame []byte) (E, error)
	// Reason names the end of a stream the peer closed with code, or -1
	// when the connection broke without a close frame. It runs on the
	// reader goroutine, after every Decode. Nil means "remote_closed" and
	// "connection_lost".
	Reason func(code int) string
}

// Stream is one WebSocket connection carrying events of type E.
type Stream[E any] struct {
	conn    *websocket.Conn
	log     *slog.Logger
	decode  func([]byte) (E, error)
	reason  func(int) string
	started time.Time

	ctx    context.Context // ends when Close has closed the connection
	cancel context.CancelFunc

	events     chan E // unbuffered: one event handed over at a time
	ended      chan struct{}
	endOnce    sync.Once
	end        *ports.SessionEnded
	readerDone chan struct{}
	closeOnce  sync.Once

	wmu  sync.Mutex // serialises writes and guards wbuf
	wbuf []byte
}

// Start starts reading cfg.Conn. The caller must call Close eventually,
// also after the peer ended the stream, to release the reader goroutine.
func Start[E any](cfg Config[E]) *Stream[E] {
	reason := cfg.Reason
	if reason == nil {
		reason = func(code int) string {
			if code < 0 {
				return "connection_lost"
			}
			return "remote_closed"
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream[E]{
		conn:       cfg.Conn,
		log:        cfg.Log,
		decode:     cfg.Decode,
		reason:     reason,
		started:    time.Now(),
		ctx:        ctx,
		cancel:     cancel,
		events:     make(chan E),
		ended:      make(chan struct{}),
		readerDone: make(chan struct{}),
		wbuf:       make([]byte, 0, 1024),
	}
	go s.read()
	return s
}

// read is the connection's only reader. Frames are read into two buffers
// in turn: the events channel is unbuffered, so when the reader fills a
// buffer again the consumer has called Recv twice since it got the event
// that may alias that buffer.
func (s *Stream[E]) read() {
	defer close(s.readerDone)
	var (
		bufs [2]bytes.Buffer
		turn int
	)
	for {
		buf := &bufs[turn]
		buf.Reset()
		typ, r, err := s.conn.Reader(context.Background())
		if err == nil {
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			s.readFailed(err)
			return
		}
		if typ != websocket.MessageText {
			s.log.Warn("skipped binary frame", "bytes", buf.Len())
			continue
		}
		ev, err := s.decode(buf.Bytes())
		if err != nil {
			level := slog.LevelWarn
			if errors.Is(err, ErrIgnore) {
				level = slog.LevelDebug
			}
			s.log.Log(s.ctx, level, "skipped frame", "err", err, "bytes", buf.Len())
			continue
		}
		select {
		case s.events <- ev:
			turn ^= 1
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *Stream[E]) readFailed(err error) {
	code := int(websocket.CloseStatus(err))
	if errors.Is(err, websocket.ErrMessageTooBig) {
		// coder/websocket has already closed the connection with 1009.
		s.log.Warn("frame over the read limit, connection closed")
		s.Finish("message_too_big", int(websocket.StatusMessageTooBig))
		return
	}
	s.Finish(s.reason(code), max(code, 0))
}

// Finish records why the stream ended, unless it already has, and reports
// whether this call did. From then on every method fails with ErrClosed.
// It does not close the connection. Safe for concurrent use.
func (s *Stream[E]) Finish(reason string, code int) (first bool) {
	s.endOnce.Do(func() {
		first = true
		s.end = &ports.SessionEnded{Reason: reason, Code: code, After: time.Since(s.started)}
		close(s.ended)
		s.log.Info("stream ended", "reason", reason, "code", code, "after", s.end.After)
	})
	return first
}

// Err returns nil while the stream is open and, once it has ended, an
// error wrapping ports.ErrClosed and the *ports.SessionEnded.
func (s *Stream[E]) Err() error {
	select {
	case <-s.ended:
		return errors.Join(ports.ErrClosed, s.end)
	default:
		return nil
	}
}

// Recv returns the next event. It blocks until one arrives, ctx is done
// (the error wraps ctx.Err(); the stream goes on) or the stream ends (Err).
// It must not be called concurrently with itself.
func (s *Stream[E]) Recv(ctx context.Context) (E, error) {
	var zero E
	if err := s.Err(); err != nil {
		return zero, err
	}
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.ended:
		return zero, s.Err()
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Write sends one text frame that build appends to the buffer it is given.
// Writes are serialised; the buffer is reused. It fails with Err once the
// stream has ended. If ctx ends during the write, coder/websocket closes the
// connection.
func (s *Stream[E]) Write(ctx context.Context, build func(b []byte) []byte) error {
	if err := s.Err(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wbuf = build(s.wbuf[:0])
	if err := s.conn.Write(ctx, websocket.MessageText, s.wbuf); err != nil {
		if ended := s.Err(); ended != nil {
			return ended
		}
		return err
	}
	return nil
}

// Close finishes the stream with reason (unless it had already ended) and
// closes the connection with code and reason (cut to fit a close frame). It
// blocks until the close handshake is done, at most a few seconds when the
// peer does not answer, and the reader goroutine has returned. Only the first
// call has an effect. Safe for concurrent use.
func (s *Stream[E]) Close(code websocket.StatusCode, reason string) error {
	var err error
	s.closeOnce.Do(func() {
		first := s.Finish(reason, int(code))
		if len(reason) > 120 {
			reason = reason[:120]
		}
		err = s.conn.Close(code, reason)
		if !first || errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) >= 0 {
			err = nil // the peer (or the read limit) closed the connection first
		}
		s.cancel()
		<-s.readerDone
	})
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}
