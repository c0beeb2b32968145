package responses_test

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
			assert.Equal(t, 1, sim.Calls(openairest.RouteCreateItems), "the waiting calls are answered without a response")
		}}
	})
}

func TestToolsDeclaredAndOutputsSent(t *testing.T) {
	a, sim := setup(t)
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Parallel: 2}})
	_, err = a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "find x", Tools: []ports.ToolSpec{chattest.Lookup},
		MCP: []ports.MCPServer{{Label: "calendar", URL: "https://mcp.example/mcp", AllowedTools: []string{"list_events"},
			Headers: map[string]string{"Authorization": "Bearer t"}}},
		RunTool: func(_ context.Context, c ports.ToolCall) ports.ToolResult {
			return ports.ToolResult{Output: "found " + c.ID}
		},
	})
	require.NoError(t, err)

	bodies := sim.Bodies(openairest.RouteCreateResponse)
	require.Len(t, bodies, 2)
	type body struct {
		Conversation string `json:"conversation"`
		Tools        []map[string]any
		Input        json.RawMessage
	}
	sent := make([]body, len(bodies))
	for i, b := range bodies {
		require.NoError(t, contract.Validate("CreateResponse", b), string(b))
		require.NoError(t, json.Unmarshal(b, &sent[i]))
	}
	assert.Equal(t, id, sent[1].Conversation, "the outputs go to the same conversation")
	require.Len(t, sent[0].Tools, 2)
	assert.Equal(t, map[string]any{
		"type": "function", "name": "lookup", "description": "Looks things up.", "strict": false,
		"parameters": map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}},
	}, sent[0].Tools[0])
	assert.Equal(t, map[string]any{
		"type": "mcp", "server_label": "calendar", "server_url": "https://mcp.example/mcp",
		"allowed_tools": []any{"list_events"}, "require_approval": "never",
		"headers": map[string]any{"Authorization": "Bearer t"},
	}, sent[0].Tools[1])
	assert.Equal(t, sent[0].Tools, sent[1].Tools, "every response declares the tools")

	outs := sim.ToolOutputs(id)
	require.Len(t, outs, 2)
	var items []map[string]any
	require.NoError(t, json.Unmarshal(sent[1].Input, &items))
	require.Len(t, items, 2)
	for i, it := range items {
		assert.Equal(t, map[string]any{"type": "function_call_output", "call_id": outs[i].CallID, "output": "found " + outs[i].CallID}, it)
	}
}

func TestRoundsBoundedSaysWhy(t *testing.T) {
	a, sim := setup(t)
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Rounds: 3}})
	_, err = a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "loop", Tools: []ports.ToolSpec{chattest.Lookup}, MaxToolRounds: 1,
		RunTool: func(context.Context, ports.ToolCall) ports.ToolResult { return ports.ToolResult{Output: "more"} },
	})
	require.ErrorIs(t, err, ports.ErrAssistantFailed)
	outs := sim.ToolOutputs(id)
	require.Len(t, outs, 2)
	assert.JSONEq(t, `{"error":"the gateway stopped before running this tool"}`, outs[1].Output,
		"the call not run is answered as such")
}

func TestToolsNeedARunnerAndAnObjectSchema(t *testing.T) {
	a, sim := setup(t)
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	run := func(context.Context, ports.ToolCall) ports.ToolResult { return ports.ToolResult{} }
	for name, req := range map[string]ports.ChatRequest{
		"no runner":  {ThreadID: id, Text: "x", Tools: []ports.ToolSpec{chattest.Lookup}},
		"bad schema": {ThreadID: id, Text: "x", Tools: []ports.ToolSpec{{Name: "t", Parameters: json.RawMessage(`[]`)}}, RunTool: run},
	} {
		_, err := a.Reply(t.Context(), req)
		require.ErrorIs(t, err, ports.ErrRejected, name)
	}
	assert.Zero(t, sim.Calls(openairest.RouteCreateResponse))
}
