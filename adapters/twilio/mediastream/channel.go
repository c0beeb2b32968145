package mediastream

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

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
)

// ReadLimit is the largest frame the channel accepts from Twilio. A 20 ms
// media frame is about 400 bytes and a start frame with the maximum custom
// parameters a few KiB; 64 KiB leaves room for larger chunks (the size is
// not part of Twilio's contract) while capping what a misbehaving peer can
// make the gateway buffer per call. A larger frame closes the stream with
// 1009 (message too big).
const ReadLimit = 64 << 10

// Channel is one Twilio Media Stream. It implements ports.TelephonyChannel.
//
// A goroutine started by New reads the socket; it ends when the stream
// ends. Close must be called once the stream is no longer needed, also
// after the peer ended it, to release the connection.
type Channel struct {
	conn    *websocket.Conn
	log     *slog.Logger
	started time.Time

	// ctx lives as long as the connection. coder/websocket closes the
	// connection when a read's context ends, so reads never see a caller's
	// context.
	ctx    context.Context
	cancel context.CancelFunc

	events     chan ports.CallEvent // unbuffered: the reader hands over one event at a time
	ended      chan struct{}        // closed when the stream has ended (end is set)
	endOnce    sync.Once
	end        *ports.SessionEnded
	readerDone chan struct{}
	closeOnce  sync.Once

	streamSid atomic.Pointer[string] // learned from start

	wmu  sync.Mutex // serialises writes and guards wbuf
	wbuf []byte
}

var _ ports.TelephonyChannel = (*Channel)(nil)

// New wraps an accepted WebSocket connection and starts reading it. It sets
// the connection's read limit to ReadLimit. log receives skipped frames and
// the end of the stream; it never receives audio or custom parameters.
func New(conn *websocket.Conn, log *slog.Logger) *Channel {
	conn.SetReadLimit(ReadLimit)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Channel{
		conn:       conn,
		log:        log,
		started:    time.Now(),
		ctx:        ctx,
		cancel:     cancel,
		events:     make(chan ports.CallEvent),
		ended:      make(chan struct{}),
		readerDone: make(chan struct{}),
		wbuf:       make([]byte, 0, 512),
	}
	go c.read()
	return c
}

// read is the connection's only reader. An event's Payload aliases one of
// two buffers used in turn: the events channel is unbuffered, so when the
// reader fills a buffer again, the Recv that got the event before last has
// been followed by another Recv, which ends that Payload's validity.
func (c *Channel) read() {
	defer close(c.readerDone)
	var (
		bufs [2]bytes.Buffer
		turn int
		dec  decoder
	)
	for {
		typ, r, err := c.conn.Reader(c.ctx)
		if err == nil {
			buf := &bufs[turn]
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			c.readFailed(err)
			return
		}
		if typ != websocket.MessageText {
			c.log.Warn("mediastream: skipped binary frame")
			continue
		}
		select {
		case <-c.ended:
			continue // after stop: drain until the peer closes
		default:
		}
		ev, err := dec.decode(bufs[turn].Bytes())
		if err != nil {
			level := slog.LevelWarn
			if errors.Is(err, errUnknownEvent) {
				level = slog.LevelDebug
			}
			c.log.Log(c.ctx, level, "mediastream: skipped frame", "err", err, "bytes", bufs[turn].Len())
			continue
		}
		if ev.Type == ports.CallStart {
			sid := ev.StreamSid
			c.streamSid.Store(&sid)
		}
		select {
		case c.events <- ev:
			turn ^= 1
		case <-c.ctx.Done():
			return
		}
		if ev.Type == ports.CallStop {
			c.finish(&ports.SessionEnded{Reason: "caller_hangup"})
		}
	}
}

// readFailed records why reading stopped.
func (c *Channel) readFailed(err error) {
	code := int(websocket.CloseStatus(err))
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		// coder/websocket has already closed the connection with 1009.
		c.log.Warn("mediastream: frame over the read limit, stream closed", "limit", ReadLimit)
		c.finish(&ports.SessionEnded{Reason: "message_too_big", Code: int(websocket.StatusMessageTooBig)})
	case code >= 0:
		c.finish(&ports.SessionEnded{Reason: "remote_closed", Code: code})
	default:
		c.finish(&ports.SessionEnded{Reason: "connection_lost"})
	}
}

