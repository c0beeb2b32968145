package configs

import "time"

// Model defaults. Model names are settings because OpenAI retires models:
// gpt-realtime is announced for shutdown on 2027-01-20, so the default is
// its successor as listed by openai-go v3
// (realtime.RealtimeSessionCreateRequestModelGPTRealtime2_1); the text and
// transcription defaults are current, non-deprecated models of the same
// SDK (shared.ChatModelGPT5_4Mini,
// realtime.AudioTranscriptionModelGPTRealtimeWhisper).
const (
	DefaultRealtimeModel      = "gpt-realtime-2.1"
	DefaultLiveModel          = "gpt-live-1"
	DefaultModel              = "gpt-5.4-mini"
	DefaultTranscriptionModel = "gpt-realtime-whisper"
)

// DefaultSystemMessage is the assistant persona used when SYSTEM_MESSAGE is
// not set.
const DefaultSystemMessage = "You are a helpful, friendly assistant reached by phone and by WhatsApp. " +
	"Answer briefly and clearly in the language the user speaks. " +
	"On the phone, speak naturally and keep answers to a few sentences. " +
	"If you do not know something, say so."

// DefaultRedisKeyPrefix is the default of REDIS_KEY_PREFIX: the prefix of
// every Redis key the gateway writes.
const DefaultRedisKeyPrefix = "gateway:"

// DefaultGreeting is the instruction for the opening response when the
// assistant speaks first.
const DefaultGreeting = "Greet the caller in one short sentence and ask how you can help."

// setting is one configuration key: its environment name (the YAML key is
// the same in lower case), its default as text, and whether its value must
// never be printed.
type setting struct {
	name   string
	def    string
	secret bool
}

// Setting names, as environment variables.
const (
	keyPort                     = "PORT"
	keyPublicURL                = "PUBLIC_URL"
	keyMetricsAddr              = "METRICS_ADDR"
	keyOpenAIAPIKey             = "OPENAI_API_KEY"
	keyOpenAIBaseURL            = "OPENAI_BASE_URL"
	keyOpenAIRealtimeURL        = "OPENAI_REALTIME_URL"
	keyOpenAIRealtimeModel      = "OPENAI_REALTIME_MODEL"
	keySpeechBackend            = "SPEECH_BACKEND"
	keyOpenAILiveModel          = "OPENAI_LIVE_MODEL"
	keyOpenAILiveURL            = "OPENAI_LIVE_URL"
	keyOpenAIModel              = "OPENAI_MODEL"
	keyOpenAITranscriptionModel = "OPENAI_TRANSCRIPTION_MODEL"
	keyOpenAIAssistantID        = "OPENAI_ASSISTANT_ID"
	keyAssistantBackend         = "ASSISTANT_BACKEND"
	keySystemMessage            = "SYSTEM_MESSAGE"
	keyVoice                    = "VOICE"
	keyTemperature              = "TEMPERATURE"
	keyAISpeaksFirst            = "AI_SPEAKS_FIRST"
	keyGreeting                 = "GREETING"
	keyTurnDetection            = "TURN_DETECTION"
	keyTwilioAccountSID         = "TWILIO_ACCOUNT_SID"
	keyTwilioAuthToken          = "TWILIO_AUTH_TOKEN"
	keyTwilioAPIBaseURL         = "TWILIO_API_BASE_URL"
	keyTwilioFrom               = "TWILIO_FROM"
	keyAllowedNumbers           = "ALLOWED_NUMBERS"
	keyWSTokenTTL               = "WS_TOKEN_TTL"
	keyPrewarm                  = "PREWARM"
	keyReplyInlineTimeout       = "REPLY_INLINE_TIMEOUT"
	keyShutdownDrain            = "SHUTDOWN_DRAIN"
	keyDatabaseURL              = "DATABASE_URL"
	keyDatabaseSchema           = "DATABASE_SCHEMA"
	keyRedisURL                 = "REDIS_URL"
	keyRedisKeyPrefix           = "REDIS_KEY_PREFIX"
	keyLogLevel                 = "LOG_LEVEL"
	keyDebug                    = "DEBUG"
	keyStreamSignatureRequired  = "STREAM_SIGNATURE_REQUIRED"
	keyTwilioWebhookSharedKey   = "TWILIO_WEBHOOK_SHARED_KEY"
	keyOpenAIOpenTimeout        = "OPENAI_OPEN_TIMEOUT"
	keyStreamIdleTimeout        = "STREAM_IDLE_TIMEOUT"
	keyLogDigits                = "LOG_DIGITS"
	keyToolsFile                = "TOOLS_FILE"
	keyToolsSigningSecret       = "TOOLS_SIGNING_SECRET"
	keyToolHoldAfter            = "TOOL_HOLD_AFTER"
	keyToolMaxCallsPerTurn      = "TOOL_MAX_CALLS_PER_TURN"
	keyTransferNumber           = "TRANSFER_NUMBER"
)

