package realtime

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/convgateway/gateway/adapters/openai/internal/wsdial"
	"github.com/convgateway/gateway/ports"
)

// ReadLimit is the largest server event a session accepts. Audio deltas are
// small, but session.updated, response.done and transcripts of long
// responses can reach hundreds of KiB; 4 MiB bounds memory per call while
// leaving room for them.
const ReadLimit = 4 << 20

// Options configure a Model.
type Options struct {
	// URL is the full WebSocket URL including the model, e.g.
	// wss://api.openai.com/v1/realtime?model=gpt-realtime.
	URL string
	// APIKey is sent as a bearer token. It never appears in errors or logs.
	APIKey string
	// Logger receives skipped events and session ends; nil discards.
	Logger *slog.Logger
	// HTTPClient dials the WebSocket; nil means http.DefaultClient.
	HTTPClient *http.Client

	// Voice is the assistant's voice ("marin", "alloy", ...); empty leaves
	// the API's default.
	Voice string
	// TurnDetection is how the API tells the caller's turns apart:
	// TurnServerVAD (also when empty) or TurnSemanticVAD.
	TurnDetection string
	// TranscriptionModel transcribes the caller (SpeechCallerText), e.g.
	// "gpt-4o-transcribe"; empty means the caller is not transcribed.
	TranscriptionModel string
}

// The turn detections of Options.TurnDetection.
const (
	// TurnServerVAD ends a turn after a pause in the caller's voice.
	TurnServerVAD = "server_vad"
	// TurnSemanticVAD ends a turn when the caller's words seem complete.
	TurnSemanticVAD = "semantic_vad"
)

// Model opens Realtime sessions. It implements ports.SpeechModel and is
// safe for concurrent use.
type Model struct {
	opts Options
	log  *slog.Logger
}

var _ ports.SpeechModel = (*Model)(nil)

// New returns a Model. It does not connect; Open does.
func New(opts Options) *Model {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Model{opts: opts, log: log}
}

// Open dials the Realtime API, sends session.update built from the
// Options and cfg's instructions, tools (function tools, tool_choice auto)
// and MCP servers (hosted MCP tools) and waits for session.updated;
// cfg.CallID names the session's log lines (call_id). ctx bounds only this
// handshake. Errors wrap ports.ErrRejected when cfg holds a tool the API
// would refuse (no name, parameters that are not a JSON object; an MCP
// server without label or URL, or whose approval is neither "never" nor
// "always"), or the API refused the credentials (401/403), the request
// (other 4xx) or the configuration (an error event), ports.ErrUnavailable
// when it could not be reached, answered 5xx or closed the socket, and
// ctx.Err() when ctx ended first.
func (m *Model) Open(ctx context.Context, cfg ports.SpeechConfig) (ports.SpeechSession, error) {
	update, err := sessionUpdate(cfg, m.opts)
	if err != nil {
		return nil, fmt.Errorf("realtime: open: %w", err)
	}
	conn, err := wsdial.Dial(ctx, m.opts.URL, m.opts.APIKey, m.opts.HTTPClient, ReadLimit)
	if err != nil {
		return nil, fmt.Errorf("realtime: dial: %w", err)
	}
	s := newSession(conn, m.log.With("call_id", cfg.CallID))
	if err := s.configure(ctx, update); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}
