package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

// The parties of the demo call.
const (
	callSid    = "CA0000000000000000000000000000demo"
	callerFrom = "+15551230001"
	callTo     = "+15550100200"
)

// bargeAfterMs is how much of the first answer the caller hears before
// talking over it.
const bargeAfterMs = 1500

// phone is the simulated caller's side of the call: it sends 20 ms frames
// in real time, as Twilio does all through a call (speech or silence), and
// looks at what happened at the caller after every frame.
type phone struct {
	ctx    context.Context
	caller *mediasim.Caller
	tick   func()
	next   time.Time // when the next frame is due; zero: now
}

// send streams audio in real time.
func (p *phone) send(audio []byte) error {
	for len(audio) > 0 {
		n := min(160, len(audio))
		if err := p.frame(audio[:n]); err != nil {
			return err
		}
		audio = audio[n:]
	}
	return nil
}

// quietUntil streams silence until cond holds.
func (p *phone) quietUntil(what string, cond func() bool) error {
	quiet := mulaw.Quiet(20)
	for !cond() {
		if err := p.ctx.Err(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if err := p.frame(quiet); err != nil {
			return err
		}
	}
	return nil
}

// frame sends one frame when it is due (frame n, n*20 ms after the first:
// real time without drift), then looks at the caller.
func (p *phone) frame(audio []byte) error {
	if p.next.IsZero() {
		p.next = time.Now()
	}
	if d := time.Until(p.next); d > 0 {
		select {
		case <-time.After(d):
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
	if err := p.caller.Speak(p.ctx, audio, false); err != nil {
		return p.streamError(err)
	}
	p.next = p.next.Add(time.Duration(len(audio)) * time.Millisecond / 8)
	p.tick()
	return nil
}

func (p *phone) streamError(err error) error {
	if closed, code := p.caller.Closed(); closed {
		return fmt.Errorf("the gateway closed the media stream (code %d): %w", code, err)
	}
	return fmt.Errorf("media stream: %w", err)
}

// atClear is what the caller had when the clear arrived.
type atClear struct {
	seen   bool
	at     time.Time
	played int // bytes of audio played, the part of the chunk cut by the clear included
}

// call plays the phone call and prints its transcript.
func (w *world) call(ctx context.Context, o options, stdout io.Writer) (err error) {
	script := w.script.script
	tl := w.script.tl
	fmt.Fprintf(stdout, "\n== Phone call %s from %s to %s (real time, about 8 s)\n\n", callSid, callerFrom, callTo)

	t0 := time.Now()
	printed := false
	defer func() {
		if err != nil && !printed {
			tl.print(stdout, t0)
			fmt.Fprintln(stdout, "  (the call stopped here)")
		}
	}()
	tl.add(t0, "twilio", "POST /incoming-call, signed with the auth token (CallSid %s, From %s)", callSid, callerFrom)
	ans, err := mediasim.PlaceCall(ctx, mediasim.CallRequest{
		URL: w.base + "/incoming-call", AuthToken: demoAuthToken,
		CallSid: callSid, AccountSid: demoAccountSID, From: callerFrom, To: callTo, HTTPClient: w.client,
	})
	if err != nil {
		return fmt.Errorf("POST /incoming-call: %w", err)
	}
	answered := time.Now()
	if len(ans.Verbs) == 0 || ans.Verbs[0] != "Connect" || ans.StreamURL == "" || ans.Params["token"] == "" {
		return fmt.Errorf("the gateway did not connect the call to a media stream (TwiML verbs %v)", ans.Verbs)
	}
	tl.add(answered, "gateway", "200 TwiML after %s: <Connect><Stream url=%q> with a single-use token <Parameter>,\nthen %s for a stream that ends early",
		dur(answered.Sub(t0)), ans.StreamURL, strings.Join(ans.Verbs[1:], " and "))

	caller, err := mediasim.Dial(ctx, mediasim.Options{
		URL: ans.StreamURL, Signature: mediasim.StreamSignature(demoAuthToken, ans.StreamURL), HTTPClient: w.client,
	})
	if err != nil {
		return fmt.Errorf("open the media stream: %w", err)
	}
	defer caller.Close()
	if err := caller.Start(ctx, ports.CallInfo{CallID: callSid, From: callerFrom, To: callTo, Params: ans.Params}); err != nil {
		return fmt.Errorf("start the media stream: %w", err)
	}
	started := time.Now()
	tl.add(started, "twilio", "opens the media stream (upgrade signed with x-twilio-signature); its start event carries the token")
	sess, err := w.rt.Latest(ctx)
	if err != nil {
		return err
	}
	speech, err := sess.WaitConfig(ctx)
	if err != nil {
		return err
	}

	var clear atClear
	p := &phone{ctx: ctx, caller: caller, tick: func() {
		if clears := caller.Clears(); !clear.seen && len(clears) > 0 {
			clear = atClear{seen: true, at: clears[0], played: len(caller.Played())}
		}
	}}
	first, second := script[0], script[1]

	tl.add(time.Now(), "caller", "starts speaking (%s of audio, 20 ms frames in real time)", ms(len(first.callerAudio)/8))
	if err := p.send(first.callerAudio); err != nil {
		return err
	}
	spoke := time.Now()
	tl.add(spoke, "caller", "stops speaking")
	if err := p.quietUntil("the caller to hear the first answer", func() bool { return len(caller.Played()) >= bargeAfterMs*8 }); err != nil {
		return err
	}
	tl.add(time.Now(), "caller", "talks over the assistant after hearing %s of its answer", ms(len(caller.Played())/8))
	if err := p.send(second.callerAudio); err != nil {
		return err
	}
	tl.add(time.Now(), "caller", "stops speaking")
	if err := p.quietUntil("the second answer to play out", func() bool {
		return clear.seen && len(caller.Played())-clear.played >= len(second.replyAudio) && idle(caller)
	}); err != nil {
		return err
	}
	if err := p.quietUntil("a moment of quiet", func() bool { return time.Since(lastMark(caller)) >= 300*time.Millisecond }); err != nil {
		return err
	}
	tl.add(time.Now(), "caller", "hangs up (stop)")
	if err := caller.HangUp(ctx); err != nil {
		return fmt.Errorf("hang up: %w", err)
	}

	summary, err := w.log.wait(ctx, "call ended", "call_id", callSid)
	if err != nil {
		return err
	}
	st := w.script.state()
	if err := st.problem(); err != nil {
		return err
	}
	played := caller.Played()
	rep, err := checkCall(callRecord{
		script: script, summary: summary, clear: clear, clears: len(caller.Clears()),
		truncations: st.truncations, frames: caller.Frames(), marks: caller.Marks(),
		simTruncations: len(sess.Heard()), played: len(played),
	})
	if err != nil {
		return err
	}

	// What only the records tell: when each side saw what.
	tl.add(st.opened, "openai", "the gateway opens a Realtime session while it answers the webhook (pre-warm)")
	tl.add(st.configured, "openai", "the gateway configures the session: voice %s, %s, caller transcription by %s",
		speech.Voice, speech.TurnDetection, speech.TranscriptionModel)
	if fa, ok := caller.FirstAudio(); ok {
		tl.add(started.Add(fa), "caller", "hears the assistant: first audio %s after the stream started", dur(fa))
	}
	tl.add(clear.at, "caller", "clear arrives: playback stops after %s of %s; %d pending marks come back flushed",
		ms(clear.played/8), rep.interruptedItem, rep.flushed)
	tr := st.truncations[0]
	tl.add(tr.at, "openai", "receives conversation.item.truncate %s at audio_end_ms %d and confirms it (conversation.item.truncated)", tr.itemID, tr.endMs)
	if line, ok := w.log.find("caller interrupted the assistant", "", ""); ok {
		tl.add(line.Time, "gateway", "logs %q: utterance %v, heard_ms %v", line.Msg, line.Attrs["utterance"], line.Attrs["heard_ms"])
	}
	tl.add(lastMark(caller), "caller", "hears the end of the second answer (its last mark played)")
	tl.add(summary.Time, "gateway", "logs %q: %v after %v", summary.Msg, summary.Attrs["end_reason"], summary.Attrs["duration"])
	tl.print(stdout, t0)
	printed = true

	fmt.Fprintf(stdout, "\n  Barge-in: the caller had heard %s of the first answer (%d of its %d chunks played, the last one cut by the clear).\n"+
		"  The gateway cleared the caller's audio and truncated %s at %s: the audio whose marks had come back\n"+
		"  played, never more than the caller heard; the %d marks still queued came back flushed.\n",
		ms(clear.played/8), rep.playedMarks, rep.chunks, rep.interruptedItem, ms(tr.endMs), rep.flushed)
	fmt.Fprintf(stdout, "\n  The gateway's summary (its %q log line): %v, %v barge-in, first audio after %s, frames %v in / %v out,\n  tokens %v in / %v out\n",
		summary.Msg, summary.Attrs["end_reason"], summary.Attrs["barge_ins"], ms(num(summary.Attrs["first_audio_ms"])),
		summary.Attrs["frames_in"], summary.Attrs["frames_out"], rep.usage["input_tokens"], rep.usage["output_tokens"])
	for _, t := range rep.turns {
		line := fmt.Sprintf("    %-9s at %9s  %q", t.Speaker, ms(int(t.StartMs)), t.Text)
		if t.Speaker == "assistant" {
			line += fmt.Sprintf("\n    %-9s    %9s  heard %s of %s", "", "", ms(t.HeardMs), ms(t.SentMs))
			if t.Interrupted {
				line += ", interrupted"
			}
		}
		fmt.Fprintln(stdout, line)
	}

	f, err := os.Create(o.out)
	if err != nil {
		return fmt.Errorf("write the caller's audio: %w", err)
	}
	err = mulaw.WriteWAV(f, played)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the caller's audio: %w", err)
	}
	fmt.Fprintf(stdout, "\n  What the caller heard (%s: the first answer up to the barge-in, then the second): %s\n", ms(len(played)/8), o.out)
	return nil
}

// num is a number of a parsed JSON log line.
func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// idle reports whether the caller has played everything it was sent: every
// mark the gateway sent has come back.
func idle(c *mediasim.Caller) bool {
	sent := 0
	for _, f := range c.Frames() {
		if f.Event == "mark" {
			sent++
		}
	}
	return sent == len(c.Marks())
}

// lastMark is when the caller echoed its latest mark (the zero time if
// none).
func lastMark(c *mediasim.Caller) time.Time {
	marks := c.Marks()
	if len(marks) == 0 {
		return time.Time{}
	}
	return marks[len(marks)-1].At
}
