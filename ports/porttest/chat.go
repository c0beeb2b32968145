package porttest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// ChatAssistant runs the conformance suite of ports.ChatAssistant.
// newHarness is called once per subtest; subtests run in parallel.
func ChatAssistant(t *testing.T, newHarness func(t *testing.T) ChatHarness) {
	t.Run("NewThreadDistinct", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		seen := make(map[string]bool)
		for range 5 {
			id := newThread(t, h.Assistant)
			require.NotEmpty(t, id)
			require.False(t, seen[id], "thread ids are distinct")
			seen[id] = true
		}
	})

	t.Run("Reply", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		id := newThread(t, h.Assistant)
		for i := range 2 {
			text := unique(fmt.Sprintf("message %d", i))
			answer, err := reply(t, h.Assistant, id, text)
			require.NoError(t, err)
			assert.Contains(t, answer, text)
		}
	})

	t.Run("UnknownThread", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		_, err := reply(t, h.Assistant, unique("conv_missing"), "hello")
		require.ErrorIs(t, err, ports.ErrNotFound)
	})

	t.Run("AssistantFails", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if h.FailNext == nil {
			t.Skip("the harness cannot make the assistant fail")
		}
		id := newThread(t, h.Assistant)
		h.FailNext()
		_, err := reply(t, h.Assistant, id, "hello")
		require.ErrorIs(t, err, ports.ErrAssistantFailed)
		answer, err := reply(t, h.Assistant, id, "again")
		require.NoError(t, err, "a failed run does not break the thread")
		assert.Contains(t, answer, "again")
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		id := newThread(t, h.Assistant)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := within(t, "Reply", func(context.Context) (string, error) {
			return h.Assistant.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: "hello"})
		})
		require.ErrorIs(t, err, context.Canceled)
	})

	t.Run("ConcurrentThreads", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const n = 8
		ids := make([]string, n)
		for i := range ids {
			ids[i] = newThread(t, h.Assistant)
		}
		ctx := stepCtx(t)
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() {
				text := fmt.Sprintf("question %d on %s", i, id)
				answer, err := h.Assistant.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: text})
				if err != nil {
					t.Errorf("Reply %d: %v", i, err)
					return
				}
				assert.Contains(t, answer, text)
			})
		}
		waitGroup(t, "concurrent replies", &wg)
	})

	t.Run("ToolCall", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		require.NotNil(t, h.CallToolNext, "the harness can make the model call a tool")
		id := newThread(t, h.Assistant)
		call := ports.ToolCall{Name: "check_availability", Arguments: json.RawMessage(`{"people":2}`)}
		h.CallToolNext(call, 1)
		var mu sync.Mutex
		var ran []ports.ToolCall
		req := ports.ChatRequest{
			ThreadID: id, Text: "Any table for two?",
			Tools: []ports.ToolSpec{{Name: "check_availability", Description: "Free tables.",
				Parameters: json.RawMessage(`{"type":"object","properties":{"people":{"type":"integer"}}}`)}},
			RunTool: func(_ context.Context, c ports.ToolCall) ports.ToolResult {
				mu.Lock()
				ran = append(ran, c)
				mu.Unlock()
				return ports.ToolResult{CallID: c.ID, Output: "3 tables free at 7pm"}
			},
		}
		answer, err := within(t, "Reply", func(ctx context.Context) (string, error) { return h.Assistant.Reply(ctx, req) })
		require.NoError(t, err)
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, ran, 1, "the tool ran once")
		assert.Equal(t, call.Name, ran[0].Name)
		assert.JSONEq(t, string(call.Arguments), string(ran[0].Arguments))
		assert.Contains(t, answer, "3 tables free at 7pm", "the model answered with the tool's output")
	})

	t.Run("ToolRoundsBounded", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		require.NotNil(t, h.CallToolNext, "the harness can make the model call a tool")
		id := newThread(t, h.Assistant)
		h.CallToolNext(ports.ToolCall{Name: "again", Arguments: json.RawMessage(`{}`)}, 100)
		var runs atomic.Int32
		req := ports.ChatRequest{
			ThreadID: id, Text: "Loop.", MaxToolRounds: 3,
			Tools: []ports.ToolSpec{{Name: "again", Description: "Loops."}},
			RunTool: func(_ context.Context, c ports.ToolCall) ports.ToolResult {
				runs.Add(1)
				return ports.ToolResult{CallID: c.ID, Output: "once more"}
			},
		}
		_, err := within(t, "Reply", func(ctx context.Context) (string, error) { return h.Assistant.Reply(ctx, req) })
		require.ErrorIs(t, err, ports.ErrAssistantFailed, "a tool loop ends")
		assert.Equal(t, int32(3), runs.Load(), "at most MaxToolRounds rounds")
	})
}

func newThread(t *testing.T, a ports.ChatAssistant) string {
	t.Helper()
	id, err := within(t, "NewThread", a.NewThread)
	require.NoError(t, err)
	return id
}

func reply(t *testing.T, a ports.ChatAssistant, threadID, text string) (string, error) {
	t.Helper()
	return within(t, "Reply", func(ctx context.Context) (string, error) {
		return a.Reply(ctx, ports.ChatRequest{ThreadID: threadID, Text: text})
	})
}
