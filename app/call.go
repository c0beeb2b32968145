package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

// call bridges one media stream and one speech session. It runs in one
// errgroup of two goroutines, each the only reader of one side, and a
// watchdog:
//
//   - readCaller reads the telephony channel. Caller audio goes straight to
//     the speech session, in order, without a hand-over (the hot path).
//     Marks and key presses are checked and queued for the owner: only
//     marks named as the call names them, and exactly one key per press;
//     a run of consecutive marks takes one entry, and the queue is capped
//     (maxCallerQueue), so that a peer flooding the stream cannot grow it.
//   - own reads the speech session and is the only goroutine that touches
//     the call's domain.Conversation: before each model event it applies
//     what the caller queued, then it handles the event, writing assistant
//     audio, marks and clears to the caller, and truncations to the model.
//     Model events are handled where they are read, so an audio delta is
//     never copied nor handed over.
//
// Marks matter only when the owner decides something (a barge-in, on a
// model event) and in the summary, so applying them just before each model
// event is as exact as applying them at once.
//
// The watchdog, watch, is a third goroutine: it ends a call whose
// caller sent no media, or whose writes to either side blocked, for
// StreamIdleTimeout. The hot path only bumps two atomic counters for it.
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
	// appending and writing are the watchdog's view of the two sides
	// (watch): appending counts up once when readCaller gets a media frame
	// and once when the speech session took it, writing once before and
	// once after each write (a media frame and its mark, or a clear) to
	// the caller. An odd value is a write in progress.
	appending atomic.Uint64
	writing   atomic.Uint64

	qmu      sync.Mutex
	queue    []callerEvent // marks and key presses, from readCaller
	applying []callerEvent // the owner's: the queue being applied
	dropped  int           // events left out because the queue was full; guarded by qmu

	keys          int // valid key presses, counted by readCaller
	skippedCaller int // marks and key presses readCaller skipped
	skippedOwner  int // echoes of marks the owner did not send (or saw already)

	sum CallSummary // counters are owned by the goroutine that counts them
}

// maxCallerQueue bounds the queue of marks and key presses waiting for the
// owner. Echoes of consecutive marks take one entry, so a call's own echoes
// need a few entries between two model events; a full queue drops what
// comes and counts it.
const maxCallerQueue = 256

// callerEvent is what readCaller queues for the owner: a run of marks
// echoed one after the other, first to last by sequence number
// (domain.MarkSeq, from 1), or a key press (first is 0).
type callerEvent struct {
	first, last uint64
	key         byte
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
	g.Go(func() error { return c.watch(gctx) })
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

// finish logs the call's summary and reports it to the hooks. The
// summary is bounded (MaxSummaryTurns, MaxTurnText, domain.MaxDigits); the
// keys pressed are logged only with LogDigits.
func (c *call) finish(end *ending) {
	c.sum.Duration = time.Since(c.started)
	c.sum.EndReason = end.reason
	c.sum.Turns, c.sum.TurnsOmitted = summaryTurns(c.conv.Turns())
	c.sum.BargeIns = c.conv.BargeIns()
	c.sum.Digits, c.sum.DigitCount = c.conv.Digits(), c.conv.DigitCount()
	c.sum.FramesSkipped = c.ch.Skipped()
	c.sum.CallerEventsSkipped = c.skippedCaller + c.skippedOwner
	c.qmu.Lock()
	c.sum.CallerEventsDropped = c.dropped
	c.qmu.Unlock()

	attrs := []any{
		"end_reason", end.reason,
		"duration", c.sum.Duration.Round(time.Millisecond).String(),
		"prewarmed", c.sum.Prewarmed,
		"first_audio_ms", c.sum.FirstAudio.Milliseconds(),
		"turns", turnLogs(c.sum.Turns),
		"turns_omitted", c.sum.TurnsOmitted,
		"barge_ins", c.sum.BargeIns,
		"digits_count", c.sum.DigitCount,
	}
	if c.svc.d.LogDigits {
		attrs = append(attrs, "digits", c.sum.Digits)
	}
	attrs = append(attrs,
		slog.Group("usage", "input_tokens", c.sum.Usage.InputTokens,
			"output_tokens", c.sum.Usage.OutputTokens, "total_tokens", c.sum.Usage.TotalTokens),
		"frames_in", c.sum.FramesIn,
		"frames_out", c.sum.FramesOut,
		"frames_dropped", c.sum.FramesDropped,
		"frames_skipped", c.sum.FramesSkipped,
		"model_errors", c.sum.ModelErrors,
		"caller_events_skipped", c.sum.CallerEventsSkipped,
		"caller_events_dropped", c.sum.CallerEventsDropped,
	)
	if end.normal {
		c.log.Info("call ended", attrs...)
	} else {
		c.log.Warn("call ended", append(attrs, "err", end.err)...)
	}
	if h := c.svc.d.Hooks.CallEnded; h != nil {
		h(c.sum)
	}
}

// summaryTurns returns the last MaxSummaryTurns of turns, their texts and
// item ids clipped, and how many earlier turns it left out.
func summaryTurns(turns []domain.Turn) ([]domain.Turn, int) {
	omitted := max(0, len(turns)-MaxSummaryTurns)
	turns = turns[omitted:]
	for i := range turns {
		turns[i].Text = clip(turns[i].Text, MaxTurnText)
		turns[i].ItemID = clip(turns[i].ItemID, maxItemID)
	}
	return turns, omitted
}

// clip makes s safe and short for a log line: control characters become
// spaces, invalid UTF-8 the replacement character, and a result longer
// than n bytes is cut at a character boundary to end with "…" within n
// bytes. Its JSON form is then at most about twice n bytes.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
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
			c.appending.Add(1)
			if err := c.sess.AppendAudio(bg, ev.Payload); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return modelEnding("model_failed", err)
			}
			c.appending.Add(1)
			c.sum.FramesIn++
		case ports.CallMark:
			seq, ok := domain.MarkSeq(ev.Mark)
			if !ok {
				c.skip("mark", len(ev.Mark))
				continue
			}
			c.enqueue(callerEvent{first: seq, last: seq})
			if h := c.svc.testHookCallerEvent; h != nil {
				h(ev)
			}
		case ports.CallDTMF:
			if !domain.IsKey(ev.Digit) {
				c.skip("key press", len(ev.Digit))
				continue
			}
			c.keys++
			if c.keys <= domain.MaxDigits { // the summary counts the rest
				if c.svc.d.LogDigits {
					c.log.Info("caller pressed a key", "keys_pressed", c.keys, "digit", ev.Digit)
				} else {
					c.log.Info("caller pressed a key", "keys_pressed", c.keys)
				}
			}
			c.enqueue(callerEvent{key: ev.Digit[0]})
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

