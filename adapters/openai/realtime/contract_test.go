package realtime

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/openairest/contract"
)

// TestClientEventsMatchSchema checks every client event the adapter can send
// against OpenAI's published schema for it.
func TestClientEventsMatchSchema(t *testing.T) {
	marshal := func(v interface{ MarshalJSON() ([]byte, error) }) []byte {
		b, err := appendJSON(nil, v)
		require.NoError(t, err)
		return b
	}
	update := func(cfg ports.SpeechConfig, o Options) []byte {
		u, err := sessionUpdate(cfg, o)
		require.NoError(t, err)
		return marshal(u)
	}
	full := Options{Voice: "marin", TurnDetection: TurnSemanticVAD, TranscriptionModel: "gpt-4o-transcribe"}
	cases := []struct {
		schema string
		event  []byte
	}{
		{"RealtimeClientEventInputAudioBufferAppend", appendAudio(nil, []byte("//79/Pv6+fg="))},
		{"RealtimeClientEventInputAudioBufferAppend", appendAudio(nil, []byte(`odd "bytes"`))},
		{"RealtimeClientEventSessionUpdate", update(ports.SpeechConfig{Instructions: "Be brief."}, full)},
		{"RealtimeClientEventSessionUpdate", update(ports.SpeechConfig{}, Options{TurnDetection: TurnServerVAD})},
		{"RealtimeClientEventSessionUpdate", update(ports.SpeechConfig{}, Options{})},
		{"RealtimeClientEventSessionUpdate", update(withTools, full)},
		{"RealtimeClientEventResponseCreate", marshal(responseCreate("", ""))},
		{"RealtimeClientEventResponseCreate", marshal(responseCreate("gw_respond_1", "Greet the caller."))},
		{"RealtimeClientEventConversationItemCreate", marshal(functionCallOutput(ports.ToolResult{CallID: "call_1", Output: `{"tables":3}`}))},
		{"RealtimeClientEventConversationItemCreate", marshal(functionCallOutput(ports.ToolResult{CallID: "call_1", Error: "the tool did not answer in time"}))},
		{"RealtimeClientEventConversationItemTruncate", marshal(truncate("item_1", 1234))},
		{"RealtimeClientEventConversationItemTruncate", marshal(truncate("item_1", 0))},
	}
	for _, c := range cases {
		t.Run(c.schema, func(t *testing.T) {
			assert.NoError(t, contract.Validate(c.schema, c.event), "%s", c.event)
			assert.NoError(t, contract.Validate("RealtimeClientEvent", c.event), "%s", c.event)
		})
	}
	// The validator does reject what the API would: a truncate without
	// content_index, a beta-shaped session.
	assert.Error(t, contract.Validate("RealtimeClientEventConversationItemTruncate",
		[]byte(`{"type":"conversation.item.truncate","item_id":"item_1","audio_end_ms":5}`)))
	assert.Error(t, contract.Validate("RealtimeClientEventSessionUpdate",
		[]byte(`{"type":"session.update","session":{"modalities":["audio"],"input_audio_format":"g711_ulaw"}}`)))
}

// withTools is a configuration with every kind of tool.
var withTools = ports.SpeechConfig{
	Instructions: "Be brief.",
	Tools: []ports.ToolSpec{
		{Name: "check_availability", Description: "Free tables.", Parameters: json.RawMessage(`{"type":"object","properties":{"people":{"type":"integer"}},"required":["people"]}`)},
		{Name: "end_call", Description: "Hang up."},
	},
	MCP: []ports.MCPServer{
		{Label: "calendar", URL: "https://mcp.example.com/mcp", AllowedTools: []string{"list_events"}, Headers: map[string]string{"Authorization": "Bearer t"}},
		{Label: "docs", URL: "https://docs.example.com/mcp", RequireApproval: "always"},
	},
}

