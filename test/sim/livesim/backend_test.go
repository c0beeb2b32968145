package livesim

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

const startWithTools = `{"type":"session.start","session":{"model":"gpt-live-1",
	"audio":{"format":{"type":"audio/pcmu","rate":8000}},
	"delegation":{"type":"responses","responses":{"model":"gpt-5.5","tools":[
		{"type":"function","name":"check_availability","description":"Free tables.",
		 "parameters":{"type":"object","properties":{"people":{"type":"integer"}}}},
		{"type":"function","name":"end_call"}]}}}}`

// startTools starts a session with startWithTools.
func startTools(t *testing.T) (*client, *Session) {
	t.Helper()
	sim := New(Options{APIKey: key})
	t.Cleanup(sim.Close)
	c := dial(t, sim)
	c.send(startWithTools)
	require.Equal(t, "session.started", c.read()["type"])
	sess, err := sim.Latest(t.Context())
	require.NoError(t, err)
	return c, sess
}

// nested returns the Responses event a response.event carries.
func nested(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	require.Equal(t, "response.event", v["type"], "%v", v)
	e, ok := v["event"].(map[string]any)
	require.True(t, ok, "%v", v)
	return e
}

func TestToolsAreDeclared(t *testing.T) {
	sim := New(Options{APIKey: key})
	defer sim.Close()
	c := dial(t, sim)
	c.send(`{"type":"session.start","session":{"model":"gpt-live-1","delegation":{"type":"responses","responses":{"model":"m",
		"tools":[{"type":"mcp","server_label":"cal","server_url":"https://mcp.example.com/mcp"}]}}}}`)
	code, param := errorOf(t, c.read())
	assert.Equal(t, []string{"unknown_parameter", "session.delegation.responses.tools.server_label"}, []string{code, param},
		"the SDK's mcp tool of a delegation names no server")

	c.send(startWithTools)
	require.Equal(t, "session.started", c.read()["type"])
	cfg, err := sim.WaitSession(t.Context())
	require.NoError(t, err)
	require.Len(t, cfg.Tools, 2)
	assert.Equal(t, "check_availability", cfg.Tools[0].Name)
	assert.Equal(t, "Free tables.", cfg.Tools[0].Description)
	assert.JSONEq(t, `{"type":"object","properties":{"people":{"type":"integer"}}}`, string(cfg.Tools[0].Parameters))
	assert.Equal(t, ports.ToolSpec{Name: "end_call"}, cfg.Tools[1])
}

func TestToolCallRoundTrip(t *testing.T) {
	c, sess := startTools(t)

	call := ports.ToolCall{ID: "call_1", Name: "check_availability", Arguments: json.RawMessage(`{"people":2}`)}
	require.NoError(t, sess.CallToolHeld(t.Context(), call))
	created := c.read()
	require.Equal(t, "session.delegation.created", created["type"])
	delegation := created["delegation"].(map[string]any)
	assert.Equal(t, "responses", delegation["target"])
	var kinds []string
	var item map[string]any
	for len(kinds) < 4 {
		v := c.read()
		assert.Equal(t, delegation["id"], v["delegation_id"], "every backend event names the delegation")
		e := nested(t, v)
		kinds = append(kinds, e["type"].(string))
		if e["type"] == "response.output_item.done" {
			item = e["item"].(map[string]any)
		}
	}
	assert.Equal(t, []string{"response.created", "response.output_item.added", "response.function_call_arguments.done",
		"response.output_item.done"}, kinds)
	assert.Equal(t, map[string]any{"type": "function_call", "id": item["id"], "call_id": "call_1",
		"name": "check_availability", "arguments": `{"people":2}`, "status": "completed"}, item)

	c.send(`{"type":"response.item.create","event_id":"o1","item":{"type":"function_call_output","call_id":"nope","output":"x"}}`)
	code, param := errorOf(t, c.read())
	assert.Equal(t, []string{"invalid_value", "item.call_id"}, []string{code, param}, "a call the backend did not make")

	c.send(`{"type":"response.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"{\"tables\":3}"}}`)
	c.send(`{"type":"response.create","event_id":"r1"}`)
	code, _ = errorOf(t, c.read())
	assert.Equal(t, codeInProgress, code, "not while the response is in progress")
	assert.Equal(t, []ports.ToolResult{{CallID: "call_1", Output: `{"tables":3}`}}, sess.ToolResults())

	require.NoError(t, sess.CompleteResponse(t.Context()))
	assert.Equal(t, "response.completed", nested(t, c.read())["type"])
	c.send(`{"type":"response.create"}`)
	assert.Equal(t, "response.created", nested(t, c.read())["type"])
	assert.Equal(t, "response.completed", nested(t, c.read())["type"])
	assert.Equal(t, 1, sess.Creates())

	c.send(`{"type":"response.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"again"}}`)
	code, _ = errorOf(t, c.read())
	assert.Equal(t, "invalid_value", code, "a call has one result")
	assert.Equal(t, []string{"invalid_value", codeInProgress, "invalid_value"}, sess.Refusals())
}

func TestParallelCallsInOneResponse(t *testing.T) {
	c, sess := startTools(t)
	require.NoError(t, sess.CallToolHeld(t.Context(), ports.ToolCall{ID: "a", Name: "end_call"}, ports.ToolCall{ID: "b", Name: "end_call"}))
	require.NoError(t, sess.CompleteResponse(t.Context()))
	var calls []string
	var indexes []float64
	for {
		v := c.read()
		if v["type"] != "response.event" {
			continue
		}
		e := nested(t, v)
		if e["type"] == "response.output_item.done" {
			calls = append(calls, e["item"].(map[string]any)["call_id"].(string))
			indexes = append(indexes, e["output_index"].(float64))
			assert.Equal(t, "{}", e["item"].(map[string]any)["arguments"], "no arguments: an empty object")
		}
		if e["type"] == "response.completed" {
			break
		}
	}
	assert.Equal(t, []string{"a", "b"}, calls)
	assert.Equal(t, []float64{0, 1}, indexes)
}

func TestBackendNeedsResponsesDelegation(t *testing.T) {
	sim := New(Options{APIKey: key})
	defer sim.Close()
	c := dial(t, sim)
	c.send(`{"type":"session.start","session":{"model":"gpt-live-1","audio":{"format":{"type":"audio/pcmu","rate":8000}},"delegation":{"type":"client"}}}`)
	require.Equal(t, "session.started", c.read()["type"])
	for _, cmd := range []string{`{"type":"response.create"}`,
		`{"type":"response.item.create","item":{"type":"function_call_output","call_id":"c","output":"x"}}`} {
		c.send(cmd)
		code, _ := errorOf(t, c.read())
		assert.Equal(t, codeNoDelegation, code, cmd)
	}
	assert.Error(t, sim.CallTool(t.Context(), ports.ToolCall{ID: "c", Name: "t"}))
}

// The check of nested events does refuse what the SDK's types would not
// carry.
func TestNestedEventsAreChecked(t *testing.T) {
	for event, code := range map[string]string{
		`{"type":"response.created","sequence_number":1,"response":{"id":"r"}}`:                                                                 "missing_required_parameter",
		`{"type":"response.output_item.done","sequence_number":1,"output_index":0,"item":{"type":"function_call","name":"f","arguments":"{}"}}`: "missing_required_parameter",
		`{"type":"response.brand_new"}`: "invalid_value",
	} {
		var v any
		require.NoError(t, json.Unmarshal([]byte(event), &v))
		p := checkNested(v)
		require.NotNil(t, p, event)
		assert.Equal(t, code, p.code, event)
	}
}
