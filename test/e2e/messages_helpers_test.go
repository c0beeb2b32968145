package e2e_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/twiliorest"
	"github.com/convgateway/gateway/test/testlog"
)

// msgWait bounds every wait of the messaging tests: generous, so that a busy
// machine never fails them, and finite, so that a bug fails a test instead
// of hanging it.
const msgWait = 30 * time.Second

// The parties of the messaging tests.
const (
	msgPublicURL   = "https://gw.example.com" // PUBLIC_URL: what Twilio signs
	msgUser        = "whatsapp:+15551230001"  // the default sender (From)
	msgNumber      = "whatsapp:+14155238886"  // the gateway's number (To)
	msgAssistantID = "asst_e2e"               // OPENAI_ASSISTANT_ID
	msgModel       = "gpt-e2e-mini"           // OPENAI_MODEL
	msgSystem      = "You answer WhatsApp messages in the e2e tests."
)

// What the gateway tells users when it has no answer to give (app's texts;
// the user sees exactly these).
const (
	msgApology = "Sorry, something went wrong and I couldn't answer that. Please try again in a moment."
	msgMedia   = "I can only read text messages for now. Please send your question as text."
	msgEmpty   = "I didn't get any text. What would you like to ask?"
)

// msgBackends are the ASSISTANT_BACKENDs, with the simulator route that
// creates a thread and the one that starts a reply.
var msgBackends = []struct {
	name, newThread, reply string
}{
	{configs.BackendResponses, openairest.RouteCreateConversation, openairest.RouteCreateResponse},
	{configs.BackendAssistants, openairest.RouteCreateThread, openairest.RouteCreateRun},
}

// msgEnv is the world around a messaging gateway: the OpenAI and Twilio
// REST simulators, the Config pointing at them (a fresh SQLite file), the
// gateway's log, and a client that plays Twilio's webhook requests.
type msgEnv struct {
	tb      testing.TB
	backend string
	cfg     configs.Config
	openai  *openairest.Server
	twilio  *twiliorest.Server
	replies *msgReplies
	logs    *testlog.Buffer
	log     *slog.Logger
	client  *http.Client
}

// newMessagingEnv starts the simulators and makes a valid Config for
// backend; edit, when not nil, changes it before it is validated. All is
// closed when the test ends.
func newMessagingEnv(tb testing.TB, backend string, edit func(*configs.Config)) *msgEnv {
	tb.Helper()
	e := &msgEnv{tb: tb, backend: backend, logs: &testlog.Buffer{}}
	e.openai = openairest.New(openairest.Options{})
	tb.Cleanup(e.openai.Close)
	e.twilio = twiliorest.New(twiliorest.Options{})
	tb.Cleanup(e.twilio.Close)
	e.replies = newMsgReplies()
	tb.Cleanup(e.replies.releaseAll)
	e.openai.SetReply(e.replies.reply)
	e.log = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// A webhook client as impatient as Twilio: a gateway that makes it
	// wait longer fails the test instead of hanging it.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	e.client = &http.Client{Transport: transport, Timeout: configs.TwilioWebhookLimit}
	tb.Cleanup(transport.CloseIdleConnections)

	cfg := configs.Defaults()
	cfg.PublicURL = msgPublicURL
	cfg.OpenAIBaseURL, cfg.OpenAIAPIKey = e.openai.URL(), configs.Secret(e.openai.APIKey())
	cfg.OpenAIRealtimeURL = configs.RealtimeURL(cfg.OpenAIBaseURL, cfg.OpenAIRealtimeModel)
	cfg.AssistantBackend, cfg.OpenAIAssistantID = backend, msgAssistantID
	cfg.OpenAIModel, cfg.SystemMessage = msgModel, msgSystem
	cfg.TwilioAccountSID = e.twilio.AccountSID()
	cfg.TwilioAuthToken = configs.Secret(e.twilio.AuthToken())
	cfg.TwilioAPIBaseURL = e.twilio.URL()
	cfg.DatabaseURL = filepath.Join(tb.TempDir(), "data", "gateway.db")
	if edit != nil {
		edit(&cfg)
	}
	require.NoError(tb, cfg.Validate())
	e.cfg = cfg
	return e
}

// threadsCreated counts the threads (conversations) the gateway asked
// OpenAI to create.
func (e *msgEnv) threadsCreated() int {
	return e.openai.Calls(openairest.RouteCreateConversation) + e.openai.Calls(openairest.RouteCreateThread)
}

// assistantCalls counts the replies the gateway asked OpenAI for (responses
// created, runs created).
func (e *msgEnv) assistantCalls() int {
	return e.openai.Calls(openairest.RouteCreateResponse) + e.openai.Calls(openairest.RouteCreateRun)
}

