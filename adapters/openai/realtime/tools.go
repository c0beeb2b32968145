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

// turns decides when the model is asked to go on with tool results
// (response.create), from the server's events, which come in the order
// the API acted: a result whose item was added (conversation.item.added)
// before a response was created (response.created) is seen by that
// response; one added after needs another response. That one is asked for
// once the model is free: no response in progress (the API refuses a
// response.create then) or asked for and not yet begun, and the caller not
// speaking (the model would talk over them; the end of their turn makes
// turn detection create a response, which sees the results). Results
// added during one response are answered by one response.create after
// it. The reading goroutine reports the events; Respond reports its
// requests from any goroutine.
type turns struct {
	mu sync.Mutex
	// active: a response is in progress (response.created seen, its
	// response.done not yet).
	active bool
	// requested is the event id of the last response.create sent, until
	// a response is created or the API refuses that event.
	requested string
	speaking  bool // the caller is speaking (speech_started, not yet stopped)
	// unseen counts the tool results added to the conversation since the
	// last response was created.
	unseen int
	seq    int
}

func (t *turns) nextID(prefix string) string {
	t.seq++
	return prefix + strconv.Itoa(t.seq)
}

// respond returns the event id of a response.create the gateway asked for
// (Respond), which is sent whether or not the model is busy.
func (t *turns) respond() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requested = t.nextID(respondPrefix)
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

// resultAdded: a tool result's item was added to the conversation. It
// returns the event id of a response.create to send now, or "".
func (t *turns) resultAdded() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unseen++
	return t.flush()
}

// created: a response began (asked for, or created by turn detection);
// it sees every result added so far.
func (t *turns) created() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active, t.requested, t.unseen = true, "", 0
}

// done: the response in progress ended (completed, cancelled by a
// barge-in, failed). It returns the event id of a response.create to
// send now, or "".
func (t *turns) done() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active = false
	return t.flush()
}

// speech: the caller started (true) or stopped speaking. It returns the
// event id of a response.create to send now, or "": at the end of a turn
// results not yet seen are asked for at once, in case turn detection
// creates no response (when it does, it refuses this request, which is
// then not reported: see refused).
func (t *turns) speech(started bool) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.speaking = started
	return t.flush()
}

// refused: the API answered the client event eventID with an error of
// code. It reports whether the error is the refusal of a response.create
// of the session's own after tool results because a response is in
// progress (which then sees the results, or is followed by a request:
// the error is not worth reporting), and returns the event id of a
// response.create to send now, or "".
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

// flush returns the id of a response.create to send when results wait
// and the model is free, and "" otherwise. t.mu is held.
func (t *turns) flush() string {
	if t.unseen == 0 || t.active || t.requested != "" || t.speaking {
		return ""
	}
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
