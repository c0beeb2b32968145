package fake_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
)

func TestChatAssistantToolScript(t *testing.T) {
	ctx := testCtx(t)
	a := fake.NewChatAssistant()
	id, err := a.NewThread(ctx)
	require.NoError(t, err)
	spec := ports.ToolSpec{Name: "lookup", Description: "Looks up."}
	failing := func(_ context.Context, c ports.ToolCall) ports.ToolResult {
		return ports.ToolResult{Error: "the tool did not answer in time"}
	}
	req := ports.ChatRequest{ThreadID: id, Text: "where?", Tools: []ports.ToolSpec{spec}, RunTool: failing}

	a.CallToolNext(ports.ToolCall{Name: "lookup", Arguments: json.RawMessage(`{}`)}, 1)
	got, err := a.Reply(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, fake.EchoPrefix+"error: the tool did not answer in time", got, "the model reads the error result")
	results := a.ToolResults(id)
	require.Len(t, results, 1)
	assert.Equal(t, "call_fake_1", results[0].CallID, "the result names the call, whatever the runner said")

	a.CallToolNext(ports.ToolCall{Name: "lookup"}, 1)
	a.QueueReplies("I could not look it up.")
	got, err = a.Reply(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, "I could not look it up.", got, "a queued answer comes after the tool")
	assert.Len(t, a.ToolResults(id), 2)

	a.CallToolNext(ports.ToolCall{Name: "unknown"}, 1)
	_, err = a.Reply(ctx, req)
	require.ErrorIs(t, err, ports.ErrAssistantFailed, "the model calls only offered tools")

	_, err = a.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: "x", Tools: []ports.ToolSpec{spec}})
	require.ErrorIs(t, err, ports.ErrRejected, "tools need a runner")

	reqs := a.Requests(id)
	require.Len(t, reqs, 3, "a rejected request is not recorded")
	assert.Equal(t, []ports.ToolSpec{spec}, reqs[0].Tools)
	assert.Equal(t, []string{"where?", "where?", "where?"}, a.Texts(id))
}

func TestChatAssistantToolCancelled(t *testing.T) {
	a := fake.NewChatAssistant()
	id, err := a.NewThread(testCtx(t))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(testCtx(t))
	a.CallToolNext(ports.ToolCall{Name: "slow"}, 3)
	runs := 0
	_, err = a.Reply(ctx, ports.ChatRequest{
		ThreadID: id, Text: "x", Tools: []ports.ToolSpec{{Name: "slow"}},
		RunTool: func(ctx context.Context, c ports.ToolCall) ports.ToolResult {
			runs++
			cancel()
			<-ctx.Done()
			return ports.ToolResult{Error: ctx.Err().Error()}
		},
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, runs, "no round after the context ended")
}
