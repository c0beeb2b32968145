package openairest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// run is an Assistants API run.
type run struct {
	id, assistantID string
	created         int64
	status          string
	steps           []string // steps[0] is the status reported now
	final           string
	readyAt         time.Time
	answer          string
	errorCode       string
	terminal        bool
	tools           json.RawMessage // as the request declared them
	tool            *toolState      // the model's tool calls, if it makes any
}

// terminal run statuses; requires_action keeps the run active until its
// tool outputs are submitted or it is cancelled.
var terminalStatuses = []string{"completed", "failed", "cancelled", "expired", "incomplete"}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AssistantID string          `json:"assistant_id"`
		Tools       json.RawMessage `json:"tools"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.AssistantID == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "missing_required_parameter", "Missing required parameter: 'assistant_id'.")
		return
	}
	declared, ok := functionsOf(w, req.Tools)
	if !ok {
		return
	}
	s.mu.Lock()
	t, ok := s.threadLocked(w, r)
	if !ok {
		s.mu.Unlock()
		return
	}
	sc := s.nextScriptLocked()
	if sc.HTTPStatus != 0 {
		s.mu.Unlock()
		writeError(w, sc.HTTPStatus, errorType(sc.HTTPStatus), sc.ErrorCode, "simulated failure")
		return
	}
	tool, final := runTool(sc)
	if sc.Tool != nil && tool != nil {
		if msg := undeclared(sc.Tool, declared); msg != "" {
			s.mu.Unlock()
			invalid(msg).write(w)
			return
		}
	}
	if a := s.activeLocked(t); a != nil {
		s.overlaps++
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "invalid_request_error", "",
			"Thread "+t.id+" already has an active run "+a.id+".")
		return
	}
	steps := sc.Steps
	if len(steps) == 0 {
		steps = []string{"queued", "in_progress"}
	}
	ru := &run{
		id: s.newIDLocked("run"), assistantID: req.AssistantID, created: now(),
		status: steps[0], steps: slices.Clone(steps), final: final,
		readyAt: time.Now().Add(sc.Delay), errorCode: sc.ErrorCode,
		tools: req.Tools, tool: tool,
	}
	t.runs[ru.id] = ru
	t.active = ru
	var text string
	for _, m := range slices.Backward(t.messages) {
		if m.role == "user" {
			text = m.text
			break
		}
	}
	reply := s.reply
	s.mu.Unlock()

	var answer string
	if tool == nil {
		answer = reply(t.id, text)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	ru.answer = answer
	writeJSON(w, http.StatusOK, runJSON(t.id, ru))
}

// runTool returns the tool calls a run makes and its final status.
func runTool(sc Script) (*toolState, string) {
	switch {
	case sc.Status == "requires_action" && sc.Tool == nil:
		return newToolState(ToolScript{Name: "lookup"}), "completed"
	case sc.Status == "completed" && sc.Tool != nil:
		return newToolState(*sc.Tool), "completed"
	}
	return nil, sc.Status
}

// submitToolOutputs answers the tool calls of a run in requires_action: it
// needs one output for each call, in one request; the run then goes on.
func (s *Server) submitToolOutputs(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ToolOutputs []struct {
			ToolCallID string `json:"tool_call_id"`
			Output     string `json:"output"`
		} `json:"tool_outputs"`
	}
	if !decode(w, r, &req) {
		return
	}
	outputs := make([]ToolOutput, len(req.ToolOutputs))
	for i, o := range req.ToolOutputs {
		outputs[i] = ToolOutput{CallID: o.ToolCallID, Output: o.Output}
	}
	s.mu.Lock()
	t, ru, fail := s.submittableLocked(w, r, outputs)
	reply := s.reply
	s.mu.Unlock()
	if fail || t == nil {
		return
	}
	var answer string
	if ru.tool.rounds == 0 && len(outputs) > 0 {
		answer = reply(t.id, outputs[len(outputs)-1].Output)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, fail := s.submittableLocked(w, r, outputs); fail {
		return
	}
	takeOutputs(ru.tool, outputs)
	t.outputs = append(t.outputs, outputs...)
	ru.answer = answer
	ru.status, ru.steps, ru.readyAt = "queued", []string{"queued"}, time.Now()
	writeJSON(w, http.StatusOK, runJSON(t.id, ru))
}

// submittableLocked finds the run of r and checks that outputs answer its
// pending tool calls; otherwise it answers the error and reports a failure.
func (s *Server) submittableLocked(w http.ResponseWriter, r *http.Request, outputs []ToolOutput) (*thread, *run, bool) {
	t, ru, ok := s.runLocked(w, r)
	if !ok {
		return nil, nil, true
	}
	s.advanceLocked(t, ru, false)
	if ru.status != "requires_action" || ru.tool == nil {
		invalid("Runs in status \"" + ru.status + "\" do not accept tool outputs.").write(w)
		return nil, nil, true
	}
	if checkOutputs(ru.tool, outputs, true) != "" {
		want := make([]string, len(ru.tool.pending))
		for i, c := range ru.tool.pending {
			want[i] = c.id
		}
		got := make([]string, len(outputs))
		for i, o := range outputs {
			got[i] = o.CallID
		}
		invalid("Expected tool outputs for call_ids [" + strings.Join(want, ", ") + "], got [" + strings.Join(got, ", ") + "].").write(w)
		return nil, nil, true
	}
	return t, ru, false
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ru, ok := s.runLocked(w, r)
	if !ok {
		return
	}
	s.advanceLocked(t, ru, true)
	writeJSON(w, http.StatusOK, runJSON(t.id, ru))
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ru, ok := s.runLocked(w, r)
	if !ok {
		return
	}
	s.advanceLocked(t, ru, false)
	if ru.terminal {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "",
			"Cannot cancel run with status '"+ru.status+"'.")
		return
	}
	ru.status, ru.terminal = "cancelled", true
	if t.active == ru {
		t.active = nil
	}
	out := runJSON(t.id, ru)
	out["status"] = "cancelling"
	writeJSON(w, http.StatusOK, out)
}

// runLocked finds the {thread} and {run} of r, answering 404 if missing.
func (s *Server) runLocked(w http.ResponseWriter, r *http.Request) (*thread, *run, bool) {
	t, ok := s.threadLocked(w, r)
	if !ok {
		return nil, nil, false
	}
	id := r.PathValue("run")
	ru, ok := t.runs[id]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", "", "No run found with id '"+id+"'.")
	}
	return t, ru, ok
}

// activeLocked returns t's active run, if any, after letting it progress.
func (s *Server) activeLocked(t *thread) *run {
	if t.active != nil {
		s.advanceLocked(t, t.active, false)
	}
	return t.active
}

// advanceLocked moves ru along: a poll consumes one scripted step; once the
// steps are used up and its delay has passed, the run takes its final
// status.
func (s *Server) advanceLocked(t *thread, ru *run, poll bool) {
	if ru.terminal || ru.status == "requires_action" {
		return
	}
	if len(ru.steps) > 1 {
		if poll {
			ru.steps = ru.steps[1:]
			ru.status = ru.steps[0]
		}
		return
	}
	if time.Now().Before(ru.readyAt) {
		return
	}
	if ru.tool != nil && ru.tool.rounds > 0 {
		ru.status = "requires_action"
		s.callLocked(ru.tool)
		return
	}
	ru.status = ru.final
	ru.terminal = slices.Contains(terminalStatuses, ru.final)
	if ru.terminal && t.active == ru {
		t.active = nil
	}
	if ru.final == "completed" {
		t.messages = append(t.messages, &message{
			id: s.newIDLocked("msg"), role: "assistant", text: ru.answer,
			runID: ru.id, assistantID: ru.assistantID, created: now(),
		})
	}
}

func runJSON(threadID string, ru *run) map[string]any {
	tools := ru.tools
	if len(tools) == 0 || string(tools) == "null" {
		tools = json.RawMessage("[]")
	}
	out := map[string]any{
		"id": ru.id, "object": "thread.run", "created_at": ru.created, "thread_id": threadID,
		"assistant_id": ru.assistantID, "status": ru.status, "model": "gpt-4o",
		"instructions": "", "tools": tools, "metadata": map[string]string{},
		"required_action": nil, "last_error": nil, "incomplete_details": nil, "usage": nil,
		"expires_at": ru.created + 600, "started_at": ru.created,
		"cancelled_at": nil, "failed_at": nil, "completed_at": nil,
		"temperature": 1, "top_p": 1, "max_prompt_tokens": nil, "max_completion_tokens": nil,
		"truncation_strategy": map[string]any{"type": "auto", "last_messages": nil},
		"response_format":     "auto", "tool_choice": "auto", "parallel_tool_calls": true,
	}
	switch ru.status {
	case "completed":
		out["completed_at"] = now()
	case "cancelled":
		out["cancelled_at"] = now()
	case "expired":
		out["expires_at"] = now()
	case "failed":
		code := ru.errorCode
		if code == "" {
			code = "server_error"
		}
		out["failed_at"] = now()
		out["last_error"] = map[string]any{"code": code, "message": "Sorry, something went wrong."}
	case "incomplete":
		out["incomplete_details"] = map[string]any{"reason": "max_completion_tokens"}
	case "requires_action":
		var pending []toolCall
		if ru.tool != nil {
			pending = ru.tool.pending
		}
		calls := make([]any, len(pending))
		for i, c := range pending {
			calls[i] = map[string]any{
				"id": c.id, "type": "function",
				"function": map[string]any{"name": c.name, "arguments": c.arguments},
			}
		}
		out["required_action"] = map[string]any{
			"type": "submit_tool_outputs", "submit_tool_outputs": map[string]any{"tool_calls": calls},
		}
	}
	return out
}
