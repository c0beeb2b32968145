package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/convgateway/gateway/adapters/openai/internal/wsdial"
	"github.com/convgateway/gateway/ports"
)

// ReadLimit is the largest server event a session accepts. Audio deltas are
// small, but session.started and session.closed carry the whole session
// configuration (instructions, history, tools); 4 MiB bounds memory per
// call while leaving room for them. The SDK's own connection sets no
// limit.
const ReadLimit = 4 << 20

// DefaultModel is the GPT-Live model used when Options.Model is empty.
const DefaultModel = "gpt-live-1"

// CloseWait bounds how long Close waits for session.closed after
// session.close before it closes the socket.
const CloseWait = 3 * time.Second

// Options configure a Model.
type Options struct {
	// URL is the WebSocket URL of the Live API, without a query string:
	// wss://api.openai.com/v1/live/sessions.
	URL string
	// APIKey is sent as a bearer token. It never appears in errors or logs.
	APIKey string
	// Model is the GPT-Live model; empty means DefaultModel.
	Model string
	// Voice is the voice of the assistant; empty means the API's default.
	Voice string
	// BackendModel is the Responses model that delegated work goes to
	// (Responses delegation). Required: Open refuses to start without it.
	BackendModel string
	// Logger receives skipped events and session ends; nil discards.
	Logger *slog.Logger
	// HTTPClient dials the WebSocket; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Model opens GPT-Live sessions. It implements ports.SpeechModel and is
// safe for concurrent use.
type Model struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
}

var _ ports.SpeechModel = (*Model)(nil)

// New returns a Model. It does not connect; Open does.
func New(opts Options) *Model {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Model == "" {
		opts.Model = DefaultModel
	}
	return &Model{opts: opts, log: log, now: time.Now}
}

var (
	errNoBackend = errors.New("no backend model for Responses delegation")
	errQuery     = errors.New("the Live URL takes no query string: the model goes in session.start")
)

// Open dials the Live API, sends session.start built from cfg and waits
// for session.started. ctx bounds only this handshake. Errors wrap
// ports.ErrRejected when the API refused the credentials (401/403), the
// request (other 4xx) or the configuration (an error event), or, before
// dialling, when there is no BackendModel, the URL has a query string, cfg
// names MCP servers (GPT-Live's Responses delegation cannot name one) or a
// tool whose parameters are not a JSON object; ports.ErrUnavailable when
// the API could not be reached, answered 429 or 5xx, reported a server
// error or ended the session; and ctx.Err() when ctx ended first.
func (m *Model) Open(ctx context.Context, cfg ports.SpeechConfig) (ports.SpeechSession, error) {
	if m.opts.BackendModel == "" {
		return nil, fmt.Errorf("live: open: %w: %w", ports.ErrRejected, errNoBackend)
	}
	if strings.Contains(m.opts.URL, "?") {
		return nil, fmt.Errorf("live: open: %w: %w", ports.ErrRejected, errQuery)
	}
	start, err := sessionStart(m.opts, cfg)
	if err != nil {
		return nil, fmt.Errorf("live: open: %w: %w", ports.ErrRejected, err)
	}
	conn, err := wsdial.Dial(ctx, m.opts.URL, m.opts.APIKey, m.opts.HTTPClient, ReadLimit)
	if err != nil {
		return nil, fmt.Errorf("live: dial: %w", err)
	}
	s := newSession(conn, m.log.With("call_id", cfg.CallID), m.now)
	if err := s.start(ctx, start); err != nil {
		_ = s.stream.Close(1000, "open failed")
		return nil, err
	}
	return s, nil
}
