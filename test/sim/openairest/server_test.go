package openairest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/openairest/contract"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client calls a simulator like an SDK would.
type client struct {
	t    *testing.T
	sim  *openairest.Server
	key  string
	beta bool
}

func newClient(t *testing.T) *client {
	sim := openairest.New(openairest.Options{})
	t.Cleanup(sim.Close)
	return &client{t: t, sim: sim, key: sim.APIKey(), beta: true}
}

// do sends a request and returns the status and raw body; the body is also
// validated against schema when the call succeeds and schema is set.
func (c *client) do(ctx context.Context, method, path, body, schema string) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.sim.URL()+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	if c.beta {
		req.Header.Set("OpenAI-Beta", "assistants=v2")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if resp.StatusCode == http.StatusOK && schema != "" {
		require.NoError(c.t, contract.Validate(schema, out), "%s %s answered %s", method, path, out)
	}
	return resp.StatusCode, out
}

func (c *client) field(body []byte, name string) string {
	c.t.Helper()
	var m map[string]any
	require.NoError(c.t, json.Unmarshal(body, &m))
	s, _ := m[name].(string)
	return s
}

func (c *client) errorCode(body []byte) any {
	c.t.Helper()
	var e struct {
		Error struct {
			Code any `json:"code"`
		} `json:"error"`
	}
	require.NoError(c.t, json.Unmarshal(body, &e))
	return e.Error.Code
}

func TestAuthAndBetaHeader(t *testing.T) {
	c := newClient(t)
	c.key = "sk-wrong"
	status, body := c.do(t.Context(), "POST", "/conversations", `{}`, "")
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "invalid_api_key", c.errorCode(body))

	c.key = c.sim.APIKey()
	c.beta = false
	status, body = c.do(t.Context(), "POST", "/threads", `{}`, "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_beta", c.errorCode(body))
	status, _ = c.do(t.Context(), "POST", "/conversations", `{}`, "ConversationResource")
	assert.Equal(t, http.StatusOK, status, "the Responses API needs no beta header")
	assert.Equal(t, 1, c.sim.Calls(openairest.RouteCreateThread), "refused calls are counted")
}

