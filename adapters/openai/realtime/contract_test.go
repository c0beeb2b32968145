package realtime

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	full := Options{Voice: "marin", TurnDetection: TurnSemanticVAD, TranscriptionModel: "gpt-4o-transcribe"}
	cases := []struct {
		schema string
		event  []byte
	}{
		{"RealtimeClientEventInputAudioBufferAppend", appendAudio(nil, []byte("//79/Pv6+fg="))},
		{"RealtimeClientEventInputAudioBufferAppend", appendAudio(nil, []byte(`odd "bytes"`))},
		{"RealtimeClientEventSessionUpdate", marshal(sessionUpdate("Be brief.", full))},
		{"RealtimeClientEventSessionUpdate", marshal(sessionUpdate("", Options{TurnDetection: TurnServerVAD}))},
		{"RealtimeClientEventSessionUpdate", marshal(sessionUpdate("", Options{}))},
		{"RealtimeClientEventResponseCreate", marshal(responseCreate(""))},
		{"RealtimeClientEventResponseCreate", marshal(responseCreate("Greet the caller."))},
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

// TestSessionUpdateShape pins the GA fields the gateway depends on, which
// the schema allows but does not require.
func TestSessionUpdateShape(t *testing.T) {
	b, err := appendJSON(nil, sessionUpdate("Be brief.", Options{
		Voice: "marin", TurnDetection: TurnSemanticVAD, TranscriptionModel: "gpt-4o-transcribe",
	}))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"session.update","session":{
		"type":"realtime","output_modalities":["audio"],"instructions":"Be brief.",
		"audio":{
			"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"semantic_vad"},"transcription":{"model":"gpt-4o-transcribe"}},
			"output":{"format":{"type":"audio/pcmu"},"voice":"marin"}}}}`, string(b))

	// Without options: server VAD, no transcription, the API's voice.
	b, err = appendJSON(nil, sessionUpdate("", Options{}))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"session.update","session":{
		"type":"realtime","output_modalities":["audio"],
		"audio":{"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"server_vad"}},"output":{"format":{"type":"audio/pcmu"}}}}}`, string(b))
}

// TestResponseCreateShape: instructions for one response only when given.
func TestResponseCreateShape(t *testing.T) {
	b, err := appendJSON(nil, responseCreate(""))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"response.create"}`, string(b))
	b, err = appendJSON(nil, responseCreate("Greet the caller."))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"response.create","response":{"instructions":"Greet the caller."}}`, string(b))
	b, err = appendJSON(nil, truncate("item_1", 40))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"conversation.item.truncate","item_id":"item_1","content_index":0,"audio_end_ms":40}`, string(b))
}
