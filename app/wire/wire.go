// Package wire builds the gateway from its configuration: it picks an
// adapter for every port (stores, speech model, chat assistant, message
// sender), builds the use cases on them and puts the HTTP server in front.
//
// Build is the one place where adapters meet use cases. Its Options replace
// adapters, so tests build the very same gateway around fakes or simulators
// (the "component test application" of Wild Workouts); base URLs of the
// real adapters come from the Config (OPENAI_BASE_URL, TWILIO_API_BASE_URL,
// OPENAI_REALTIME_URL).
package wire

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convgateway/gateway/adapters/httpapi"
	"github.com/convgateway/gateway/adapters/metrics"
	"github.com/convgateway/gateway/adapters/openai/assistants"
	"github.com/convgateway/gateway/adapters/openai/responses"
	"github.com/convgateway/gateway/adapters/store/memory"
	"github.com/convgateway/gateway/adapters/store/postgres"
	"github.com/convgateway/gateway/adapters/store/redisstore"
	"github.com/convgateway/gateway/adapters/store/sqlite"
	"github.com/convgateway/gateway/adapters/twilio/messaging"
	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/app"
	"github.com/convgateway/gateway/configs"
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

// Gateway is a built gateway: the HTTP server, the use cases behind it and
// the stores it opened. Serve it, then Shutdown, then Close.
type Gateway struct {
	server *httpapi.Server
	// metrics serves the Prometheus metrics; on the server's routes too
	// unless METRICS_ADDR gives them a listener of their own.
	metrics http.Handler
	// drains are the use cases' Shutdown methods, run after the server's.
	drains  []func(context.Context) error
	closers []func() error // stores Build opened, closed in reverse order
	// checks are the stores /ready pings, by check name.
	checks map[string]ports.Pinger
}

// drainer is a use case that owns goroutines and drains them on Shutdown
// (app.MessagesService, the calls use case).
type drainer interface {
	Shutdown(ctx context.Context) error
}

// Build makes the gateway described by cfg, which must be valid
// (cfg.Validate). It opens the stores (SQLite at DATABASE_URL, or PostgreSQL
// when it is a postgres:// URL, in DATABASE_SCHEMA; Redis for tokens, under
// REDIS_KEY_PREFIX, when REDIS_URL is set, else memory), bounded by ctx.
//
// PostgreSQL and Redis are servers that may be down when the gateway
// starts: Build then logs which one does not answer (without its password)
// and builds the gateway all the same. /ready answers 503 naming the
// store's check until it answers, the use cases answer users politely
// meanwhile, and the store is used (PostgreSQL migrated) as soon as it is
// back; nothing needs restarting. Build fails, with an error naming the
// store and never a password, only for what waiting cannot fix: a
// DATABASE_URL or REDIS_URL that does not parse (ports.ErrInvalidInput),
// or a SQLite file that cannot be opened. Nothing stays open then. It
// takes the process's instance lease in the thread store (app.Instance,
// waiting a moment at most for a store that does not answer). It starts
// no goroutine that outlives Shutdown and Close.
func Build(ctx context.Context, cfg configs.Config, log *slog.Logger, opts ...Option) (*Gateway, error) {
	var p parts
	for _, o := range opts {
		o(&p)
	}
	if p.httpClient == nil {
		p.httpClient = &http.Client{}
	}
	g := &Gateway{}
	if err := g.openStores(ctx, cfg, log, &p); err != nil {
		return nil, ports.JoinErrors(err, g.Close())
	}

	if p.speech == nil {
		p.speech = newSpeech(cfg, log, p.httpClient)
	}
	if p.assistant == nil {
		a, err := newAssistant(cfg, log, p.httpClient)
		if err != nil {
			return nil, ports.JoinErrors(err, g.Close())
		}
		p.assistant = a
	}
	if p.sender == nil {
		p.sender = newSender(cfg, p.httpClient, log.With("adapter", "twilio"))
	}
	m := metrics.New()
	if p.calls == nil {
		p.calls = newCalls(cfg, log, p, callsHooks(m))
	}

	if p.leases == nil {
		p.leases = p.threads
	}
	instance := app.NewInstance(app.InstanceDeps{Leases: p.leases, Logger: log, TTL: p.leaseTTL})
	messages := app.NewMessages(app.MessagesDeps{
		Threads:        p.threads,
		Ledger:         p.threads,
		Locks:          p.threads,
		Assistant:      p.assistant,
		Sender:         p.sender,
		Logger:         log.With("usecase", "messages"),
		InlineTimeout:  cfg.ReplyInlineTimeout,
		AbandonedAfter: p.abandonedAfter,
		AbandonedEvery: p.abandonedEvery,
		PartInterval:   p.partInterval,
		Instance:       instance,
		Hooks:          messagesHooks(m),
	})
	g.drains = append(g.drains, messages.Shutdown)
	if d, ok := p.calls.(drainer); ok {
		g.drains = append(g.drains, d.Shutdown)
	}
	g.drains = append(g.drains, instance.Shutdown) // last: once nothing is left to answer

	if !cfg.StreamSignatureRequired {
		log.Warn("STREAM_SIGNATURE_REQUIRED=false: media-stream upgrades without X-Twilio-Signature are accepted; only the single-use stream token guards them")
	}
	if cfg.PublicURL == "" {
		log.Warn("PUBLIC_URL is not set: webhook signatures are checked against each request's Host and X-Forwarded-Proto, which is right only when no proxy or tunnel rewrites them")
	}
	g.metrics = m.Handler()
	public := g.metrics
	if cfg.MetricsAddr != "" {
		public = nil // served on METRICS_ADDR only (cmd/gateway)
	}
	g.server = httpapi.New(httpapi.Deps{
		Logger:       log.With("adapter", "httpapi"),
		Calls:        p.calls,
		Messages:     messages,
		Verifier:     signature.New(string(cfg.TwilioAuthToken), cfg.PublicURL, signature.WithSharedKey(string(cfg.TwilioWebhookSharedKey))),
		AcceptStream: acceptStream,
		Checks:       g.checks,

		AllowUnsignedStreams: !cfg.StreamSignatureRequired,

		Metrics:        public,
		ObserveRequest: m.Request,
	})
	return g, nil
}

