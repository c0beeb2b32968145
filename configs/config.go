package configs

import (
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Backends of ASSISTANT_BACKEND.
const (
	BackendResponses  = "responses"  // OpenAI Responses + Conversations (default)
	BackendAssistants = "assistants" // OpenAI Assistants API v2 (compatible endpoints)
)

// Turn detection modes of TURN_DETECTION.
const (
	TurnServerVAD   = "server_vad"
	TurnSemanticVAD = "semantic_vad"
)

// Config is the gateway's whole configuration. Load fills it; a Config built
// by hand (in tests) should start from Defaults and be checked with
// Validate.
//
// Secrets are of type Secret, which prints as "[REDACTED]" with fmt and
// slog; Config itself implements slog.LogValuer, so logging a Config shows no
// secret and no password inside DATABASE_URL or REDIS_URL.
type Config struct {
	// Port is the TCP port the HTTP server listens on (PORT). 0 picks a
	// free port (tests).
	Port int
	// PublicURL is the https base URL Twilio calls (PUBLIC_URL), without a
	// trailing slash; webhook signatures are checked against it. Empty means
	// "derive it from each request" (local use only).
	PublicURL string
	// MetricsAddr is the host:port of a listener of its own for /metrics
	// (METRICS_ADDR), such as "127.0.0.1:9090" or ":9090"; /metrics is then
	// not served on Port, which Twilio (and so the internet) reaches. Empty
	// serves /metrics on Port with the webhooks.
	MetricsAddr string

	OpenAIAPIKey Secret // OPENAI_API_KEY, required
	// OpenAIBaseURL is the REST base URL, ".../v1" (OPENAI_BASE_URL).
	OpenAIBaseURL string
	// OpenAIRealtimeURL is the full Realtime WebSocket URL including
	// "?model=" (OPENAI_REALTIME_URL); Load derives it from OpenAIBaseURL
	// and OpenAIRealtimeModel unless it is set.
	OpenAIRealtimeURL   string
	OpenAIRealtimeModel string // OPENAI_REALTIME_MODEL
	// SpeechBackend (SPEECH_BACKEND) picks the voice model of calls:
	// SpeechRealtime or SpeechLive.
	SpeechBackend   string
	OpenAILiveModel string // OPENAI_LIVE_MODEL
	// OpenAILiveURL is the GPT-Live WebSocket URL (OPENAI_LIVE_URL); Load
	// derives it from OpenAIBaseURL unless it is set.
	OpenAILiveURL            string
	OpenAIModel              string // OPENAI_MODEL, the text model of the Responses backend
	OpenAITranscriptionModel string // OPENAI_TRANSCRIPTION_MODEL; empty turns caller transcription off
	OpenAIAssistantID        string // OPENAI_ASSISTANT_ID, required by the assistants backend
	AssistantBackend         string // ASSISTANT_BACKEND: BackendResponses or BackendAssistants

	SystemMessage string // SYSTEM_MESSAGE: the assistant's instructions, voice and chat
	Voice         string // VOICE of the speech model, one its backend offers
	// Temperature (TEMPERATURE) is accepted and validated for compatibility
	// with the seeds' settings; the Realtime GA session has no temperature
	// field, so nothing uses it.
	Temperature   float64
	AISpeaksFirst bool   // AI_SPEAKS_FIRST: the assistant opens the call
	Greeting      string // GREETING: the instruction for the opening response
	TurnDetection string // TURN_DETECTION: TurnServerVAD or TurnSemanticVAD

	TwilioAccountSID string // TWILIO_ACCOUNT_SID, needed to send through the REST API
	TwilioAuthToken  Secret // TWILIO_AUTH_TOKEN, required
	TwilioAPIBaseURL string // TWILIO_API_BASE_URL
	// TwilioFrom is the default sender of outbound messages (TWILIO_FROM):
	// "whatsapp:+1...", "+1..." or a Messaging Service SID "MG...".
	TwilioFrom string
	// AllowedNumbers is the optional in-gateway caller allowlist
	// (ALLOWED_NUMBERS, comma-separated E.164); empty allows every caller.
	AllowedNumbers []string

	WSTokenTTL time.Duration // WS_TOKEN_TTL: life of a media-stream token
	// Prewarm (PREWARM) opens the OpenAI Realtime session while
	// /incoming-call is answered, so the caller's first words do not wait
	// for the handshake.
	Prewarm            bool
	ReplyInlineTimeout time.Duration // REPLY_INLINE_TIMEOUT: < 15s, Twilio's webhook limit
	ShutdownDrain      time.Duration // SHUTDOWN_DRAIN: how long live calls get at shutdown

	// DatabaseURL is a SQLite file path, or a postgres:// URL (DATABASE_URL).
	// It may hold a password: log it only through Config's LogValue.
	DatabaseURL string
	// DatabaseSchema is the PostgreSQL schema of the gateway's tables
	// (DATABASE_SCHEMA), created if missing; empty means the connection's
	// search_path (normally "public"). Deployments, or test runs, sharing
	// one database with different schemas are independent, user locks
	// included. Only for PostgreSQL.
	DatabaseSchema string
	// RedisURL selects the Redis token store when set (REDIS_URL). It may
	// hold a password.
	RedisURL string
	// RedisKeyPrefix is put in front of every Redis key the gateway writes
	// (REDIS_KEY_PREFIX); instances that must accept each other's stream
	// tokens share it, deployments sharing one Redis differ in it.
	RedisKeyPrefix string

	LogLevel string // LOG_LEVEL: debug, info, warn or error
	Debug    bool   // DEBUG: forces LogLevel "debug"

	// StreamSignatureRequired (STREAM_SIGNATURE_REQUIRED) refuses a
	// media-stream upgrade without X-Twilio-Signature. Twilio signs every
	// upgrade; false is for a proxy that strips the header, and leaves the
	// single-use stream token as the stream's only guard.
	StreamSignatureRequired bool
	// TwilioWebhookSharedKey (TWILIO_WEBHOOK_SHARED_KEY) is the secret of
	// the shared key a Twilio Webhooks Rule signs with; requests carrying
	// X-Twilio-Webhooks-Signature-Settings are checked with it. Empty:
	// such requests are refused (403).
	TwilioWebhookSharedKey Secret
	// OpenAIOpenTimeout (OPENAI_OPEN_TIMEOUT) bounds opening a Realtime
	// session, and how long a call's stream waits for its session: then
	// the stream ends and the caller hears the apology after <Connect>.
	OpenAIOpenTimeout time.Duration
	// StreamIdleTimeout (STREAM_IDLE_TIMEOUT) ends a call whose media
	// stream brought no audio, or whose writes to either side blocked, for
	// that long.
	StreamIdleTimeout time.Duration
	// LogDigits (LOG_DIGITS) shows the keys callers press in the log;
	// otherwise only their number is logged.
	LogDigits bool

	// ToolsFile is the path of the YAML file of the user's HTTP tools and
	// MCP servers (TOOLS_FILE), relative to the working directory; empty
	// means none. Load reads it into Tools.
	ToolsFile string
	// Tools is the content of ToolsFile.
	Tools ToolsFile
	// ToolsSigningSecret (TOOLS_SIGNING_SECRET) signs every request to an
	// HTTP tool (X-Gateway-Signature: sha256=HMAC-SHA256 of the body);
	// required when Tools has HTTP tools, at least MinSigningSecretLen
	// characters.
	ToolsSigningSecret Secret
	// ToolHoldAfter (TOOL_HOLD_AFTER) is how long a call waits for a tool
	// before the assistant says a short holding phrase; 0 turns the phrase
	// off.
	ToolHoldAfter time.Duration
	// ToolMaxCallsPerTurn (TOOL_MAX_CALLS_PER_TURN) bounds the tool calls
	// the model may make in one turn; then it must answer.
	ToolMaxCallsPerTurn int
	// TransferNumber (TRANSFER_NUMBER) is where transfer_call dials: an
	// E.164 number or a sip: address. Empty turns transfer_call off.
	TransferNumber string
}

// Postgres reports whether DatabaseURL selects PostgreSQL rather than the
// embedded SQLite file.
func (c Config) Postgres() bool {
	return strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://")
}

// SlogLevel is the slog level of LogLevel (info when LogLevel is unknown,
// which Validate reports).
func (c Config) SlogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// LogValue implements slog.LogValuer: every setting, with secrets replaced
// by "[REDACTED]" and passwords removed from URLs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("port", c.Port),
		slog.String("public_url", c.PublicURL),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.Any("openai_api_key", c.OpenAIAPIKey),
		slog.String("openai_base_url", c.OpenAIBaseURL),
		slog.String("openai_realtime_url", c.OpenAIRealtimeURL),
		slog.String("openai_realtime_model", c.OpenAIRealtimeModel),
		slog.String("speech_backend", c.SpeechBackend),
		slog.String("openai_live_model", c.OpenAILiveModel),
		slog.String("openai_live_url", c.OpenAILiveURL),
		slog.String("openai_model", c.OpenAIModel),
		slog.String("openai_transcription_model", c.OpenAITranscriptionModel),
		slog.String("openai_assistant_id", c.OpenAIAssistantID),
		slog.String("assistant_backend", c.AssistantBackend),
		slog.Int("system_message_chars", len(c.SystemMessage)),
		slog.String("voice", c.Voice),
		slog.Float64("temperature", c.Temperature),
		slog.Bool("ai_speaks_first", c.AISpeaksFirst),
		slog.String("turn_detection", c.TurnDetection),
		slog.String("twilio_account_sid", c.TwilioAccountSID),
		slog.Any("twilio_auth_token", c.TwilioAuthToken),
		slog.String("twilio_api_base_url", c.TwilioAPIBaseURL),
		slog.String("twilio_from", c.TwilioFrom),
		slog.Int("allowed_numbers", len(c.AllowedNumbers)),
		slog.String("ws_token_ttl", c.WSTokenTTL.String()),
		slog.Bool("prewarm", c.Prewarm),
		slog.String("reply_inline_timeout", c.ReplyInlineTimeout.String()),
		slog.String("shutdown_drain", c.ShutdownDrain.String()),
		slog.String("database_url", redactURL(c.DatabaseURL)),
		slog.String("database_schema", c.DatabaseSchema),
		slog.String("redis_url", redactURL(c.RedisURL)),
		slog.String("redis_key_prefix", c.RedisKeyPrefix),
		slog.String("log_level", c.LogLevel),
		slog.Bool("stream_signature_required", c.StreamSignatureRequired),
		slog.Any("twilio_webhook_shared_key", c.TwilioWebhookSharedKey),
		slog.String("openai_open_timeout", c.OpenAIOpenTimeout.String()),
		slog.String("stream_idle_timeout", c.StreamIdleTimeout.String()),
		slog.Bool("log_digits", c.LogDigits),
		slog.String("tools_file", c.ToolsFile),
		slog.Any("tools", c.Tools),
		slog.Any("tools_signing_secret", c.ToolsSigningSecret),
		slog.String("tool_hold_after", c.ToolHoldAfter.String()),
		slog.Int("tool_max_calls_per_turn", c.ToolMaxCallsPerTurn),
		slog.String("transfer_number", c.TransferNumber),
	)
}

// String implements fmt.Stringer (the %v and %+v verbs) with the same
// redacted view as LogValue.
func (c Config) String() string { return c.LogValue().String() }

// GoString implements fmt.GoStringer (the %#v verb) with the same redacted
// view as LogValue.
func (c Config) GoString() string { return "configs.Config" + c.String() }

// redactURL removes the password from a URL; a string that does not parse
// as a URL with a scheme (a file path) is returned as is.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "[REDACTED]"
		}
		return s
	}
	return u.Redacted()
}

// Secret is a configuration value that must never be printed: String,
// GoString and LogValue show "[REDACTED]" (or "" when empty). Convert it
// with string(s) where the value is really needed.
type Secret string

const redacted = "[REDACTED]"

// String implements fmt.Stringer without revealing the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer (the %#v verb) without revealing the
// secret.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue implements slog.LogValuer without revealing the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler without revealing the
// secret, so JSON or YAML output of a Config is safe too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
