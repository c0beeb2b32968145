package app

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convgateway/gateway/ports"
)

// Playback settles before the call ends or is transferred: the assistant's
// goodbye must play to its end, as playback progress says.
const (
	// settleQuiet is how long the model must have sent no audio, with
	// everything handed played, before the call is ended.
	settleQuiet = 800 * time.Millisecond
	// settleLimit bounds the wait for playback to settle.
	settleLimit = 20 * time.Second
	// controlTimeout bounds a request to end or transfer the call.
	controlTimeout = 10 * time.Second
	// hangUpGrace is how long the call waits for the provider to end its
	// media after the call was ended or transferred.
	hangUpGrace = 5 * time.Second
)

// ToolUse is one tool the assistant used on a call, for the summary.
type ToolUse struct {
	Name       string `json:"name"`
	Outcome    string `json:"outcome"`
	DurationMs int64  `json:"duration_ms"`
}

// callTools is a call's tool state. The owner starts tool runs and counts
// them per turn; runs report from their goroutines.
type callTools struct {
	c         *call
	ctx       context.Context // the call's: cancelled when it ends
	wg        sync.WaitGroup  // tool runs
	finishc   chan finishReq  // end_call and transfer_call, for finisher
	finishing atomic.Bool
	endedBy   atomic.Pointer[string] // the end reason once the call was ended or transferred

	turnCalls int // tool calls since the caller last spoke; the owner's

	running atomic.Int32 // tool runs in progress
	held    atomic.Bool  // the holding phrase was said for the runs in progress

	mu   sync.Mutex
	used []ToolUse
}

type finishReq struct {
	call     ports.ToolCall
	transfer bool
}

func newCallTools(c *call, ctx context.Context) *callTools {
	return &callTools{c: c, ctx: ctx, finishc: make(chan finishReq, 1)}
}

// maxToolUses bounds the tools a call's summary lists.
const maxToolUses = 64

// record records a tool run for the summary (the first maxToolUses).
func (t *callTools) record(name, outcome string, took time.Duration) {
	t.mu.Lock()
	if len(t.used) < maxToolUses {
		t.used = append(t.used, ToolUse{Name: clip(name, 64), Outcome: outcome, DurationMs: took.Milliseconds()})
	}
	t.mu.Unlock()
}

func (t *callTools) uses() []ToolUse {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]ToolUse(nil), t.used...)
}

// callerSpoke starts a new turn: the tool calls are counted anew.
func (t *callTools) callerSpoke() { t.turnCalls = 0 }

// onCall handles a tool call of the model. The owner calls it.
func (t *callTools) onCall(call ports.ToolCall) {
	tools := t.c.svc.d.Tools
	t.turnCalls++
	if t.turnCalls > tools.maxCalls() {
		t.reply(ports.ToolResult{CallID: call.ID, Error: "too many tool calls in this turn: answer the caller now, without tools"})
		t.note(call, "refused", 0, nil)
		return
	}
	switch call.Name {
	case ToolEndCall, ToolTransfer:
		transfer := call.Name == ToolTransfer
		if tools.Control == nil || transfer && tools.TransferTo == "" || !t.finishing.CompareAndSwap(false, true) {
			t.reply(ports.ToolResult{CallID: call.ID, Error: "this cannot be done now"})
			t.note(call, "refused", 0, nil)
			return
		}
		t.finishc <- finishReq{call: call, transfer: transfer}
	case ToolSendMessage:
		if tools.Sender == nil || tools.TextFrom == "" {
			t.reply(ports.ToolResult{CallID: call.ID, Error: "texting is not available"})
			t.note(call, "refused", 0, nil)
			return
		}
		t.start(call, t.sendMessage)
	default:
		if tools.Runner == nil {
			t.reply(ports.ToolResult{CallID: call.ID, Error: "there is no such tool here"})
			t.note(call, "unknown", 0, nil)
			return
		}
		t.start(call, func(ctx context.Context, call ports.ToolCall) ports.ToolResult {
			start := time.Now()
			out, err := tools.Runner.Run(ctx, ports.ToolRequest{Call: call, Channel: ports.ChannelVoice, CallID: t.c.sum.CallID})
			return t.result(call, out, err, time.Since(start))
		})
	}
}

// start runs a tool in its own goroutine, its result sent to the model
// when it comes; the holding phrase is said once when the runs in
// progress take longer than HoldAfter.
func (t *callTools) start(call ports.ToolCall, run func(context.Context, ports.ToolCall) ports.ToolResult) {
	t.running.Add(1)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		done := make(chan struct{})
		if after := t.c.svc.d.Tools.holdAfter(); after > 0 {
			timer := time.AfterFunc(after, func() {
				select {
				case <-done:
				default:
					t.hold()
				}
			})
			defer timer.Stop()
		}
		res := run(t.ctx, call)
		close(done)
		if t.running.Add(-1) == 0 {
			t.held.Store(false)
		}
		t.reply(res)
	}()
}