// finish records the first reason the stream ended and reports whether
// this was it.
func (c *Channel) finish(end *ports.SessionEnded) (first bool) {
	c.endOnce.Do(func() {
		first = true
		end.After = time.Since(c.started)
		c.end = end
		close(c.ended)
		c.log.Info("mediastream: stream ended", "reason", end.Reason, "code", end.Code, "after", end.After)
	})
	return first
}

// endErr returns the error that methods return once the stream has ended.
func (c *Channel) endErr(op string) error {
	return fmt.Errorf("mediastream: %s: %w", op, errors.Join(ports.ErrClosed, c.end))
}

// Recv returns the next event. It blocks until an event arrives, ctx is
// done (the error wraps ctx.Err(); the stream goes on) or the stream ends
// (the error wraps ports.ErrClosed and a *ports.SessionEnded). A stop event
// is returned as CallStop before the end. Malformed, unknown and oversized
// frames are logged and skipped. The event's Payload is valid until the
// next call. Recv must not be called concurrently with itself.
func (c *Channel) Recv(ctx context.Context) (ports.CallEvent, error) {
	select {
	case ev := <-c.events:
		return ev, nil
	case <-c.ended:
		return ports.CallEvent{}, c.endErr("recv")
	case <-ctx.Done():
		return ports.CallEvent{}, fmt.Errorf("mediastream: recv: %w", ctx.Err())
	}
}

// SendAudio sends a media frame with the base64 audio, copied into the
// frame before it returns. It fails with ports.ErrInvalidInput before the
// start event has been received (Twilio needs the streamSid). It blocks
// while the connection is congested; if ctx ends during the write the
// connection is closed. Safe for concurrent use.
func (c *Channel) SendAudio(ctx context.Context, audio []byte) error {
	return c.send(ctx, "send media", func(b []byte, sid string) []byte { return appendMedia(b, sid, audio) })
}

// SendMark sends a mark frame; Twilio echoes it as a CallMark event once
// the audio sent before it has played, or at once after a Clear. Errors,
// blocking and concurrency as for SendAudio.
func (c *Channel) SendMark(ctx context.Context, name string) error {
	return c.send(ctx, "send mark", func(b []byte, sid string) []byte { return appendMark(b, sid, name) })
}

// Clear sends a clear frame, which flushes the audio Twilio has buffered.
// Errors, blocking and concurrency as for SendAudio.
func (c *Channel) Clear(ctx context.Context) error {
	return c.send(ctx, "send clear", appendClear)
}

func (c *Channel) send(ctx context.Context, op string, build func(b []byte, sid string) []byte) error {
	select {
	case <-c.ended:
		return c.endErr(op)
	default:
	}
	sid := c.streamSid.Load()
	if sid == nil {
		return fmt.Errorf("mediastream: %s: %w: the stream has not started", op, ports.ErrInvalidInput)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = build(c.wbuf[:0], *sid)
	if err := c.conn.Write(ctx, websocket.MessageText, c.wbuf); err != nil {
		select {
		case <-c.ended:
			return c.endErr(op)
		default:
		}
		return fmt.Errorf("mediastream: %s: %w", op, err)
	}
	return nil
}

// Close ends the stream with a WebSocket close frame: 1008 (policy
// violation) when policy is set, else 1000; reason is sent with it
// (truncated to fit a close frame) and reported by Recv. Only the first
// call has an effect; later calls return nil at once. It blocks until the
// close handshake is done (at most a few seconds when the peer does not
// answer) and the reader goroutine has ended, and makes a blocked Recv
// return. Safe for concurrent use.
func (c *Channel) Close(reason string, policy bool) error {
	var err error
	c.closeOnce.Do(func() {
		code := websocket.StatusNormalClosure
		if policy {
			code = websocket.StatusPolicyViolation
		}
		first := c.finish(&ports.SessionEnded{Reason: reason, Code: int(code)})
		if len(reason) > 120 {
			reason = reason[:120]
		}
		err = c.conn.Close(code, reason)
		if !first || errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) >= 0 {
			err = nil // the peer (or the read limit) closed the connection first
		}
		c.cancel()
		<-c.readerDone
	})
	if err != nil {
		return fmt.Errorf("mediastream: close: %w", err)
	}
	return nil
}
