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
	"log/slog"
	"net"
	"net/http"

	"github.com/convgateway/gateway/adapters/httpapi"
	"github.com/convgateway/gateway/adapters/metrics"
	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/app"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
)

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
	tools, err := newTools(cfg, log, p, m)
	if err != nil {
		return nil, ports.JoinErrors(err, g.Close())
	}
	if p.calls == nil {
		p.calls = newCalls(cfg, log, p, tools, callsHooks(m, cfg.SpeechBackend))
	}

	if p.leases == nil {
		p.leases = p.threads
	}
	instance := app.NewInstance(app.InstanceDeps{Leases: p.leases, Logger: log, TTL: p.leaseTTL})
	chatTools := tools
	chatTools.Control, chatTools.Sender = nil, nil // the call tools are not offered on chats
	messages := app.NewMessages(app.MessagesDeps{
		Tools:          chatTools,
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
