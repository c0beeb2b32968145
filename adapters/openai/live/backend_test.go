package live

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
)

// wrap puts a Responses stream event in a response.event of delegation d.
func wrap(d, event string) []byte {
	return []byte(`{"type":"response.event","event_id":"e","delegation_id":` + d + `,"event":` + event + `}`)
}

func lifecycle(typ, id string) string {
	return `{"type":"` + typ + `","sequence_number":1,"response":{"id":"` + id + `","object":"response","status":"in_progress","output":[]}}`
}

func callDone(callID, args string) string {
	return `{"type":"response.output_item.done","sequence_number":3,"output_index":0,"item":{"type":"function_call","id":"fc_1",` +
		`"call_id":"` + callID + `","name":"check_availability","arguments":` + args + `,"status":"completed"}}`
}

func TestDecodeFunctionCall(t *testing.T) {
	d := newDecoder()
	ev, err := d.decode(wrap(`"del_1"`, callDone("call_1", `"{\"people\":2}"`)))
	require.NoError(t, err)
	assert.Equal(t, ports.SpeechEvent{Type: ports.SpeechToolCall, Tool: ports.ToolCall{
		ID: "call_1", Name: "check_availability", Arguments: json.RawMessage(`{"people":2}`)}}, ev)

	_, err = d.decode(wrap(`"del_1"`, callDone("call_1", `"{\"people\":2}"`)))
	assert.ErrorIs(t, err, wsstream.ErrIgnore, "one SpeechToolCall per call")

	ev, err = d.decode(wrap(`null`, callDone("call_2", `""`)))
	require.NoError(t, err)
	assert.JSONEq(t, `{}`, string(ev.Tool.Arguments), "no arguments: an empty object")

	for _, ignored := range []string{
		`{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"type":"function_call","call_id":"call_3","name":"f","arguments":""}}`,
		`{"type":"response.function_call_arguments.done","sequence_number":2,"output_index":0,"item_id":"fc_1","arguments":"{}"}`,
		`{"type":"response.output_item.done","sequence_number":2,"output_index":0,"item":{"type":"message","id":"m","role":"assistant","status":"completed","content":[]}}`,
		`{"type":"response.output_text.delta","sequence_number":2,"delta":"It"}`,
	} {
		_, err := d.decode(wrap(`"del_1"`, ignored))
		assert.ErrorIs(t, err, wsstream.ErrIgnore, ignored)
	}
	for _, bad := range []string{
		callDone("", `"{}"`),
		`{"type":"response.output_item.done","item":{"type":"function_call","call_id":"c","arguments":"{}"}}`,
		`{"type":"response.output_item.done","item":{"type":"function_call","call_id":"c","name":"f"}}`,
		`{"type":"response.output_item.done","item":"function_call"}`,
		`"response.output_item.done"`,
	} {
		_, err := d.decode(wrap(`"del_1"`, bad))
		assert.ErrorIs(t, err, ports.ErrInvalidInput, bad)
	}
	_, err = d.decode([]byte(`{"type":"response.event","event_id":"e"}`))
	assert.ErrorIs(t, err, ports.ErrInvalidInput, "no event")
}

func TestDecodeTracksDelegatedResponses(t *testing.T) {
	d := newDecoder()
	step := func(event string) ports.SpeechEventType {
		ev, err := d.decode(wrap(`"del_1"`, event))
		if err != nil {
			require.ErrorIs(t, err, wsstream.ErrIgnore, event)
		}
		return ev.Type
	}
	assert.Zero(t, step(lifecycle("response.created", "resp_1")))
	assert.Zero(t, step(lifecycle("response.created", "resp_2")), "two delegations at once")
	assert.Zero(t, step(lifecycle("response.in_progress", "resp_1")))
	assert.Zero(t, step(lifecycle("response.completed", "resp_1")), "one still runs")
	assert.Equal(t, evBackendIdle, step(lifecycle("response.failed", "resp_2")), "the last one ended")
	assert.Zero(t, step(lifecycle("response.queued", "resp_3")))
	assert.Equal(t, evBackendIdle, step(lifecycle("response.incomplete", "resp_3")))

	// A snapshot without an id is the delegation's.
	assert.Zero(t, step(`{"type":"response.created","sequence_number":1}`))
	assert.Equal(t, evBackendIdle, step(`{"type":"response.completed","sequence_number":2}`))
}

// The ordering rules: a response.create follows results only when no
// delegated response is in progress and every call handed over has its
// result, once per batch.
func TestBackendOrdering(t *testing.T) {
	t.Run("result during the response", func(t *testing.T) {
		b := newBackend()
		b.started("resp_1")
		require.True(t, b.call("call_1"))
		assert.False(t, b.answered("call_1"), "the response is in progress")
		require.True(t, b.ended("resp_1"))
		assert.True(t, b.idle(), "now it has ended")
		assert.False(t, b.idle(), "once")
	})
	t.Run("result after the response", func(t *testing.T) {
		b := newBackend()
		b.started("resp_1")
		require.True(t, b.call("call_1"))
		require.True(t, b.ended("resp_1"))
		assert.False(t, b.idle(), "nothing owed yet")
		assert.True(t, b.answered("call_1"))
	})
	t.Run("parallel calls", func(t *testing.T) {
		b := newBackend()
		require.True(t, b.call("a"))
		require.True(t, b.call("b"))
		assert.False(t, b.answered("a"), "b has no result yet")
		assert.True(t, b.answered("b"), "one response.create for both")
		assert.False(t, b.idle())
	})
	t.Run("another delegation starts meanwhile", func(t *testing.T) {
		b := newBackend()
		require.True(t, b.call("a"))
		b.started("resp_2")
		assert.False(t, b.answered("a"))
		assert.True(t, b.ended("resp_2"))
		assert.True(t, b.idle())
	})
	t.Run("unknown and repeated calls", func(t *testing.T) {
		b := newBackend()
		assert.False(t, b.answered("nope"), "a call never handed over asks for no response")
		require.True(t, b.call("a"))
		assert.False(t, b.call("a"), "the same call twice")
		assert.True(t, b.answered("a"))
		assert.False(t, b.answered("a"), "answered already")
	})
}
