package wire

import (
	"net/http"
	"time"

	"github.com/convgateway/gateway/ports"
)

// Option replaces a part of the gateway that Build would otherwise make
// from the Config.
type Option func(*parts)

// parts are the adapters the gateway is built from; nil ones are made from
// the Config.
type parts struct {
	httpClient *http.Client
	threads    MessageStore
	tokens     ports.TokenStore
	speech     ports.SpeechModel
	control    ports.CallControl
	assistant  ports.ChatAssistant
	sender     ports.MessageSender
	calls      ports.Calls

	// abandonedAfter and abandonedEvery tune the report of WhatsApp/SMS
	// deliveries never answered (zero: the app's defaults).
	abandonedAfter, abandonedEvery time.Duration
	// leases keep the instance's lease (nil: the thread store); leaseTTL
	// is its ttl (zero: app.DefaultLeaseTTL).
	leases   ports.Leases
	leaseTTL time.Duration
	// partInterval paces the parts of an answer sent later (zero: the
	// app's default).
	partInterval time.Duration
}

// WithHTTPClient makes every outbound HTTP and WebSocket connection (OpenAI,
// Twilio REST) go through c.
func WithHTTPClient(c *http.Client) Option { return func(p *parts) { p.httpClient = c } }

// MessageStore is what the WhatsApp/SMS use case keeps in one database:
// users' threads, the delivery ledger (with the instances' leases) and the
// per-user locks. The SQLite, PostgreSQL and in-memory stores implement
// all of it.
type MessageStore interface {
	ports.ThreadStore
	ports.DeliveryLedger
	ports.UserLocks
}

// WithThreadStore replaces the SQLite or PostgreSQL thread store (with the
// delivery ledger and user locks in the same database). Build does not
// close it.
func WithThreadStore(s MessageStore) Option { return func(p *parts) { p.threads = s } }

// WithTokenStore replaces the in-memory or Redis token store. Build does
// not close it.
func WithTokenStore(s ports.TokenStore) Option { return func(p *parts) { p.tokens = s } }

// WithSpeechModel replaces the speech adapter SPEECH_BACKEND picks.
func WithSpeechModel(m ports.SpeechModel) Option { return func(p *parts) { p.speech = m } }

// WithChatAssistant replaces the assistant chosen by ASSISTANT_BACKEND.
func WithChatAssistant(a ports.ChatAssistant) Option { return func(p *parts) { p.assistant = a } }

// WithMessageSender replaces the Twilio Messages REST sender.
func WithMessageSender(s ports.MessageSender) Option { return func(p *parts) { p.sender = s } }

// WithCalls replaces the phone-call use case.
func WithCalls(c ports.Calls) Option { return func(p *parts) { p.calls = c } }

// WithAbandonedReports makes the WhatsApp/SMS use case report a delivery
// as never answered after after instead of app.DefaultAbandonedAfter, and
// look for such deliveries every every instead of
// app.DefaultAbandonedEvery (see app.MessagesDeps). The defaults suit every
// deployment; tests that simulate a crash need shorter ones.
func WithAbandonedReports(after, every time.Duration) Option {
	return func(p *parts) { p.abandonedAfter, p.abandonedEvery = after, every }
}

// WithLeases makes the gateway hold its instance lease in l instead of the
// thread store. l must share the thread store's database (takeovers check
// the lease there); tests wrap the store's own Leases to stop renewing a
// lease, as a crashed gateway does. Build does not close it.
func WithLeases(l ports.Leases) Option { return func(p *parts) { p.leases = l } }

// WithLeaseTTL makes the instance lease last ttl instead of
// app.DefaultLeaseTTL. Every instance sharing a store should use the same
// ttl; tests that simulate a crash use a short one.
func WithLeaseTTL(ttl time.Duration) Option { return func(p *parts) { p.leaseTTL = ttl } }

// WithPartInterval makes the WhatsApp/SMS use case pause d between the
// parts of an answer sent later, instead of app.DefaultPartInterval.
func WithPartInterval(d time.Duration) Option { return func(p *parts) { p.partInterval = d } }

// WithCallControl replaces the Twilio REST call control (end_call,
// transfer_call).
func WithCallControl(c ports.CallControl) Option { return func(p *parts) { p.control = c } }
