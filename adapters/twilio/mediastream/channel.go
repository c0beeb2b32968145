package mediastream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/adapters/internal/wsstream"
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
// Recv reads the socket (see Recv). Close must be called once the stream
// is no longer needed, also after the peer ended it, to release the
// connection.
type Channel struct {
	stream    *wsstream.Stream[ports.CallEvent]
	dec       decoder                // used by whichever goroutine reads (one at a time)
	started   bool                   // the start event was decoded; as dec
	streamSid atomic.Pointer[string] // learned from start
}

// MaxBadFramesBeforeStart is how many frames a stream may send before its
// start event that are not Twilio's connected, start or stop (malformed,
// unknown, binary or any other event): the next one closes the stream with
// 1008 (policy violation). Twilio sends connected then start at once, so a
// stream that does otherwise is not Twilio, and it has not shown a token.
const MaxBadFramesBeforeStart = 5

var _ ports.TelephonyChannel = (*Channel)(nil)

// New wraps an accepted WebSocket connection; Recv reads it. It sets
// the connection's read limit to ReadLimit. log receives skipped frames (at
// most one line every wsstream.SkipLogEvery) and the end of the stream; it
// never receives audio or custom parameters (which carry the stream token).
func New(conn *websocket.Conn, log *slog.Logger) *Channel {
	conn.SetReadLimit(ReadLimit)
	c := &Channel{}
	c.stream = wsstream.Start(wsstream.Config[ports.CallEvent]{
		Conn:          conn,
		Log:           log.With("component", "mediastream"),
		Decode:        c.decode,
		MaxEarlySkips: MaxBadFramesBeforeStart,
		Opens:         func(ev ports.CallEvent) bool { return ev.Type == ports.CallStart },
	})
	return c
}

// Accept upgrades Twilio's Media Stream request r to a WebSocket and
// returns its Channel (see New). On error the request has been answered
// (the upgrade refused, 426 for a request that is not a WebSocket upgrade)
// and there is nothing to close. It checks no signature: that is the
// caller's job, before calling Accept.
func Accept(w http.ResponseWriter, r *http.Request, log *slog.Logger) (*Channel, error) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil, fmt.Errorf("mediastream: accept: %w", err)
	}
	return New(conn, log), nil
}

// decode decodes a frame; before the start event only connected, start
// and stop are events, anything else is a bad frame.
func (c *Channel) decode(frame []byte) (ports.CallEvent, error) {
	ev, err := c.dec.decode(frame)
	switch {
	case err != nil:
		return ev, err
	case ev.Type == ports.CallStart:
		c.started = true
		sid := ev.StreamSid
		c.streamSid.Store(&sid)
	case !c.started && ev.Type != ports.CallConnected && ev.Type != ports.CallStop:
		return ports.CallEvent{}, fmt.Errorf("%w: %s before the start event", ports.ErrInvalidInput, ev.Type)
	}
	return ev, nil
}

// Skipped implements ports.TelephonyChannel: the frames skipped so far,
// malformed, unknown, binary, before the start event or media whose
// payload is not audio (see the package comment). Safe for concurrent use.
func (c *Channel) Skipped() int { return c.stream.Skipped() }

// Recv returns the next event. It blocks until an event arrives, ctx is
// done (the error wraps ctx.Err(); the stream goes on) or the stream ends
// (the error wraps ports.ErrClosed and a *ports.SessionEnded). A stop event
// is returned as CallStop, and the stream ends with it (reason
// "caller_hangup"). Malformed and unknown frames are skipped, counted
// (Skipped) and logged at a bounded rate; more than MaxBadFramesBeforeStart
// of them before the start event end the stream (reason
// "bad_frames_before_start", code 1008), and an oversized frame ends it
// (reason "message_too_big", code 1009). The
// event's Payload is valid until the next call. Recv must not be called
// concurrently with itself. With a context that cannot end
// (context.Background()) it reads the connection itself, which is
// cheapest: no goroutine and no hand-over per frame (then only Close, or
// the stream's end, makes it return).
func (c *Channel) Recv(ctx context.Context) (ports.CallEvent, error) {
	ev, err := c.stream.Recv(ctx)
	if err != nil {
		return ev, fmt.Errorf("mediastream: recv: %w", err)
	}
	if ev.Type == ports.CallStop {
		c.stream.Finish("caller_hangup", 0)
	}
	return ev, nil
}

// SendAudio sends a media frame with the base64 audio, copied into the
// frame before it returns. It fails with ports.ErrInvalidInput before the
// start event has been received (Twilio needs the streamSid), and with
// ports.ErrClosed once the stream has ended. It blocks while the connection
// is congested; if ctx ends during the write the connection is closed.
// Safe for concurrent use.
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
	sid := c.streamSid.Load()
	if err := c.stream.Err(); err != nil {
		return fmt.Errorf("mediastream: %s: %w", op, err)
	}
	if sid == nil {
		return fmt.Errorf("mediastream: %s: %w: the stream has not started", op, ports.ErrInvalidInput)
	}
	err := c.stream.Write(ctx, func(b []byte) []byte { return build(b, *sid) })
	if err != nil {
		return fmt.Errorf("mediastream: %s: %w", op, err)
	}
	return nil
}

// Close ends the stream with a WebSocket close frame: 1008 (policy
// violation) when policy is set, else 1000; reason goes with it and is
// what Recv reports. Only the first call has an effect; later calls return
// nil at once. It blocks until the close handshake is done (at most a few
// seconds when the peer does not answer) and the stream's reader goroutine,
// if Recv started one, has returned; it makes a blocked Recv return. Safe for concurrent use.
func (c *Channel) Close(reason string, policy bool) error {
	code := websocket.StatusNormalClosure
	if policy {
		code = websocket.StatusPolicyViolation
	}
	if err := c.stream.Close(code, reason); err != nil {
		return fmt.Errorf("mediastream: %w", err)
	}
	return nil
}
