package realtimesim_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

const apiKey = "sk-test-key"

// client is a raw WebSocket client of the simulator, for what the
// gateway's adapter never sends.
type client struct {
	t    *testing.T
	ctx  context.Context
	conn *websocket.Conn
}

func dial(t *testing.T, sim *realtimesim.Server, header http.Header) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	if header == nil {
		header = http.Header{"Authorization": {"Bearer " + apiKey}}
	}
	conn, _, err := websocket.Dial(ctx, sim.URL(), &websocket.DialOptions{HTTPHeader: header})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &client{t: t, ctx: ctx, conn: conn}
}

// event is the part of a server event the tests look at.
type event struct {
	Type       string `json:"type"`
	ItemID     string `json:"item_id"`
	ResponseID string `json:"response_id"`
	AudioEndMs int    `json:"audio_end_ms"`
	Transcript string `json:"transcript"`
	Error      struct {
		Code string `json:"code"`
	} `json:"error"`
}

func (c *client) send(event string) {
	c.t.Helper()
	require.NoError(c.t, c.conn.Write(c.ctx, websocket.MessageText, []byte(event)))
}

func (c *client) read() event {
	c.t.Helper()
	var e event
	c.readInto(&e)
	return e
}

// readInto reads the next server event into v.
func (c *client) readInto(v any) {
	c.t.Helper()
	_, b, err := c.conn.Read(c.ctx)
	require.NoError(c.t, err)
	require.NoError(c.t, json.Unmarshal(b, v), "%s", b)
}

// open configures a session, with transcription, and returns it.
func (c *client) open(sim *realtimesim.Server) *realtimesim.Session {
	c.t.Helper()
	require.Equal(c.t, "session.created", c.read().Type)
	c.send(`{"type":"session.update","session":{"type":"realtime","instructions":"Be brief.","output_modalities":["audio"],"audio":{
		"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"server_vad"},"transcription":{"model":"whisper-1"}},
		"output":{"format":{"type":"audio/pcmu"},"voice":"marin"}}}}`)
	require.Equal(c.t, "session.updated", c.read().Type)
	sess, err := sim.Latest(c.ctx)
	require.NoError(c.t, err)
	return sess
}

func TestProtocolChecks(t *testing.T) {
	sim := realtimesim.New(realtimesim.Options{APIKey: apiKey})
	defer sim.Close()
	c := dial(t, sim, nil)
	sess := c.open(sim)
	conf, err := sess.WaitConfig(c.ctx)
	require.NoError(t, err)
	assert.Equal(t, realtimesim.Config{Instructions: "Be brief.", Voice: "marin", TurnDetection: "server_vad", TranscriptionModel: "whisper-1"}, conf)
	got, err := sim.WaitSession(c.ctx)
	require.NoError(t, err)
	assert.Equal(t, ports.SpeechConfig{Instructions: "Be brief."}, got, "the port's words: the instructions")

	c.send(`{"type":"response.cancel"}`)
	assert.Equal(t, "response_cancel_not_active", c.read().Error.Code, "cancel without an active response")
	assert.Equal(t, 1, sess.Cancels())

	c.send(`{"type":"conversation.item.truncate","item_id":"item_x","content_index":0,"audio_end_ms":0}`)
	assert.Equal(t, "item_not_found", c.read().Error.Code)

	chunk := []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20))) // 20 ms
	require.NoError(t, sess.SayAs(c.ctx, "resp_a", "item_a", "Hi.", chunk, chunk))
	for _, want := range []string{"response.created", "response.output_audio.delta", "response.output_audio.delta",
		"response.output_audio.done", "response.output_audio_transcript.done", "response.done"} {
		e := c.read()
		require.Equal(t, want, e.Type)
		if e.ItemID != "" {
			assert.Equal(t, "item_a", e.ItemID)
		}
	}
	c.send(`{"type":"conversation.item.truncate","item_id":"item_a","content_index":0,"audio_end_ms":41}`)
	assert.Equal(t, "invalid_value", c.read().Error.Code, "a truncation beyond the item's 40 ms")
	c.send(`{"type":"conversation.item.truncate","item_id":"item_a","content_index":0,"audio_end_ms":40}`)
	e := c.read()
	assert.Equal(t, "conversation.item.truncated", e.Type)
	assert.Equal(t, 40, e.AudioEndMs)
	assert.Equal(t, []peer.Heard{{Utterance: "item_x", Ms: 0}, {Utterance: "item_a", Ms: 41}, {Utterance: "item_a", Ms: 40}}, sim.Heard(),
		"every truncation received, refused or not")

	c.send(`{"type":"input_audio_buffer.commit_everything"}`)
	assert.Equal(t, "invalid_value", c.read().Error.Code, "an unknown client event")
	c.send(`not json`)
	assert.Equal(t, "invalid_json", c.read().Error.Code)
	c.send(`{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcm","rate":24000}}}}}`)
	assert.Equal(t, "invalid_value", c.read().Error.Code, "the simulator speaks mu-law only")

	c.send(`{"type":"response.create"}`)
	c.send(`{"type":"response.create","response":{"instructions":"Say bye."}}`)
	c.send(`{"type":"input_audio_buffer.append","audio":"` + string(chunk) + `"}`)
	require.Eventually(t, func() bool { return sess.Frames() == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 2, sim.Responds())
	assert.Equal(t, [][]byte{chunk}, sim.ReceivedAudio())
}

