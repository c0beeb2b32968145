package responses_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/openai/responses"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/openairest/contract"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func setup(t *testing.T) (*responses.Assistant, *openairest.Server) {
	t.Helper()
	sim := openairest.New(openairest.Options{})
	t.Cleanup(sim.Close)
	a := responses.New(responses.Options{
		BaseURL:      sim.URL(),
		APIKey:       sim.APIKey(),
		Model:        "gpt-4.1-mini",
		Instructions: "Be brief.",
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return a, sim
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
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	_, err = a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "hello"})
	require.NoError(t, err)

	convs := sim.Bodies(openairest.RouteCreateConversation)
	require.Len(t, convs, 1)
	require.NoError(t, contract.Validate("CreateConversationBody", convs[0]))
	resps := sim.Bodies(openairest.RouteCreateResponse)
	require.Len(t, resps, 1)
	require.NoError(t, contract.Validate("CreateResponse", resps[0]))

	var sent struct {
		Model        string `json:"model"`
		Instructions string `json:"instructions"`
		Input        string `json:"input"`
		Conversation string `json:"conversation"`
	}
	require.NoError(t, json.Unmarshal(resps[0], &sent))
	assert.Equal(t, "gpt-4.1-mini", sent.Model)
	assert.Equal(t, "Be brief.", sent.Instructions)
	assert.Equal(t, "hello", sent.Input)
	assert.Equal(t, id, sent.Conversation)
}

func TestConversationKeepsHistory(t *testing.T) {
	a, sim := setup(t)
	sim.SetReply(func(_, text string) string { return "re: " + text })
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	for _, text := range []string{"one", "two"} {
		got, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: text})
		require.NoError(t, err)
		assert.Equal(t, "re: "+text, got)
	}
	assert.Equal(t, []openairest.Item{
		{Role: "user", Text: "one"}, {Role: "assistant", Text: "re: one"},
		{Role: "user", Text: "two"}, {Role: "assistant", Text: "re: two"},
	}, sim.History(id))
}

func TestReplyErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		script openairest.Script
		reply  string // what the model says (the echo if empty)
		want   error
	}{
		"server error":   {script: openairest.Script{HTTPStatus: http.StatusInternalServerError}, want: ports.ErrUnavailable},
		"rate limited":   {script: openairest.Script{HTTPStatus: http.StatusTooManyRequests, ErrorCode: "rate_limit_exceeded"}, want: ports.ErrUnavailable},
		"bad request":    {script: openairest.Script{HTTPStatus: http.StatusBadRequest, ErrorCode: "invalid_value"}, want: ports.ErrRejected},
		"failed":         {script: openairest.Script{Status: "failed", ErrorCode: "server_error"}, want: ports.ErrAssistantFailed},
		"incomplete":     {script: openairest.Script{Status: "incomplete"}, want: ports.ErrAssistantFailed},
		"no output text": {script: openairest.Script{}, reply: " ", want: ports.ErrAssistantFailed},
	} {
		t.Run(name, func(t *testing.T) {
			a, sim := setup(t)
			if tc.reply != "" {
				sim.SetReply(func(string, string) string { return strings.TrimSpace(tc.reply) })
			}
			id, err := a.NewThread(t.Context())
			require.NoError(t, err)
			sim.Next(tc.script)
			_, err = a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "hello"})
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, 1, sim.Calls(openairest.RouteCreateResponse), "a reply is never retried")
		})
	}
}

func TestWrongKeyIsRejectedWithoutLeakingIt(t *testing.T) {
	sim := openairest.New(openairest.Options{})
	t.Cleanup(sim.Close)
	const key = "sk-wrong-secret-key"
	a := responses.New(responses.Options{BaseURL: sim.URL(), APIKey: key, Model: "m"})
	_, err := a.NewThread(t.Context())
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.NotContains(t, err.Error(), key)
	assert.NotContains(t, err.Error(), sim.APIKey())
}

func TestNewThreadRetriesTransientFailures(t *testing.T) {
	a, sim := setup(t)
	sim.FailNextRequest(http.StatusServiceUnavailable, "")
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	assert.NotEmpty(t, id)
	assert.Equal(t, 2, sim.Calls(openairest.RouteCreateConversation))
}

func TestNetworkFailureIsUnavailable(t *testing.T) {
	sim := openairest.New(openairest.Options{})
	url := sim.URL()
	sim.Close()
	a := responses.New(responses.Options{BaseURL: url, APIKey: "k", Model: "m"})
	_, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: "conv_1", Text: "hello"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
}

func TestCancelWhileWaiting(t *testing.T) {
	a, sim := setup(t)
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	sim.Next(openairest.Script{Delay: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = a.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: "slow"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
