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
	"github.com/convgateway/gateway/adapters/openai/internal/tools"
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

// Reply creates a response to req.Text in conversation req.ThreadID, with
// req.Tools declared as function tools and req.MCP as hosted MCP tools, and
// returns its output text. While the model calls functions instead of
// answering, Reply runs the calls (all at once) with req.RunTool and sends
// their outputs in a new response on the conversation, for at most
// req.MaxToolRounds rounds. Each response is one API call, not retried (a
// retry could add the message twice). Reply blocks until the model has
// answered or ctx is done; when it gives up on calls the conversation
// holds (past the rounds, or ctx done), it adds outputs for them so that
// the conversation takes the next message (best effort, a few seconds at
// most).
//
// Errors: ports.ErrNotFound (no such conversation),
// ports.ErrAssistantFailed (a response failed, ended incomplete or has no
// text, for example when an MCP server asks for an approval, or the model
// still calls tools after req.MaxToolRounds rounds),
// ports.ErrUnavailable, ports.ErrRejected (also for tools without RunTool
// or with a bad schema), or ctx.Err().
func (a *Assistant) Reply(ctx context.Context, req ports.ChatRequest) (answer string, err error) {
	params, err := a.params(req)
	if err != nil {
		return "", fmt.Errorf("responses: reply: %w", err)
	}
	params.Input = responses.ResponseNewParamsInputUnion{OfString: openai.String(req.Text)}
	var open []ports.ToolResult // outputs the conversation still waits for
	defer func() {
		if err != nil && len(open) > 0 {
			a.answerCalls(ctx, req.ThreadID, open)
		}
	}()
	rounds := tools.Rounds(req)
	for round := 0; ; round++ {
		resp, err := a.client.Responses.New(ctx, params)
		if err != nil {
			return "", fmt.Errorf("responses: create response: %w", rest.Err(ctx, err))
		}
		open = nil // the API took the outputs
		if err := completed(resp); err != nil {
			return "", err
		}
		calls := functionCalls(resp)
		if len(calls) == 0 {
			return a.text(resp, req.ThreadID)
		}
		open = unanswered(calls)
		if round == rounds {
			return "", fmt.Errorf("responses: response %s still calls tools after %d rounds: %w",
				resp.ID, rounds, ports.ErrAssistantFailed)
		}
		a.log.Debug("responses: tool calls", "conversation", req.ThreadID, "response", resp.ID, "tools", tools.Names(calls))
		open = tools.Run(ctx, req.RunTool, calls)
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("responses: run tools: %w", err)
		}
		params.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: outputItems(open)}
	}
}

// completed returns an error wrapping ports.ErrAssistantFailed unless resp
// completed.
func completed(resp *responses.Response) error {
	switch resp.Status {
	case responses.ResponseStatusCompleted:
		return nil
	case responses.ResponseStatusFailed:
		return fmt.Errorf("responses: response %s failed (code %q): %w", resp.ID, resp.Error.Code, ports.ErrAssistantFailed)
	case responses.ResponseStatusIncomplete:
		return fmt.Errorf("responses: response %s incomplete (reason %q): %w", resp.ID, resp.IncompleteDetails.Reason, ports.ErrAssistantFailed)
	default:
		return fmt.Errorf("responses: response %s ended with status %q: %w", resp.ID, resp.Status, ports.ErrAssistantFailed)
	}
}

// text returns the output text of a completed response without calls.
func (a *Assistant) text(resp *responses.Response, threadID string) (string, error) {
	out := resp.OutputText()
	if out == "" {
		for _, item := range resp.Output {
			if item.Type == "mcp_approval_request" {
				r := item.AsMcpApprovalRequest()
				return "", fmt.Errorf("responses: response %s asks approval for MCP tool %q of server %q, which the gateway does not give (require_approval): %w",
					resp.ID, r.Name, r.ServerLabel, ports.ErrAssistantFailed)
			}
		}
		return "", fmt.Errorf("responses: response %s has no output text: %w", resp.ID, ports.ErrAssistantFailed)
	}
	a.log.Debug("responses: replied", "conversation", threadID, "response", resp.ID, "chars", len(out))
	return out, nil
}
