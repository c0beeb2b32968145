package realtime

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/testlog"
)

// TestDecodeToolCalls: a call is reported once, at the end of its
// arguments or of its item, whichever comes first; a call cut short is
// not reported.
func TestDecodeToolCalls(t *testing.T) {
	var logs testlog.Buffer
	d := decoder{opened: true, log: slog.New(slog.NewTextHandler(&logs, nil))}
	decode := func(e string) (ports.SpeechEvent, error) {
		t.Helper()
		return d.decode([]byte(e))
	}
	want := ports.SpeechEvent{Type: ports.SpeechToolCall, Tool: ports.ToolCall{ID: "call_1", Name: "check_availability", Arguments: json.RawMessage(`{"people":2}`)}}

	ev, err := decode(`{"type":"response.function_call_arguments.done","event_id":"e","response_id":"r","item_id":"fc_1","output_index":0,"call_id":"call_1","name":"check_availability","arguments":"{\"people\":2}"}`)
	require.NoError(t, err)
	assert.Equal(t, want, ev)
	_, err = decode(`{"type":"response.output_item.done","event_id":"e","response_id":"r","output_index":0,"item":{"id":"fc_1","type":"function_call","status":"completed","name":"check_availability","call_id":"call_1","arguments":"{\"people\":2}"}}`)
	assert.ErrorIs(t, err, wsstream.ErrIgnore, "the same call again")

	// Known by its item alone; no arguments are an empty object.
	ev, err = decode(`{"type":"response.output_item.done","event_id":"e","response_id":"r","output_index":0,"item":{"id":"fc_2","type":"function_call","status":"completed","name":"end_call","call_id":"call_2","arguments":""}}`)
	require.NoError(t, err)
	assert.Equal(t, ports.SpeechEvent{Type: ports.SpeechToolCall, Tool: ports.ToolCall{ID: "call_2", Name: "end_call", Arguments: json.RawMessage(`{}`)}}, ev)

	for _, e := range []string{
		// A cancelled response ends the arguments where they were.
		`{"type":"response.function_call_arguments.done","event_id":"e","response_id":"r","item_id":"fc_3","output_index":0,"call_id":"call_3","name":"x","arguments":"{\"peo"}`,
		`{"type":"response.output_item.done","event_id":"e","response_id":"r","output_index":0,"item":{"id":"fc_3","type":"function_call","status":"incomplete","name":"x","call_id":"call_3","arguments":"{\"peo"}}`,
		`{"type":"response.output_item.done","event_id":"e","response_id":"r","output_index":0,"item":{"id":"fc_4","type":"function_call","status":"incomplete","name":"x","call_id":"call_4","arguments":"{}"}}`,
		`{"type":"response.function_call_arguments.done","event_id":"e","response_id":"r","item_id":"fc_7","output_index":0,"call_id":"call_7","name":"x","arguments":"null"}`,
		`{"type":"response.output_item.done","event_id":"e","response_id":"r","output_index":0,"item":{"id":"m","type":"message","status":"completed","role":"assistant","content":[]}}`,
		`{"type":"response.function_call_arguments.delta","event_id":"e","response_id":"r","item_id":"fc_5","output_index":0,"call_id":"call_5","delta":"{"}`,
		`{"type":"mcp_list_tools.failed","event_id":"e","item_id":"mcp_1"}`,
	} {
		_, err := decode(e)
		assert.ErrorIs(t, err, wsstream.ErrIgnore, e)
	}
	assert.Equal(t, 3, strings.Count(logs.String(), "cut short"), "one line for each of call_3, call_4, call_7")
	_, err = decode(`{"type":"response.function_call_arguments.done","event_id":"e","response_id":"r","item_id":"fc_6","output_index":0,"call_id":"","name":"x","arguments":"{}"}`)
	assert.ErrorIs(t, err, ports.ErrInvalidInput)
	assert.Contains(t, logs.String(), "MCP tool failed")
}

