package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

// call bridges one telephony channel and one speech session. It runs in one
// errgroup of goroutines, each the only reader of one side, and a
// watchdog:
//
//   - readCaller reads the telephony channel. Caller audio goes straight to
//     the speech session, in order, without a hand-over (the hot path).
//     Playback progress is published in an atomic the owner reads; key
//     presses are checked and queued for the owner, the queue capped
//     (maxCallerQueue) so that a peer flooding the stream cannot grow it.
//   - own reads the speech session and is the only goroutine that touches
//     the call's domain.Conversation: before each model event it applies
//     the playback progress and the keys the caller queued, then it handles
//     the event, writing assistant audio and clears to the caller, and
//     what the caller heard to the model. Model events are handled where
//     they are read, so an audio chunk is never copied nor handed over
//     when the model leaves interruptions to the gateway.
//   - with a full duplex model (ports.InterruptedByModel), a player holds
//     the assistant's audio and hands it to the caller only a small lead
//     ahead of playback, so that when the model stops talking over the
//     caller, the caller stops hearing it within that lead (see player).
//
// Playback progress matters only when the owner decides something (a
// barge-in, on a model event) and in the summary, so applying it just
// before each model event is as exact as applying it at once.
//
// The watchdog, watch, ends a call whose caller sent no audio, or whose
// writes to either side blocked, for StreamIdleTimeout. The hot path only
// bumps two atomic counters for it.
//
// Per-frame reads and writes (Recv, AppendAudio, Play) are given
// context.Background(): the adapters then read inline, without a goroutine
// or hand-over per frame. They still end promptly: the end of the call
// closes both sides, which ends any read or write in progress.
//
// The first goroutine to end the call (an ending, or a cancelled context)
// makes the others stop: both sides are closed, the side that is still
// there first, so that it learns at once that the call is over.
type call struct {
	svc  *CallsService
	ch   ports.TelephonyChannel
	sess ports.SpeechSession
	log  *slog.Logger
	conv *domain.Conversation // the owner's only

	// mode is how the session handles interruptions; the caller's format
	// is the channel's, and toModel/toCaller convert when the model's
	// differs (nil when they match: audio passes through untouched).
	mode     ports.Interruptions
	format   ports.AudioFormat
	toModel  ports.Transcoder // readCaller's
	toCaller ports.Transcoder // the owner's
	inBuf    []byte           // readCaller's conversion buffer
	outBuf   []byte           // the owner's conversion buffer
	player   *player          // nil unless mode is InterruptedByModel
	tools    *callTools       // set by run
	info     ports.CallInfo   // whose call: the start event's

	started   time.Time
	callerPos atomic.Int64 // the latest caller media position, from readCaller
	played    atomic.Int64 // the latest playback position, from readCaller
	handedMs  atomic.Int64 // assistant audio handed to the caller, in ms
	lastAudio atomic.Int64 // when the model last sent audio (unix ns); only with call control
	// appending and writing are the watchdog's view of the two sides
	// (watch): appending counts up once when readCaller gets caller audio
	// and once when the speech session took it, writing once before and
	// once after each write (audio or a clear) to the caller. An odd value
	// is a write in progress.
	appending atomic.Uint64
	writing   atomic.Uint64

	qmu      sync.Mutex
	queue    []byte // keys pressed, from readCaller
	applying []byte // the owner's: the queue being applied
	dropped  int    // keys left out because the queue was full; guarded by qmu

	keys          int // valid key presses, counted by readCaller
	skippedCaller int // key presses readCaller skipped

	sum CallSummary // counters are owned by the goroutine that counts them
}

// maxCallerQueue bounds the key presses waiting for the owner; a full queue
// drops what comes and counts it.
const maxCallerQueue = 256

func newCall(svc *CallsService, ch ports.TelephonyChannel, sess ports.SpeechSession, log *slog.Logger) (*call, error) {
	c := &call{
		svc:    svc,
		ch:     ch,
		sess:   sess,
		log:    log,
		conv:   domain.NewConversation(),
		mode:   sess.Interruptions(),
		format: ch.Format(),
	}
	if model := sess.Format(); model != c.format {
		if svc.d.Transcoders == nil {
			return nil, fmt.Errorf("calls: the caller's audio is %v and the model's %v, and no converter is configured: %w",
				c.format, model, ports.ErrInvalidInput)
		}
		var err error
		if c.toModel, err = svc.d.Transcoders(c.format, model); err != nil {
			return nil, fmt.Errorf("calls: convert caller audio: %w", err)
		}
		if c.toCaller, err = svc.d.Transcoders(model, c.format); err != nil {
			return nil, fmt.Errorf("calls: convert model audio: %w", err)
		}
	}
	if c.mode == ports.InterruptedByModel {
		c.player = newPlayer(c, svc.d.PlaybackLead)
	}
	return c, nil
}