// TestSessionUpdateShape pins the GA fields the gateway depends on, which
// the schema allows but does not require.
func TestSessionUpdateShape(t *testing.T) {
	u, err := sessionUpdate(ports.SpeechConfig{Instructions: "Be brief."}, Options{
		Voice: "marin", TurnDetection: TurnSemanticVAD, TranscriptionModel: "gpt-4o-transcribe",
	})
	require.NoError(t, err)
	b, err := appendJSON(nil, u)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"session.update","session":{
		"type":"realtime","output_modalities":["audio"],"instructions":"Be brief.",
		"audio":{
			"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"semantic_vad"},"transcription":{"model":"gpt-4o-transcribe"}},
			"output":{"format":{"type":"audio/pcmu"},"voice":"marin"}}}}`, string(b))

	// Without options: server VAD, no transcription, the API's voice.
	u, err = sessionUpdate(ports.SpeechConfig{}, Options{})
	require.NoError(t, err)
	b, err = appendJSON(nil, u)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"session.update","session":{
		"type":"realtime","output_modalities":["audio"],
		"audio":{"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"server_vad"}},"output":{"format":{"type":"audio/pcmu"}}}}}`, string(b))
}

// TestToolsShape pins the declaration of tools: function tools with their
// schema as it is (an empty object schema when none), hosted MCP tools
// (approval "never" unless said), tool_choice auto.
func TestToolsShape(t *testing.T) {
	u, err := sessionUpdate(withTools, Options{})
	require.NoError(t, err)
	b, err := appendJSON(nil, u)
	require.NoError(t, err)
	var got struct {
		Session struct {
			Tools      json.RawMessage `json:"tools"`
			ToolChoice string          `json:"tool_choice"`
		} `json:"session"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "auto", got.Session.ToolChoice)
	assert.JSONEq(t, `[
		{"type":"function","name":"check_availability","description":"Free tables.",
		 "parameters":{"type":"object","properties":{"people":{"type":"integer"}},"required":["people"]}},
		{"type":"function","name":"end_call","description":"Hang up.","parameters":{"type":"object","properties":{}}},
		{"type":"mcp","server_label":"calendar","server_url":"https://mcp.example.com/mcp","allowed_tools":["list_events"],
		 "require_approval":"never","headers":{"Authorization":"Bearer t"}},
		{"type":"mcp","server_label":"docs","server_url":"https://docs.example.com/mcp","require_approval":"always"}]`, string(got.Session.Tools))

	u, err = sessionUpdate(ports.SpeechConfig{}, Options{})
	require.NoError(t, err)
	b, err = appendJSON(nil, u)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "tool", "no tools, no tool_choice")

	for name, cfg := range map[string]ports.SpeechConfig{
		"unnamed tool":      {Tools: []ports.ToolSpec{{Description: "x"}}},
		"schema not JSON":   {Tools: []ports.ToolSpec{{Name: "x", Parameters: json.RawMessage(`{"type":`)}}},
		"schema not object": {Tools: []ports.ToolSpec{{Name: "x", Parameters: json.RawMessage(`[1]`)}}},
		"MCP without URL":   {MCP: []ports.MCPServer{{Label: "x"}}},
		"MCP approval":      {MCP: []ports.MCPServer{{Label: "x", URL: "https://x", RequireApproval: "sometimes"}}},
	} {
		_, err := sessionUpdate(cfg, Options{})
		assert.ErrorIs(t, err, ports.ErrRejected, name)
	}
}

// TestResponseCreateShape: instructions for one response only when given;
// the event named when an id is given.
func TestResponseCreateShape(t *testing.T) {
	b, err := appendJSON(nil, responseCreate("", ""))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"response.create"}`, string(b))
	b, err = appendJSON(nil, responseCreate("gw_respond_1", "Greet the caller."))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"response.create","event_id":"gw_respond_1","response":{"instructions":"Greet the caller."}}`, string(b))
	b, err = appendJSON(nil, functionCallOutput(ports.ToolResult{CallID: "call_1", Output: "3 tables"}))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"3 tables"}}`, string(b))
	b, err = appendJSON(nil, functionCallOutput(ports.ToolResult{CallID: "call_1", Error: "no answer in time"}))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"{\"error\":\"no answer in time\"}"}}`, string(b))
	b, err = appendJSON(nil, truncate("item_1", 40))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"conversation.item.truncate","item_id":"item_1","content_index":0,"audio_end_ms":40}`, string(b))
}
