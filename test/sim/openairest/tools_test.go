package openairest_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/test/sim/openairest"
)

const lookupTool = `[{"type":"function","name":"lookup","parameters":{"type":"object"},"strict":false},` +
	`{"type":"mcp","server_label":"cal","server_url":"https://mcp.example/mcp","require_approval":"never"}]`

// functionCalls returns the call ids and names of a response's function_call items.
func functionCalls(t *testing.T, resp []byte) map[string]string {
	t.Helper()
	var r struct {
		Output []struct {
			Type, Name, Arguments string
			CallID                string `json:"call_id"`
		} `json:"output"`
	}
	require.NoError(t, json.Unmarshal(resp, &r))
	calls := make(map[string]string)
	for _, o := range r.Output {
		if o.Type == "function_call" {
			calls[o.CallID] = o.Name + " " + o.Arguments
		}
	}
	return calls
}

func outputItems(ids ...string) string {
	items := make([]map[string]string, len(ids))
	for i, id := range ids {
		items[i] = map[string]string{"type": "function_call_output", "call_id": id, "output": "out " + id}
	}
	b, _ := json.Marshal(items)
	return string(b)
}

func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func TestResponsesToolCalls(t *testing.T) {
	c := newClient(t)
	_, conv := c.do(t.Context(), "POST", "/conversations", `{}`, "")
	id := c.field(conv, "id")
	create := func(input, tools, schema string) (int, []byte) {
		return c.do(t.Context(), "POST", "/responses",
			`{"model":"m","conversation":"`+id+`","input":`+input+`,"tools":`+tools+`}`, schema)
	}

	c.sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Arguments: `{"q":1}`, Parallel: 2, Rounds: 2}})
	status, resp := create(`"find it"`, `[]`, "")
	assert.Equal(t, http.StatusBadRequest, status, "the model calls only declared tools: %s", resp)

	c.sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Arguments: `{"q":1}`, Parallel: 2, Rounds: 2}})
	_, resp = create(`"find it"`, lookupTool, "Response")
	first := functionCalls(t, resp)
	require.Len(t, first, 2, "two calls at once")
	for _, call := range first {
		assert.Equal(t, `lookup {"q":1}`, call)
	}
	ids := keys(first)

	status, resp = create(`"hello?"`, lookupTool, "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, string(resp), "No tool output found for function call", "a message while calls wait")
	status, resp = create(outputItems(ids[0]), lookupTool, "")
	assert.Equal(t, http.StatusBadRequest, status, "every call needs its output")
	assert.Contains(t, string(resp), "No tool output found for function call "+ids[1])
	status, resp = create(outputItems(ids[0], ids[1], "call_other"), lookupTool, "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, string(resp), "No tool call found for function call output with call_id call_other")

	_, resp = create(outputItems(ids...), lookupTool, "Response")
	second := functionCalls(t, resp)
	require.Len(t, second, 2, "a second round")
	_, resp = create(outputItems(keys(second)...), lookupTool, "Response")
	assert.Empty(t, functionCalls(t, resp))
	last := keys(second)[1]
	assert.Contains(t, string(resp), `"text":"echo: out `+last+`"`, "the answer reads the last output")

	assert.Len(t, c.sim.ToolOutputs(id), 4)
	assert.Equal(t, []openairest.Item{
		{Role: "user", Text: "find it"}, {Role: "assistant", Text: "echo: out " + last},
	}, c.sim.History(id), "the refused requests left nothing; tool items are not messages")

	status, resp = create(outputItems(last), lookupTool, "")
	assert.Equal(t, http.StatusBadRequest, status, "an answered call takes no more output: %s", resp)
}

func TestConversationItemsAnswerCalls(t *testing.T) {
	c := newClient(t)
	_, conv := c.do(t.Context(), "POST", "/conversations", `{}`, "")
	id := c.field(conv, "id")
	c.sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Rounds: 5}})
	_, resp := c.do(t.Context(), "POST", "/responses", `{"model":"m","conversation":"`+id+`","input":"x","tools":`+lookupTool+`}`, "Response")
	ids := keys(functionCalls(t, resp))
	require.Len(t, ids, 1)

	status, _ := c.do(t.Context(), "POST", "/conversations/"+id+"/items", `{"items":`+outputItems("call_nope")+`}`, "")
	assert.Equal(t, http.StatusBadRequest, status)
	status, body := c.do(t.Context(), "POST", "/conversations/"+id+"/items", `{"items":`+outputItems(ids[0])+`}`, "")
	require.Equal(t, http.StatusOK, status, string(body))
	assert.Contains(t, string(body), `"type":"function_call_output"`)

	status, resp = c.do(t.Context(), "POST", "/responses", `{"model":"m","conversation":"`+id+`","input":"next"}`, "Response")
	require.Equal(t, http.StatusOK, status, "the calls are answered: a new turn may start: %s", resp)
	assert.Contains(t, string(resp), `"text":"echo: next"`, "a new turn ends the old script")
	status, _ = c.do(t.Context(), "POST", "/conversations/conv_nope/items", `{"items":[]}`, "")
	assert.Equal(t, http.StatusNotFound, status)
}

