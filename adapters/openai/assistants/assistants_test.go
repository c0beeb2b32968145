package assistants_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/openai/assistants"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/openairest/contract"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const assistantID = "asst_sim"

func setup(t *testing.T) (*assistants.Assistant, *openairest.Server) {
	t.Helper()
	sim := openairest.New(openairest.Options{})
	t.Cleanup(sim.Close)
	a := assistants.New(assistants.Options{
		BaseURL:      sim.URL(),
		APIKey:       sim.APIKey(),
		AssistantID:  assistantID,
		PollInterval: time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return a, sim
}

func newThread(t *testing.T, a *assistants.Assistant) string {
	t.Helper()
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	return id
}

func TestConformance(t *testing.T) {
	porttest.ChatAssistant(t, func(t *testing.T) porttest.ChatHarness {
		a, sim := setup(t)
		return porttest.ChatHarness{
			Assistant: a,
			FailNext:  func() { sim.Next(openairest.Script{Status: "failed"}) },
			CallToolNext: func(call ports.ToolCall, rounds int) {
				sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: call.Name, Arguments: string(call.Arguments), Rounds: rounds}})
			},
		}
	})
}

func TestRequestsMatchContract(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	_, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "hello"})
	require.NoError(t, err)

	for route, schema := range map[string]string{
		openairest.RouteCreateThread:  "CreateThreadRequest",
		openairest.RouteCreateMessage: "CreateMessageRequest",
		openairest.RouteCreateRun:     "CreateRunRequest",
	} {
		bodies := sim.Bodies(route)
		require.Len(t, bodies, 1, route)
		require.NoError(t, contract.Validate(schema, bodies[0]), route)
	}
	var msg struct{ Role, Content string }
	require.NoError(t, json.Unmarshal(sim.Bodies(openairest.RouteCreateMessage)[0], &msg))
	assert.Equal(t, "user", msg.Role)
	assert.Equal(t, "hello", msg.Content)
	var run struct {
		AssistantID string `json:"assistant_id"`
	}
	require.NoError(t, json.Unmarshal(sim.Bodies(openairest.RouteCreateRun)[0], &run))
	assert.Equal(t, assistantID, run.AssistantID)
}

func TestPollsThroughRunStatuses(t *testing.T) {
	a, sim := setup(t)
	sim.SetReply(func(_, text string) string { return "re: " + text })
	id := newThread(t, a)
	sim.Next(openairest.Script{Steps: []string{"queued", "queued", "in_progress", "in_progress"}})
	got, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "hi"})
	require.NoError(t, err)
	assert.Equal(t, "re: hi", got)
	assert.Equal(t, 4, sim.Calls(openairest.RouteGetRun), "three steps after the first, then the final status")
	assert.Equal(t, []openairest.Item{{Role: "user", Text: "hi"}, {Role: "assistant", Text: "re: hi"}}, sim.History(id))
}

func TestRunOutcomes(t *testing.T) {
	for status, wantText := range map[string]string{
		"failed":          `last_error code "rate_limit_exceeded"`,
		"cancelled":       "cancelled",
		"expired":         "expired",
		"incomplete":      `reason "max_completion_tokens"`,
		"requires_action": "requires action",
	} {
		t.Run(status, func(t *testing.T) {
			a, sim := setup(t)
			id := newThread(t, a)
			sim.Next(openairest.Script{Status: status, ErrorCode: "rate_limit_exceeded"})
			_, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "hello"})
			require.ErrorIs(t, err, ports.ErrAssistantFailed)
			assert.Contains(t, err.Error(), wantText)

			wantCancels := 0
			if status == "requires_action" {
				wantCancels = 1 // the request has no tools: the run is cancelled
			}
			assert.Equal(t, wantCancels, sim.Calls(openairest.RouteCancelRun))

			got, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "again"})
			require.NoError(t, err, "the thread takes the next message")
			assert.Equal(t, "echo: again", got)
			assert.Zero(t, sim.Overlaps())
		})
	}
}

func TestCancelledWhileRunning(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	sim.Next(openairest.Script{Delay: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := a.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: "slow"})
		done <- err
	}()
	require.Eventually(t, func() bool { return sim.Calls(openairest.RouteGetRun) > 0 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, 1, sim.Calls(openairest.RouteCancelRun), "the abandoned run is cancelled")

	got, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "next"})
	require.NoError(t, err, "the thread is free again")
	assert.Equal(t, "echo: next", got)
	assert.Zero(t, sim.Overlaps(), "never two runs at once on the thread")
}

func TestHTTPErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		status int
		want   error
	}{
		"server error": {http.StatusInternalServerError, ports.ErrUnavailable},
		"rate limited": {http.StatusTooManyRequests, ports.ErrUnavailable},
		"bad request":  {http.StatusBadRequest, ports.ErrRejected},
	} {
		t.Run(name, func(t *testing.T) {
			a, sim := setup(t)
			id := newThread(t, a)
			sim.Next(openairest.Script{HTTPStatus: tc.status})
			_, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "hello"})
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, 1, sim.Calls(openairest.RouteCreateRun), "creating a run is never retried")
		})
	}
}

func TestActiveRunRejectsMessage(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	sim.Next(openairest.Script{Delay: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := a.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: "slow"})
		done <- err
	}()
	require.Eventually(t, func() bool { return sim.Calls(openairest.RouteGetRun) > 0 }, 5*time.Second, time.Millisecond)
	_, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "too early"})
	require.ErrorIs(t, err, ports.ErrRejected, "the API refuses a message while a run is active")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestWrongKeyIsRejectedWithoutLeakingIt(t *testing.T) {
	sim := openairest.New(openairest.Options{})
	t.Cleanup(sim.Close)
	const key = "sk-wrong-secret-key"
	a := assistants.New(assistants.Options{BaseURL: sim.URL(), APIKey: key, AssistantID: assistantID})
	_, err := a.NewThread(t.Context())
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.NotContains(t, err.Error(), key)
}