// storeStartTimeout bounds the first contact with PostgreSQL and Redis
// while the gateway starts. A store that has not answered by then is
// reported and the gateway starts without it.
const storeStartTimeout = 10 * time.Second

// The names of the stores' /ready checks.
const (
	checkThreads = "threads"
	checkTokens  = "tokens"
)

// openStores opens the thread and token stores that were not given as
// Options, recording how to close them, and makes the /ready checks of
// all of them. A PostgreSQL or Redis store that does not answer is logged,
// not an error.
func (g *Gateway) openStores(ctx context.Context, cfg configs.Config, log *slog.Logger, p *parts) error {
	threads := &storeCheck{name: "the thread store", log: log} // named after the adapter below
	tokens := &storeCheck{name: "the token store", log: log}
	var servers []*storeCheck // the checks of stores whose server may be down
	if p.threads == nil {
		if cfg.Postgres() {
			threads.name = "the PostgreSQL thread store"
			servers = append(servers, threads)
			var opts []postgres.Option
			if cfg.DatabaseSchema != "" {
				opts = append(opts, postgres.WithSchema(cfg.DatabaseSchema))
			}
			s, err := postgres.OpenLazy(cfg.DatabaseURL, log.With("adapter", "postgres"), opts...)
			if err != nil {
				return fmt.Errorf("wire: open the PostgreSQL thread store: %w", err)
			}
			p.threads = s
			g.closers = append(g.closers, s.Close)
		} else {
			threads.name = "the SQLite thread store"
			s, err := sqlite.Open(ctx, cfg.DatabaseURL, log.With("adapter", "sqlite"))
			if err != nil {
				return fmt.Errorf("wire: open the SQLite thread store: %w", err)
			}
			p.threads = s
			g.closers = append(g.closers, s.Close)
		}
	}
	if p.tokens == nil {
		if cfg.RedisURL != "" {
			tokens.name = "the Redis token store"
			servers = append(servers, tokens)
			s, err := redisstore.NewLazy(cfg.RedisURL, redisstore.WithKeyPrefix(cfg.RedisKeyPrefix))
			if err != nil {
				return fmt.Errorf("wire: open the Redis token store: %w", err)
			}
			p.tokens = s
			g.closers = append(g.closers, s.Close)
		} else {
			tokens.name = "the in-memory token store"
			p.tokens = memory.NewTokenStore(nil)
		}
	}
	threads.store, tokens.store = p.threads, p.tokens
	g.checks = map[string]ports.Pinger{checkThreads: threads, checkTokens: tokens}
	checkAtStart(ctx, servers)
	return nil
}

