package responses_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/openairest/contract"
)

var lookup = ports.ToolSpec{
	Name: "lookup", Description: "Looks things up.",
	Parameters: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}`),
}

func TestToolCallsRunTogetherAndAnswerInOrder(t *testing.T) {
	a, sim := setup(t)
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Arguments: `{"q":"x"}`, Parallel: 3}})
	var started sync.WaitGroup
	started.Add(3)
	var mu sync.Mutex
	var ids []string
	got, err := a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "find x", Tools: []ports.ToolSpec{lookup},
		MCP: []ports.MCPServer{{Label: "calendar", URL: "https://mcp.example/mcp", AllowedTools: []string{"list_events"},
			Headers: map[string]string{"Authorization": "Bearer t"}}},
		RunTool: func(_ context.Context, c ports.ToolCall) ports.ToolResult {
			started.Done()
			started.Wait() // the three calls run at once, or this never returns
			mu.Lock()
			ids = append(ids, c.ID)
			mu.Unlock()
			assert.JSONEq(t, `{"q":"x"}`, string(c.Arguments))
			return ports.ToolResult{Output: "found " + c.ID}
		},
	})
	require.NoError(t, err)

	outs := sim.ToolOutputs(id)
	require.Len(t, outs, 3)
	assert.ElementsMatch(t, ids, []string{outs[0].CallID, outs[1].CallID, outs[2].CallID})
	for _, o := range outs {
		assert.Equal(t, "found "+o.CallID, o.Output, "each output answers its own call")
	}
	assert.Equal(t, "echo: found "+outs[2].CallID, got)

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
	fn, mcp := sent[0].Tools[0], sent[0].Tools[1]
	assert.Equal(t, map[string]any{
		"type": "function", "name": "lookup", "description": "Looks things up.", "strict": false,
		"parameters": map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}, "required": []any{"q"}},
	}, fn)
	assert.Equal(t, map[string]any{
		"type": "mcp", "server_label": "calendar", "server_url": "https://mcp.example/mcp",
		"allowed_tools": []any{"list_events"}, "require_approval": "never",
		"headers": map[string]any{"Authorization": "Bearer t"},
	}, mcp)
	assert.Equal(t, sent[0].Tools, sent[1].Tools, "every response declares the tools")
	var items []map[string]any
	require.NoError(t, json.Unmarshal(sent[1].Input, &items))
	require.Len(t, items, 3)
	for i, it := range items {
		assert.Equal(t, "function_call_output", it["type"])
		assert.Equal(t, outs[i].CallID, it["call_id"])
	}
}

func TestToolErrorIsAResult(t *testing.T) {
	a, sim := setup(t)
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
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

// assertThreadUsable checks that the conversation takes the next message.
func assertThreadUsable(t *testing.T, a interface {
	Reply(context.Context, ports.ChatRequest) (string, error)
}, id string) {
	t.Helper()
	got, err := a.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "again"})
	require.NoError(t, err, "the conversation takes the next message")
	assert.Equal(t, "echo: again", got)
}

func TestToolRoundsBoundedAnswersTheLastCalls(t *testing.T) {
	a, sim := setup(t)
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Rounds: 10}})
	runs := 0
	_, err = a.Reply(t.Context(), ports.ChatRequest{
		ThreadID: id, Text: "loop", Tools: []ports.ToolSpec{lookup}, MaxToolRounds: 2,
		RunTool: func(context.Context, ports.ToolCall) ports.ToolResult {
			runs++
			return ports.ToolResult{Output: "more"}
		},
	})
	require.ErrorIs(t, err, ports.ErrAssistantFailed)
	assert.Contains(t, err.Error(), "after 2 rounds")
	assert.Equal(t, 2, runs)
	assert.Equal(t, 3, sim.Calls(openairest.RouteCreateResponse))
	require.Equal(t, 1, sim.Calls(openairest.RouteCreateItems), "the last calls are answered without a response")
	outs := sim.ToolOutputs(id)
	require.Len(t, outs, 3)
	assert.Contains(t, outs[2].Output, "stopped before running")
	assertThreadUsable(t, a, id)
}

func TestCancelWhileToolRuns(t *testing.T) {
	a, sim := setup(t)
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup"}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err = a.Reply(ctx, ports.ChatRequest{
		ThreadID: id, Text: "slow", Tools: []ports.ToolSpec{lookup},
		RunTool: func(ctx context.Context, _ ports.ToolCall) ports.ToolResult {
			cancel()
			<-ctx.Done()
			return ports.ToolResult{Error: "cancelled"}
		},
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, sim.Calls(openairest.RouteCreateResponse), "no response after the context ended")
	require.Equal(t, 1, sim.Calls(openairest.RouteCreateItems), "the waiting call is answered")
	assertThreadUsable(t, a, id)
}

func TestToolsNeedARunnerAndAnObjectSchema(t *testing.T) {
	a, sim := setup(t)
	id, err := a.NewThread(t.Context())
	require.NoError(t, err)
	run := func(context.Context, ports.ToolCall) ports.ToolResult { return ports.ToolResult{} }
	for name, req := range map[string]ports.ChatRequest{
		"no runner":  {ThreadID: id, Text: "x", Tools: []ports.ToolSpec{lookup}},
		"bad schema": {ThreadID: id, Text: "x", Tools: []ports.ToolSpec{{Name: "t", Parameters: json.RawMessage(`[]`)}}, RunTool: run},
	} {
		_, err := a.Reply(t.Context(), req)
		require.ErrorIs(t, err, ports.ErrRejected, name)
	}
	assert.Zero(t, sim.Calls(openairest.RouteCreateResponse))
}