func TestResponsesInConversation(t *testing.T) {
	c := newClient(t)
	_, conv := c.do(t.Context(), "POST", "/conversations", `{}`, "ConversationResource")
	id := c.field(conv, "id")

	status, resp := c.do(t.Context(), "POST", "/responses",
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],"conversation":{"id":"`+id+`"}}`, "Response")
	require.Equal(t, http.StatusOK, status, string(resp))
	assert.Equal(t, "completed", c.field(resp, "status"))
	assert.Contains(t, string(resp), `"text":"echo: hi"`)
	assert.Equal(t, []openairest.Item{{Role: "user", Text: "hi"}, {Role: "assistant", Text: "echo: hi"}}, c.sim.History(id))

	c.sim.Next(openairest.Script{Status: "failed", ErrorCode: "server_error"}, openairest.Script{Status: "incomplete"})
	_, resp = c.do(t.Context(), "POST", "/responses", `{"model":"m","input":"a","conversation":"`+id+`"}`, "Response")
	assert.Equal(t, "failed", c.field(resp, "status"))
	_, resp = c.do(t.Context(), "POST", "/responses", `{"model":"m","input":"b","conversation":"`+id+`"}`, "Response")
	assert.Equal(t, "incomplete", c.field(resp, "status"))

	status, _ = c.do(t.Context(), "POST", "/responses", `{"model":"m","input":"x","conversation":"conv_nope"}`, "")
	assert.Equal(t, http.StatusNotFound, status)
	status, _ = c.do(t.Context(), "POST", "/responses", `{"input":"x"}`, "")
	assert.Equal(t, http.StatusBadRequest, status)
	c.sim.FailNextRequest(http.StatusTooManyRequests, "rate_limit_exceeded")
	status, body := c.do(t.Context(), "POST", "/responses", `{"model":"m","input":"x"}`, "")
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "rate_limit_exceeded", c.errorCode(body))
	assert.Len(t, c.sim.Bodies(openairest.RouteCreateResponse), 6)
}

func TestResponsesOverlapDetected(t *testing.T) {
	c := newClient(t)
	_, conv := c.do(t.Context(), "POST", "/conversations", `{}`, "")
	id := c.field(conv, "id")
	c.sim.SetDelay(time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, "POST", c.sim.URL()+"/responses",
				bytes.NewBufferString(`{"model":"m","input":"x","conversation":"`+id+`"}`))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+c.key)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	require.Eventually(t, func() bool { return c.sim.Overlaps() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	wg.Wait()
	assert.Equal(t, 1, c.sim.Overlaps())
}

func TestDelayEndsWithClient(t *testing.T) {
	c := newClient(t)
	c.sim.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", c.sim.URL()+"/responses", bytes.NewBufferString(`{"model":"m","input":"x"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestThreadRunLifecycle(t *testing.T) {
	c := newClient(t)
	c.sim.SetReply(func(_, text string) string { return "re: " + text })
	_, th := c.do(t.Context(), "POST", "/threads", `{}`, "ThreadObject")
	tid := c.field(th, "id")
	status, _ := c.do(t.Context(), "POST", "/threads/"+tid+"/messages", `{"role":"user","content":"hi"}`, "MessageObject")
	require.Equal(t, http.StatusOK, status)

	c.sim.Next(openairest.Script{Steps: []string{"queued", "in_progress"}})
	_, run := c.do(t.Context(), "POST", "/threads/"+tid+"/runs", `{"assistant_id":"asst_1"}`, "RunObject")
	rid := c.field(run, "id")
	assert.Equal(t, "queued", c.field(run, "status"))

	status, body := c.do(t.Context(), "POST", "/threads/"+tid+"/messages", `{"role":"user","content":"more"}`, "")
	assert.Equal(t, http.StatusBadRequest, status, "no message while a run is active: %s", body)
	status, _ = c.do(t.Context(), "POST", "/threads/"+tid+"/runs", `{"assistant_id":"asst_1"}`, "")
	assert.Equal(t, http.StatusBadRequest, status, "no second run while one is active")
	assert.Equal(t, 1, c.sim.Overlaps())

	var seen []string
	for range 2 {
		_, run = c.do(t.Context(), "GET", "/threads/"+tid+"/runs/"+rid, "", "RunObject")
		seen = append(seen, c.field(run, "status"))
	}
	assert.Equal(t, []string{"in_progress", "completed"}, seen)

	_, list := c.do(t.Context(), "GET", "/threads/"+tid+"/messages?run_id="+rid, "", "ListMessagesResponse")
	var msgs struct {
		Data []struct {
			Role    string `json:"role"`
			RunID   string `json:"run_id"`
			Content []struct {
				Text struct{ Value string } `json:"text"`
			} `json:"content"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(list, &msgs))
	require.Len(t, msgs.Data, 1)
	assert.Equal(t, "assistant", msgs.Data[0].Role)
	assert.Equal(t, rid, msgs.Data[0].RunID)
	assert.Equal(t, "re: hi", msgs.Data[0].Content[0].Text.Value)

	_, list = c.do(t.Context(), "GET", "/threads/"+tid+"/messages?order=asc&limit=1", "", "ListMessagesResponse")
	require.NoError(t, json.Unmarshal(list, &msgs))
	require.Len(t, msgs.Data, 1)
	assert.Equal(t, "user", msgs.Data[0].Role, "oldest first")

	status, _ = c.do(t.Context(), "POST", "/threads/"+tid+"/runs/"+rid+"/cancel", "", "")
	assert.Equal(t, http.StatusBadRequest, status, "a finished run cannot be cancelled")
}

func TestRunFinalStatuses(t *testing.T) {
	for _, final := range []string{"failed", "cancelled", "expired", "incomplete", "requires_action"} {
		t.Run(final, func(t *testing.T) {
			c := newClient(t)
			_, th := c.do(t.Context(), "POST", "/threads", `{"messages":[{"role":"user","content":"hi"}]}`, "ThreadObject")
			tid := c.field(th, "id")
			c.sim.Next(openairest.Script{Status: final, Steps: []string{"in_progress"}})
			_, run := c.do(t.Context(), "POST", "/threads/"+tid+"/runs", `{"assistant_id":"asst_1"}`, "RunObject")
			rid := c.field(run, "id")
			_, run = c.do(t.Context(), "GET", "/threads/"+tid+"/runs/"+rid, "", "RunObject")
			assert.Equal(t, final, c.field(run, "status"))
			if final == "requires_action" {
				status, _ := c.do(t.Context(), "POST", "/threads/"+tid+"/messages", `{"role":"user","content":"x"}`, "")
				assert.Equal(t, http.StatusBadRequest, status, "requires_action keeps the run active")
				_, run = c.do(t.Context(), "POST", "/threads/"+tid+"/runs/"+rid+"/cancel", "", "RunObject")
				assert.Equal(t, "cancelling", c.field(run, "status"))
				_, run = c.do(t.Context(), "GET", "/threads/"+tid+"/runs/"+rid, "", "RunObject")
				assert.Equal(t, "cancelled", c.field(run, "status"))
			}
			status, _ := c.do(t.Context(), "POST", "/threads/"+tid+"/messages", `{"role":"user","content":"next"}`, "MessageObject")
			assert.Equal(t, http.StatusOK, status, "the thread takes messages again")
			assert.Equal(t, []openairest.Item{{Role: "user", Text: "hi"}, {Role: "user", Text: "next"}}, c.sim.History(tid))
		})
	}
}

func TestUnknownIDs(t *testing.T) {
	c := newClient(t)
	for _, path := range []string{"/threads/thread_x/messages", "/threads/thread_x/runs"} {
		status, _ := c.do(t.Context(), "POST", path, `{"role":"user","content":"x","assistant_id":"a"}`, "")
		assert.Equal(t, http.StatusNotFound, status, path)
	}
	_, th := c.do(t.Context(), "POST", "/threads", `{}`, "")
	status, _ := c.do(t.Context(), "GET", "/threads/"+c.field(th, "id")+"/runs/run_x", "", "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Nil(t, c.sim.History("thread_x"))
}

func TestDeletedIDsAreUnknown(t *testing.T) {
	c := newClient(t)
	_, conv := c.do(t.Context(), "POST", "/conversations", `{}`, "")
	_, th := c.do(t.Context(), "POST", "/threads", `{}`, "")
	convID, threadID := c.field(conv, "id"), c.field(th, "id")

	assert.True(t, c.sim.Delete(convID))
	assert.True(t, c.sim.Delete(threadID))
	assert.False(t, c.sim.Delete(convID), "already gone")
	status, _ := c.do(t.Context(), "POST", "/responses", `{"model":"m","input":"x","conversation":"`+convID+`"}`, "")
	assert.Equal(t, http.StatusNotFound, status)
	status, _ = c.do(t.Context(), "POST", "/threads/"+threadID+"/messages", `{"role":"user","content":"x"}`, "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Nil(t, c.sim.History(convID))
}
