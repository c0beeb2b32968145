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

// call bridges one media stream and one speech session. It runs in one
// errgroup of two goroutines, each the only reader of one side:
//
//   - readCaller reads the telephony channel. Caller audio goes straight to
//     the speech session, in order, without a hand-over (the hot path).
//     Marks and key presses are queued for the owner.
//   - own reads the speech session and is the only goroutine that touches
//     the call's domain.Conversation: before each model event it applies
//     what the caller queued, then it handles the event, writing assistant
//     audio, marks and clears to the caller, and truncations to the model.
//     Model events are handled where they are read, so an audio delta is
//     never copied nor handed over.
//
// Marks matter only when the owner decides something (a barge-in, on a
// model event) and in the summary, so applying them just before each model
// event is as exact as applying them at once; the queue holds at most the
// marks sent and not yet applied.
//
// Per-frame reads and writes (Recv, AppendAudio, SendAudio, SendMark) are
// given context.Background(): the adapters then read inline, without a
// goroutine or hand-over per frame, and coder/websocket registers nothing
// per frame. They still end promptly: the end of the call closes both
// sides, which ends any read or write in progress.
//
// The first goroutine to end the call (an ending, or a cancelled context)
// makes the other stop: both sides are closed, the side that is still
// there first, so that it learns at once that the call is over.
type call struct {
	svc  *CallsService
	ch   ports.TelephonyChannel
	sess ports.SpeechSession
	log  *slog.Logger
	conv *domain.Conversation // the owner's only

	started   time.Time
	callerPos atomic.Int64 // the latest caller media timestamp, from readCaller

	qmu      sync.Mutex
	queue    []ports.CallEvent // marks and key presses, from readCaller
	applying []ports.CallEvent // the owner's: the queue being applied

	sum CallSummary // counters are owned by the goroutine that counts them
}