// openaiCalls counts every request the gateway made to OpenAI.
func (e *msgEnv) openaiCalls() int {
	n := 0
	for _, r := range []string{
		openairest.RouteCreateConversation, openairest.RouteCreateResponse,
		openairest.RouteCreateThread, openairest.RouteCreateMessage, openairest.RouteListMessages,
		openairest.RouteCreateRun, openairest.RouteGetRun, openairest.RouteCancelRun,
	} {
		n += e.openai.Calls(r)
	}
	return n
}

// sentBodies returns the bodies of the messages the gateway sent through
// the Twilio REST simulator, in order.
func (e *msgEnv) sentBodies() []string {
	var out []string
	for _, m := range e.twilio.Messages() {
		out = append(out, m.Body)
	}
	return out
}

// waitSent waits until the Twilio REST simulator has accepted n messages
// and returns them.
func (e *msgEnv) waitSent(n int) []twiliorest.Message {
	e.tb.Helper()
	require.Eventually(e.tb, func() bool { return len(e.twilio.Messages()) >= n }, msgWait, 5*time.Millisecond,
		"waiting for %d messages sent through the Twilio REST API", n)
	return e.twilio.Messages()
}

// msgGateway is a gateway built by wire.Build from an msgEnv's Config and
// served on a loopback port.
type msgGateway struct {
	env    *msgEnv
	gw     *wire.Gateway
	url    string
	served chan error
	once   sync.Once
}

// newMessagingGateway builds the gateway from e.cfg with nothing replaced
// (real OpenAI adapter, Twilio sender and SQLite store) and serves it until
// the test ends or stop is called.
func (e *msgEnv) newMessagingGateway() *msgGateway {
	e.tb.Helper()
	return e.newMessagingGatewayWith(e.log)
}

// newMessagingGatewayWith is newMessagingGateway with the gateway logging
// to log and built with opts.
func (e *msgEnv) newMessagingGatewayWith(log *slog.Logger, opts ...wire.Option) *msgGateway {
	e.tb.Helper()
	gw, err := wire.Build(context.Background(), e.cfg, log, opts...)
	require.NoError(e.tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		require.NoError(e.tb, errors.Join(err, gw.Close()))
	}
	mg := &msgGateway{env: e, gw: gw, url: "http://" + ln.Addr().String(), served: make(chan error, 1)}
	go func() { mg.served <- gw.Serve(ln) }()
	e.tb.Cleanup(func() {
		e.replies.releaseAll() // a held reply would hold the drain
		mg.stop()
	})
	return mg
}

// stop shuts the gateway down gracefully (in-flight answers are drained)
// and requires that it went well. Call it from the test's goroutine.
func (mg *msgGateway) stop() {
	mg.env.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), msgWait)
	defer cancel()
	require.NoError(mg.env.tb, mg.shutdown(ctx), "shutting the gateway down")
}

// shutdown shuts the gateway down within ctx, waits for Serve to return
// and closes the stores; it returns what went wrong. Only the first call
// does anything. It is safe to call from any goroutine.
func (mg *msgGateway) shutdown(ctx context.Context) error {
	var err error
	mg.once.Do(func() {
		err = mg.gw.Shutdown(ctx)
		err = errors.Join(err, <-mg.served, mg.gw.Close())
	})
	return err
}

// msgInbound is one incoming message as Twilio posts it. Empty From and To
// mean msgUser and msgNumber.
type msgInbound struct {
	Sid, From, To, Body string
	NumMedia            int
	// IdempotencyToken is sent as I-Twilio-Idempotency-Token when set.
	IdempotencyToken string
}

