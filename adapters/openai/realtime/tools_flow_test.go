package realtime_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

// holdResponse makes the simulator's response number n (from 1) wait after
// its first audio chunk until the returned release is called (it is called
// when the test ends, too): a response in progress for as long as a test
// needs.
func holdResponse(t *testing.T, opts *realtimesim.Options, n int) (release func()) {
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	opts.OnDelta = func(_ *realtimesim.Session, response, index int, chunk []byte) []byte {
		if response == n && index == 1 {
			<-gate
		}
		return chunk
	}
	return release
}

// recvType receives events until one of type typ, and returns it.
func recvType(t *testing.T, s ports.SpeechSession, typ ports.SpeechEventType) ports.SpeechEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		require.NotEqual(t, ports.SpeechError, ev.Type, "no error reaches the gateway: %+v", ev.Err)
		if ev.Type == typ {
			return ev
		}
	}
}

// processed waits until the simulator has read everything the session sent
// so far: the audio frame sent now is read after it.
func processed(t *testing.T, s ports.SpeechSession, sess *realtimesim.Session) {
	t.Helper()
	frames := sess.Frames()
	require.NoError(t, s.AppendAudio(t.Context(), []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20)))))
	require.Eventually(t, func() bool { return sess.Frames() > frames }, 5*time.Second, time.Millisecond)
}

// callTools makes the model call each tool and returns the calls the
// session reported.
func callTools(t *testing.T, sim *realtimesim.Server, s ports.SpeechSession, names ...string) []ports.ToolCall {
	t.Helper()
	var got []ports.ToolCall
	for _, name := range names {
		require.NoError(t, sim.CallTool(t.Context(), ports.ToolCall{Name: name, Arguments: json.RawMessage(`{"people":2}`)}))
		ev := recvType(t, s, ports.SpeechToolCall)
		assert.Equal(t, name, ev.Tool.Name)
		assert.JSONEq(t, `{"people":2}`, string(ev.Tool.Arguments))
		got = append(got, ev.Tool)
	}
	return got
}

// TestToolResultsWaitForResponse: results given while a response is in
// progress go to the conversation at once, but the model is asked to go on
// with them only when it is done, with one response.create for all.
func TestToolResultsWaitForResponse(t *testing.T) {
	var opts realtimesim.Options
	release := holdResponse(t, &opts, 3) // after the two calls' responses
	sim, model, _ := newSim(t, opts)
	t.Cleanup(release)
	s := open(t, model)
	sess, err := sim.Latest(t.Context())
	require.NoError(t, err)
	calls := callTools(t, sim, s, "check_availability", "book_table")

	chunk := []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20)))
	said := make(chan error, 1)
	go func() { said <- sim.Say(t.Context(), "One moment.", chunk, chunk) }()
	recvType(t, s, ports.SpeechAudio) // the response is in progress
	for _, c := range calls {
		require.NoError(t, s.ToolResult(t.Context(), ports.ToolResult{CallID: c.ID, Output: c.Name + " done"}))
	}
	processed(t, s, sess)
	// The session reads the items' confirmations, then anything it sent
	// in answer is read by the simulator before the next frame.
	require.NoError(t, sess.Raw(t.Context(), []byte(`{"type":"conversation.item.input_audio_transcription.completed","event_id":"e_mark","item_id":"mark","content_index":0,"transcript":"mark"}`)))
	recvType(t, s, ports.SpeechCallerText)
	processed(t, s, sess)
	assert.Equal(t, []ports.ToolResult{{CallID: calls[0].ID, Output: "check_availability done"}, {CallID: calls[1].ID, Output: "book_table done"}},
		sim.ToolResults(), "the results went at once")
	assert.Zero(t, sim.Responds(), "no response.create while a response is in progress")

	release()
	recvType(t, s, ports.SpeechUsage) // the response is done
	require.NoError(t, <-said)
	processed(t, s, sess)
	assert.Equal(t, 1, sim.Responds(), "one response.create for both results, after the response")
	assert.Zero(t, sim.Refused())
}

// TestToolResultWhenFree: a result given while the model is free is
// answered with a response.create at once, and the model speaks again.
func TestToolResultWhenFree(t *testing.T) {
	sim, model, _ := newSim(t, realtimesim.Options{Auto: &realtimesim.Auto{
		Reply: mulaw.Tone(440, 40), Transcript: "hello", ChunkEvery: time.Millisecond, SayToolOutputs: true,
	}})
	s := open(t, model)
	calls := callTools(t, sim, s, "check_availability")
	recvType(t, s, ports.SpeechUsage) // the call's response is done
	require.NoError(t, s.ToolResult(t.Context(), ports.ToolResult{CallID: calls[0].ID, Output: "3 tables"}))
	ev := recvType(t, s, ports.SpeechAssistantText)
	assert.Equal(t, "3 tables", ev.Text, "the model goes on with the result")
	assert.Equal(t, 1, sim.Responds())
	assert.Zero(t, sim.Refused())

	// A failed run is the model's to talk about.
	calls = callTools(t, sim, s, "book_table")
	require.NoError(t, s.ToolResult(t.Context(), ports.ToolResult{CallID: calls[0].ID, Error: "the tool did not answer in time"}))
	ev = recvType(t, s, ports.SpeechAssistantText)
	assert.JSONEq(t, `{"error":"the tool did not answer in time"}`, ev.Text)
}

