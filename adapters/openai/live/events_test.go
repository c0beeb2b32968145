package live

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3/live"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/livesim"
)

func marshal(t *testing.T, e interface{ MarshalJSON() ([]byte, error) }) []byte {
	t.Helper()
	b, err := e.MarshalJSON()
	require.NoError(t, err)
	return b
}

var opts = Options{Model: DefaultModel, Voice: "marin", BackendModel: "gpt-5.5"}

func start(t *testing.T, o Options, cfg ports.SpeechConfig) oai.ClientEventUnionParam {
	t.Helper()
	e, err := sessionStart(o, cfg)
	require.NoError(t, err)
	return e
}

var tools = []ports.ToolSpec{
	{Name: "check_availability", Description: "Free tables.", Parameters: json.RawMessage(`{"type":"object","properties":{"people":{"type":"integer","maximum":12345678901234567890}},"required":["people"]}`)},
	{Name: "end_call"},
}

// TestClientEventsMatchSDK checks every client event the adapter can send
// against the SDK's types, as the simulator (and the API) check them.
func TestClientEventsMatchSDK(t *testing.T) {
	events := map[string][]byte{
		"append":       appendAudio(nil, []byte("//79/Pv6+fg=")),
		"append odd":   appendAudio(nil, []byte(`odd "bytes"`)),
		"start":        marshal(t, start(t, opts, ports.SpeechConfig{Instructions: "Be brief."})),
		"start bare":   marshal(t, start(t, Options{Model: DefaultModel, BackendModel: "m"}, ports.SpeechConfig{})),
		"start tools":  marshal(t, start(t, opts, ports.SpeechConfig{Tools: tools})),
		"tool output":  marshal(t, toolOutput(ports.ToolResult{CallID: "call_1", Output: `{"tables":3}`})),
		"tool error":   marshal(t, toolOutput(ports.ToolResult{CallID: "call_1", Error: "the tool did not answer in time"})),
		"go on":        marshal(t, responseCreate()),
		"respond":      marshal(t, commentary("")),
		"respond with": marshal(t, commentary("Greet the caller.")),
		"close":        marshal(t, sessionClose()),
	}
	for name, e := range events {
		assert.NoError(t, livesim.Check(e), "%s: %s", name, e)
	}
	// The check does refuse what the API would.
	assert.ErrorContains(t, livesim.Check([]byte(`{"type":"session.commentary.append","content":"hi"}`)), "delegation_id")
	assert.ErrorContains(t, livesim.Check([]byte(`{"type":"response.cancel"}`)), "invalid_value")
	assert.ErrorContains(t, livesim.Check([]byte(`{"type":"session.start","session":{"model":"m","delegation":{"type":"responses",
		"responses":{"model":"m","tools":[{"type":"mcp","server_label":"cal","server_url":"https://mcp.example.com"}]}}}}`)),
		"unknown_parameter", "the SDK's mcp tool of the delegation names no server")
}

func TestToolEventShapes(t *testing.T) {
	assert.JSONEq(t, `{"type":"session.start","session":{"model":"gpt-live-1",
		"audio":{"format":{"type":"audio/pcmu","rate":8000},"output":{"voice":"marin"}},
		"delegation":{"type":"responses","responses":{"model":"gpt-5.5","tools":[
			{"type":"function","name":"check_availability","description":"Free tables.",
			 "parameters":{"type":"object","properties":{"people":{"type":"integer","maximum":12345678901234567890}},"required":["people"]}},
			{"type":"function","name":"end_call","parameters":{"type":"object","properties":{}}}]}}}}`,
		string(marshal(t, start(t, opts, ports.SpeechConfig{Tools: tools}))), "the schema as written, numbers exact")
	assert.JSONEq(t, `{"type":"response.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"{\"tables\":3}"}}`,
		string(marshal(t, toolOutput(ports.ToolResult{CallID: "call_1", Output: `{"tables":3}`}))))
	assert.JSONEq(t, `{"type":"response.item.create","item":{"type":"function_call_output","call_id":"call_1","output":"{\"error\":\"no answer\"}"}}`,
		string(marshal(t, toolOutput(ports.ToolResult{CallID: "call_1", Error: "no answer"}))), "a failure is an error the model can talk about")
	assert.JSONEq(t, `{"type":"response.create"}`, string(marshal(t, responseCreate())))
}