// form is the webhook form Twilio posts for in.
func (in msgInbound) form() url.Values {
	from, to := in.From, in.To
	if from == "" {
		from = msgUser
	}
	if to == "" {
		to = msgNumber
	}
	f := url.Values{
		"MessageSid": {in.Sid}, "SmsMessageSid": {in.Sid}, "AccountSid": {"AC00000000000000000000000000000000"},
		"From": {from}, "To": {to}, "Body": {in.Body}, "NumMedia": {fmt.Sprint(in.NumMedia)},
		"NumSegments": {"1"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"},
	}
	if strings.HasPrefix(from, "whatsapp:") {
		f.Set("ProfileName", "Ana")
		f.Set("WaId", strings.TrimPrefix(from, "whatsapp:+"))
	}
	return f
}

// request builds the webhook request for form, signed with sig (the
// X-Twilio-Signature; none when empty). It is safe to call from any
// goroutine.
func (mg *msgGateway) request(form url.Values, idempotencyToken, sig string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, mg.url+"/webhook", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	if idempotencyToken != "" {
		req.Header.Set("I-Twilio-Idempotency-Token", idempotencyToken)
	}
	if sig != "" {
		req.Header.Set(signature.Header, sig)
	}
	return req, nil
}

// sign is the signature Twilio sends with form: over PUBLIC_URL + /webhook
// with the account's auth token.
func (e *msgEnv) sign(form url.Values) string {
	return signature.Sign(string(e.cfg.TwilioAuthToken), e.cfg.PublicURL+"/webhook", form)
}

// msgAnswer is the gateway's answer to a webhook.
type msgAnswer struct {
	Status int
	Body   string
	// Root is the XML root element (Response for TwiML), Messages the
	// texts of its <Message> verbs, in order.
	Root     string
	Messages []string
}

// do sends req and reads the answer; it is safe to call from any
// goroutine.
func (e *msgEnv) do(req *http.Request) (msgAnswer, error) {
	res, err := e.client.Do(req)
	if err != nil {
		return msgAnswer{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return msgAnswer{}, err
	}
	a := msgAnswer{Status: res.StatusCode, Body: string(body)}
	if res.StatusCode != http.StatusOK {
		return a, nil
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		return a, fmt.Errorf("webhook answered 200 with Content-Type %q, want text/xml: %s", ct, body)
	}
	var twiml struct {
		XMLName  xml.Name
		Messages []string `xml:"Message"`
	}
	if err := xml.Unmarshal(body, &twiml); err != nil {
		return a, fmt.Errorf("webhook answered 200 with a body that is not XML: %w: %s", err, body)
	}
	a.Root, a.Messages = twiml.XMLName.Local, twiml.Messages
	return a, nil
}

// post posts in, signed as Twilio would, and requires a 200 TwiML answer,
// whose <Message> texts it returns (none when the answer comes later or
// the delivery was a duplicate). Call it from the test's goroutine.
func (mg *msgGateway) post(in msgInbound) []string {
	mg.env.tb.Helper()
	a, err := mg.postAnswer(in)
	require.NoError(mg.env.tb, err)
	require.Equal(mg.env.tb, http.StatusOK, a.Status, "webhook for %s answered %s", in.Sid, a.Body)
	require.Equal(mg.env.tb, "Response", a.Root, "TwiML root of %s", a.Body)
	return a.Messages
}

// postAnswer posts in, signed as Twilio would, and returns the answer; it
// is safe to call from any goroutine.
func (mg *msgGateway) postAnswer(in msgInbound) (msgAnswer, error) {
	form := in.form()
	req, err := mg.request(form, in.IdempotencyToken, mg.env.sign(form))
	if err != nil {
		return msgAnswer{}, err
	}
	return mg.env.do(req)
}

// msgTurn is one reply the OpenAI simulator was asked for: the thread
// (conversation or Assistants thread) and the user's text.
type msgTurn struct {
	Thread, Text string
}

// msgReplies is the OpenAI simulator's reply function: it records each
// request for a reply, answers "echo: <text>" unless told otherwise, and
// holds the replies to chosen texts until they are released.
type msgReplies struct {
	closed chan struct{} // closed by releaseAll

	mu     sync.Mutex
	turns  []msgTurn
	answer func(text string) string
	gates  map[string]chan struct{}
	once   sync.Once
}

func newMsgReplies() *msgReplies {
	return &msgReplies{closed: make(chan struct{}), gates: make(map[string]chan struct{})}
}

// reply is the openairest.ReplyFunc.
func (r *msgReplies) reply(thread, text string) string {
	r.mu.Lock()
	r.turns = append(r.turns, msgTurn{Thread: thread, Text: text})
	gate, answer := r.gates[text], r.answer
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.closed:
		}
	}
	if answer != nil {
		return answer(text)
	}
	return "echo: " + text
}

// setAnswer replaces the "echo: <text>" answer.
func (r *msgReplies) setAnswer(f func(text string) string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

// hold makes the reply to text wait until the returned function is called
// (or the test ends). The simulator is then still producing the answer:
// the response request, or the run creation, is in flight.
func (r *msgReplies) hold(text string) (release func()) {
	gate := make(chan struct{})
	r.mu.Lock()
	r.gates[text] = gate
	r.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// releaseAll releases every held reply, now and later.
func (r *msgReplies) releaseAll() { r.once.Do(func() { close(r.closed) }) }

// all returns the replies asked for so far, in order.
func (r *msgReplies) all() []msgTurn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]msgTurn(nil), r.turns...)
}

// threadOf returns the thread of the first reply asked for text, or "".
func (r *msgReplies) threadOf(text string) string {
	for _, t := range r.all() {
		if t.Text == text {
			return t.Thread
		}
	}
	return ""
}

// waitAsked waits until the simulator has been asked for a reply to text.
func (e *msgEnv) waitAsked(text string) {
	e.tb.Helper()
	require.Eventually(e.tb, func() bool { return e.replies.threadOf(text) != "" }, msgWait, 2*time.Millisecond,
		"waiting for the assistant to be asked about %q", text)
}

// msgHistory is what the user and the assistant said on a thread, as the
// simulator's History reports it, for comparison.
func msgHistory(turns ...string) []openairest.Item {
	items := make([]openairest.Item, 0, 2*len(turns))
	for _, t := range turns {
		items = append(items, openairest.Item{Role: "user", Text: t}, openairest.Item{Role: "assistant", Text: "echo: " + t})
	}
	return items
}
