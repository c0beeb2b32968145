// Package wsstream runs one side of a JSON-over-WebSocket stream for the
// adapters: reading frames and decoding them into events one at a time,
// the record of why the stream ended, and writes serialised through one
// reused buffer.
//
// coder/websocket closes a connection whose read context ends, and it pays
// a registration (and an allocation) per read or write whose context can
// end. So a Stream reads in one of two ways:
//
//   - inline, in Recv itself, while every Recv is given a context that
//     cannot end (context.Background()): no goroutine and no hand-over per
//     frame. Close (from any goroutine) is what ends a blocked Recv. This is
//     the hot path of a call.
//   - through a reader goroutine, from the first Recv whose context can end:
//     the goroutine reads with a context that never ends and hands events
//     over one at a time, and Recv waits on the caller's context, which may
//     end without ending the stream. The Stream stays in this mode.
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
	// which stays unchanged until the next Recv. Errors other than
	// ErrIgnore are logged as skipped frames. It runs on one goroutine at a
	// time: Recv's, or the reader goroutine's.
	Decode func(frame []byte) (E, error)
	// Reason names the end of a stream the peer closed with code, or -1
	// when the connection broke without a close frame. It runs where
	// Decode runs, after every Decode. Nil means "remote_closed" and
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

	inbuf bytes.Buffer // the frame of the last inline Recv

	modeMu     sync.Mutex
	reading    bool   // the reader goroutine runs
	closing    bool   // Close has begun: no reader goroutine may start
	events     chan E // unbuffered: one event handed over at a time
	readerDone chan struct{}

	ended     chan struct{}
	endOnce   sync.Once
	end       *ports.SessionEnded
	closeOnce sync.Once

	wmu  sync.Mutex // serialises writes and guards wbuf
	wbuf []byte
}

// Start wraps cfg.Conn. It starts no goroutine: reading starts with the
// first Recv. The caller must call Close eventually, also after the peer
// ended the stream, to release the connection (and the reader goroutine,
// if one was started).
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
	return s
}

// startReader switches the stream to reading through the reader
// goroutine, unless it already does; it reports false once Close has
// begun.
func (s *Stream[E]) startReader() bool {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	if s.closing {
		return false
	}
	if !s.reading {
		s.reading = true
		go s.read()
	}
	return true
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
		ev, ok := s.decodeFrame(typ, buf.Bytes())
		if !ok {
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
		return fmt.Errorf("%w: %w", ports.ErrClosed, s.end)
	default:
		return nil
	}
}

// Recv returns the next event. It blocks until one arrives, ctx is done
// (the error wraps ctx.Err(); the stream goes on) or the stream ends (Err).
// It must not be called concurrently with itself. Given a context that
// cannot end, it reads the connection itself (see the package comment).
func (s *Stream[E]) Recv(ctx context.Context) (E, error) {
	var zero E
	if err := s.Err(); err != nil {
		return zero, err
	}
	s.modeMu.Lock()
	inline := !s.reading
	s.modeMu.Unlock()
	if inline && ctx.Done() == nil {
		return s.recvInline()
	}
	if !s.startReader() {
		return zero, s.closedErr()
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

// recvInline reads frames in the caller's goroutine until one decodes into
// an event or the stream ends. The event may alias the frame, which stays
// unchanged until the next Recv.
func (s *Stream[E]) recvInline() (E, error) {
	var zero E
	for {
		s.inbuf.Reset()
		typ, r, err := s.conn.Reader(context.Background())
		if err == nil {
			_, err = s.inbuf.ReadFrom(r)
		}
		if err != nil {
			s.readFailed(err)
			return zero, s.Err()
		}
		if ev, ok := s.decodeFrame(typ, s.inbuf.Bytes()); ok {
			return ev, nil
		}
	}
}

// decodeFrame decodes one frame, logging and skipping what is not an event.
func (s *Stream[E]) decodeFrame(typ websocket.MessageType, frame []byte) (E, bool) {
	if typ != websocket.MessageText {
		s.log.Warn("skipped binary frame", "bytes", len(frame))
		var zero E
		return zero, false
	}
	ev, err := s.decode(frame)
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrIgnore) {
			level = slog.LevelDebug
		}
		s.log.Log(s.ctx, level, "skipped frame", "err", err, "bytes", len(frame))
		return ev, false
	}
	return ev, true
}

// closedErr is Err once Close has begun (it finishes the stream first).
func (s *Stream[E]) closedErr() error {
	<-s.ended
	return s.Err()
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
		s.modeMu.Lock()
		s.closing = true
		reading := s.reading
		s.modeMu.Unlock()
		err = s.conn.Close(code, reason)
		if !first || errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) >= 0 {
			err = nil // the peer (or the read limit) closed the connection first
		}
		s.cancel()
		if reading {
			<-s.readerDone
		}
	})
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}
