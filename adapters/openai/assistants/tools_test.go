package assistants_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/openai/assistants"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/openairest/contract"
)

var lookup = ports.ToolSpec{
	Name: "lookup", Description: "Looks things up.",
	Parameters: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`),
}

// assertThreadUsable checks that the thread takes the next message.
func assertThreadUsable(t *testing.T, a *assistants.Assistant, sim *openairest.Server, id string) {
	t.Helper()
	got, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "again"})
	require.NoError(t, err, "the thread takes the next message")
	assert.Equal(t, "echo: again", got)
	assert.Zero(t, sim.Overlaps())
}

func TestToolCallsRunTogetherAndAreSubmitted(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Arguments: `{"q":"x"}`, Parallel: 3, Rounds: 2}})
	var started sync.WaitGroup
	started.Add(3)
	round := func() {
		started.Done()
		started.Wait() // the three calls of the first round run at once, or this never returns
	}
	var seen sync.Map
	got, err := a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "find x", Tools: []ports.ToolSpec{lookup},
		RunTool: func(_ context.Context, c ports.ToolCall) ports.ToolResult {
			if _, again := seen.LoadOrStore(c.ID, true); again {
				t.Errorf("call %s ran twice", c.ID)
			}
			if len(sim.ToolOutputs(id)) == 0 {
				round()
			}
			assert.JSONEq(t, `{"q":"x"}`, string(c.Arguments))
			return ports.ToolResult{Output: "found " + c.ID}
		},
	})
	require.NoError(t, err)
	outs := sim.ToolOutputs(id)
	require.Len(t, outs, 6)
	for _, o := range outs {
		assert.Equal(t, "found "+o.CallID, o.Output, "each output answers its own call")
	}
	assert.Equal(t, "echo: found "+outs[5].CallID, got)
	assert.Equal(t, 2, sim.Calls(openairest.RouteSubmitToolOutputs), "one submission per round")

	runs := sim.Bodies(openairest.RouteCreateRun)
	require.Len(t, runs, 1)
	require.NoError(t, contract.Validate("CreateRunRequest", runs[0]))
	var run struct {
		Tools []map[string]any `json:"tools"`
	}
	require.NoError(t, json.Unmarshal(runs[0], &run))
	assert.Equal(t, []map[string]any{{"type": "function", "function": map[string]any{
		"name": "lookup", "description": "Looks things up.", "strict": false,
		"parameters": map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}},
	}}}, run.Tools)
	assertThreadUsable(t, a, sim, id)
}

func TestToolErrorIsAResult(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup"}})
	got, err := a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "find", Tools: []ports.ToolSpec{lookup},
		RunTool: func(context.Context, ports.ToolCall) ports.ToolResult {
			return ports.ToolResult{Error: "the tool did not answer in time"}
		},
	})
	require.NoError(t, err, "a failed tool is something the model talks about")
	assert.Equal(t, `echo: {"error":"the tool did not answer in time"}`, got)
}

func TestToolRoundsBoundedCancelsTheRun(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Rounds: 10}})
	runs := 0
	_, err := a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "loop", Tools: []ports.ToolSpec{lookup}, MaxToolRounds: 2,
		RunTool: func(context.Context, ports.ToolCall) ports.ToolResult {
			runs++
			return ports.ToolResult{Output: "more"}
		},
	})
	require.ErrorIs(t, err, ports.ErrAssistantFailed)
	assert.Contains(t, err.Error(), "after 2 rounds")
	assert.Equal(t, 2, runs)
	assert.Equal(t, 1, sim.Calls(openairest.RouteCancelRun))
	assertThreadUsable(t, a, sim, id)
}

func TestCancelWhileToolRuns(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup"}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := a.Reply(ctx, ports.ChatRequest{
		ThreadID: id, Text: "slow", Tools: []ports.ToolSpec{lookup},
		RunTool: func(ctx context.Context, _ ports.ToolCall) ports.ToolResult {
			cancel()
			<-ctx.Done()
			return ports.ToolResult{Error: "cancelled"}
		},
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, sim.Calls(openairest.RouteSubmitToolOutputs), "nothing submitted after the context ended")
	assert.Equal(t, 1, sim.Calls(openairest.RouteCancelRun), "the abandoned run is cancelled")
	assertThreadUsable(t, a, sim, id)
}

func TestMCPServersAreRefused(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	_, err := a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "x", MCP: []ports.MCPServer{{Label: "calendar", URL: "https://mcp.example/mcp"}},
	})
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.Contains(t, err.Error(), "cannot use MCP servers (calendar)")
	assert.Contains(t, err.Error(), "Responses backend")
	run := func(context.Context, ports.ToolCall) ports.ToolResult { return ports.ToolResult{} }
	_, err = a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "x", Tools: []ports.ToolSpec{lookup}})
	require.ErrorIs(t, err, ports.ErrRejected, "tools need a runner")
	_, err = a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "x", RunTool: run,
		Tools: []ports.ToolSpec{{Name: "t", Parameters: json.RawMessage(`"string"`)}}})
	require.ErrorIs(t, err, ports.ErrRejected, "parameters are an object schema")
	assert.Zero(t, sim.Calls(openairest.RouteCreateMessage), "refused before any API call")
}