func TestSessionStartRefusesWhatDelegationCannotTake(t *testing.T) {
	_, err := sessionStart(opts, ports.SpeechConfig{MCP: []ports.MCPServer{{Label: "cal", URL: "https://mcp.example.com"}}})
	require.ErrorIs(t, err, errMCP)
	assert.Contains(t, err.Error(), "MCP")
	for _, bad := range []string{`[1]`, `"object"`, `{"type":`, `{} {}`, `null`} {
		_, err := sessionStart(opts, ports.SpeechConfig{Tools: []ports.ToolSpec{{Name: "t", Parameters: json.RawMessage(bad)}}})
		assert.ErrorContains(t, err, `tool "t"`, bad)
	}
}

// TestClientEventShapes pins what the gateway depends on and the schema
// allows without asking for.
func TestClientEventShapes(t *testing.T) {
	assert.JSONEq(t, `{"type":"session.start","session":{
		"model":"gpt-live-1","instructions":"Be brief.",
		"audio":{"format":{"type":"audio/pcmu","rate":8000},"output":{"voice":"marin"}},
		"delegation":{"type":"responses","responses":{"model":"gpt-5.5"}}}}`,
		string(marshal(t, start(t, opts, ports.SpeechConfig{Instructions: "Be brief.", CallID: "CA1"}))))
	assert.JSONEq(t, `{"type":"session.commentary.append","delegation_id":null,"content":"`+speakNow+`\n\nSay hello."}`,
		string(marshal(t, commentary("Say hello."))), "delegation_id is required: an explicit null")
	assert.JSONEq(t, `{"type":"session.close"}`, string(marshal(t, sessionClose())))
	assert.JSONEq(t, `{"type":"session.input_audio.append","audio":"AAAA"}`, string(appendAudio(nil, []byte("AAAA"))))
}

func newDecoder() *decoder { return &decoder{turns: turns{now: time.Now}, backend: newBackend()} }

func TestDecodeMapsEvents(t *testing.T) {
	d := newDecoder()
	audio := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x10}, 160))
	cases := []struct {
		event string
		want  ports.SpeechEvent
	}{
		{`{"type":"session.started","event_id":"e1","session":{"id":"s","expires_at":1,"model":"gpt-live-1"}}`, ports.SpeechEvent{Type: evStarted}},
		{`{"type":"session.output_audio.delta","delta":"` + audio + `"}`, ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: "u1", Audio: []byte(audio)}},
		{`{"type":"session.output_transcript.delta","event_id":"e2","delta":"Hi ","start_ms":0,"end_ms":20}`, ports.SpeechEvent{Type: ports.SpeechAssistantText, Utterance: "u1", Text: "Hi "}},
		{`{"type":"session.input_transcript.delta","event_id":"e3","delta":"hello","start_ms":30,"end_ms":90}`, ports.SpeechEvent{Type: ports.SpeechCallerText, Text: "hello"}},
		{`{"type":"session.output_audio.delta","delta":"` + audio + `"}`, ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: "u2", Audio: []byte(audio)}},
		{`{"type":"session.usage.updated","event_id":"e4","usage":{"seconds":1.5}}`, ports.SpeechEvent{Type: ports.SpeechUsage, Usage: ports.Usage{Duration: 1500 * time.Millisecond}}},
		{`{"type":"session.usage.updated","event_id":"e5","usage":{"seconds":2.25},"context_window":{"usage_ratio":0.1}}`, ports.SpeechEvent{Type: ports.SpeechUsage, Usage: ports.Usage{Duration: 750 * time.Millisecond}}},
		{`{"type":"error","event_id":"e6","error":{"type":"invalid_request_error","code":"unknown_parameter","message":"m","param":"x"}}`,
			ports.SpeechEvent{Type: ports.SpeechError, Err: &ports.ModelError{Type: "invalid_request_error", Code: "unknown_parameter", Message: "m"}}},
		{`{"type":"error","event_id":"e7","error":{"type":"server_error","code":"server_error","message":"boom"}}`,
			ports.SpeechEvent{Type: ports.SpeechError, Err: &ports.ModelError{Type: "server_error", Code: "server_error", Message: "boom", Fatal: true}}},
		{`{"type":"error","event_id":"e8","error":{"type":"invalid_request_error","code":"insufficient_quota","message":"pay"}}`,
			ports.SpeechEvent{Type: ports.SpeechError, Err: &ports.ModelError{Type: "invalid_request_error", Code: "insufficient_quota", Message: "pay", Fatal: true}}},
		{`{"type":"session.closed","event_id":"e9","reason":"expired","session":{},"usage":{"seconds":3}}`,
			ports.SpeechEvent{Type: evClosed, Text: "expired", Usage: ports.Usage{Duration: 750 * time.Millisecond}}},
	}
	for _, c := range cases {
		ev, err := d.decode([]byte(c.event))
		require.NoError(t, err, c.event)
		assert.Equal(t, c.want, ev, c.event)
	}
}

