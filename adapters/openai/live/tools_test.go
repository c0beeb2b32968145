package live_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/livesim"
)

// commandTypes returns the types of the commands a session received.
func commandTypes(t *testing.T, sess *livesim.Session) []string {
	t.Helper()
	var types []string
	for _, c := range sess.Commands() {
		var v struct {
			Type string `json:"type"`
		}
		require.NoError(t, json.Unmarshal(c, &v))
		types = append(types, v.Type)
	}
	return types
}

// fence sends a commentary and waits until the simulator has it: every
// command sent before it has arrived.
func fence(t *testing.T, s ports.SpeechSession, sess *livesim.Session) {
	t.Helper()
	n := sess.Commentaries()
	require.NoError(t, s.Respond(t.Context(), ""))
	require.Eventually(t, func() bool { return sess.Commentaries() > n }, 5*time.Second, time.Millisecond)
}

// recvType receives events until one of type typ.
func recvType(t *testing.T, s ports.SpeechSession, typ ports.SpeechEventType) ports.SpeechEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		if ev.Type == typ {
			return ev
		}
	}
}

func openTools(t *testing.T) (ports.SpeechSession, *livesim.Server, *livesim.Session) {
	t.Helper()
	sim, model, _ := newSim(t, livesim.Options{})
	s := open(t, model)
	sess, err := sim.Latest(t.Context())
	require.NoError(t, err)
	return s, sim, sess
}

func TestToolsGoToTheDelegation(t *testing.T) {
	sim, model, _ := newSim(t, livesim.Options{})
	tools := []ports.ToolSpec{{Name: "end_call", Description: "Hang up."}}
	s, err := model.Open(t.Context(), ports.SpeechConfig{Tools: tools})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	cfg, err := sim.WaitSession(t.Context())
	require.NoError(t, err)
	require.Len(t, cfg.Tools, 1)
	assert.Equal(t, "end_call", cfg.Tools[0].Name)
	assert.JSONEq(t, `{"type":"object","properties":{}}`, string(cfg.Tools[0].Parameters), "no arguments: an empty object schema")
}

func TestOpenRefusesMCPServers(t *testing.T) {
	sim, model, _ := newSim(t, livesim.Options{})
	_, err := model.Open(t.Context(), ports.SpeechConfig{MCP: []ports.MCPServer{{Label: "calendar", URL: "https://mcp.example.com/mcp",
		Headers: map[string]string{"Authorization": "Bearer secret-token"}}}})
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.Contains(t, err.Error(), "MCP")
	assert.NotContains(t, err.Error(), "secret-token")
	assert.Empty(t, sim.Sessions(), "refused before dialling")

	_, err = model.Open(t.Context(), ports.SpeechConfig{Tools: []ports.ToolSpec{{Name: "t", Parameters: json.RawMessage(`[]`)}}})
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.Empty(t, sim.Sessions())
}

func TestToolResultWaitsForTheResponse(t *testing.T) {
	s, _, sess := openTools(t)
	ctx := t.Context()
	call := ports.ToolCall{ID: "call_1", Name: "check_availability", Arguments: json.RawMessage(`{"people":2}`)}
	require.NoError(t, sess.CallToolHeld(ctx, call))
	ev := recvType(t, s, ports.SpeechToolCall)
	assert.Equal(t, call, ev.Tool)

	require.NoError(t, s.ToolResult(ctx, ports.ToolResult{CallID: "call_1", Output: `{"tables":3}`}))
	fence(t, s, sess)
	assert.Equal(t, []string{"session.start", "response.item.create", "session.commentary.append"}, commandTypes(t, sess),
		"the result at once, no response.create while the response is in progress")
	assert.Equal(t, []ports.ToolResult{{CallID: "call_1", Output: `{"tables":3}`}}, sess.ToolResults())

	require.NoError(t, sess.CompleteResponse(ctx))
	require.NoError(t, sess.CallerSpeaks(ctx, "ok")) // after response.completed on the wire
	recvType(t, s, ports.SpeechCallerText)
	require.Eventually(t, func() bool { return sess.Creates() == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []string{"session.start", "response.item.create", "session.commentary.append", "response.create"}, commandTypes(t, sess))
	assert.Empty(t, sess.Refusals())
}

func TestToolResultAfterTheResponse(t *testing.T) {
	s, sim, sess := openTools(t)
	require.NoError(t, sim.CallTool(t.Context(), ports.ToolCall{ID: "call_1", Name: "end_call"}))
	ev := recvType(t, s, ports.SpeechToolCall)
	assert.JSONEq(t, `{}`, string(ev.Tool.Arguments))
	require.NoError(t, sess.CallerSpeaks(t.Context(), "ok")) // the response has completed
	recvType(t, s, ports.SpeechCallerText)

	require.NoError(t, s.ToolResult(t.Context(), ports.ToolResult{CallID: "call_1", Error: "the line is busy"}))
	require.Eventually(t, func() bool { return sess.Creates() == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []string{"session.start", "response.item.create", "response.create"}, commandTypes(t, sess))
	assert.JSONEq(t, `{"error":"the line is busy"}`, sess.ToolResults()[0].Output)
	assert.Empty(t, sess.Refusals())
}

func TestParallelToolResults(t *testing.T) {
	s, _, sess := openTools(t)
	ctx := t.Context()
	require.NoError(t, sess.CallToolHeld(ctx, ports.ToolCall{ID: "a", Name: "end_call"}, ports.ToolCall{ID: "b", Name: "end_call"}))
	require.NoError(t, sess.CompleteResponse(ctx))
	assert.Equal(t, "a", recvType(t, s, ports.SpeechToolCall).Tool.ID)
	assert.Equal(t, "b", recvType(t, s, ports.SpeechToolCall).Tool.ID)
	require.NoError(t, sess.CallerSpeaks(ctx, "ok"))
	recvType(t, s, ports.SpeechCallerText)

	require.NoError(t, s.ToolResult(ctx, ports.ToolResult{CallID: "b", Output: "B"}))
	fence(t, s, sess)
	assert.Zero(t, sess.Creates(), "a has no result yet")
	require.NoError(t, s.ToolResult(ctx, ports.ToolResult{CallID: "a", Output: "A"}))
	require.Eventually(t, func() bool { return sess.Creates() == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []string{"session.start", "response.item.create", "session.commentary.append", "response.item.create", "response.create"},
		commandTypes(t, sess), "one response.create for the batch")
	assert.Empty(t, sess.Refusals())
}

func TestToolResultForAnUnknownCall(t *testing.T) {
	s, _, sess := openTools(t)
	require.NoError(t, s.ToolResult(t.Context(), ports.ToolResult{CallID: "nope", Output: "x"}))
	ev := recvType(t, s, ports.SpeechError)
	assert.Equal(t, "invalid_value", ev.Err.Code)
	assert.False(t, ev.Err.Fatal, "not worth ending the call for")
	fence(t, s, sess)
	assert.Zero(t, sess.Creates(), "nothing to go on with")
}