func TestRunToolCalls(t *testing.T) {
	c := newClient(t)
	_, th := c.do(t.Context(), "POST", "/threads", `{"messages":[{"role":"user","content":"hi"}]}`, "")
	tid := c.field(th, "id")
	const tools = `[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}]`

	c.sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup"}})
	status, _ := c.do(t.Context(), "POST", "/threads/"+tid+"/runs", `{"assistant_id":"a"}`, "")
	assert.Equal(t, http.StatusBadRequest, status, "the model calls only declared tools")

	c.sim.Next(openairest.Script{Tool: &openairest.ToolScript{Name: "lookup", Parallel: 2, Rounds: 2}, Steps: []string{"queued"}})
	_, run := c.do(t.Context(), "POST", "/threads/"+tid+"/runs", `{"assistant_id":"a","tools":`+tools+`}`, "RunObject")
	rid := c.field(run, "id")
	path := "/threads/" + tid + "/runs/" + rid
	status, _ = c.do(t.Context(), "POST", path+"/submit_tool_outputs", `{"tool_outputs":[]}`, "")
	assert.Equal(t, http.StatusBadRequest, status, "no outputs before requires_action")

	pending := func() []string {
		_, run := c.do(t.Context(), "GET", path, "", "RunObject")
		var r struct {
			Status         string `json:"status"`
			RequiredAction struct {
				SubmitToolOutputs struct {
					ToolCalls []struct {
						ID       string
						Function struct{ Name string }
					} `json:"tool_calls"`
				} `json:"submit_tool_outputs"`
			} `json:"required_action"`
		}
		require.NoError(t, json.Unmarshal(run, &r))
		require.Equal(t, "requires_action", r.Status)
		var ids []string
		for _, tc := range r.RequiredAction.SubmitToolOutputs.ToolCalls {
			assert.Equal(t, "lookup", tc.Function.Name)
			ids = append(ids, tc.ID)
		}
		return ids
	}
	submit := func(ids ...string) (int, []byte) {
		var outs []map[string]string
		for _, id := range ids {
			outs = append(outs, map[string]string{"tool_call_id": id, "output": "out " + id})
		}
		b, _ := json.Marshal(map[string]any{"tool_outputs": outs})
		return c.do(t.Context(), "POST", path+"/submit_tool_outputs", string(b), "")
	}
	ids := pending()
	require.Len(t, ids, 2)
	status, body := submit(ids[0])
	assert.Equal(t, http.StatusBadRequest, status, "all outputs in one request")
	assert.Contains(t, string(body), "Expected tool outputs for call_ids")
	status, _ = submit(ids[0], ids[1], ids[1])
	assert.Equal(t, http.StatusBadRequest, status, "an output names a call once")
	status, body = submit(ids...)
	require.Equal(t, http.StatusOK, status, string(body))

	ids = pending()
	require.Len(t, ids, 2, "a second round")
	status, _ = submit(ids...)
	require.Equal(t, http.StatusOK, status)
	_, run = c.do(t.Context(), "GET", path, "", "RunObject")
	assert.Equal(t, "completed", c.field(run, "status"))
	assert.Equal(t, "echo: out "+ids[1], c.sim.History(tid)[1].Text, "the answer reads the last output")
	assert.Len(t, c.sim.ToolOutputs(tid), 4)
	status, _ = submit(ids...)
	assert.Equal(t, http.StatusBadRequest, status, "a completed run takes no outputs")
}
