package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/test/sim/openairest"
)

// The parties of the demo's WhatsApp exchange.
const (
	chatUser   = "whatsapp:+15551230001"
	chatNumber = "whatsapp:+14155238886"
)

// chatMessage is one message of the exchange and the assistant's answer
// to it; a slow one takes longer than REPLY_INLINE_TIMEOUT.
type chatMessage struct {
	text, answer string
	slow         bool
}

func chatScript() []chatMessage {
	return []chatMessage{
		{text: "Hi! Do you have a table for two tonight?", answer: "Yes: at seven by the window, or at nine on the terrace."},
		{text: "Seven is perfect. Can I bring my dog?", answer: "Of course, dogs are welcome."},
		{text: "Great. Could you send me the menu?", answer: "Here it is: starters from $8, mains from $18, and a vegetarian menu.", slow: true},
	}
}

// brain is the OpenAI simulator's reply function for the demo: the
// script's answer to a text, followed by what the simulator's own history
// of the thread holds from earlier, which shows that the gateway kept the
// user on one thread. It records every thread it was asked on and every
// answer it gave. Safe for concurrent use.
type brain struct {
	openai  *openairest.Server
	answers map[string]string

	mu      sync.Mutex
	threads []string
	given   map[string]string // text -> the answer given
}

func (b *brain) reply(thread, text string) string {
	var earlier []string
	for _, it := range b.openai.History(thread) {
		if it.Role == "user" {
			earlier = append(earlier, it.Text)
		}
	}
	if n := len(earlier); n > 0 && earlier[n-1] == text {
		earlier = earlier[:n-1] // the history already holds this message
	}
	answer, ok := b.answers[text]
	if !ok {
		answer = "Sorry, I only know the demo's script."
	}
	switch len(earlier) {
	case 0:
	case 1:
		answer += fmt.Sprintf(" (Earlier in this thread you wrote: %q)", earlier[0])
	default:
		answer += fmt.Sprintf(" (Earlier in this thread you wrote %d messages, the first: %q)", len(earlier), earlier[0])
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.threads = append(b.threads, thread)
	b.given[text] = answer
	return answer
}

func (b *brain) record() ([]string, map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	given := make(map[string]string, len(b.given))
	for k, v := range b.given {
		given[k] = v
	}
	return append([]string(nil), b.threads...), given
}

// webhookAnswer is the gateway's answer to a messaging webhook.
type webhookAnswer struct {
	status   int
	messages []string // the <Message> texts of the TwiML
	took     time.Duration
}

// chat plays the WhatsApp exchange and prints its transcript.
func (w *world) chat(ctx context.Context, o options, stdout io.Writer) (err error) {
	script := chatScript()
	b := &brain{openai: w.openai, answers: map[string]string{}, given: map[string]string{}}
	for _, m := range script {
		b.answers[m.text] = m.answer
	}
	w.openai.SetReply(b.reply)
	tl := &timeline{}
	fmt.Fprintf(stdout, "\n== WhatsApp: %s writes to %s (REPLY_INLINE_TIMEOUT=%s)\n\n", chatUser, chatNumber, o.inline)

	rec := chatRecord{}
	var restAt time.Time
	t0 := time.Now()
	printed := false
	defer func() {
		if err != nil && !printed {
			tl.print(stdout, t0)
			fmt.Fprintln(stdout, "  (the exchange stopped here)")
		}
	}()
	for i, m := range script {
		if m.slow {
			w.openai.Next(openairest.Script{Delay: o.slow})
		}
		sid := fmt.Sprintf("SM%030ddemo", i+1)
		sent := time.Now()
		tl.add(sent, "user", "sends %s (POST /webhook, signed; MessageSid %s)", quote(m.text), sid)
		a, err := w.postMessage(ctx, sid, m.text)
		if err != nil {
			return fmt.Errorf("message %d: %w", i+1, err)
		}
		answered := sent.Add(a.took)
		if len(a.messages) > 0 {
			tl.add(answered, "gateway", "200 TwiML after %s, the answer inline: <Message>\n%s", dur(a.took), quote(strings.Join(a.messages, " | ")))
			rec.answers = append(rec.answers, strings.Join(a.messages, " | "))
			rec.inline = append(rec.inline, true)
			continue
		}
		tl.add(answered, "gateway", "200 empty <Response/> after %s: no answer within REPLY_INLINE_TIMEOUT,\nso it will go out through the Messages REST API",
			dur(a.took))
		before := len(w.twilio.Messages())
		var failed logLine
		if err := until(ctx, "the answer through the Twilio REST API", func() bool {
			var ok bool
			failed, ok = w.log.find("answer not delivered: send failed", "message_sid", sid)
			return ok || len(w.twilio.Messages()) > before
		}); err != nil {
			return fmt.Errorf("message %d: %w", i+1, err)
		}
		if failed.Msg != "" {
			return fmt.Errorf("message %d: the gateway could not send the answer through the REST API: %v", i+1, failed.Attrs["err"])
		}
		restAt = time.Now()
		msg := w.twilio.Messages()[before]
		if msg.To != chatUser || msg.From != chatNumber {
			return fmt.Errorf("message %d: the REST API was asked to send from %s to %s, want from %s to %s", i+1, msg.From, msg.To, chatNumber, chatUser)
		}
		tl.add(restAt, "twilio", "the Messages REST API receives the answer %s after the webhook\n(POST /2010-04-01/Accounts/%s/Messages.json, From %s, To %s, %s):\n%s",
			dur(restAt.Sub(sent)), w.twilio.AccountSID(), msg.From, msg.To, msg.SID, quote(msg.Body))
		rec.answers = append(rec.answers, msg.Body)
		rec.inline = append(rec.inline, false)
	}
	tl.print(stdout, t0)
	printed = true

	rec.threads, rec.given = b.record()
	if len(rec.threads) > 0 {
		rec.history = w.openai.History(rec.threads[0])
	}
	if err := checkChat(script, rec); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n  One thread: the gateway asked for every answer on conversation %s (SQLite maps the user to it);\n"+
		"  the OpenAI simulator's history of it holds %d items, and the later answers quote the first message.\n"+
		"  The slow answer went out through the Twilio REST API at %s, long after its webhook had been answered.\n",
		rec.threads[0], len(rec.history), rel(restAt, t0))
	return nil
}

