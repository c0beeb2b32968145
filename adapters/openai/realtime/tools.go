package realtime

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/openai/openai-go/v3/packages/param"
	oai "github.com/openai/openai-go/v3/realtime"

	"github.com/convgateway/gateway/ports"
)

// noParameters is the schema of a tool that takes no arguments.
var noParameters = json.RawMessage(`{"type":"object","properties":{}}`)

// tools declares the call's function tools (type function: name,
// description, the JSON Schema of the arguments as it is) and its MCP
// servers (hosted MCP tools: the API calls them itself). Errors wrap
// ports.ErrRejected: a tool without a name or whose parameters are not a
// JSON object, an MCP server without label or URL or with an approval
// setting other than "never" and "always".
func tools(specs []ports.ToolSpec, servers []ports.MCPServer) (oai.RealtimeToolsConfigParam, error) {
	var out oai.RealtimeToolsConfigParam
	for _, t := range specs {
		params := t.Parameters
		if len(params) == 0 {
			params = noParameters
		}
		if t.Name == "" {
			return nil, fmt.Errorf("realtime: tool without a name: %w", ports.ErrRejected)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(params, &obj); err != nil {
			return nil, fmt.Errorf("realtime: tool %q: parameters are not a JSON object: %w", t.Name, ports.ErrRejected)
		}
		fn := &oai.RealtimeFunctionToolParam{
			Type:       oai.RealtimeFunctionToolTypeFunction,
			Name:       param.NewOpt(t.Name),
			Parameters: params,
		}
		if t.Description != "" {
			fn.Description = param.NewOpt(t.Description)
		}
		out = append(out, oai.RealtimeToolsConfigUnionParam{OfFunction: fn})
	}
	for _, m := range servers {
		mcp, err := mcpTool(m)
		if err != nil {
			return nil, err
		}
		out = append(out, oai.RealtimeToolsConfigUnionParam{OfMcp: mcp})
	}
	return out, nil
}

// mcpTool is a hosted MCP tool: server_label, server_url, allowed_tools
// (all the server's when empty), require_approval ("never" unless said)
// and headers (which may hold secrets: they go to the API only).
func mcpTool(m ports.MCPServer) (*oai.RealtimeToolsConfigUnionMcpParam, error) {
	if m.Label == "" || m.URL == "" {
		return nil, fmt.Errorf("realtime: MCP server %q: a label and a URL are required: %w", m.Label, ports.ErrRejected)
	}
	approval := m.RequireApproval
	switch approval {
	case "":
		approval = "never"
	case "never", "always":
	default:
		return nil, fmt.Errorf("realtime: MCP server %q: require_approval %q is neither never nor always: %w", m.Label, approval, ports.ErrRejected)
	}
	mcp := &oai.RealtimeToolsConfigUnionMcpParam{
		ServerLabel: m.Label,
		ServerURL:   param.NewOpt(m.URL),
		Headers:     m.Headers,
	}
	mcp.RequireApproval.OfMcpToolApprovalSetting = param.NewOpt(approval)
	if len(m.AllowedTools) > 0 {
		mcp.AllowedTools.OfMcpAllowedTools = m.AllowedTools
	}
	return mcp, nil
}

// functionCallOutput is the conversation.item.create of a tool's result:
// a function_call_output item whose output is r.Output, or, for a failed
// run, {"error": r.Error}.
func functionCallOutput(r ports.ToolResult) oai.ConversationItemCreateEventParam {
	output := r.Output
	if r.Error != "" {
		b, _ := json.Marshal(struct { // a struct of a string always marshals
			Error string `json:"error"`
		}{r.Error})
		output = string(b)
	}
	return oai.ConversationItemCreateEventParam{Item: oai.ConversationItemParamOfFunctionCallOutput(r.CallID, output)}
}

// Client event ids of the response.create events a session sends: the API
// names the event an error answers.
const (
	respondPrefix = "gw_respond_" // Respond's
	toolsPrefix   = "gw_tools_"   // after tool results
)

// codeActiveResponse is the API's refusal of a response.create while a
// response is in progress.
const codeActiveResponse = "conversation_already_has_active_response"

// turns tracks the model's responses so that a session never asks for one
// while one is in progress (the API refuses it): tool results go to the
// conversation at once, and the response.create that lets the model go on
// with them waits until the model is free. Results that arrive during one
// response are answered by one response.create after it. The reading
// goroutine reports the responses' life (created, done, refused); senders
// ask for responses from any goroutine.
type turns struct {
	mu sync.Mutex
	// active: a response is in progress (response.created seen, its
	// response.done not yet).
	active bool
	// requested is the event id of the last response.create sent, until
	// a response is created or the API refuses that event.
	requested string
	// owed: tool results were given while the model was busy, and no
	// response.create has been sent for them yet.
	owed bool
	seq  int
}

func (t *turns) nextID(prefix string) string {
	t.seq++
	return prefix + strconv.Itoa(t.seq)
}

func (t *turns) busy() bool { return t.active || t.requested != "" }

// respond returns the event id of a response.create the gateway asked for
// (Respond), which is sent whether or not the model is busy.
func (t *turns) respond() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requested = t.nextID(respondPrefix)
	return t.requested
}

// toolResult is called once a tool result has been sent: it returns the
// event id of a response.create to send now, or "" when the model is busy
// (the response.create is owed until it is free).
func (t *turns) toolResult() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.busy() {
		t.owed = true
		return ""
	}
	t.requested = t.nextID(toolsPrefix)
	return t.requested
}

// unsent is called when the response.create id could not be sent.
func (t *turns) unsent(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.requested == id {
		t.requested = ""
	}
}

// created: a response began (asked for, or started by turn detection).
func (t *turns) created() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active, t.requested = true, ""
}

// done: the response in progress ended (completed, cancelled by a
// barge-in, failed). It returns the event id of the response.create owed
// to tool results, if any, to send now.
func (t *turns) done() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active = false
	return t.flush()
}

// refused: the API answered the client event eventID with an error of
// code. It reports whether the error is the refusal of a response.create
// of the session's own after tool results (their result is in the
// conversation, and the response in progress, which the refusal says
// there is, continues the conversation: the error is not worth reporting),
// and returns the event id of a response.create owed and due now, if any.
func (t *turns) refused(eventID, code string) (ours bool, flush string) {
	if !strings.HasPrefix(eventID, respondPrefix) && !strings.HasPrefix(eventID, toolsPrefix) {
		return false, ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.requested == eventID {
		t.requested = ""
	}
	return strings.HasPrefix(eventID, toolsPrefix) && code == codeActiveResponse, t.flush()
}

// flush returns the id of the owed response.create when the model is free.
// t.mu is held.
func (t *turns) flush() string {
	if !t.owed || t.busy() {
		return ""
	}
	t.owed = false
	t.requested = t.nextID(toolsPrefix)
	return t.requested
}

// keepCalls is how many tool calls a session remembers to report each
// once: the API reports a call at its arguments' end and again with its
// item's end, a few events apart.
const keepCalls = 16

// calls remembers the ids of the tool calls reported lately. Used by the
// reading goroutine only.
type calls struct {
	ids  [keepCalls]string
	next int
}

// first reports whether id is new, and remembers it.
func (c *calls) first(id string) bool {
	for _, seen := range c.ids {
		if seen == id {
			return false
		}
	}
	c.ids[c.next] = id
	c.next = (c.next + 1) % keepCalls
	return true
}
