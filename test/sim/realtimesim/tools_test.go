package realtimesim_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

// toolEvent is the part of a tool call's server events the tests look at.
type toolEvent struct {
	Type      string `json:"type"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Delta     string `json:"delta"`
	Item      struct {
		Type      string `json:"type"`
		Status    string `json:"status"`
		CallID    string `json:"call_id"`
		Arguments string `json:"arguments"`
	} `json:"item"`
	Response struct {
		Status string            `json:"status"`
		Output []json.RawMessage `json:"output"`
	} `json:"response"`
	Error struct {
		Code    string `json:"code"`
		EventID string `json:"event_id"`
	} `json:"error"`
}

func (c *client) readTool() toolEvent {
	c.t.Helper()
	var e toolEvent
	c.readInto(&e)
	return e
}

func TestToolsDeclared(t *testing.T) {
	sim := realtimesim.New(realtimesim.Options{APIKey: apiKey})
	defer sim.Close()
	c := dial(t, sim, nil)
	require.Equal(t, "session.created", c.read().Type)
	c.send(`{"type":"session.update","session":{"type":"realtime","instructions":"Be brief.","audio":{"input":{"format":{"type":"audio/pcmu"}},"output":{"format":{"type":"audio/pcmu"}}},
		"tool_choice":"auto","tools":[
		{"type":"function","name":"check_availability","description":"Free tables.","parameters":{"type":"object","properties":{"people":{"type":"integer"}}}},
		{"type":"mcp","server_label":"calendar","server_url":"https://mcp.example.com/mcp","allowed_tools":["list_events"],"require_approval":"never","headers":{"Authorization":"Bearer t"}}]}}`)
	require.Equal(t, "session.updated", c.read().Type)
	got, err := sim.WaitSession(c.ctx)
	require.NoError(t, err)
	require.Len(t, got.Tools, 1)
	assert.Equal(t, "check_availability", got.Tools[0].Name)
	assert.Equal(t, "Free tables.", got.Tools[0].Description)
	assert.JSONEq(t, `{"type":"object","properties":{"people":{"type":"integer"}}}`, string(got.Tools[0].Parameters))
	assert.Equal(t, []ports.MCPServer{{Label: "calendar", URL: "https://mcp.example.com/mcp", AllowedTools: []string{"list_events"},
		RequireApproval: "never", Headers: map[string]string{"Authorization": "Bearer t"}}}, got.MCP)
	sess, err := sim.Latest(c.ctx)
	require.NoError(t, err)
	conf, err := sess.WaitConfig(c.ctx)
	require.NoError(t, err)
	assert.Equal(t, "auto", conf.ToolChoice)

	c.send(`{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcmu"}},"output":{"format":{"type":"audio/pcmu"}}},"tools":[{"type":"function"}]}}`)
	assert.Equal(t, "invalid_value", c.read().Error.Code, "a function without a name")
}

// TestCallTool: the events of a function call, as the GA API sends them,
// and the answers to what the client sends back.
func TestCallTool(t *testing.T) {
	hold := make(chan struct{})
	sim := realtimesim.New(realtimesim.Options{APIKey: apiKey, OnDelta: func(_ *realtimesim.Session, response, _ int, chunk []byte) []byte {
		if response == 2 { // the reply after the call
			<-hold
		}
		return chunk
	}})
	defer sim.Close()
	c := dial(t, sim, nil)
	sess := c.open(sim)
	require.NoError(t, sim.CallTool(c.ctx, ports.ToolCall{ID: "call_1", Name: "check_availability", Arguments: json.RawMessage(`{"people":2}`)}))
	var deltas string
	var types []string
	for e := c.readTool(); ; e = c.readTool() {
		if len(types) == 0 || types[len(types)-1] != e.Type {
			types = append(types, e.Type)
		}
		switch e.Type {
		case "response.output_item.added":
			assert.Equal(t, "function_call", e.Item.Type)
			assert.Equal(t, "in_progress", e.Item.Status)
		case "response.function_call_arguments.delta":
			deltas += e.Delta
		case "response.function_call_arguments.done":
			assert.Equal(t, "call_1", e.CallID)
			assert.Equal(t, "check_availability", e.Name)
			assert.JSONEq(t, `{"people":2}`, e.Arguments)
		case "response.output_item.done":
			assert.Equal(t, "completed", e.Item.Status)
			assert.Equal(t, "call_1", e.Item.CallID)
		}
		if e.Type == "response.done" {
			assert.Equal(t, "completed", e.Response.Status)
			assert.Len(t, e.Response.Output, 1, "the function call is the response's output")
			break
		}
	}
	assert.Equal(t, []string{"response.created", "response.output_item.added", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done", "response.done"}, types)
	assert.JSONEq(t, `{"people":2}`, deltas, "the deltas make the arguments")

	c.send(`{"type":"conversation.item.create","event_id":"ev_1","item":{"type":"function_call_output","call_id":"call_nobody","output":"x"}}`)
	e := c.readTool()
	assert.Equal(t, "error", e.Type, "a result for a call the model never made")
	assert.Equal(t, "ev_1", e.Error.EventID)
	c.send(`{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"3 tables"}}`)
	e = c.readTool()
	assert.Equal(t, "conversation.item.added", e.Type)
	assert.Equal(t, "function_call_output", e.Item.Type)
	assert.Equal(t, []ports.ToolResult{{CallID: "call_1", Output: "3 tables"}}, sim.ToolResults())

	// response.create while a response is in progress is refused.
	chunk := []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20)))
	done := make(chan error, 1)
	go func() { done <- sess.SayAs(c.ctx, "resp_a", "item_a", "Hi.", chunk) }()
	require.Equal(t, "response.created", c.read().Type)
	c.send(`{"type":"response.create","event_id":"ev_2"}`)
	e = c.readTool()
	assert.Equal(t, "conversation_already_has_active_response", e.Error.Code)
	assert.Equal(t, "ev_2", e.Error.EventID)
	assert.Equal(t, 1, sim.Refused())
	close(hold)
	for c.readTool().Type != "response.done" {
	}
	require.NoError(t, <-done)
	c.send(`{"type":"response.create","event_id":"ev_3"}`)
	require.Eventually(t, func() bool { return sim.Responds() == 2 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 1, sim.Refused(), "accepted once the response is done")
}
