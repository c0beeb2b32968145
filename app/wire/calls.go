package wire

import (
	"log/slog"
	"net/http"

	"github.com/convgateway/gateway/adapters/audio"
	"github.com/convgateway/gateway/adapters/openai/live"
	"github.com/convgateway/gateway/adapters/openai/realtime"
	"github.com/convgateway/gateway/app"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
)

// newSpeech makes the speech model of cfg.SpeechBackend (Validate has
// checked it): OpenAI Realtime, or OpenAI GPT-Live delegating to
// OPENAI_MODEL through the Responses API.
func newSpeech(cfg configs.Config, log *slog.Logger, hc *http.Client) ports.SpeechModel {
	if cfg.SpeechBackend == configs.SpeechLive {
		return live.New(live.Options{
			URL:          cfg.OpenAILiveURL,
			APIKey:       string(cfg.OpenAIAPIKey),
			Model:        cfg.OpenAILiveModel,
			Voice:        cfg.Voice,
			BackendModel: cfg.OpenAIModel,
			Logger:       log.With("adapter", "live"),
			HTTPClient:   hc,
		})
	}
	return realtime.New(realtime.Options{
		URL:                cfg.OpenAIRealtimeURL,
		APIKey:             string(cfg.OpenAIAPIKey),
		Voice:              cfg.Voice,
		TurnDetection:      cfg.TurnDetection,
		TranscriptionModel: cfg.OpenAITranscriptionModel,
		Logger:             log.With("adapter", "realtime"),
		HTTPClient:         hc,
	})
}

// newCalls makes the phone-call use case from the Config: the stream
// token's life, the allowlist, the assistant's instructions, whether it
// speaks first, how long a call waits for its session and for the
// caller's media, and whether keys pressed are logged. Audio converters
// stand by for a speech model whose format differs from the caller's.
func newCalls(cfg configs.Config, log *slog.Logger, p parts, tools app.Tools, hooks app.CallsHooks) *app.CallsService {
	return app.NewCalls(app.CallsDeps{
		Tokens:            p.tokens,
		Speech:            p.speech,
		Logger:            log.With("usecase", "calls"),
		Session:           ports.SpeechConfig{Instructions: cfg.SystemMessage},
		Transcoders:       audio.NewTranscoder,
		Tools:             tools,
		TokenTTL:          cfg.WSTokenTTL,
		AllowedNumbers:    cfg.AllowedNumbers,
		AISpeaksFirst:     cfg.AISpeaksFirst,
		Greeting:          cfg.Greeting,
		DisablePrewarm:    !cfg.Prewarm,
		OpenTimeout:       cfg.OpenAIOpenTimeout,
		StreamIdleTimeout: cfg.StreamIdleTimeout,
		LogDigits:         cfg.LogDigits,
		Hooks:             hooks,
	})
}
