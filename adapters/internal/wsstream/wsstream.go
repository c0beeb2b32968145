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
//
// Frames that do not decode into an event are skipped and counted. The
// peer decides how many there are, so they are logged at a bounded rate:
// one line for the first, then at most one every SkipLogEvery, carrying
// how many were skipped since the line before. A stream whose peer has not
// yet proved itself (Config.Opens) may skip only Config.MaxEarlySkips
// frames: the next one closes it with 1008 (policy violation).
package wsstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
)

// ErrIgnore, returned by a Config.Decode, drops a frame quietly (logged at
// debug level): a well-formed event the adapter does not use. It is not
// counted as skipped.
var ErrIgnore = errors.New("ignored event")

// SkipLogEvery is the shortest time between two log lines about skipped
// frames of one stream.
const SkipLogEvery = 5 * time.Second

// The end of a stream closed for too many bad frames before Opens: its
// reason, and the close frame's text.
const (
	reasonBadFrames    = "bad_frames_before_start"
	closeTextBadFrames = "too many bad frames before the start event"
)

// errBinary is why a binary frame is skipped.
var errBinary = errors.New("binary frame")

// maxCloseReason is the longest reason a close frame carries (RFC 6455:
// a control frame's 125 bytes, less the 2 of the code).
const maxCloseReason = 123

// Config describes a Stream.
type Config[E any] struct {
	Conn *websocket.Conn
	Log  *slog.Logger
	// Decode turns a text frame into an event. The event may alias frame,
	// which stays unchanged until the next Recv. An error other than
	// ErrIgnore skips the frame: it is counted (Skipped) and logged at a
	// bounded rate. It runs on one goroutine at a time: Recv's, or the
	// reader goroutine's.
	Decode func(frame []byte) (E, error)
	// MaxEarlySkips, when positive, is how many frames (binary ones
	// included) may be skipped before the first event for which Opens
	// reports true: one more finishes the stream with reason
	// "bad_frames_before_start" and closes it with 1008 (policy
	// violation). Zero means no limit.
	MaxEarlySkips int
	// Opens reports whether ev proves the peer (Twilio's start event). It
	// runs where Decode runs. Nil: MaxEarlySkips holds for the stream's
	// whole life.
	Opens func(ev E) bool
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

	// Skipped frames. skipped is read from any goroutine; the rest belongs
	// to the goroutine that reads (one at a time).
	skipped    atomic.Int64
	maxEarly   int
	opens      func(E) bool
	opened     bool
	sinceLog   int       // skipped since the last line about them
	loggedSkip time.Time // when that line was written; zero before the first

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
		maxEarly:   cfg.MaxEarlySkips,
		opens:      cfg.Opens,
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
		ev, res := s.decodeFrame(typ, buf.Bytes())
		switch res {
		case skipped:
			continue
		case refused:
			s.refuseEarly()
			return
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
		s.log.Info("stream ended", "reason", reason, "code", code, "after", s.end.After, "skipped", s.Skipped())
	})
	return first
}

// Skipped returns how many frames were skipped so far: binary frames and
// frames Decode refused (ErrIgnore excepted). It keeps its value after the
// stream has ended. Safe for concurrent use.
func (s *Stream[E]) Skipped() int { return int(s.skipped.Load()) }

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
		switch ev, res := s.decodeFrame(typ, s.inbuf.Bytes()); res {
		case decoded:
			return ev, nil
		case refused:
			s.refuseEarly()
			return zero, s.Err()
		}
	}
}

// frameResult is what became of a frame.
type frameResult uint8

const (
	decoded frameResult = iota // an event
	skipped                    // dropped, the stream goes on
	refused                    // one bad frame too many before Opens: end the stream
)

// decodeFrame decodes one frame; what is not an event is skipped, counted
// and logged at a bounded rate. It runs on the reading goroutine.
func (s *Stream[E]) decodeFrame(typ websocket.MessageType, frame []byte) (E, frameResult) {
	var (
		ev  E
		err error
	)
	if typ != websocket.MessageText {
		err = errBinary
	} else if ev, err = s.decode(frame); err == nil {
		if !s.opened && s.opens != nil && s.opens(ev) {
			s.opened = true
		}
		return ev, decoded
	}
	if errors.Is(err, ErrIgnore) {
		s.log.Debug("ignored frame", "err", err, "bytes", len(frame))
		return ev, skipped
	}
	n := s.skipped.Add(1)
	if s.maxEarly > 0 && !s.opened && n > int64(s.maxEarly) {
		s.log.Warn(closeTextBadFrames+": closing the stream", "skipped", n, "err", err, "bytes", len(frame))
		return ev, refused
	}
	s.sinceLog++
	if now := time.Now(); s.loggedSkip.IsZero() || now.Sub(s.loggedSkip) >= SkipLogEvery {
		s.log.Warn("skipped frames", "skipped", s.sinceLog, "skipped_total", n, "err", err, "bytes", len(frame))
		s.sinceLog, s.loggedSkip = 0, now
	}
	return ev, skipped
}

// refuseEarly ends a stream that skipped too many frames before Opens: it
// finishes it and closes the connection with 1008. It runs on the reading
// goroutine, which then returns.
func (s *Stream[E]) refuseEarly() {
	_ = s.closeConn(websocket.StatusPolicyViolation, reasonBadFrames, closeTextBadFrames)
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
// closes the connection with code and reason (cut, at a character
// boundary, to fit a close frame). It blocks until the close handshake is
// done, at most a few seconds when the peer does not answer, and the reader
// goroutine has returned. Only the first call has an effect. Safe for
// concurrent use.
func (s *Stream[E]) Close(code websocket.StatusCode, reason string) error {
	err := s.closeConn(code, reason, reason)
	s.modeMu.Lock()
	reading := s.reading // closing is set: no reader starts any more
	s.modeMu.Unlock()
	if reading {
		<-s.readerDone
	}
	return err
}

// closeConn is Close without the wait for the reader goroutine, so that
// the reader may call it: the stream ends with reason and the peer gets
// code and text.
func (s *Stream[E]) closeConn(code websocket.StatusCode, reason, text string) error {
	var err error
	s.closeOnce.Do(func() {
		first := s.Finish(reason, int(code))
		s.modeMu.Lock()
		s.closing = true
		s.modeMu.Unlock()
		err = s.conn.Close(code, cutUTF8(text, maxCloseReason))
		if !first || errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) >= 0 {
			err = nil // the peer (or the read limit) closed the connection first
		}
		s.cancel()
	})
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// cutUTF8 returns s cut to at most n bytes, never inside a UTF-8 encoded
// character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
