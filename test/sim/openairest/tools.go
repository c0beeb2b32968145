package openairest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// ToolScript makes the model call a function tool before it answers: in
// each of Rounds rounds it makes Parallel calls of Name with Arguments and
// waits for their outputs (function_call_output items for Responses,
// submit_tool_outputs for runs); then it answers with the reply function
// applied to the last output it received (by default "echo: <output>").
// The request must declare the function, or the simulator answers 400.
type ToolScript struct {
	Name      string
	Arguments string // a JSON object; {} if empty
	Parallel  int    // calls per round; 1 if 0
	Rounds    int    // rounds before the answer; 1 if 0
}

// ToolOutput is one tool output the simulator received, on a conversation
// or a thread.
type ToolOutput struct {
	CallID string
	Output string
}

// toolCall is one call the simulated model made.
type toolCall struct{ id, name, arguments string }

// toolState is the model's progress through a ToolScript on a conversation
// or a run.
type toolState struct {
	script  ToolScript
	rounds  int        // rounds still to start
	pending []toolCall // calls waiting for their outputs
	last    string     // the last output received
}

func newToolState(sc ToolScript) *toolState {
	sc.Parallel, sc.Rounds = max(sc.Parallel, 1), max(sc.Rounds, 1)
	if sc.Arguments == "" {
		sc.Arguments = "{}"
	}
	return &toolState{script: sc, rounds: sc.Rounds}
}

// callLocked starts the next round: new pending calls. Call with s.mu held.
func (s *Server) callLocked(ts *toolState) []toolCall {
	ts.rounds--
	ts.pending = make([]toolCall, ts.script.Parallel)
	for i := range ts.pending {
		ts.pending[i] = toolCall{id: s.newIDLocked("call"), name: ts.script.Name, arguments: ts.script.Arguments}
	}
	return ts.pending
}

// checkOutputs returns the API's error message when outputs do not answer
// the pending calls of ts (nil when nothing is pending): each must name a
// pending call, once; when all is set, every pending call must be
// answered.
func checkOutputs(ts *toolState, outputs []ToolOutput, all bool) string {
	var pending []toolCall
	if ts != nil {
		pending = ts.pending
	}
	seen := make(map[string]bool, len(outputs))
	for _, o := range outputs {
		if seen[o.CallID] || !slices.ContainsFunc(pending, func(c toolCall) bool { return c.id == o.CallID }) {
			return "No tool call found for function call output with call_id " + o.CallID + "."
		}
		seen[o.CallID] = true
	}
	if all {
		for _, c := range pending {
			if !seen[c.id] {
				return "No tool output found for function call " + c.id + "."
			}
		}
	}
	return ""
}

// takeOutputs removes the calls outputs answer from the pending ones and
// remembers the last output. Check them first with checkOutputs.
func takeOutputs(ts *toolState, outputs []ToolOutput) {
	if ts == nil || len(outputs) == 0 {
		return
	}
	ts.pending = slices.DeleteFunc(ts.pending, func(c toolCall) bool {
		return slices.ContainsFunc(outputs, func(o ToolOutput) bool { return o.CallID == c.id })
	})
	ts.last = outputs[len(outputs)-1].Output
}

// declaredFunctions reads a request's tools (Responses' flat function
// tools or Assistants' {"function": {...}} ones) and returns the function
// names, or an error message for a tool without its required fields.
func declaredFunctions(raw json.RawMessage) ([]string, string) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, ""
	}
	var tools []struct {
		Type        string `json:"type"`
		Name        string `json:"name"`
		Function    *struct{ Name string }
		ServerLabel string `json:"server_label"`
		ServerURL   string `json:"server_url"`
		ConnectorID string `json:"connector_id"`
	}
	if json.Unmarshal(raw, &tools) != nil {
		return nil, "Invalid 'tools': expected an array of tools."
	}
	var names []string
	for _, t := range tools {
		switch {
		case t.Type == "function" && t.Function != nil && t.Function.Name != "":
			names = append(names, t.Function.Name)
		case t.Type == "function" && t.Name != "":
			names = append(names, t.Name)
		case t.Type == "mcp" && t.ServerLabel != "" && (t.ServerURL != "" || t.ConnectorID != ""):
		case t.Type == "function":
			return nil, "Missing required parameter: 'tools[].name'."
		case t.Type == "mcp":
			return nil, "Missing required parameter: 'tools[].server_label' or 'tools[].server_url'."
		default:
			return nil, "Invalid value for 'tools[].type': the simulator knows function and mcp tools."
		}
	}
	return names, ""
}

// functionsOf reads a request's tools as declaredFunctions does; it answers
// 400 and reports false when they are not valid.
func functionsOf(w http.ResponseWriter, raw json.RawMessage) ([]string, bool) {
	names, msg := declaredFunctions(raw)
	if msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value", msg)
		return nil, false
	}
	return names, true
}

// undeclared returns the error message for a script whose function the
// request did not declare, or "".
func undeclared(sc *ToolScript, declared []string) string {
	if sc == nil || slices.Contains(declared, sc.Name) {
		return ""
	}
	return "simulated model: the scripted tool '" + sc.Name + "' is not among the request's tools (" +
		strings.Join(declared, ", ") + ")."
}