// TestTurns walks the state that keeps response.create away from a
// response in progress and from the caller's turn.
func TestTurns(t *testing.T) {
	t.Run("free: at once", func(t *testing.T) {
		var tr turns
		assert.NotEmpty(t, tr.resultAdded(), "no response in progress: respond now")
		assert.Empty(t, tr.resultAdded(), "one asked for and not begun: wait for it")
		tr.created()
		assert.Empty(t, tr.done(), "both were added before the response was created: it saw them")
	})
	t.Run("busy: one after", func(t *testing.T) {
		var tr turns
		tr.created()
		assert.Empty(t, tr.resultAdded())
		assert.Empty(t, tr.resultAdded())
		assert.Empty(t, tr.resultAdded())
		assert.NotEmpty(t, tr.done(), "one response.create for three results added during the response")
		assert.Empty(t, tr.done(), "asked for once")
		tr.created()
		assert.Empty(t, tr.done(), "nothing owed")
	})
	t.Run("caller speaking", func(t *testing.T) {
		var tr turns
		tr.created()
		assert.Empty(t, tr.resultAdded())
		assert.Empty(t, tr.speech(true), "a barge-in")
		assert.Empty(t, tr.done(), "the cancelled response ends while the caller speaks: wait for their turn")
		assert.NotEmpty(t, tr.speech(false), "the end of the turn")
		tr.created()
		assert.Empty(t, tr.done())
	})
	t.Run("after Respond", func(t *testing.T) {
		var tr turns
		rid := tr.respond()
		assert.Empty(t, tr.resultAdded(), "Respond's response will come")
		ours, flush := tr.refused(rid, codeActiveResponse) // a response was in progress after all
		assert.False(t, ours, "Respond's refusal is the gateway's to see")
		assert.NotEmpty(t, flush, "nothing in progress as far as the session knows: respond now")
	})
	t.Run("refused", func(t *testing.T) {
		var tr turns
		id := tr.resultAdded()
		tr.created() // turn detection's, created before the request arrived: it saw the result
		ours, flush := tr.refused(id, codeActiveResponse)
		assert.True(t, ours, "not worth reporting")
		assert.Empty(t, flush)
		assert.Empty(t, tr.done(), "nothing owed")
		ours, _ = tr.refused("client_7", codeActiveResponse)
		assert.False(t, ours, "not one of the session's events")
	})
	t.Run("unsent", func(t *testing.T) {
		var tr turns
		tr.created()
		tr.resultAdded()
		id := tr.done()
		tr.unsent(id)
		assert.NotEmpty(t, tr.resultAdded(), "a request that never left does not hold the next")
	})
}

// TestDecodeDrivesTurns: the server's events drive the requests, and the
// refusal of the session's own is not an error for the gateway.
func TestDecodeDrivesTurns(t *testing.T) {
	var d decoder
	decode := func(e string) error {
		t.Helper()
		_, err := d.decode([]byte(e))
		return err
	}
	added := `{"type":"conversation.item.added","event_id":"e","previous_item_id":null,"item":{"id":"i","type":"function_call_output","call_id":"call_1","output":"x"}}`
	require.ErrorIs(t, decode(`{"type":"response.created","event_id":"e","response":{"id":"r","status":"in_progress"}}`), wsstream.ErrIgnore)
	require.ErrorIs(t, decode(added), wsstream.ErrIgnore)
	assert.Empty(t, d.flush, "a response is in progress")
	require.ErrorIs(t, decode(`{"type":"conversation.item.added","event_id":"e","previous_item_id":null,"item":{"id":"m","type":"message","role":"user","content":[]}}`), wsstream.ErrIgnore)
	require.NoError(t, decode(`{"type":"response.done","event_id":"e","response":{"id":"r","status":"completed","usage":{"total_tokens":3}}}`))
	id := d.flush
	require.NotEmpty(t, id, "the owed response.create is due")
	d.flush = ""

	// Turn detection created a response before the request arrived.
	require.ErrorIs(t, decode(`{"type":"response.created","event_id":"e","response":{"id":"r2","status":"in_progress"}}`), wsstream.ErrIgnore)
	require.ErrorIs(t, decode(`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"conversation_already_has_active_response","message":"m","event_id":"`+id+`"}}`), wsstream.ErrIgnore)
	ev, err := d.decode([]byte(`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"conversation_already_has_active_response","message":"m","event_id":"client_7"}}`))
	require.NoError(t, err)
	assert.Equal(t, ports.SpeechError, ev.Type, "another's is")
	require.NoError(t, decode(`{"type":"response.done","event_id":"e","response":{"id":"r2","status":"completed","usage":{"total_tokens":3}}}`))
	assert.Empty(t, d.flush, "that response saw the result")

	require.NoError(t, decode(`{"type":"input_audio_buffer.speech_started","event_id":"e","item_id":"c","audio_start_ms":0}`))
	require.ErrorIs(t, decode(added), wsstream.ErrIgnore)
	assert.Empty(t, d.flush, "the caller is speaking")
	require.NoError(t, decode(`{"type":"input_audio_buffer.speech_stopped","event_id":"e","item_id":"c","audio_end_ms":900}`))
	assert.NotEmpty(t, d.flush, "their turn is over")
}
