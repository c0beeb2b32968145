// The Assistants API is deprecated upstream (shut down by OpenAI on
// 2026-08-26); this adapter exists for Assistants-compatible endpoints, so
// using the deprecated client is its purpose.
//lint:file-ignore SA1019 this package is the Assistants v2 adapter by design

package assistants

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/convgateway/gateway/adapters/openai/internal/rest"
	"github.com/convgateway/gateway/adapters/openai/internal/tools"
	"github.com/convgateway/gateway/ports"
)

// DefaultPollInterval is how often a run is polled when Options leave it 0.
const DefaultPollInterval = 500 * time.Millisecond

// cancelTimeout bounds the best-effort cancellation of an abandoned run.
const cancelTimeout = 5 * time.Second

// Options configure an Assistant.
type Options struct {
	// BaseURL is the API base URL (default https://api.openai.com/v1).
	BaseURL string
	// APIKey is the API key; it never appears in errors or logs.
	APIKey string
	// AssistantID is the assistant ("asst_...") that runs on every thread.
	AssistantID string
	// PollInterval is the time between two polls of a run
	// (DefaultPollInterval if 0).
	PollInterval time.Duration
	// HTTPClient sends the requests (a default client if nil).
	HTTPClient *http.Client
	// Logger receives diagnostics (slog.Default() if nil).
	Logger *slog.Logger
}

var _ ports.ChatAssistant = (*Assistant)(nil)

// Assistant is a ports.ChatAssistant on the Assistants API v2. It is safe
// for concurrent use; the caller keeps to one Reply at a time per thread, as
// the API refuses a message while a run is active.
type Assistant struct {
	threads     openai.BetaThreadService
	assistantID string
	poll        time.Duration
	log         *slog.Logger
}

// New returns an Assistant. It does not contact the API.
func New(opts Options) *Assistant {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	poll := opts.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	client := rest.NewClient(opts.BaseURL, opts.APIKey, opts.HTTPClient)
	return &Assistant{
		threads:     client.Beta.Threads, //nolint:staticcheck // the Assistants API is this package's purpose
		assistantID: opts.AssistantID,
		poll:        poll,
		log:         log,
	}
}

// NewThread creates an empty thread and returns its id ("thread_..."). It
// blocks for one API call (retried on transient failures) and honours ctx.
// Errors wrap ports.ErrUnavailable or ports.ErrRejected, or ctx.Err().
func (a *Assistant) NewThread(ctx context.Context) (string, error) {
	th, err := a.threads.New(ctx, openai.BetaThreadNewParams{}, rest.Retry())
	if err != nil {
		return "", fmt.Errorf("assistants: new thread: %w", rest.Err(ctx, err))
	}
	return th.ID, nil
}

// Reply adds req.Text to thread req.ThreadID as a user message, runs the
// assistant on the thread, with req.Tools as the run's function tools when
// there are any, and returns the text of the assistant message that run
// wrote. It blocks until the run ends, polling every PollInterval. When the
// run requires action, Reply runs the calls (all at once) with req.RunTool
// and submits their outputs, for at most req.MaxToolRounds rounds. When
// ctx ends, polling fails or the rounds are used up, the run is cancelled
// (best effort, within a few seconds) so that the thread accepts the next
// message, and Reply returns ctx.Err(), the polling error or
// ports.ErrAssistantFailed.
//
// Errors: ports.ErrNotFound (no such thread), ports.ErrAssistantFailed (the
// run failed, was cancelled, expired, ended incomplete, asked for tool
// outputs when req has no tools, still called tools after
// req.MaxToolRounds rounds, or wrote no text; the text names the status
// and OpenAI's error code, for logs only), ports.ErrUnavailable,
// ports.ErrRejected (also when a run is still active on the thread, for
// tools without RunTool or with a bad schema, and for any MCP server: the
// Assistants API cannot use them), or ctx.Err().
func (a *Assistant) Reply(ctx context.Context, req ports.ChatRequest) (string, error) {
	params, err := a.runParams(req)
	if err != nil {
		return "", fmt.Errorf("assistants: reply: %w", err)
	}
	_, err = a.threads.Messages.New(ctx, req.ThreadID, openai.BetaThreadMessageNewParams{
		Role:    openai.BetaThreadMessageNewParamsRoleUser,
		Content: openai.BetaThreadMessageNewParamsContentUnion{OfString: openai.String(req.Text)},
	})
	if err != nil {
		return "", fmt.Errorf("assistants: add message: %w", rest.Err(ctx, err))
	}
	run, err := a.threads.Runs.New(ctx, req.ThreadID, params)
	if err != nil {
		return "", fmt.Errorf("assistants: create run: %w", rest.Err(ctx, err))
	}
	rounds := tools.Rounds(req)
	for round := 0; ; round++ {
		run, err = a.wait(ctx, req.ThreadID, run)
		if err != nil {
			a.cancel(ctx, req.ThreadID, run.ID)
			return "", err
		}
		if run.Status != openai.RunStatusRequiresAction || len(req.Tools) == 0 {
			return a.outcome(ctx, req.ThreadID, run)
		}
		if round == rounds {
			a.cancel(ctx, req.ThreadID, run.ID)
			return "", fmt.Errorf("assistants: run %s still calls tools after %d rounds: %w", run.ID, rounds, ports.ErrAssistantFailed)
		}
		if run, err = a.runTools(ctx, req, run); err != nil {
			a.cancel(ctx, req.ThreadID, run.ID)
			return "", err
		}
	}
}

