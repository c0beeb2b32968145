package responses

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/conversations"
	"github.com/openai/openai-go/v3/responses"

	"github.com/convgateway/gateway/adapters/openai/internal/rest"
	"github.com/convgateway/gateway/ports"
)

// Options configure an Assistant.
type Options struct {
	// BaseURL is the API base URL (default https://api.openai.com/v1).
	BaseURL string
	// APIKey is the OpenAI API key; it never appears in errors or logs.
	APIKey string
	// Model answers the messages, for example "gpt-4.1-mini".
	Model string
	// Instructions is the system message sent with every response.
	Instructions string
	// HTTPClient sends the requests (a default client if nil).
	HTTPClient *http.Client
	// Logger receives diagnostics (slog.Default() if nil).
	Logger *slog.Logger
}

var _ ports.ChatAssistant = (*Assistant)(nil)

// Assistant is a ports.ChatAssistant on the Responses API. It is safe for
// concurrent use.
type Assistant struct {
	client       openai.Client
	model        string
	instructions string
	log          *slog.Logger
}

// New returns an Assistant. It does not contact the API.
func New(opts Options) *Assistant {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Assistant{
		client:       rest.NewClient(opts.BaseURL, opts.APIKey, opts.HTTPClient),
		model:        opts.Model,
		instructions: opts.Instructions,
		log:          log,
	}
}

// NewThread creates an empty conversation and returns its id ("conv_...").
// It blocks for one API call (retried on transient failures) and honours
// ctx. Errors wrap ports.ErrUnavailable or ports.ErrRejected, or ctx.Err().
func (a *Assistant) NewThread(ctx context.Context) (string, error) {
	conv, err := a.client.Conversations.New(ctx, conversations.ConversationNewParams{}, rest.Retry())
	if err != nil {
		return "", fmt.Errorf("responses: new conversation: %w", rest.Err(ctx, err))
	}
	return conv.ID, nil
}

// Reply creates a response to text in conversation threadID and returns its
// output text. It blocks until the model has answered (one API call, not
// retried: a retry could add the message twice) or ctx is done. Errors:
// ports.ErrNotFound (no such conversation), ports.ErrAssistantFailed (the
// response failed, ended incomplete or has no text), ports.ErrUnavailable,
// ports.ErrRejected, or ctx.Err().
func (a *Assistant) Reply(ctx context.Context, threadID, text string) (string, error) {
	params := responses.ResponseNewParams{
		Model:        a.model,
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String(text)},
		Conversation: responses.ResponseNewParamsConversationUnion{OfString: openai.String(threadID)},
	}
	if a.instructions != "" {
		params.Instructions = openai.String(a.instructions)
	}
	resp, err := a.client.Responses.New(ctx, params)
	if err != nil {
		return "", fmt.Errorf("responses: create response: %w", rest.Err(ctx, err))
	}
	switch resp.Status {
	case responses.ResponseStatusCompleted:
	case responses.ResponseStatusFailed:
		return "", fmt.Errorf("responses: response %s failed (code %q): %w", resp.ID, resp.Error.Code, ports.ErrAssistantFailed)
	case responses.ResponseStatusIncomplete:
		return "", fmt.Errorf("responses: response %s incomplete (reason %q): %w", resp.ID, resp.IncompleteDetails.Reason, ports.ErrAssistantFailed)
	default:
		return "", fmt.Errorf("responses: response %s ended with status %q: %w", resp.ID, resp.Status, ports.ErrAssistantFailed)
	}
	out := resp.OutputText()
	if out == "" {
		return "", fmt.Errorf("responses: response %s has no output text: %w", resp.ID, ports.ErrAssistantFailed)
	}
	a.log.Debug("responses: replied", "conversation", threadID, "response", resp.ID, "chars", len(out))
	return out, nil
}
