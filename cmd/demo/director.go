package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/convgateway/gateway/app"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

// turn is one exchange of the scripted call: what the caller says (the
// audio the simulated caller sends and the transcript the model reports
// for it) and the assistant's answer (its transcript and audio).
type turn struct {
	caller      string
	callerAudio []byte
	reply       string
	replyAudio  []byte
	// act is the tool the model calls in this turn, if any.
	act *act
}

// act is a tool call of the model: before its reply, which then tells
// the tool's result (send_message), or after it (end_call, once it has
// said goodbye).
type act struct {
	call  ports.ToolCall
	first bool
}

// The address the caller asks to be texted.
const address = "Trattoria Demo, 12 Harbour Street. Table for two at 7 pm tonight."

// callScript is the demo call: the caller asks, talks over the long
// answer, and the assistant answers the interruption; the caller asks to
// be texted the address, which the assistant sends (send_message) before
// it says so; the caller says goodbye, and the assistant says goodbye and
// ends the call (end_call).
func callScript() []turn {
	return []turn{
		{
			caller:      "Hi, I'd like to book a table for two tonight.",
			callerAudio: voice(1, 125, 1800),
			reply: "Of course! Tonight I have a table for two at seven by the window, " +
				"or at nine on the terrace, which is lovely when it's warm. Which would you prefer?",
			replyAudio: voice(2, 210, 4400),
		},
		{
			caller:      "Seven, please.",
			callerAudio: voice(3, 130, 800),
			reply:       "Done: a table for two at seven tonight, by the window. See you then!",
			replyAudio:  voice(4, 210, 2400),
		},
		{
			caller:      "Could you text me the address?",
			callerAudio: voice(5, 125, 1000),
			reply:       "Done: I've texted you the address.",
			replyAudio:  voice(6, 210, 1400),
			act: &act{first: true, call: ports.ToolCall{ID: "call_text_1", Name: app.ToolSendMessage,
				Arguments: json.RawMessage(fmt.Sprintf(`{"text":%q}`, address))}},
		},
		{
			caller:      "Thanks, goodbye!",
			callerAudio: voice(7, 130, 700),
			reply:       "Goodbye, see you tonight!",
			replyAudio:  voice(8, 210, 1000),
			act:         &act{call: ports.ToolCall{ID: "call_end_1", Name: app.ToolEndCall, Arguments: json.RawMessage(`{}`)}},
		},
	}
}

// endOfTurn is how much quiet ends a caller's turn, in stream time (what
// server VAD's silence_duration_ms does).
const endOfTurnMs = 400

// director plays the OpenAI side of the demo call on the Realtime
// simulator in scripted mode: it hears the caller through the
// simulator's OnAudio hook (anything that is not mu-law silence is
// speech), reports speech started and stopped and the caller's transcript
// as the real API does, and answers each turn with the script's reply. It
// watches what the simulator sends (OnEvent) for the session's
// configuration, truncations and errors. It notes what it does on the
// call's timeline.
type director struct {
	script []turn
	tl     *timeline

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	heard  chan heardEvent // from the simulator's reader goroutine

	// The voice-activity state: the simulator's reader goroutine only.
	speaking bool
	posMs    int // stream position of the caller's audio
	quietMs  int // quiet since the caller last spoke
	buf      []byte

	mu          sync.Mutex
	answered    int // replies fully streamed
	truncations []truncation
	errs        []string
	failure     error
	opened      time.Time // session.created
	configured  time.Time // the first session.updated
}

// heardEvent is a change in the caller's voice activity.
type heardEvent struct {
	sess  *realtimesim.Session
	start bool // speech started; else stopped
	ms    int  // stream position
	at    time.Time
}

// truncation is a conversation.item.truncated the simulator sent: the
// gateway's truncation, accepted.
type truncation struct {
	at     time.Time
	itemID string
	endMs  int
}

func newDirector(script []turn, tl *timeline) *director {
	ctx, cancel := context.WithCancel(context.Background())
	d := &director{script: script, tl: tl, ctx: ctx, cancel: cancel, heard: make(chan heardEvent, 16)}
	d.wg.Add(1)
	go d.run()
	return d
}

// close stops the director and waits for it.
func (d *director) close() {
	d.cancel()
	d.wg.Wait()
}

