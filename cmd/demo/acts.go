package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/convgateway/gateway/app"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/twiliorest"
)

// endCallLimit bounds the wait for the gateway to end the call once the
// goodbye has played: it waits for the playback to settle, well under it.
const endCallLimit = 10 * time.Second

// acts is what the tools did on the call: what the Twilio REST simulator
// received, and when the caller heard what went with it.
type acts struct {
	secondEnd time.Time // the end of the second answer (its last mark)
	messages  []twiliorest.Message
	textedAt  time.Time // when the demo saw the message arrive
	textEnd   time.Time // the end of the answer after it (its last mark)
	updates   []twiliorest.CallUpdate
	byeEnd    time.Time // the end of the goodbye (its last mark)
	results   []ports.ToolResult
}

// acts plays the end of the call: the caller asks to be texted the
// address (the assistant calls send_message, the gateway texts the caller
// through the Messages REST API, the assistant says so), then says
// goodbye (the assistant says goodbye and calls end_call; once the goodbye
// has played, the gateway completes the call through the Calls REST API).
// Twilio then ends the media stream, as it does for a completed call.
func (w *world) acts(p *phone, script []turn, rec *callRecord) error {
	caller, tl := p.caller, w.tl
	pause := func() error {
		return p.quietUntil("a moment of quiet", func() bool { return time.Since(lastMark(caller)) >= pauseMs*time.Millisecond })
	}
	text, bye := script[2], script[3]
	rec.acts.secondEnd = lastMark(caller)
	if err := pause(); err != nil {
		return err
	}
	if err := p.say(tl, text.callerAudio); err != nil {
		return err
	}
	if err := p.quietUntil("the text message and the answer after it", func() bool {
		if rec.acts.textedAt.IsZero() && len(w.twilio.Messages()) > 0 {
			rec.acts.textedAt = time.Now()
		}
		return !rec.acts.textedAt.IsZero() && bytes.HasSuffix(caller.Played(), text.replyAudio) && idle(caller)
	}); err != nil {
		return err
	}
	rec.acts.textEnd = lastMark(caller)
	if err := pause(); err != nil {
		return err
	}
	if err := p.say(tl, bye.callerAudio); err != nil {
		return err
	}
	said := time.Now()
	if err := p.quietUntil("the gateway to end the call through the REST API", func() bool {
		return len(w.twilio.CallUpdates()) > 0 || time.Since(said) > endCallLimit
	}); err != nil {
		return err
	}
	rec.acts.byeEnd = lastMark(caller)
	rec.acts.updates = w.twilio.CallUpdates()
	if len(rec.acts.updates) == 0 {
		return fmt.Errorf("the gateway did not end the call through the REST API within %s of the caller's goodbye", endCallLimit)
	}
	tl.add(time.Now(), "twilio", "the call is completed: Twilio ends the media stream (stop), as it does")
	if err := caller.HangUp(p.ctx); err != nil {
		return fmt.Errorf("end the media stream: %w", err)
	}
	rec.acts.messages = w.twilio.Messages()
	for _, at := range w.twilio.Attempts() {
		if at.To == callerFrom {
			rec.acts.textedAt = at.At // when it arrived, not when the caller's side looked
			break
		}
	}
	rec.acts.results = w.speech.results()
	return nil
}

// actsTimeline puts what the Twilio REST simulator received on the
// timeline, with what the caller heard around it.
func (w *world) actsTimeline(rec callRecord) {
	a, tl := rec.acts, w.tl
	tl.add(a.secondEnd, "caller", "hears the end of the second answer (its last mark played)")
	if len(a.messages) > 0 {
		m := a.messages[0]
		tl.add(a.textedAt, "twilio", "the Messages REST API receives the text (POST /2010-04-01/Accounts/%s/Messages.json,\nFrom %s, To %s, %s): %s",
			w.twilio.AccountSID(), m.From, m.To, m.SID, quote(m.Body))
	}
	for _, m := range rec.marks {
		if !m.Flushed && m.At.After(a.textedAt) {
			tl.add(m.At, "caller", "hears the first 20 ms of the answer after the text (its first mark played),\n%s after the text reached the REST API (the tool's answer)",
				dur(m.At.Sub(a.textedAt)))
			break
		}
	}
	tl.add(a.textEnd, "caller", "hears the end of the answer after the text (its last mark played)")
	tl.add(a.byeEnd, "caller", "hears the end of the goodbye (its last mark played)")
	if len(a.updates) > 0 {
		u := a.updates[0]
		tl.add(u.At, "twilio", "the Calls REST API receives the end of the call %s after the goodbye's last mark\n(POST /2010-04-01/Accounts/%s/Calls/%s.json, Status=%s)",
			dur(u.At.Sub(a.byeEnd)), w.twilio.AccountSID(), u.CallSID, u.Status)
	}
}

// checkActs checks what the tools did: one text, from TWILIO_FROM to the
// caller, with the address, whose result the model had before it said so;
// one update of the call, completing it, after the goodbye had played to
// its end; the call ended by the assistant; both tools in the summary.
func checkActs(r callRecord, bad *problems) {
	a := r.acts
	if len(a.messages) != 1 {
		bad.add("send_message: the Messages REST API received %d messages, want 1", len(a.messages))
	} else if m := a.messages[0]; m.From != callTo || m.To != callerFrom || m.Body != address {
		bad.add("send_message: the Messages REST API was asked to send %q from %s to %s, want %q from %s to %s",
			m.Body, m.From, m.To, address, callTo, callerFrom)
	}
	if len(a.results) != 1 || a.results[0].Output != "sent" {
		bad.add("send_message: the model received the results %+v, want one saying sent", a.results)
	}
	if a.textEnd.Before(a.textedAt) {
		bad.add("send_message: the assistant finished saying it sent the text before the text was sent")
	}
	if len(a.updates) != 1 {
		bad.add("end_call: the Calls REST API received %d updates, want 1", len(a.updates))
	} else if u := a.updates[0]; u.CallSID != callSid || u.Status != twiliorest.CallCompleted || u.Twiml != "" || u.URL != "" {
		bad.add("end_call: the Calls REST API received %+v, want %s completed", u, callSid)
	} else if !u.At.After(a.byeEnd) {
		bad.add("end_call: the call was completed at %s, before the goodbye had played (its last mark at %s)",
			u.At.Format(time.StampMilli), a.byeEnd.Format(time.StampMilli))
	}
	if got := r.summary.Attrs["end_reason"]; got != "assistant_ended" {
		bad.add("end_call: the call ended with %v, not assistant_ended", got)
	}
	var names []string
	for _, t := range summaryTools(r.summary) {
		names = append(names, fmt.Sprint(t["name"], ":", t["outcome"]))
	}
	if want := []string{app.ToolSendMessage + ":ok", app.ToolEndCall + ":ok"}; fmt.Sprint(names) != fmt.Sprint(want) {
		bad.add("the gateway's summary lists the tools %v, want %v", names, want)
	}
}

// summaryTools are the tools a "call ended" line lists.
func summaryTools(summary logLine) []map[string]any {
	list, _ := summary.Attrs["tools"].([]any)
	var out []map[string]any
	for _, t := range list {
		if m, ok := t.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