// TestBargeInDuringToolRun: the caller talks over the assistant while a
// tool runs; the result arrives during the interrupted response. It is
// not lost: the response after the caller's turn goes on with it, and no
// error reaches the gateway.
func TestBargeInDuringToolRun(t *testing.T) {
	opts := realtimesim.Options{Auto: &realtimesim.Auto{
		Reply: mulaw.Tone(440, 2000), Transcript: "hello", CallerTranscript: "wait",
		Silence: 40 * time.Millisecond, ChunkEvery: time.Millisecond, SayToolOutputs: true,
	}}
	release := holdResponse(t, &opts, 2) // the holding phrase
	sim, model, _ := newSim(t, opts)
	t.Cleanup(release)
	s := open(t, model)
	calls := callTools(t, sim, s, "check_availability")

	require.NoError(t, s.Respond(t.Context(), "Say you are checking."))
	recvType(t, s, ports.SpeechAudio) // the holding phrase plays
	require.NoError(t, s.ToolResult(t.Context(), ports.ToolResult{CallID: calls[0].ID, Output: "3 tables"}))

	voice := []byte(base64.StdEncoding.EncodeToString(mulaw.Tone(300, 20)))
	require.NoError(t, s.AppendAudio(t.Context(), voice)) // the caller talks over it
	recvType(t, s, ports.SpeechCallerStarted)
	release() // the interrupted response ends, cancelled
	quiet := []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20)))
	for range 4 { // the caller's turn ends
		require.NoError(t, s.AppendAudio(t.Context(), quiet))
	}
	ev := recvType(t, s, ports.SpeechAssistantText)
	assert.Equal(t, "3 tables", ev.Text, "the model goes on with the result")
	assert.Equal(t, []ports.ToolResult{{CallID: calls[0].ID, Output: "3 tables"}}, sim.ToolResults())
}

// TestToolResultForUnknownCall: the API refuses a result for a call it
// does not know; the session reports it as a non-fatal error and goes on.
func TestToolResultForUnknownCall(t *testing.T) {
	sim, model, _ := newSim(t, realtimesim.Options{})
	s := open(t, model)
	require.NoError(t, s.ToolResult(t.Context(), ports.ToolResult{CallID: "call_nobody", Output: "x"}))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ev, err := s.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, ports.SpeechError, ev.Type)
	assert.Contains(t, ev.Err.Message, "call_nobody")
	assert.Empty(t, sim.ToolResults())
	assert.Zero(t, sim.Responds(), "nothing was added: the model is not asked to go on")
	callTools(t, sim, s, "check_availability")
}

// TestOpenDeclaresTools: the session's tools reach the API; one it would
// refuse fails Open before dialling.
func TestOpenDeclaresTools(t *testing.T) {
	sim, model, _ := newSim(t, realtimesim.Options{})
	ctx := t.Context()
	cfg := ports.SpeechConfig{
		Tools: []ports.ToolSpec{{Name: "end_call", Description: "Hang up."}},
		MCP:   []ports.MCPServer{{Label: "calendar", URL: "https://mcp.example.com/mcp", AllowedTools: []string{"list_events"}}},
	}
	s, err := model.Open(ctx, cfg)
	require.NoError(t, err)
	defer s.Close()
	sess, err := sim.Latest(ctx)
	require.NoError(t, err)
	conf, err := sess.WaitConfig(ctx)
	require.NoError(t, err)
	assert.Equal(t, "auto", conf.ToolChoice)
	require.Len(t, conf.Tools, 1)
	assert.Equal(t, "end_call", conf.Tools[0].Name)
	assert.JSONEq(t, `{"type":"object","properties":{}}`, string(conf.Tools[0].Parameters))
	assert.Equal(t, []ports.MCPServer{{Label: "calendar", URL: "https://mcp.example.com/mcp", AllowedTools: []string{"list_events"}, RequireApproval: "never"}}, conf.MCP)

	_, err = model.Open(ctx, ports.SpeechConfig{Tools: []ports.ToolSpec{{Name: "x", Parameters: json.RawMessage(`"a string"`)}}})
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.Len(t, sim.Sessions(), 1, "refused before dialling")
}
