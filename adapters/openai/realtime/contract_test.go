package realtime

import (
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
	full := ports.SpeechConfig{Instructions: "Be brief.", Voice: "marin", TurnDetection: "semantic_vad", TranscriptionModel: "gpt-4o-transcribe"}
	cases := []struct {
		schema string
		event  []byte
	}{
		{"RealtimeClientEventInputAudioBufferAppend", appendAudio(nil, []byte("//79/Pv6+fg="))},
		{"RealtimeClientEventInputAudioBufferAppend", appendAudio(nil, []byte(`odd "bytes"`))},
		{"RealtimeClientEventSessionUpdate", marshal(sessionUpdate(full))},
		{"RealtimeClientEventSessionUpdate", marshal(sessionUpdate(ports.SpeechConfig{TurnDetection: "server_vad"}))},
		{"RealtimeClientEventConversationItemCreate", marshal(userText("hello"))},
		{"RealtimeClientEventResponseCreate", marshal(responseCreate(""))},
		{"RealtimeClientEventResponseCreate", marshal(responseCreate("Greet the caller."))},
		{"RealtimeClientEventConversationItemTruncate", marshal(truncate("item_1", 1234))},
		{"RealtimeClientEventResponseCancel", marshal(cancel())},
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
	b, err := appendJSON(nil, sessionUpdate(ports.SpeechConfig{
		Instructions: "Be brief.", Voice: "marin", TurnDetection: "semantic_vad", TranscriptionModel: "gpt-4o-transcribe",
	}))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"session.update","session":{
		"type":"realtime","output_modalities":["audio"],"instructions":"Be brief.",
		"audio":{
			"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"semantic_vad"},"transcription":{"model":"gpt-4o-transcribe"}},
			"output":{"format":{"type":"audio/pcmu"},"voice":"marin"}}}}`, string(b))
}