// TestSayNamesItsOwnItems: Say (peer.Speech) makes up a new response and
// item for each utterance.
func TestSayNamesItsOwnItems(t *testing.T) {
	sim := realtimesim.New(realtimesim.Options{APIKey: apiKey})
	defer sim.Close()
	c := dial(t, sim, nil)
	c.open(sim)
	chunk := []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20)))
	items := map[string]bool{}
	responses := map[string]bool{}
	for range 2 {
		require.NoError(t, sim.Say(c.ctx, "Hello.", chunk))
		for e := c.read(); e.Type != "response.done"; e = c.read() {
			if e.Type == "response.output_audio.delta" {
				items[e.ItemID] = true
				responses[e.ResponseID] = true
			}
			if e.Type == "response.output_audio_transcript.done" {
				assert.Equal(t, "Hello.", e.Transcript)
			}
		}
	}
	assert.Len(t, items, 2, "an item each")
	assert.Len(t, responses, 2, "a response each")
}

func TestCallerSpeaks(t *testing.T) {
	sim := realtimesim.New(realtimesim.Options{APIKey: apiKey})
	defer sim.Close()
	c := dial(t, sim, nil)
	c.open(sim)
	require.NoError(t, sim.CallerSpeaks(c.ctx, "It is me."))
	started, stopped, text := c.read(), c.read(), c.read()
	assert.Equal(t, "input_audio_buffer.speech_started", started.Type)
	assert.Equal(t, "input_audio_buffer.speech_stopped", stopped.Type)
	assert.Equal(t, "conversation.item.input_audio_transcription.completed", text.Type)
	assert.Equal(t, "It is me.", text.Transcript)
	assert.NotEmpty(t, started.ItemID)
	assert.Equal(t, started.ItemID, stopped.ItemID, "one caller item")
	assert.Equal(t, started.ItemID, text.ItemID)
}

// TestCallerSpeaksNeedsTranscription: the real API transcribes the caller
// only when asked to.
func TestCallerSpeaksNeedsTranscription(t *testing.T) {
	sim := realtimesim.New(realtimesim.Options{APIKey: apiKey})
	defer sim.Close()
	c := dial(t, sim, nil)
	require.Equal(t, "session.created", c.read().Type)
	c.send(`{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcmu"}},"output":{"format":{"type":"audio/pcmu"}}}}}`)
	require.Equal(t, "session.updated", c.read().Type)
	assert.Error(t, sim.CallerSpeaks(c.ctx, "Hello?"))
}

func TestRefusals(t *testing.T) {
	sim := realtimesim.New(realtimesim.Options{APIKey: apiKey})
	defer sim.Close()
	t.Run("the beta header", func(t *testing.T) {
		c := dial(t, sim, http.Header{"Authorization": {"Bearer " + apiKey}, "OpenAI-Beta": {"realtime=v1"}})
		assert.Equal(t, "beta_api_shape_disabled", c.read().Error.Code)
		_, _, err := c.conn.Read(c.ctx)
		assert.Equal(t, websocket.StatusCode(4000), websocket.CloseStatus(err))
	})
	for name, header := range map[string]http.Header{
		"a wrong key": {"Authorization": {"Bearer sk-wrong"}},
		"no key":      {},
	} {
		t.Run(name, func(t *testing.T) {
			_, resp, err := websocket.Dial(t.Context(), sim.URL(), &websocket.DialOptions{HTTPHeader: header})
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		})
	}
	assert.Empty(t, sim.Sessions(), "no session was opened")
}

func TestNoSession(t *testing.T) {
	sim := realtimesim.New(realtimesim.Options{})
	defer sim.Close()
	ctx := t.Context()
	assert.Error(t, sim.Say(ctx, "Hi."))
	assert.Error(t, sim.CallerSpeaks(ctx, "Hi."))
	assert.Error(t, sim.Fail(ctx, ports.ModelError{Type: "server_error"}))
	assert.Error(t, sim.Hangup(ctx))
	assert.Nil(t, sim.Heard())
	assert.Zero(t, sim.Responds())
}