func newCall(svc *CallsService, ch ports.TelephonyChannel, sess ports.SpeechSession, log *slog.Logger) *call {
	return &call{
		svc:  svc,
		ch:   ch,
		sess: sess,
		log:  log,
		conv: domain.NewConversation(),
	}
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
	g.Go(func() error { return c.readCaller(gctx) })
	g.Go(func() error { return c.own(gctx) })
	// This goroutine ends the call: once one of the two has ended it (or
	// ctx is done), closing both sides makes the other return.
	<-gctx.Done()
	c.closeBoth(endingOf(context.Cause(gctx)))
	end := endingOf(g.Wait())
	c.applyCaller() // the echoes that came after the last model event
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
// there first.
func (c *call) closeBoth(end *ending) {
	closeCaller := func() {
		if err := c.ch.Close(end.reason, false); err != nil {
			c.log.Debug("close media stream", "err", err)
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

// finish logs the call's summary and reports it to the hooks.
func (c *call) finish(end *ending) {
	c.sum.Duration = time.Since(c.started)
	c.sum.EndReason = end.reason
	c.sum.Turns = c.conv.Turns()
	c.sum.BargeIns = c.conv.BargeIns()
	c.sum.Digits = c.conv.Digits()
	c.sum.FramesSkipped = c.ch.Skipped()

	attrs := []any{
		"end_reason", end.reason,
		"duration", c.sum.Duration.Round(time.Millisecond).String(),
		"prewarmed", c.sum.Prewarmed,
		"first_audio_ms", c.sum.FirstAudio.Milliseconds(),
		"turns", turnLogs(c.sum.Turns),
		"barge_ins", c.sum.BargeIns,
		"digits", c.sum.Digits,
		slog.Group("usage", "input_tokens", c.sum.Usage.InputTokens,
			"output_tokens", c.sum.Usage.OutputTokens, "total_tokens", c.sum.Usage.TotalTokens),
		"frames_in", c.sum.FramesIn,
		"frames_out", c.sum.FramesOut,
		"frames_dropped", c.sum.FramesDropped,
		"frames_skipped", c.sum.FramesSkipped,
		"model_errors", c.sum.ModelErrors,
	}
	if end.normal {
		c.log.Info("call ended", attrs...)
	} else {
		c.log.Warn("call ended", append(attrs, "err", end.err)...)
	}
	if h := c.svc.d.Hooks.CallEnded; h != nil {
		h(c.sum)
	}
}

// turnLog is a turn as the call summary logs it.
type turnLog struct {
	Speaker     string `json:"speaker"`
	ItemID      string `json:"item_id,omitempty"`
	Text        string `json:"text,omitempty"`
	StartMs     int64  `json:"start_ms"`
	HeardMs     int    `json:"heard_ms,omitempty"`
	SentMs      int    `json:"sent_ms,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

func turnLogs(turns []domain.Turn) []turnLog {
	out := make([]turnLog, len(turns))
	for i, t := range turns {
		out[i] = turnLog{Speaker: t.Speaker.String(), ItemID: t.ItemID, Text: t.Text, StartMs: t.StartMs,
			HeardMs: t.HeardMs, SentMs: t.SentMs, Interrupted: t.Interrupted}
	}
	return out
}

// readCaller reads the telephony channel until it ends. Caller audio is
// appended to the speech session here, frame by frame, in order.
func (c *call) readCaller(ctx context.Context) error {
	bg := context.Background() // see call: closeBoth ends a blocked Recv
	for {
		ev, err := c.ch.Recv(bg)
		if err != nil {
			if ctx.Err() != nil {
				return nil // the call ended elsewhere
			}
			return callerEnding(err)
		}
		switch ev.Type {
		case ports.CallMedia:
			c.callerPos.Store(ev.TimestampMs)
			if err := c.sess.AppendAudio(bg, ev.Payload); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return modelEnding("model_failed", err)
			}
			c.sum.FramesIn++
		case ports.CallMark, ports.CallDTMF:
			if ev.Type == ports.CallDTMF {
				c.log.Info("caller pressed a key", "digit", ev.Digit)
			}
			c.qmu.Lock()
			c.queue = append(c.queue, ports.CallEvent{Type: ev.Type, Mark: ev.Mark, Digit: ev.Digit})
			c.qmu.Unlock()
			if h := c.svc.testHookCallerEvent; h != nil {
				h(ev)
			}
		case ports.CallStop:
			return &ending{reason: "caller_hangup", side: sideCaller, normal: true}
		default:
			c.log.Debug("media stream event skipped", "event", ev.Type.String())
		}
	}
}

// callerEnding is the ending of a stream that ended without a stop event.
func callerEnding(err error) *ending {
	reason := "stream_closed"
	var ended *ports.SessionEnded
	if errors.As(err, &ended) {
		switch ended.Reason {
		case "connection_lost":
			reason = "stream_lost"
		case "message_too_big":
			reason = "stream_frame_too_big" // the channel refused it (1009)
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

// own reads the speech session until it ends, applying what the caller
// queued before each event, then the event. When the assistant speaks
// first, it asks for the greeting before anything else.
func (c *call) own(ctx context.Context) error {
	if c.svc.d.AISpeaksFirst {
		if err := c.sess.RequestResponse(ctx, c.svc.d.Greeting); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return modelEnding("model_failed", err)
		}
	}
	for {
		ev, err := c.sess.Recv(context.Background()) // see call: closeBoth ends it
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return modelEnding("model_failed", err)
		}
		c.applyCaller()
		if err := c.onModel(ctx, ev); err != nil {
			return err
		}
	}
}

// applyCaller applies the marks and key presses readCaller queued, in
// order. The owner's buffers are swapped with the queue's, so no event is
// copied twice and nothing is allocated once they have grown.
func (c *call) applyCaller() {
	c.qmu.Lock()
	c.queue, c.applying = c.applying[:0], c.queue
	c.qmu.Unlock()
	for i := range c.applying {
		c.onCaller(c.applying[i])
		c.applying[i] = ports.CallEvent{} // let the strings go
	}
}

// onCaller applies a mark echo or a key press.
func (c *call) onCaller(ev ports.CallEvent) {
	switch ev.Type {
	case ports.CallMark:
		if c.conv.MarkEchoed(ev.Mark) == domain.MarkUnknown {
			c.log.Debug("unknown mark echoed", "mark", ev.Mark)
		}
	case ports.CallDTMF:
		c.conv.Digit(ev.Digit)
	}
}

// onModel applies one speech event. It returns an ending when a side can
// no longer be written to.
func (c *call) onModel(ctx context.Context, ev ports.SpeechEvent) error {
	c.conv.CallerAudio(c.callerPos.Load())
	switch ev.Type {
	case ports.SpeechAudioDelta:
		return c.onAudio(ctx, ev)
	case ports.SpeechStarted:
		return c.onSpeechStarted(ctx, ev)
	case ports.SpeechResponseCreated:
		c.conv.ResponseStarted(ev.ResponseID)
	case ports.SpeechResponseDone:
		c.conv.ResponseFinished(ev.ResponseID)
		c.sum.Usage = c.sum.Usage.Add(ev.Usage)
		if ev.Status != "completed" && ev.Status != "cancelled" {
			c.log.Warn("model response ended", "response_id", ev.ResponseID, "status", ev.Status)
		}
	case ports.SpeechAssistantText:
		c.conv.AssistantSaid(ev.ItemID, ev.Text)
	case ports.SpeechCallerText:
		c.conv.CallerSaid(ev.ItemID, ev.Text)
	case ports.SpeechError:
		c.sum.ModelErrors++
		code := ev.Err.Code
		if code == "" {
			code = ev.Err.Type
		}
		c.log.Warn("model reported an error", "code", code, "type", ev.Err.Type, "message", ev.Err.Message, "event_id", ev.Err.EventID)
		if h := c.svc.d.Hooks.ModelError; h != nil {
			h(code)
		}
	}
	return nil
}

// onAudio relays one chunk of assistant audio to the caller, followed by a
// mark whose echo tells when it has played, unless the caller interrupted
// its response.
func (c *call) onAudio(ctx context.Context, ev ports.SpeechEvent) error {
	mark, ok := c.conv.AssistantAudio(ev.ResponseID, ev.ItemID, decodedLen(ev.Audio))
	if !ok {
		c.sum.FramesDropped++
		return nil
	}
	if mark == "" {
		return nil // an empty chunk: nothing to play
	}
	bg := context.Background() // see call: closeBoth ends a blocked write
	if err := c.ch.SendAudio(bg, ev.Audio); err != nil {
		return callerWriteEnding(ctx, err)
	}
	if err := c.ch.SendMark(bg, mark); err != nil {
		return callerWriteEnding(ctx, err)
	}
	c.sum.FramesOut++
	if c.sum.FirstAudio == 0 {
		c.sum.FirstAudio = time.Since(c.started)
		if h := c.svc.d.Hooks.FirstAudio; h != nil {
			h(c.sum.FirstAudio)
		}
	}
	return nil
}

// onSpeechStarted is the barge-in: when assistant audio is outstanding,
// the caller's playback is cleared at once and the item being heard is
// truncated where the caller stopped hearing it. No response.cancel is
// sent: with server or semantic VAD the model interrupts its own response
// when it detects speech (interrupt_response defaults to true), so a cancel
// would race with it and fail when no response is active any more; the
// domain refuses any audio of the interrupted response that still arrives.
func (c *call) onSpeechStarted(ctx context.Context, ev ports.SpeechEvent) error {
	in, cut := c.conv.CallerStartedSpeaking(ev.ItemID)
	if !cut {
		return nil
	}
	if err := c.ch.Clear(ctx); err != nil {
		return callerWriteEnding(ctx, err)
	}
	if err := c.sess.Truncate(ctx, in.ItemID, in.AudioEndMs); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return modelEnding("model_failed", err)
	}
	c.log.Info("caller interrupted the assistant", "item_id", in.ItemID, "audio_end_ms", in.AudioEndMs)
	if h := c.svc.d.Hooks.BargeIn; h != nil {
		h()
	}
	return nil
}

// callerWriteEnding is the ending of a call whose media stream could not
// be written to.
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
// standard encoding, as both Twilio and OpenAI send it).
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