// hear is the simulator's OnAudio hook: one caller frame, base64.
func (d *director) hear(s *realtimesim.Session, audio []byte) {
	d.buf = d.buf[:cap(d.buf)]
	if need := base64.StdEncoding.DecodedLen(len(audio)); need > len(d.buf) {
		d.buf = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(d.buf, audio)
	if err != nil {
		return
	}
	start := d.posMs
	d.posMs += n / 8
	if mulaw.Voiced(d.buf[:n]) {
		d.quietMs = 0
		if !d.speaking {
			d.speaking = true
			d.post(heardEvent{sess: s, start: true, ms: start, at: time.Now()})
		}
		return
	}
	if !d.speaking {
		return
	}
	d.quietMs += n / 8
	if d.quietMs >= endOfTurnMs {
		d.speaking = false
		d.post(heardEvent{sess: s, ms: d.posMs, at: time.Now()})
	}
}

func (d *director) post(ev heardEvent) {
	select {
	case d.heard <- ev:
	case <-d.ctx.Done():
	}
}

// sent is the simulator's OnEvent hook: every server event it sends.
func (d *director) sent(b []byte) {
	if bytes.HasPrefix(b, []byte(`{"type":"response.output_audio.delta"`)) {
		return // the audio; the caller's side records it
	}
	var e simEvent
	if json.Unmarshal(b, &e) != nil {
		return
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch e.Type {
	case "session.created":
		if d.opened.IsZero() {
			d.opened = now
		}
	case "session.updated":
		if d.configured.IsZero() {
			d.configured = now
		}
	case "conversation.item.truncated":
		d.truncations = append(d.truncations, truncation{at: now, itemID: e.ItemID, endMs: e.AudioEndMs})
	case "error":
		d.errs = append(d.errs, e.Error.String())
	}
}

// run answers the caller's turns, one at a time, in order.
func (d *director) run() {
	defer d.wg.Done()
	n := 0 // caller turns so far
	for {
		var ev heardEvent
		select {
		case <-d.ctx.Done():
			return
		case ev = <-d.heard:
		}
		if ev.start {
			n++
			item := fmt.Sprintf("item_caller_%d", n)
			d.check(ev.sess.StartSpeech(d.ctx, item, ev.ms))
			d.tl.add(ev.at, "openai", "hears the caller at %s into the stream: input_audio_buffer.speech_started (%s)", ms(ev.ms), item)
			continue
		}
		d.answer(ev, n)
	}
}

// answer ends caller turn n: speech stopped, its transcript, then the
// script's reply streamed as fast as the connection takes it (the real
// API streams faster than real time).
func (d *director) answer(ev heardEvent, n int) {
	item := fmt.Sprintf("item_caller_%d", n)
	d.check(ev.sess.Raw(d.ctx, fmt.Appendf(nil,
		`{"type":"input_audio_buffer.speech_stopped","event_id":"event_stop_%d","audio_end_ms":%d,"item_id":%q}`, n, ev.ms, item)))
	if n > len(d.script) {
		d.tl.add(ev.at, "openai", "the caller stopped speaking: nothing left in the script to answer")
		return
	}
	t := d.script[n-1]
	transcript, _ := json.Marshal(t.caller)
	d.check(ev.sess.Raw(d.ctx, fmt.Appendf(nil,
		`{"type":"conversation.item.input_audio_transcription.completed","event_id":"event_tr_%d","item_id":%q,"content_index":0,"transcript":%s,"usage":{"type":"duration","seconds":1}}`,
		n, item, transcript)))
	d.tl.add(ev.at, "openai", "%s of quiet ends the turn (speech_stopped at %s); transcript: %q", ms(endOfTurnMs), ms(ev.ms), t.caller)

	var chunks [][]byte
	for a := t.replyAudio; len(a) > 0; {
		k := min(160, len(a)) // 20 ms
		chunks = append(chunks, []byte(base64.StdEncoding.EncodeToString(a[:k])))
		a = a[k:]
	}
	if t.act != nil && t.act.first && !d.callTool(ev.sess, t.act.call) {
		return
	}
	resp, aitem := fmt.Sprintf("resp_%d", n), fmt.Sprintf("item_assistant_%d", n)
	began := time.Now()
	d.check(ev.sess.SayAs(d.ctx, resp, aitem, t.reply, chunks...))
	d.tl.add(began, "openai", "answers (%s, %s): %s of audio, %d deltas of 20 ms, streamed in %s\n%q",
		resp, aitem, ms(len(t.replyAudio)/8), len(chunks), dur(time.Since(began)), t.reply)
	d.mu.Lock()
	d.answered++
	d.mu.Unlock()
	if t.act != nil && !t.act.first {
		d.callTool(ev.sess, t.act.call)
	}
}

// callTool makes the model call a tool, as the API does in a response of
// its own. A tool called before the reply must have its result, and the
// gateway's response.create after it, before the reply: it reports
// whether they came.
func (d *director) callTool(s *realtimesim.Session, call ports.ToolCall) bool {
	results, creates := len(s.ToolResults()), s.Responds()
	at := time.Now()
	d.check(s.CallTool(d.ctx, call))
	d.tl.add(at, "openai", "calls %s (%s, response.function_call_arguments.done): %s", call.Name, call.ID, call.Arguments)
	if call.Name == app.ToolEndCall {
		return true // no result: the call ends
	}
	err := until(d.ctx, "the result of "+call.Name, func() bool {
		return len(s.ToolResults()) > results && s.Responds() > creates
	})
	if err != nil {
		d.check(err)
		return false
	}
	res := s.ToolResults()[results]
	d.tl.add(time.Now(), "openai", "receives the result (function_call_output %q), then response.create", res.Output)
	return true
}

// check keeps the first error of a send to the gateway.
func (d *director) check(err error) {
	if err == nil || d.ctx.Err() != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failure == nil {
		d.failure = err
	}
}

// state is a snapshot of the director's records.
type directorState struct {
	answered    int
	truncations []truncation
	errs        []string
	failure     error
	opened      time.Time
	configured  time.Time
}

func (d *director) state() directorState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return directorState{
		answered: d.answered, truncations: append([]truncation(nil), d.truncations...),
		errs: append([]string(nil), d.errs...), failure: d.failure, opened: d.opened, configured: d.configured,
	}
}

// problem is what went wrong on the model's side: a send that failed, or
// an error event the simulator had to send the gateway (a truncation
// beyond the item's audio, for example).
func (s directorState) problem() error {
	var errs []error
	if s.failure != nil {
		errs = append(errs, fmt.Errorf("the Realtime simulator could not talk to the gateway: %w", s.failure))
	}
	for _, e := range s.errs {
		errs = append(errs, fmt.Errorf("the Realtime simulator answered the gateway with an error: %s", e))
	}
	return errors.Join(errs...)
}