// postMessage POSTs an inbound WhatsApp message as Twilio does: the form
// fields Twilio sends, signed over PUBLIC_URL/webhook.
func (w *world) postMessage(ctx context.Context, sid, text string) (webhookAnswer, error) {
	form := url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {demoAccountSID},
		"From": {chatUser}, "To": {chatNumber}, "Body": {text}, "NumMedia": {"0"}, "NumSegments": {"1"},
		"SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"}, "ProfileName": {"Ana"},
		"WaId": {strings.TrimPrefix(chatUser, "whatsapp:+")},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/webhook", strings.NewReader(form.Encode()))
	if err != nil {
		return webhookAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("I-Twilio-Idempotency-Token", "demo-"+sid)
	req.Header.Set(signature.Header, signature.Sign(demoAuthToken, w.cfg.PublicURL+"/webhook", form))
	start := time.Now()
	res, err := w.client.Do(req)
	if err != nil {
		return webhookAnswer{}, fmt.Errorf("POST /webhook: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	a := webhookAnswer{status: res.StatusCode, took: time.Since(start)}
	if err != nil {
		return a, fmt.Errorf("POST /webhook: read the answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return a, fmt.Errorf("POST /webhook answered %s: %s", res.Status, body)
	}
	var twiml struct {
		XMLName  xml.Name `xml:"Response"`
		Messages []string `xml:"Message"`
	}
	if err := xml.Unmarshal(body, &twiml); err != nil {
		return a, fmt.Errorf("POST /webhook answered something that is not TwiML: %w: %s", err, body)
	}
	a.messages = twiml.Messages
	return a, nil
}

// chatRecord is what the exchange left behind.
type chatRecord struct {
	threads []string          // the thread of every answer the assistant was asked for
	given   map[string]string // the assistant's answer to each text
	answers []string          // the answer the user got to each message, in order
	inline  []bool            // whether it came inline (else through the REST API)
	history []openairest.Item // the simulator's history of the first thread
}

// checkChat checks the exchange from the records: every answer was asked
// for on one thread, whose history holds the whole exchange in order; each
// message got the assistant's answer, inline when fast and through the
// REST API when slow; and the answers after the first quote the first
// message, which the assistant read from the thread.
func checkChat(script []chatMessage, r chatRecord) error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if len(r.threads) != len(script) || len(r.answers) != len(script) {
		return fmt.Errorf("%d messages, but the assistant was asked %d times and the user got %d answers", len(script), len(r.threads), len(r.answers))
	}
	for _, t := range r.threads {
		if t == "" || t != r.threads[0] {
			bad("the answers were asked for on several threads: %q", r.threads)
			break
		}
	}
	for i, m := range script {
		got, want := r.answers[i], r.given[m.text]
		switch {
		case got != want:
			bad("message %d: the user got %q, the assistant answered %q", i+1, got, want)
		case r.inline[i] == m.slow && m.slow:
			bad("message %d: the slow answer came inline", i+1)
		case r.inline[i] == m.slow:
			bad("message %d: the answer missed REPLY_INLINE_TIMEOUT and came through the REST API", i+1)
		case i > 0 && !strings.Contains(got, fmt.Sprintf("%q", script[0].text)):
			bad("message %d: the answer does not show the thread's history: %q", i+1, got)
		}
	}
	if len(r.history) != 2*len(script) {
		bad("the thread's history holds %d items, want %d", len(r.history), 2*len(script))
	}
	for i, it := range r.history {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if it.Role != want {
			bad("the thread's item %d is by %s, want %s", i+1, it.Role, want)
		}
	}
	return errors.Join(problems...)
}