// ending says how a call ended. It is the error that stops the call's
// errgroup.
type ending struct {
	reason string
	side   side // who ended it, so the other side is closed first
	normal bool // the caller hung up
	err    error
}

type side uint8

const (
	sideCaller side = iota + 1
	sideModel
)

func (e *ending) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *ending) Unwrap() error { return e.err }

// run bridges the call until it ends, closes both sides, logs the summary
// and returns nil for a caller hang-up, else the ending.
func (c *call) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	c.tools = newCallTools(c, gctx)
	g.Go(func() error { return c.tools.finisher(gctx) })
	g.Go(func() error { return c.readCaller(gctx) })
	g.Go(func() error { return c.own(gctx) })
	g.Go(func() error { return c.watch(gctx) })
	if c.player != nil {
		g.Go(func() error { return c.player.run(gctx) })
	}
	// This goroutine ends the call: once one of the others has ended it
	// (or ctx is done), closing both sides makes the rest return.
	<-gctx.Done()
	c.closeBoth(endingOf(context.Cause(gctx)))
	end := endingOf(g.Wait())
	c.tools.wg.Wait() // the tool runs, cancelled with the call
	if r := c.tools.endedBy.Load(); r != nil {
		end = &ending{reason: *r, side: sideCaller, normal: true} // the assistant ended or transferred it
	}
	c.applyCaller() // the progress and keys that came after the last model event
	c.finish(end)
	if end.normal {
		return nil
	}
	return fmt.Errorf("calls: %w", end)
}

// endingOf turns what stopped the call's errgroup into the call's ending:
// the ending one of its goroutines returned, or else a shutdown (the
// call's context was cancelled, which its goroutines answer with nil).
func endingOf(err error) *ending {
	var e *ending
	if errors.As(err, &e) {
		return e
	}
	if err == nil {
		err = context.Canceled
	}
	return &ending{reason: "shutdown", err: err}
}

// closeBoth closes both sides once the call has ended, the side still
// there first. The caller's media ends as completed when the caller hung
// up, as failed otherwise.
func (c *call) closeBoth(end *ending) {
	reason := ports.EndCompleted
	if !end.normal {
		reason = ports.EndFailed
	}
	closeCaller := func() {
		if err := c.ch.End(reason); err != nil {
			c.log.Debug("end media stream", "err", err)
		}
	}
	closeModel := func() {
		if err := c.sess.Close(); err != nil {
			c.log.Debug("close speech session", "err", err)
		}
	}
	if end.side == sideCaller {
		closeModel()
		closeCaller()
		return
	}
	closeCaller()
	closeModel()
}

// callerEnding is the ending of a stream that ended without a hang-up
// event.
func callerEnding(err error) *ending {
	reason := "stream_closed"
	var ended *ports.SessionEnded
	if errors.As(err, &ended) {
		switch ended.Reason {
		case "connection_lost":
			reason = "stream_lost"
		case "message_too_big":
			reason = "stream_frame_too_big" // the channel refused it
		}
	}
	if !errors.Is(err, ports.ErrClosed) {
		reason = "telephony_failed"
	}
	// A closed socket is how a caller's hang-up looks when no stop came.
	return &ending{reason: reason, side: sideCaller, normal: reason == "stream_closed", err: err}
}

// modelEnding is the ending of a call whose speech session failed or
// ended: "model_closed", "model_session_limit", "model_fatal_error",
// "model_lost", or fallback when the error does not say.
func modelEnding(fallback string, err error) *ending {
	reason := fallback
	var ended *ports.SessionEnded
	if errors.As(err, &ended) {
		switch ended.Reason {
		case "session_limit":
			reason = "model_session_limit"
		case "fatal_error":
			reason = "model_fatal_error"
		case "connection_lost", "message_too_big":
			reason = "model_lost"
		default:
			reason = "model_closed"
		}
	}
	return &ending{reason: reason, side: sideModel, err: err}
}

// callerWriteEnding is the ending of a call whose telephony channel could
// not be written to.
func callerWriteEnding(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(err, ports.ErrClosed) {
		return callerEnding(err)
	}
	return &ending{reason: "telephony_failed", side: sideCaller, err: err}
}

// decodedLen is the number of bytes the base64 text b decodes to (padded
// standard encoding, as the ports carry audio).
func decodedLen(b []byte) int {
	n := len(b) / 4 * 3
	if len(b) >= 1 && b[len(b)-1] == '=' {
		n--
		if len(b) >= 2 && b[len(b)-2] == '=' {
			n--
		}
	}
	return n
}