// skip counts a mark or key press that readCaller does not queue, and logs
// the first and every tenfold count after it, never its content.
func (c *call) skip(kind string, size int) {
	c.skippedCaller++
	if n := c.skippedCaller; n == 1 || n == 10 || n == 100 || n%1000 == 0 {
		c.log.Warn("caller event skipped: not a mark of this call or a single key", "kind", kind, "bytes", size, "skipped", n)
	}
}

// enqueue queues ev for the owner: a mark that follows the run of marks at
// the end of the queue extends it; anything else takes an entry, unless
// the queue is full (then it is dropped and counted).
func (c *call) enqueue(ev callerEvent) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if n := len(c.queue); n > 0 && ev.first != 0 {
		if run := &c.queue[n-1]; run.first != 0 && run.last+1 == ev.first {
			run.last = ev.first
			return
		}
	}
	if len(c.queue) >= maxCallerQueue {
		c.dropped++
		return
	}
	c.queue = append(c.queue, ev)
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
	for _, ev := range c.applying {
		c.onCaller(ev)
	}
}

// onCaller applies a run of mark echoes, one by one in order, or a key
// press.
func (c *call) onCaller(ev callerEvent) {
	if ev.first == 0 {
		c.conv.Digit(string(ev.key))
		return
	}
	for seq := ev.first; ; seq++ {
		if c.conv.MarkSeqEchoed(seq) == domain.MarkUnknown {
			c.skippedOwner++ // not sent, or echoed already
		}
		if seq == ev.last {
			return
		}
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
	c.writing.Add(1)
	err := c.ch.SendAudio(bg, ev.Audio)
	if err == nil {
		err = c.ch.SendMark(bg, mark)
	}
	c.writing.Add(1)
	if err != nil {
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
	c.writing.Add(1)
	err := c.ch.Clear(ctx)
	c.writing.Add(1)
	if err != nil {
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

// watchTicks is how many times per StreamIdleTimeout watch looks at the
// call: a stall is noticed between 1 and 1.25 times the timeout after it
// began.
const watchTicks = 4

// Errors of the endings watch decides.
var (
	errStreamIdle    = errors.New("no media from the caller")
	errStreamStalled = errors.New("a write to the caller blocked: the peer stopped reading")
	errModelStalled  = errors.New("a write of caller audio to the speech session blocked")
)

// watch ends the call when, for StreamIdleTimeout, the caller sent no
// media ("stream_idle": Twilio sends a frame every 20 ms, silence
// included, so a stream without media has stalled), a write to the caller
// did not return ("stream_stalled": the peer stopped reading, and the
// connection's buffers are full), or a write of caller audio to the speech
// session did not ("model_stalled"). It reads the counters readCaller and
// own keep; it takes no lock and adds nothing per frame but the counters.
// The ending closes both sides, which ends the blocked write.
func (c *call) watch(ctx context.Context) error {
	limit := c.svc.d.StreamIdleTimeout
	tick := time.NewTicker(limit / watchTicks)
	defer tick.Stop()
	now := time.Now()
	in := progress{n: c.appending.Load(), at: now}
	out := progress{n: c.writing.Load(), at: now}
	for {
		select {
		case <-ctx.Done():
			return nil
		case now = <-tick.C:
		}
		switch n := c.appending.Load(); {
		case !in.stuck(n, now, limit):
		case n%2 == 1:
			return &ending{reason: "model_stalled", side: sideModel, err: fmt.Errorf("%w for %v", errModelStalled, limit)}
		default:
			return &ending{reason: "stream_idle", side: sideCaller, err: fmt.Errorf("%w for %v", errStreamIdle, limit)}
		}
		if n := c.writing.Load(); out.stuck(n, now, limit) && n%2 == 1 {
			return &ending{reason: "stream_stalled", side: sideCaller, err: fmt.Errorf("%w for %v", errStreamStalled, limit)}
		}
	}
}

// progress is the watchdog's memory of one counter: its value and when it
// last changed.
type progress struct {
	n  uint64
	at time.Time
}

// stuck records n, the counter's value at now, and reports whether it has
// not changed for limit.
func (p *progress) stuck(n uint64, now time.Time, limit time.Duration) bool {
	if n != p.n {
		p.n, p.at = n, now
		return false
	}
	return now.Sub(p.at) >= limit
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
