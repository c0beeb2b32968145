// Package chattest tests what the OpenAI chat adapters (responses,
// assistants) must do with tools beyond the porttest suite, against this
// simulator: calls run at once, error results, the rounds bound and a
// cancelled context, after which the thread still takes messages. Only
// tests import it (it uses testify).
package chattest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/openairest"
)

// Lookup is the tool the subtests offer.
var Lookup = ports.ToolSpec{
	Name: "lookup", Description: "Looks things up.",
	Parameters: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`),
}

// Harness is an adapter on a simulator.
type Harness struct {
	Assistant ports.ChatAssistant
	Sim       *openairest.Server
	// Abandoned checks what the adapter did when it gave up on the calls
	// the model waits for (past the rounds, or when ctx ended).
	Abandoned func(t *testing.T)
}

// ToolLoop runs the subtests; newHarness is called once per subtest.
func ToolLoop(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Run("ParallelCalls", func(t *testing.T) {
		h := newHarness(t)
		id := newThread(t, h)
		h.Sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Arguments: `{"q":"x"}`, Parallel: 3}})
		var started sync.WaitGroup
		started.Add(3)
		var seen sync.Map
		got, err := h.Assistant.Reply(t.Context(), request(id, func(_ context.Context, c ports.ToolCall) ports.ToolResult {
			if _, again := seen.LoadOrStore(c.ID, true); again {
				t.Errorf("call %s ran twice", c.ID)
			}
			started.Done()
			started.Wait() // the three calls run at once, or this never returns
			assert.JSONEq(t, `{"q":"x"}`, string(c.Arguments))
			return ports.ToolResult{Output: "found " + c.ID}
		}))
		require.NoError(t, err)
		outs := h.Sim.ToolOutputs(id)
		require.Len(t, outs, 3)
		for _, o := range outs {
			assert.Equal(t, "found "+o.CallID, o.Output, "each output answers its own call")
		}
		assert.Equal(t, "echo: found "+outs[2].CallID, got)
	})

	t.Run("ErrorResult", func(t *testing.T) {
		h := newHarness(t)
		id := newThread(t, h)
		h.Sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup"}})
		got, err := h.Assistant.Reply(t.Context(), request(id, func(context.Context, ports.ToolCall) ports.ToolResult {
			return ports.ToolResult{Error: "the tool did not answer in time"}
		}))
		require.NoError(t, err, "a failed tool is something the model talks about")
		assert.Equal(t, `echo: {"error":"the tool did not answer in time"}`, got)
	})

	t.Run("RoundsBounded", func(t *testing.T) {
		h := newHarness(t)
		id := newThread(t, h)
		h.Sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Rounds: 10}})
		runs := 0
		req := request(id, func(context.Context, ports.ToolCall) ports.ToolResult {
			runs++
			return ports.ToolResult{Output: "more"}
		})
		req.MaxToolRounds = 2
		_, err := h.Assistant.Reply(t.Context(), req)
		require.ErrorIs(t, err, ports.ErrAssistantFailed)
		assert.Contains(t, err.Error(), "after 2 rounds")
		assert.Equal(t, 2, runs)
		h.Abandoned(t)
		threadUsable(t, h, id)
	})

	t.Run("CancelWhileToolRuns", func(t *testing.T) {
		h := newHarness(t)
		id := newThread(t, h)
		h.Sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Rounds: 2}})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		runs := 0
		_, err := h.Assistant.Reply(ctx, request(id, func(ctx context.Context, _ ports.ToolCall) ports.ToolResult {
			runs++
			cancel()
			<-ctx.Done()
			return ports.ToolResult{Error: "cancelled"}
		}))
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, runs, "no round after the context ended")
		h.Abandoned(t)
		threadUsable(t, h, id)
	})
}

func request(id string, run func(context.Context, ports.ToolCall) ports.ToolResult) ports.ChatRequest {
	return ports.ChatRequest{ThreadID: id, Text: "find it", Tools: []ports.ToolSpec{Lookup}, RunTool: run}
}

func newThread(t *testing.T, h Harness) string {
	t.Helper()
	id, err := h.Assistant.NewThread(t.Context())
	require.NoError(t, err)
	return id
}

// threadUsable checks that the thread takes the next message.
func threadUsable(t *testing.T, h Harness, id string) {
	t.Helper()
	got, err := h.Assistant.Reply(t.Context(), ports.ChatRequest{ThreadID: id, Text: "again"})
	require.NoError(t, err, "the thread takes the next message")
	assert.Equal(t, "echo: again", got)
	assert.Zero(t, h.Sim.Overlaps())
}
