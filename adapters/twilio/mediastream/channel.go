package mediastream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
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

// MaxBadFramesBeforeStart is how many frames a stream may send before its
// start event that are not Twilio's connected, start or stop (malformed,
// unknown, binary or any other event): the next one closes the stream with
// 1008 (policy violation). Twilio sends connected then start at once, so a
// stream that does otherwise is not Twilio, and it has not shown a token.
const MaxBadFramesBeforeStart = 5

// Channel is one Twilio Media Stream. It implements ports.TelephonyChannel.
//
// End must be called once the stream is no longer needed, also after the
// peer ended it, to release the connection.
type Channel struct {
	stream *wsstream.Stream[ports.CallEvent]
	dec    decoder // used by whichever goroutine reads (one at a time)
	marks  *playback
	// sendMu keeps each Play's media and mark frames together, so that a
	// mark follows exactly the audio it accounts for.
	sendMu    sync.Mutex
	streamSid atomic.Pointer[string] // learned from start
}

var _ ports.TelephonyChannel = (*Channel)(nil)

// New wraps an accepted WebSocket connection; Recv reads it. It sets
// the connection's read limit to ReadLimit. log receives skipped frames (at
// most one line every wsstream.SkipLogEvery) and the end of the stream; it
// never receives audio or custom parameters (which carry the stream token).
func New(conn *websocket.Conn, log *slog.Logger) *Channel {
	conn.SetReadLimit(ReadLimit)
	c := &Channel{marks: newPlayback()}
	c.dec.marks = c.marks
	c.stream = wsstream.Start(wsstream.Config[ports.CallEvent]{
		Conn:          conn,
		Log:           log.With("component", "mediastream"),
		Decode:        c.decode,
		MaxEarlySkips: MaxBadFramesBeforeStart,
		Opens:         func(ev ports.CallEvent) bool { return ev.Type == ports.CallStarted },
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

// decode decodes a frame and, from the start event, keeps the streamSid
// that addresses what the channel sends.
func (c *Channel) decode(frame []byte) (ports.CallEvent, error) {
	ev, err := c.dec.decode(frame)
	if err == nil && ev.Type == ports.CallStarted {
		sid := c.dec.streamSid
		c.streamSid.Store(&sid)
	}
	return ev, err
}

// Format implements ports.TelephonyChannel: Twilio's bidirectional
// streams carry 8 kHz mu-law both ways.
func (c *Channel) Format() ports.AudioFormat { return ports.Mulaw8k }

// Skipped implements ports.TelephonyChannel: the frames skipped so far,
// malformed, unknown, binary, before the start event, media whose payload
// is not audio, or echoes of marks the channel did not send (see the
// package comment). Safe for concurrent use.
func (c *Channel) Skipped() int { return c.stream.Skipped() }

// Recv implements ports.TelephonyChannel. It returns the next event; it
// blocks until an event arrives, ctx is done (the error wraps ctx.Err();
// the stream goes on) or the stream ends (the error wraps ports.ErrClosed
// and a *ports.SessionEnded). Twilio's frames become events as follows:
// start is CallStarted, media CallAudio, dtmf CallKey, the echo of a mark
// CallPlayed, and stop CallHungUp, with which the stream ends (reason
// "caller_hangup"); connected is dropped. Malformed and unknown frames are
// skipped, counted (Skipped) and logged at a bounded rate; more than
// MaxBadFramesBeforeStart of them before the start event end the stream
// (reason "bad_frames_before_start", code 1008), and an oversized frame
// ends it (reason "message_too_big", code 1009). The event's Audio is valid
// until the next call. Recv must not be called concurrently with itself.
// With a context that cannot end (context.Background()) it reads the
// connection itself, which is cheapest: no goroutine and no hand-over per
// frame (then only End, or the stream's end, makes it return).
func (c *Channel) Recv(ctx context.Context) (ports.CallEvent, error) {
	ev, err := c.stream.Recv(ctx)
	if err != nil {
		return ev, fmt.Errorf("mediastream: recv: %w", err)
	}
	if ev.Type == ports.CallHungUp {
		c.stream.Finish("caller_hangup", 0)
	}
	return ev, nil
}

// Play implements ports.TelephonyChannel: it sends a media frame with the
// base64 audio, copied into the frame before it returns, and then a mark
// whose echo reports the audio played (a CallPlayed event). Empty audio
// sends nothing. It fails with ports.ErrClosed once the stream has ended
// and with ports.ErrInvalidInput before the start event has been received
// (Twilio needs the streamSid). It blocks while the connection is
// congested (or another send is); if ctx ends during a write the
// connection is closed. Safe for concurrent use.
func (c *Channel) Play(ctx context.Context, audio []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	sid, err := c.sid("play")
	if err != nil || len(audio) == 0 {
		return err
	}
	if err := c.write(ctx, "play", func(b []byte) []byte { return appendMedia(b, sid, audio) }); err != nil {
		return err
	}
	seq := c.marks.played(decodedLen(audio))
	return c.write(ctx, "play: mark", func(b []byte) []byte { return appendMark(b, sid, seq) })
}

// Clear implements ports.TelephonyChannel: it sends a clear frame, which
// flushes the audio Twilio has buffered; Twilio then echoes the marks
// still pending, which report the cleared audio as done. Errors, blocking
// and concurrency as for Play.
func (c *Channel) Clear(ctx context.Context) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	sid, err := c.sid("clear")
	if err != nil {
		return err
	}
	return c.write(ctx, "clear", func(b []byte) []byte { return appendClear(b, sid) })
}

// sid returns the streamSid, or why nothing can be sent.
func (c *Channel) sid(op string) (string, error) {
	if err := c.stream.Err(); err != nil {
		return "", fmt.Errorf("mediastream: %s: %w", op, err)
	}
	sid := c.streamSid.Load()
	if sid == nil {
		return "", fmt.Errorf("mediastream: %s: %w: the stream has not started", op, ports.ErrInvalidInput)
	}
	return *sid, nil
}

func (c *Channel) write(ctx context.Context, op string, build func(b []byte) []byte) error {
	if err := c.stream.Write(ctx, build); err != nil {
		return fmt.Errorf("mediastream: %s: %w", op, err)
	}
	return nil
}

// End implements ports.TelephonyChannel: it ends the stream with a
// WebSocket close frame, 1008 (policy violation) for ports.EndRefused and
// 1000 otherwise, whose text is the reason's name; that name is also the
// reason Recv reports. Only the first call has an effect; later calls
// return nil at once. It blocks until the close handshake is done (at most
// a few seconds when the peer does not answer) and the stream's reader
// goroutine, if Recv started one, has returned; it makes a blocked Recv
// return. Safe for concurrent use.
func (c *Channel) End(reason ports.EndReason) error {
	code := websocket.StatusNormalClosure
	if reason == ports.EndRefused {
		code = websocket.StatusPolicyViolation
	}
	if err := c.stream.Close(code, reason.String()); err != nil {
		return fmt.Errorf("mediastream: end: %w", err)
	}
	return nil
}
