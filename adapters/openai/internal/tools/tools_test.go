package tools

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunInParallelResultsInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var started sync.WaitGroup
	started.Add(3)
	calls := []ports.ToolCall{
		{ID: "a", Name: "t", Arguments: json.RawMessage(`{"n":1}`)},
		{ID: "b", Name: "t"},
		{ID: "c", Name: "t", Arguments: json.RawMessage(`{"n":`)},
		{ID: "d", Name: "t", Arguments: json.RawMessage(`{"n":4}`)},
	}
	var mu sync.Mutex
	var args []string
	results := Run(ctx, func(ctx context.Context, c ports.ToolCall) ports.ToolResult {
		started.Done()
		started.Wait() // every valid call runs at once, or this never returns
		mu.Lock()
		args = append(args, string(c.Arguments))
		mu.Unlock()
		return ports.ToolResult{CallID: "wrong", Output: "out " + c.ID}
	}, calls)
	require.Len(t, results, 4)
	assert.Equal(t, ports.ToolResult{CallID: "a", Output: "out a"}, results[0])
	assert.Equal(t, ports.ToolResult{CallID: "b", Output: "out b"}, results[1])
	assert.Equal(t, "c", results[2].CallID)
	assert.Contains(t, results[2].Error, "not valid JSON", "bad arguments are not run")
	assert.Equal(t, ports.ToolResult{CallID: "d", Output: "out d"}, results[3])
	assert.ElementsMatch(t, []string{`{"n":1}`, `{}`, `{"n":4}`}, args, "empty arguments read as {}")
}

func TestOutput(t *testing.T) {
	assert.Equal(t, "3 tables", Output(ports.ToolResult{Output: "3 tables"}))
	assert.JSONEq(t, `{"error":"the tool did not answer \"in time\""}`,
		Output(ports.ToolResult{Output: "ignored", Error: `the tool did not answer "in time"`}))
}

func TestParametersAndCheck(t *testing.T) {
	p, err := Parameters(ports.ToolSpec{Name: "x"})
	require.NoError(t, err)
	assert.Equal(t, "object", p["type"])
	p, err = Parameters(ports.ToolSpec{Name: "x", Parameters: json.RawMessage(`{"type":"object","required":["a"]}`)})
	require.NoError(t, err)
	assert.Equal(t, []any{"a"}, p["required"])
	for _, bad := range []string{`[1]`, `null`, `{`} {
		_, err = Parameters(ports.ToolSpec{Name: "x", Parameters: json.RawMessage(bad)})
		require.ErrorIs(t, err, ports.ErrRejected, bad)
	}

	run := func(context.Context, ports.ToolCall) ports.ToolResult { return ports.ToolResult{} }
	require.NoError(t, Check(ports.ChatRequest{}))
	require.NoError(t, Check(ports.ChatRequest{Tools: []ports.ToolSpec{{Name: "a"}, {Name: "b"}}, RunTool: run}))
	require.ErrorIs(t, Check(ports.ChatRequest{Tools: []ports.ToolSpec{{Name: "a"}}}), ports.ErrRejected)
	require.ErrorIs(t, Check(ports.ChatRequest{Tools: []ports.ToolSpec{{Name: "a"}, {Name: "a"}}, RunTool: run}), ports.ErrRejected)
	assert.Equal(t, ports.DefaultMaxToolRounds, Rounds(ports.ChatRequest{}))
	assert.Equal(t, 2, Rounds(ports.ChatRequest{MaxToolRounds: 2}))
}

func TestFunctions(t *testing.T) {
	run := func(context.Context, ports.ToolCall) ports.ToolResult { return ports.ToolResult{} }
	fns, err := Functions(ports.ChatRequest{RunTool: run, Tools: []ports.ToolSpec{
		{Name: "a", Description: "Does a.", Parameters: json.RawMessage(`{"type":"object"}`)}, {Name: "b"},
	}})
	require.NoError(t, err)
	require.Len(t, fns, 2)
	assert.Equal(t, "a", fns[0].Name)
	assert.Equal(t, "Does a.", fns[0].Description.Value)
	assert.False(t, fns[1].Description.Valid(), "no description: omitted")
	assert.Equal(t, "object", fns[1].Parameters["type"])
	_, err = Functions(ports.ChatRequest{Tools: []ports.ToolSpec{{Name: "a"}}})
	require.ErrorIs(t, err, ports.ErrRejected)
}
