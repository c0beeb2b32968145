package livesim

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	oai "github.com/openai/openai-go/v3/live"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "sk-sim"

// client is a raw WebSocket client: it sends what a test writes and checks
// every server event it reads against the SDK's types.
type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, sim *Server) *client {
	t.Helper()
	conn, _, err := websocket.Dial(t.Context(), sim.URL(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + key}},
	})
	require.NoError(t, err)
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &client{t: t, conn: conn}
}

func (c *client) send(event string) {
	c.t.Helper()
	require.NoError(c.t, c.conn.Write(c.t.Context(), websocket.MessageText, []byte(event)))
}

// serverEvents maps every server event type to its SDK struct.
var serverEvents = variants(reflect.TypeFor[oai.ServerEventUnion]())

func (c *client) read() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	require.NoError(c.t, err)
	var v map[string]any
	require.NoError(c.t, json.Unmarshal(b, &v))
	typ, _ := v["type"].(string)
	st, ok := serverEvents[typ]
	require.True(c.t, ok, "a server event the SDK knows: %s", b)
	assert.Nil(c.t, check("", v, st), "%s", b)
	if typ == "response.event" {
		assert.Nil(c.t, checkNested(v["event"]), "%s", b)
	}
	return v
}

// nestedEvents maps the Responses stream events the simulator nests in
// response.event to the SDK's structs.
var nestedEvents = map[string]reflect.Type{
	"response.created":                      reflect.TypeFor[responses.ResponseCreatedEvent](),
	"response.completed":                    reflect.TypeFor[responses.ResponseCompletedEvent](),
	"response.output_item.added":            reflect.TypeFor[responses.ResponseOutputItemAddedEvent](),
	"response.output_item.done":             reflect.TypeFor[responses.ResponseOutputItemDoneEvent](),
	"response.function_call_arguments.done": reflect.TypeFor[responses.ResponseFunctionCallArgumentsDoneEvent](),
}

// checkNested checks a nested Responses event against the SDK's types,
// and a function_call item against responses.ResponseFunctionToolCall.
func checkNested(e any) *problem {
	obj, _ := e.(map[string]any)
	typ, _ := obj["type"].(string)
	st, ok := nestedEvents[typ]
	if !ok {
		return &problem{code: "invalid_value", param: "event.type", message: "not a Responses event the simulator sends: " + typ}
	}
	if p := check("event", obj, st); p != nil {
		return p
	}
	if item, _ := obj["item"].(map[string]any); item != nil && item["type"] == "function_call" {
		return check("event.item", item, reflect.TypeFor[responses.ResponseFunctionToolCall]())
	}
	return nil
}

const start = `{"type":"session.start","session":{"model":"gpt-live-1","instructions":"Hi",
	"audio":{"format":{"type":"audio/pcmu","rate":8000}},
	"delegation":{"type":"responses","responses":{"model":"gpt-5.5"}}}}`

func started(t *testing.T, sim *Server) *client {
	t.Helper()
	c := dial(t, sim)
	c.send(start)
	require.Equal(t, "session.started", c.read()["type"])
	return c
}

func errorOf(t *testing.T, v map[string]any) (code, param string) {
	t.Helper()
	require.Equal(t, "error", v["type"], "%v", v)
	e := v["error"].(map[string]any)
	code, _ = e["code"].(string)
	param, _ = e["param"].(string)
	return code, param
}