// wait polls run until it leaves the queued, in_progress and cancelling
// statuses. On error it returns the run as last seen.
func (a *Assistant) wait(ctx context.Context, threadID string, run *openai.Run) (*openai.Run, error) {
	timer := time.NewTimer(a.poll)
	defer timer.Stop()
	for {
		switch run.Status {
		case openai.RunStatusQueued, openai.RunStatusInProgress, openai.RunStatusCancelling:
		default:
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, fmt.Errorf("assistants: wait for run %s: %w", run.ID, ctx.Err())
		case <-timer.C:
		}
		next, err := a.threads.Runs.Get(ctx, threadID, run.ID, rest.Retry())
		if err != nil {
			return run, fmt.Errorf("assistants: poll run %s: %w", run.ID, rest.Err(ctx, err))
		}
		run = next
		timer.Reset(a.poll)
	}
}

// outcome turns a run that stopped into the reply or an error.
func (a *Assistant) outcome(ctx context.Context, threadID string, run *openai.Run) (string, error) {
	switch run.Status {
	case openai.RunStatusCompleted:
		return a.answer(ctx, threadID, run.ID)
	case openai.RunStatusRequiresAction:
		a.cancel(ctx, threadID, run.ID)
		return "", fmt.Errorf("assistants: run %s requires action (tool calls) but the request offers no tools: %w",
			run.ID, ports.ErrAssistantFailed)
	case openai.RunStatusFailed:
		return "", fmt.Errorf("assistants: run %s failed (last_error code %q): %w",
			run.ID, run.LastError.Code, ports.ErrAssistantFailed)
	case openai.RunStatusIncomplete:
		return "", fmt.Errorf("assistants: run %s incomplete (reason %q): %w",
			run.ID, run.IncompleteDetails.Reason, ports.ErrAssistantFailed)
	default: // cancelled, expired, or a status this version does not know
		return "", fmt.Errorf("assistants: run %s ended %s: %w", run.ID, run.Status, ports.ErrAssistantFailed)
	}
}

// answer returns the text of the newest assistant message written by run.
func (a *Assistant) answer(ctx context.Context, threadID, runID string) (string, error) {
	page, err := a.threads.Messages.List(ctx, threadID, openai.BetaThreadMessageListParams{
		RunID: openai.String(runID),
		Order: openai.BetaThreadMessageListParamsOrderDesc,
	}, rest.Retry())
	if err != nil {
		return "", fmt.Errorf("assistants: list messages of run %s: %w", runID, rest.Err(ctx, err))
	}
	for _, m := range page.Data {
		if m.Role != openai.MessageRoleAssistant {
			continue
		}
		var b strings.Builder
		for _, part := range m.Content {
			if part.Type == "text" {
				b.WriteString(part.Text.Value)
			}
		}
		if b.Len() > 0 {
			return b.String(), nil
		}
	}
	return "", fmt.Errorf("assistants: run %s completed without a text message: %w", runID, ports.ErrAssistantFailed)
}

// cancel asks the API to cancel run, best effort, even when ctx is done, and
// logs a failure.
func (a *Assistant) cancel(ctx context.Context, threadID, runID string) {
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer stop()
	if _, err := a.threads.Runs.Cancel(ctx, threadID, runID); err != nil {
		a.log.Warn("assistants: cancel run", "thread", threadID, "run", runID, "err", rest.Err(ctx, err))
	}
}
