package wire

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/convgateway/gateway/adapters/openai/assistants"
	"github.com/convgateway/gateway/adapters/openai/responses"
	"github.com/convgateway/gateway/adapters/twilio/messaging"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
)

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