func TestClientEventsAreChecked(t *testing.T) {
	sim := New(Options{APIKey: key})
	defer sim.Close()
	c := dial(t, sim)

	c.send(`{"type":"session.input_audio.append","audio":"AAAA"}`)
	code, _ := errorOf(t, c.read())
	assert.Equal(t, "session_not_started", code, "session.start comes first")

	c.send(`{"type":"session.start"}`)
	code, param := errorOf(t, c.read())
	assert.Equal(t, []string{"missing_required_parameter", "session"}, []string{code, param})

	c.send(`{"type":"session.start","session":{"instructions":"Hi"}}`)
	code, param = errorOf(t, c.read())
	assert.Equal(t, []string{"missing_required_parameter", "session.model"}, []string{code, param})

	c.send(`{"type":"session.start","session":{"model":"gpt-live-1","audio":{"format":{"type":"audio/pcmu"}}}}`)
	code, param = errorOf(t, c.read())
	assert.Equal(t, []string{"missing_required_parameter", "session.audio.format.rate"}, []string{code, param}, "required in a union's variant")

	c.send(`{"type":"session.start","session":{"model":"gpt-live-1","temperature":0.8}}`)
	code, param = errorOf(t, c.read())
	assert.Equal(t, []string{"unknown_parameter", "session.temperature"}, []string{code, param})

	c.send(`{"type":"session.start","session":{"model":"gpt-live-1","audio":{"format":{"type":"audio/pcm","rate":24000}}}}`)
	code, _ = errorOf(t, c.read())
	assert.Equal(t, "invalid_value", code, "the simulator speaks mu-law only")

	c.send(start)
	assert.Equal(t, "session.started", c.read()["type"])
	c.send(start)
	code, _ = errorOf(t, c.read())
	assert.Equal(t, "session_already_started", code)

	c.send(`{"type":"response.cancel"}`)
	code, param = errorOf(t, c.read())
	assert.Equal(t, []string{"invalid_value", "type"}, []string{code, param}, "not a Live client event")

	c.send(`{"type":"session.commentary.append","content":"Say hi"}`)
	code, param = errorOf(t, c.read())
	assert.Equal(t, []string{"missing_required_parameter", "delegation_id"}, []string{code, param}, "required, even if null")

	c.send(`{"type":"session.commentary.append","content":"Say hi","delegation_id":null,"event_id":"c1"}`)
	ack := c.read()
	assert.Equal(t, "session.commentary.appended", ack["type"])
	assert.Equal(t, "c1", ack["client_event_id"])

	c.send(`{"type":"session.input_audio.append"}`)
	code, param = errorOf(t, c.read())
	assert.Equal(t, []string{"missing_required_parameter", "audio"}, []string{code, param})

	sess, err := sim.Latest(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, sess.Commentaries())
	assert.Equal(t, Config{Model: "gpt-live-1", Instructions: "Hi", Format: "audio/pcmu@8000", Delegation: "responses", BackendModel: "gpt-5.5"}, sess.Config())
}

func TestHandshakeRefusals(t *testing.T) {
	sim := New(Options{APIKey: key})
	defer sim.Close()
	for name, c := range map[string]struct {
		url, key string
		status   int
	}{
		"bad key":      {sim.URL(), "sk-other", http.StatusUnauthorized},
		"query string": {sim.URL() + "?model=gpt-live-1", key, http.StatusBadRequest},
		"other path":   {strings.TrimSuffix(sim.URL(), Path) + "/v1/realtime", key, http.StatusNotFound},
	} {
		_, resp, err := websocket.Dial(t.Context(), c.url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + c.key}}})
		require.Error(t, err, name)
		require.NotNil(t, resp, name)
		assert.Equal(t, c.status, resp.StatusCode, name)
	}
}

func TestConversation(t *testing.T) {
	sim := New(Options{APIKey: key, Gap: 50 * time.Millisecond})
	defer sim.Close()
	c := started(t, sim)
	sess, err := sim.WaitSession(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "Hi", sess.Instructions)

	done := make(chan error, 1)
	go func() { done <- sim.Say(t.Context(), "Hello there", []byte("AAAA"), []byte("//8=")) }()
	var types []string
	for len(types) < 5 {
		types = append(types, c.read()["type"].(string))
	}
	require.NoError(t, <-done)
	assert.Equal(t, []string{"session.output_audio.delta", "session.output_audio.delta",
		"session.output_transcript.delta", "session.output_transcript.delta", "session.usage.updated"}, types,
		"no utterance ids, no end of audio: transcript deltas and usage")

	go func() { done <- sim.CallerSpeaks(t.Context(), "Hi") }()
	v := c.read()
	require.NoError(t, <-done)
	assert.Equal(t, "session.input_transcript.delta", v["type"])
	assert.Equal(t, "Hi", v["delta"])

	c.send(`{"type":"session.close"}`)
	v = c.read()
	assert.Equal(t, "session.closed", v["type"])
	assert.Equal(t, "close_requested", v["reason"])
	_, _, err = c.conn.Read(t.Context())
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err), "then the socket closes")
}

func TestPeerToleratesAClientGone(t *testing.T) {
	sim := New(Options{APIKey: key})
	defer sim.Close()
	c := started(t, sim)
	sess, err := sim.Latest(t.Context())
	require.NoError(t, err)
	_ = c.conn.CloseNow()
	<-sess.Done()
	assert.NoError(t, sim.Hangup(t.Context()))
	assert.Error(t, sim.Say(t.Context(), "hi", []byte("AAAA")), "nobody to speak to")
}