// hold says the holding phrase, once for the runs in progress.
func (t *callTools) hold() {
	if t.ctx.Err() != nil || !t.held.CompareAndSwap(false, true) {
		return
	}
	if err := t.c.sess.Respond(t.ctx, t.c.svc.d.Tools.holdPrompt()); err != nil && t.ctx.Err() == nil {
		t.c.log.Warn("holding phrase not asked for", "err", err)
	}
}

// reply gives the model a tool's result; a failure to send it is logged
// (the call goes on, or is ending).
func (t *callTools) reply(r ports.ToolResult) {
	if err := t.c.sess.ToolResult(t.ctx, r); err != nil && t.ctx.Err() == nil {
		t.c.log.Warn("tool result not sent", "err", err)
	}
}

// result turns a tool's output or error into the result the model reads,
// and reports the run.
func (t *callTools) result(call ports.ToolCall, out string, err error, took time.Duration) ports.ToolResult {
	res, outcome := toolResult(call, out, err)
	t.note(call, outcome, took, err)
	return res
}

// note logs and counts a tool run.
func (t *callTools) note(call ports.ToolCall, outcome string, took time.Duration, err error) {
	t.c.svc.d.Tools.report(t.c.log, call, outcome, took, err)
	t.record(call.Name, outcome, took)
}

// sendMessage texts the caller (send_message): by WhatsApp when TextFrom
// is a WhatsApp sender, by SMS otherwise.
func (t *callTools) sendMessage(ctx context.Context, call ports.ToolCall) ports.ToolResult {
	var args struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(call.Arguments, &args); err != nil || strings.TrimSpace(args.Text) == "" {
		t.note(call, "refused", 0, nil)
		return ports.ToolResult{CallID: call.ID, Error: "the message needs a text"}
	}
	from := t.c.svc.d.Tools.TextFrom
	to := t.c.info.From
	if to == "" {
		t.note(call, "refused", 0, nil)
		return ports.ToolResult{CallID: call.ID, Error: "the caller's number is not known"}
	}
	if strings.HasPrefix(from, "whatsapp:") {
		to = "whatsapp:" + to
	}
	start := time.Now()
	_, err := t.c.svc.d.Tools.Sender.Send(ctx, ports.OutboundMessage{To: to, From: from, Body: args.Text})
	if errors.Is(err, ports.ErrRejected) {
		t.note(call, "error", time.Since(start), err)
		return ports.ToolResult{CallID: call.ID, Error: "the message was refused (WhatsApp takes messages only within 24 hours of the caller's last one): offer to say it instead"}
	}
	if err != nil {
		return t.result(call, "", err, time.Since(start))
	}
	return t.result(call, "sent", nil, time.Since(start))
}

// finisher waits for end_call or transfer_call, lets the assistant's last
// words play to their end, then ends or transfers the call through the
// provider. A failure is the tool's result: the assistant tells the
// caller, and the call goes on. Once done, the provider ends the call's
// media; the call ends with "assistant_ended" or "transferred".
func (t *callTools) finisher(ctx context.Context) error {
	for {
		var req finishReq
		select {
		case <-ctx.Done():
			return nil
		case req = <-t.finishc:
		}
		t.settle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		tools := t.c.svc.d.Tools
		// Not cancelled with the call: the provider may end the media
		// stream before its answer to the update arrives, and the call's
		// end must still know that the update was made.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
		start := time.Now()
		var err error
		reason := "assistant_ended"
		if req.transfer {
			reason = "transferred"
			err = tools.Control.Transfer(cctx, t.c.sum.CallID, tools.TransferTo, t.c.info.To)
		} else {
			err = tools.Control.End(cctx, t.c.sum.CallID)
		}
		cancel()
		if err != nil {
			res := t.result(req.call, "", err, time.Since(start))
			res.Error = "the call could not be " + map[bool]string{true: "transferred", false: "ended"}[req.transfer] + ": tell the caller"
			t.finishing.Store(false)
			t.reply(res)
			continue
		}
		t.note(req.call, "ok", time.Since(start), nil)
		t.endedBy.Store(&reason)
		select { // the provider ends the media; do it after a grace period otherwise
		case <-ctx.Done():
			return nil
		case <-time.After(hangUpGrace):
			return &ending{reason: reason, side: sideCaller, normal: true}
		}
	}
}

// settle waits until the assistant's audio has played out and the model
// has been quiet for settleQuiet, at most settleLimit.
func (t *callTools) settle(ctx context.Context) {
	limit := time.NewTimer(settleLimit)
	defer limit.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		c := t.c
		quiet := time.Since(time.Unix(0, c.lastAudio.Load())) >= settleQuiet
		played := c.handedMs.Load() <= c.played.Load()
		if quiet && played && (c.player == nil || c.player.holding() == 0) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-limit.C:
			c.log.Warn("the assistant's audio did not settle: ending the call anyway", "waited", settleLimit.String())
			return
		case <-tick.C:
		}
	}
}
