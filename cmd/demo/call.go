package main

import (
	"bytes"
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

// pauseMs is the caller's pause after an answer before saying more.
const pauseMs = 300

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

// say streams the caller's words in real time and notes them on the
// timeline.
func (p *phone) say(tl *timeline, audio []byte) error {
	tl.add(time.Now(), "caller", "starts speaking (%s of audio, 20 ms frames in real time)", ms(len(audio)/8))
	if err := p.send(audio); err != nil {
		return err
	}
	tl.add(time.Now(), "caller", "stops speaking")
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

// call plays the phone call and prints its transcript.
func (w *world) call(ctx context.Context, o options, stdout io.Writer) (err error) {
	script := callScript()
	tl := w.tl
	fmt.Fprintf(stdout, "\n== Phone call %s from %s to %s on %s (real time, about 14 s)\n\n", callSid, callerFrom, callTo, w.speech.name())

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
	if err := w.speech.session(ctx); err != nil {
		return err
	}

	rec := callRecord{script: script}
	p := &phone{ctx: ctx, caller: caller, tick: func() {
		if clears := caller.Clears(); !rec.clear.seen && len(clears) > 0 {
			rec.clear = atClear{seen: true, at: clears[0], played: len(caller.Played())}
		}
	}}
	first, second := script[0], script[1]

	if err := p.say(tl, first.callerAudio); err != nil {
		return err
	}
	if err := p.quietUntil("the caller to hear the first answer", func() bool { return len(caller.Played()) >= bargeAfterMs*8 }); err != nil {
		return err
	}
	rec.bargeAt, rec.bargePlayed = time.Now(), len(caller.Played())
	tl.add(rec.bargeAt, "caller", "talks over the assistant after hearing %s of its answer", ms(rec.bargePlayed/8))
	if err := p.send(second.callerAudio); err != nil {
		return err
	}
	tl.add(time.Now(), "caller", "stops speaking")
	if err := p.quietUntil("the second answer to play out", func() bool {
		return bytes.HasSuffix(caller.Played(), second.replyAudio) && idle(caller)
	}); err != nil {
		return err
	}
	if err := w.acts(p, script, &rec); err != nil {
		return err
	}

	if rec.summary, err = w.log.wait(ctx, "call ended", "call_id", callSid); err != nil {
		return err
	}
	if line, ok := w.log.find("caller interrupted the assistant", "call_id", callSid); ok {
		rec.interruption = &line
	}
	rec.clears, rec.frames, rec.marks = len(caller.Clears()), caller.Frames(), caller.Marks()
	played := caller.Played()
	rec.played = len(played)
	rep, err := w.speech.check(rec)
	if err != nil {
		return err
	}

	// What only the records tell: when each side saw what.
	if fa, ok := caller.FirstAudio(); ok {
		tl.add(started.Add(fa), "caller", "hears the assistant: first audio %s after the stream started", dur(fa))
	}
	if line := rec.interruption; line != nil {
		tl.add(line.Time, "gateway", "logs %q: utterance %v, heard_ms %v", line.Msg, line.Attrs["utterance"], line.Attrs["heard_ms"])
	}
	if rec.clear.seen {
		tl.add(rec.clear.at, "caller", "clear arrives: playback stops after %s of %s; %d pending marks come back flushed",
			ms(rec.clear.played/8), rep.turns[1].Utterance, rep.flushed)
	}
	w.actsTimeline(rec)
	tl.add(rec.summary.Time, "gateway", "logs %q: %v after %v", rec.summary.Msg, rec.summary.Attrs["end_reason"], rec.summary.Attrs["duration"])
	tl.print(stdout, t0)
	printed = true

	w.speech.explain(stdout, rec, rep)
	printSummary(stdout, rec.summary, rep)
	if err := writeWAV(o.out, played); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n  What the caller heard (%s: the first answer until it was cut off, then the others): %s\n", ms(len(played)/8), o.out)
	return nil
}

// printSummary prints the gateway's call summary: its figures and turns.
func printSummary(w io.Writer, summary logLine, rep callReport) {
	a := summary.Attrs
	fmt.Fprintf(w, "\n  The gateway's summary (its %q log line): %v, %v barge-in, first audio after %s, frames %v in / %v out",
		summary.Msg, a["end_reason"], a["barge_ins"], ms(num(a["first_audio_ms"])), a["frames_in"], a["frames_out"])
	if num(rep.usage["input_tokens"])+num(rep.usage["output_tokens"]) > 0 {
		fmt.Fprintf(w, ",\n  tokens %v in / %v out", rep.usage["input_tokens"], rep.usage["output_tokens"])
	}
	if sec, _ := rep.usage["seconds"].(float64); sec > 0 {
		fmt.Fprintf(w, ",\n  session time reported by the model %.1f s", sec)
	}
	var tools []string
	for _, t := range summaryTools(summary) {
		tools = append(tools, fmt.Sprintf("%v (%v)", t["name"], t["outcome"]))
	}
	fmt.Fprintf(w, ",\n  tools %s\n", strings.Join(tools, ", "))
	for _, t := range rep.turns {
		line := fmt.Sprintf("    %-9s at %9s  %q", t.Speaker, ms(int(t.StartMs)), t.Text)
		if t.Speaker == "assistant" {
			line += fmt.Sprintf("\n    %-9s    %9s  heard %s of %s", "", "", ms(t.HeardMs), ms(t.SentMs))
			if t.Interrupted {
				line += ", interrupted"
			}
		}
		fmt.Fprintln(w, line)
	}
}

// writeWAV writes what the caller heard to path and says so.
func writeWAV(path string, played []byte) error {
	f, err := os.Create(path)
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