func TestDecodeSkipsWhatItCannotUse(t *testing.T) {
	d := newDecoder()
	assert.True(t, known["session.output_audio.delta"] && known["session.closed"] && known["response.event"], "the SDK's event types")
	for _, ignored := range []string{
		`{"type":"session.commentary.appended","event_id":"e","start_ms":1,"end_ms":1}`,
		`{"type":"session.delegation.created","event_id":"e","offset_ms":1,"delegation":{"id":"d","target":"responses"}}`,
		`{"type":"response.event","event_id":"e","event":{"type":"response.created"}}`,
		`{"type":"session.usage.updated","event_id":"e","usage":{"seconds":0}}`, // nothing new
	} {
		_, err := d.decode([]byte(ignored))
		assert.ErrorIs(t, err, wsstream.ErrIgnore, ignored)
	}
	for _, bad := range []string{
		`not json`, `[1,2]`, `{"event_id":"e"}`, `{"type":7}`,
		`{"type":"session.output_audio.delta"}`,
		`{"type":"session.output_audio.delta","delta":5}`,
		`{"type":"session.output_transcript.delta","event_id":"e","delta":"hi"}`,
		`{"type":"session.input_transcript.delta","event_id":"e","start_ms":0,"end_ms":1}`,
		`{"type":"session.usage.updated","event_id":"e","usage":{}}`,
		`{"type":"error","event_id":"e"}`,
		`{"type":"error","event_id":"e","error":"boom"}`,
		`{"type":"session.brand_new","event_id":"e"}`, // unknown to the SDK: counted
	} {
		_, err := d.decode([]byte(bad))
		assert.ErrorIs(t, err, ports.ErrInvalidInput, bad)
	}
}

var deltaSample = []byte(`{"type":"session.output_audio.delta","delta":"` +
	base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x55}, 160)) + `"}`)

// FuzzDecode checks that no server event makes the decoder panic, and that
// an audio delta it accepts agrees with encoding/json.
func FuzzDecode(f *testing.F) {
	f.Add(deltaSample)
	f.Add([]byte(`{"type":"session.output_transcript.delta","event_id":"e","delta":"a","start_ms":1,"end_ms":2}`))
	f.Add([]byte(`{"type":"session.closed","event_id":"e","reason":"expired","session":{},"usage":{"seconds":1}}`))
	f.Add([]byte(`{"type":"error","event_id":"e","error":{"type":"t","code":"c","message":"m"}}`))
	f.Add([]byte(`{"type":"response.event","event_id":"e","delegation_id":"d","event":{"type":"response.output_item.done",` +
		`"item":{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}}}`))
	f.Add([]byte(`{"type":"response.event","event_id":"e","delegation_id":null,"event":{"type":"response.completed","response":{"id":"r"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := newDecoder()
		ev, err := d.decode(b)
		if err != nil || ev.Type != ports.SpeechAudio || bytes.Contains(bytes.ToLower(b), []byte(`\u`)) {
			return
		}
		var ref struct {
			Delta *string `json:"delta"`
		}
		if json.Unmarshal(b, &ref) != nil || bytes.Count(bytes.ToLower(b), []byte(`"delta"`)) != 1 {
			return // keys encoding/json matches case-insensitively
		}
		require.NotNil(t, ref.Delta)
		assert.Equal(t, *ref.Delta, string(ev.Audio))
	})
}

func BenchmarkDecodeAudioDelta(b *testing.B) {
	d := newDecoder()
	b.ReportAllocs()
	for b.Loop() {
		if ev, err := d.decode(deltaSample); err != nil || ev.Type != ports.SpeechAudio {
			b.Fatal(ev.Type, err)
		}
	}
}

func BenchmarkEncodeAppend(b *testing.B) {
	audio := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 160)))
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendAudio(buf[:0], audio)
	}
}
