package assistants_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/openairest/chattest"
	"github.com/convgateway/gateway/test/sim/openairest/contract"
)

func TestToolLoop(t *testing.T) {
	chattest.ToolLoop(t, func(t *testing.T) chattest.Harness {
		a, sim := setup(t)
		return chattest.Harness{Assistant: a, Sim: sim, Abandoned: func(t *testing.T) {
			assert.Equal(t, 1, sim.Calls(openairest.RouteCancelRun), "the run is cancelled")
		}}
	})
}

func TestToolsDeclaredAndOutputsSubmitted(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Parallel: 2, Rounds: 2}})
	got, err := a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "find x", Tools: []ports.ToolSpec{chattest.Lookup},
		RunTool: func(_ context.Context, c ports.ToolCall) ports.ToolResult {
			return ports.ToolResult{Output: "found " + c.ID}
		},
	})
	require.NoError(t, err)
	outs := sim.ToolOutputs(id)
	require.Len(t, outs, 4)
	assert.Equal(t, "echo: found "+outs[3].CallID, got)
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
}

func TestMCPServersAndBadToolsAreRefused(t *testing.T) {
	a, sim := setup(t)
	id := newThread(t, a)
	_, err := a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "x", MCP: []ports.MCPServer{{Label: "calendar", URL: "https://mcp.example/mcp"}},
	})
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.Contains(t, err.Error(), "cannot use MCP servers (calendar)")
	assert.Contains(t, err.Error(), "Responses backend")
	run := func(context.Context, ports.ToolCall) ports.ToolResult { return ports.ToolResult{} }
	_, err = a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "x", Tools: []ports.ToolSpec{chattest.Lookup}})
	require.ErrorIs(t, err, ports.ErrRejected, "tools need a runner")
	_, err = a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "x", RunTool: run,
		Tools: []ports.ToolSpec{{Name: "t", Parameters: json.RawMessage(`"string"`)}}})
	require.ErrorIs(t, err, ports.ErrRejected, "parameters are an object schema")
	assert.Zero(t, sim.Calls(openairest.RouteCreateMessage), "refused before any API call")
}