// settings lists every key Load knows, with its default.
var settings = []setting{
	{name: keyPort, def: "5050"},
	{name: keyPublicURL},
	{name: keyMetricsAddr},
	{name: keyOpenAIAPIKey, secret: true},
	{name: keyOpenAIBaseURL, def: "https://api.openai.com/v1"},
	{name: keyOpenAIRealtimeURL},
	{name: keyOpenAIRealtimeModel, def: DefaultRealtimeModel},
	{name: keySpeechBackend, def: SpeechRealtime},
	{name: keyOpenAILiveModel, def: DefaultLiveModel},
	{name: keyOpenAILiveURL},
	{name: keyOpenAIModel, def: DefaultModel},
	{name: keyOpenAITranscriptionModel, def: DefaultTranscriptionModel},
	{name: keyOpenAIAssistantID},
	{name: keyAssistantBackend, def: BackendResponses},
	{name: keySystemMessage, def: DefaultSystemMessage},
	{name: keyVoice, def: "alloy"},
	{name: keyTemperature, def: "0.8"},
	{name: keyAISpeaksFirst, def: "false"},
	{name: keyGreeting, def: DefaultGreeting},
	{name: keyTurnDetection, def: TurnServerVAD},
	{name: keyTwilioAccountSID},
	{name: keyTwilioAuthToken, secret: true},
	{name: keyTwilioAPIBaseURL, def: "https://api.twilio.com"},
	{name: keyTwilioFrom},
	{name: keyAllowedNumbers},
	{name: keyWSTokenTTL, def: "60s"},
	{name: keyPrewarm, def: "true"},
	{name: keyReplyInlineTimeout, def: "10s"},
	{name: keyShutdownDrain, def: "30s"},
	{name: keyDatabaseURL, def: "./data/gateway.db", secret: true},
	{name: keyDatabaseSchema},
	{name: keyRedisURL, secret: true},
	{name: keyRedisKeyPrefix, def: DefaultRedisKeyPrefix},
	{name: keyLogLevel, def: "info"},
	{name: keyDebug, def: "false"},
	{name: keyStreamSignatureRequired, def: "true"},
	{name: keyTwilioWebhookSharedKey, secret: true},
	{name: keyOpenAIOpenTimeout, def: "10s"},
	{name: keyStreamIdleTimeout, def: "10s"},
	{name: keyLogDigits, def: "false"},
	{name: keyToolsFile},
	{name: keyToolsSigningSecret, secret: true},
	{name: keyToolHoldAfter, def: "1.5s"},
	{name: keyToolMaxCallsPerTurn, def: "3"},
	{name: keyTransferNumber},
}

// TwilioWebhookLimit is how long Twilio waits for a webhook's answer;
// REPLY_INLINE_TIMEOUT must stay below it.
const TwilioWebhookLimit = 15 * time.Second

// Defaults returns the configuration with every default applied and no
// secrets: the starting point for a Config built by hand.
func Defaults() Config {
	cfg, _ := parse(func(name string) (any, bool) {
		for _, s := range settings {
			if s.name == name {
				return s.def, true
			}
		}
		return nil, false
	})
	return cfg
}

// The speech backends (SPEECH_BACKEND).
const (
	// SpeechRealtime is OpenAI Realtime: the gateway handles barge-in
	// (clear and truncate).
	SpeechRealtime = "realtime"
	// SpeechLive is OpenAI GPT-Live: full duplex, it handles interruptions
	// itself.
	SpeechLive = "live"
)

// Voices each speech backend offers by name, as openai-go v3.98.0 lists
// them (realtime.RealtimeAudioConfigOutputVoiceString2*,
// live.BuiltInVoice*). Both also take a custom voice by its id, "voice_...".
var voices = map[string][]string{
	SpeechRealtime: {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"},
	SpeechLive: {"alloy", "ash", "ballad", "beacon", "bossa", "cedar", "cinder", "coral", "delta", "echo",
		"gleam", "marin", "meridian", "quartz", "ripple", "sage", "shida", "shimmer", "stone", "tempo",
		"verse", "vesper", "willow"},
}