// checkAtStart pings the stores at once, each within storeStartTimeout,
// and logs each that does not answer: the gateway starts without it.
func checkAtStart(ctx context.Context, stores []*storeCheck) {
	ctx, cancel := context.WithTimeout(ctx, storeStartTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range stores {
		wg.Go(func() {
			if err := c.store.Ping(ctx); err != nil {
				c.down.Store(true)
				c.log.Error("wire: "+c.name+" is unavailable at start; the gateway starts without it, "+
					"/ready answers 503 and users are answered politely until it is back",
					"store", c.name, "err", err)
			}
		})
	}
	wg.Wait()
}

// storeCheck is a store's /ready check. It pings the store and logs when
// the store stops answering and when it answers again, naming it, so that
// the log tells which store an outage was about and when it ended.
type storeCheck struct {
	name  string // "the Redis token store"
	store ports.Pinger
	log   *slog.Logger
	down  atomic.Bool
}

// Ping implements ports.Pinger.
func (c *storeCheck) Ping(ctx context.Context) error {
	err := c.store.Ping(ctx)
	switch {
	case err == nil && c.down.CompareAndSwap(true, false):
		c.log.Info("wire: "+c.name+" answers again", "store", c.name)
	case err != nil && ctx.Err() == nil && c.down.CompareAndSwap(false, true):
		c.log.Error("wire: "+c.name+" stopped answering", "store", c.name, "err", err)
	}
	return err
}

// newAssistant makes the chat assistant of cfg.AssistantBackend.
func newAssistant(cfg configs.Config, log *slog.Logger, hc *http.Client) (ports.ChatAssistant, error) {
	switch cfg.AssistantBackend {
	case configs.BackendResponses:
		return responses.New(responses.Options{
			BaseURL:      cfg.OpenAIBaseURL,
			APIKey:       string(cfg.OpenAIAPIKey),
			Model:        cfg.OpenAIModel,
			Instructions: cfg.SystemMessage,
			HTTPClient:   hc,
			Logger:       log.With("adapter", "responses"),
		}), nil
	case configs.BackendAssistants:
		return assistants.New(assistants.Options{
			BaseURL:     cfg.OpenAIBaseURL,
			APIKey:      string(cfg.OpenAIAPIKey),
			AssistantID: cfg.OpenAIAssistantID,
			HTTPClient:  hc,
			Logger:      log.With("adapter", "assistants"),
		}), nil
	default:
		return nil, fmt.Errorf("wire: unknown ASSISTANT_BACKEND %q", cfg.AssistantBackend)
	}
}

// NewSender makes the Twilio Messages REST sender of cfg (account SID, auth
// token, TWILIO_API_BASE_URL), sending through hc, each request bounded by
// hc's Timeout or, when it has none, messaging.DefaultTimeout. TWILIO_FROM becomes the
// default sender: a Messaging Service when it is an "MG..." SID, else a
// number.
func NewSender(cfg configs.Config, hc *http.Client) *messaging.Sender {
	return newSender(cfg, hc, nil)
}

// newSender is NewSender with the sender's retries logged to log.
func newSender(cfg configs.Config, hc *http.Client, log *slog.Logger) *messaging.Sender {
	if hc != nil && hc.Timeout == 0 {
		// A send must not hang: it holds the user's turn. (The shared
		// client itself has no timeout: it also dials the Realtime
		// WebSockets, which live for a call.)
		c := *hc
		c.Timeout = messaging.DefaultTimeout
		hc = &c
	}
	opts := messaging.Options{
		AccountSID: cfg.TwilioAccountSID,
		AuthToken:  string(cfg.TwilioAuthToken),
		BaseURL:    cfg.TwilioAPIBaseURL,
		HTTPClient: hc,
		Logger:     log,
	}
	if strings.HasPrefix(cfg.TwilioFrom, "MG") {
		opts.MessagingServiceSID = cfg.TwilioFrom
	} else {
		opts.From = cfg.TwilioFrom
	}
	return messaging.NewSender(opts)
}

// Handler returns the gateway's HTTP routes, for tests that serve them
// themselves (httptest.NewServer).
func (g *Gateway) Handler() http.Handler { return g.server.Handler() }

// MetricsHandler serves the Prometheus metrics, for a listener of their
// own (METRICS_ADDR); without METRICS_ADDR, Handler serves them at /metrics
// too.
func (g *Gateway) MetricsHandler() http.Handler { return g.metrics }

// Serve accepts connections on ln until Shutdown. It blocks; it returns nil
// after Shutdown and the listener's error otherwise. ln is closed when
// Serve returns.
func (g *Gateway) Serve(ln net.Listener) error { return g.server.Serve(ln) }

// Shutdown stops the gateway gracefully within ctx (the drain deadline):
// the HTTP server stops accepting, lets in-flight webhooks finish and gives
// live calls until ctx is done; then the use cases drain their own
// goroutines (replies still being prepared are sent), and the instance
// lease is released, so that other gateways take over at once what was
// left unanswered. It blocks until then and returns what did not finish in
// time.
func (g *Gateway) Shutdown(ctx context.Context) error {
	errs := []error{g.server.Shutdown(ctx)}
	for _, drain := range g.drains {
		errs = append(errs, drain(ctx))
	}
	return ports.JoinErrors(errs...)
}

// Close releases the stores Build opened. Call it after Shutdown; it is
// safe to call once.
func (g *Gateway) Close() error {
	var errs []error
	for i := len(g.closers) - 1; i >= 0; i-- {
		errs = append(errs, g.closers[i]())
	}
	g.closers = nil
	return ports.JoinErrors(errs...)
}
