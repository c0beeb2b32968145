package openairest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// thread is an Assistants API thread.
type thread struct {
	id       string
	created  int64
	messages []*message
	runs     map[string]*run
	active   *run // the run that blocks new messages and runs, if any
}

type message struct {
	id, role, text     string
	runID, assistantID string
	created            int64
}

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
}

// terminal run statuses; requires_action is final for the simulator but
// keeps the run active until it is cancelled.
var terminalStatuses = []string{"completed", "failed", "cancelled", "expired", "incomplete"}

type messageRequest struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

func (s *Server) createThread(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []messageRequest `json:"messages"`
	}
	if !decode(w, r, &req) {
		return
	}
	texts := make([]string, len(req.Messages))
	for i, m := range req.Messages {
		var ok bool
		if texts[i], ok = contentText(m.Content); !ok {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_type", "Invalid 'messages.content'.")
			return
		}
	}
	s.mu.Lock()
	t := &thread{id: s.newIDLocked("thread"), created: now(), runs: make(map[string]*run)}
	for i, m := range req.Messages {
		t.messages = append(t.messages, &message{id: s.newIDLocked("msg"), role: m.Role, text: texts[i], created: now()})
	}
	s.threads[t.id] = t
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"id": t.id, "object": "thread", "created_at": t.created,
		"metadata": map[string]string{}, "tool_resources": map[string]any{},
	})
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	var req messageRequest
	if !decode(w, r, &req) {
		return
	}
	text, ok := contentText(req.Content)
	if !ok || (req.Role != "user" && req.Role != "assistant") {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value", "Invalid 'role' or 'content'.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.threadLocked(w, r)
	if !ok {
		return
	}
	if a := s.activeLocked(t); a != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "",
			"Can't add messages to "+t.id+" while a run "+a.id+" is active.")
		return
	}
	m := &message{id: s.newIDLocked("msg"), role: req.Role, text: text, created: now()}
	t.messages = append(t.messages, m)
	writeJSON(w, http.StatusOK, messageJSON(t.id, m))
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value", "Invalid 'limit'.")
			return
		}
		limit = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.threadLocked(w, r)
	if !ok {
		return
	}
	var ms []*message
	for _, m := range t.messages {
		if runID := q.Get("run_id"); runID == "" || m.runID == runID {
			ms = append(ms, m)
		}
	}
	if q.Get("order") != "asc" {
		slices.Reverse(ms)
	}
	hasMore := len(ms) > limit
	ms = ms[:min(limit, len(ms))]
	data := make([]any, len(ms))
	for i, m := range ms {
		data[i] = messageJSON(t.id, m)
	}
	list := map[string]any{"object": "list", "data": data, "first_id": nil, "last_id": nil, "has_more": hasMore}
	if len(ms) > 0 {
		list["first_id"], list["last_id"] = ms[0].id, ms[len(ms)-1].id
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AssistantID string `json:"assistant_id"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.AssistantID == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "missing_required_parameter", "Missing required parameter: 'assistant_id'.")
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
		status: steps[0], steps: slices.Clone(steps), final: sc.Status,
		readyAt: time.Now().Add(sc.Delay), errorCode: sc.ErrorCode,
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

	answer := reply(t.id, text)

	s.mu.Lock()
	defer s.mu.Unlock()
	ru.answer = answer
	writeJSON(w, http.StatusOK, runJSON(t.id, ru))
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

// threadLocked finds the {thread} of r, answering 404 if there is none.
func (s *Server) threadLocked(w http.ResponseWriter, r *http.Request) (*thread, bool) {
	id := r.PathValue("thread")
	t, ok := s.threads[id]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", "", "No thread found with id '"+id+"'.")
	}
	return t, ok
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

func messageJSON(threadID string, m *message) map[string]any {
	var assistantID, runID any
	if m.assistantID != "" {
		assistantID = m.assistantID
	}
	if m.runID != "" {
		runID = m.runID
	}
	return map[string]any{
		"id": m.id, "object": "thread.message", "created_at": m.created, "thread_id": threadID,
		"role": m.role, "status": "completed", "completed_at": m.created,
		"incomplete_at": nil, "incomplete_details": nil,
		"content": []any{map[string]any{
			"type": "text", "text": map[string]any{"value": m.text, "annotations": []any{}},
		}},
		"assistant_id": assistantID, "run_id": runID, "attachments": []any{},
		"metadata": map[string]string{},
	}
}

func runJSON(threadID string, ru *run) map[string]any {
	out := map[string]any{
		"id": ru.id, "object": "thread.run", "created_at": ru.created, "thread_id": threadID,
		"assistant_id": ru.assistantID, "status": ru.status, "model": "gpt-4o",
		"instructions": "", "tools": []any{}, "metadata": map[string]string{},
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
		out["required_action"] = map[string]any{
			"type": "submit_tool_outputs",
			"submit_tool_outputs": map[string]any{"tool_calls": []any{map[string]any{
				"id": "call_sim", "type": "function",
				"function": map[string]any{"name": "lookup", "arguments": "{}"},
			}}},
		}
	}
	return out
}

// contentText reads CreateMessageRequest content: a string or text parts.
func contentText(raw json.RawMessage) (string, bool) {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str, true
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return "", false
	}
	var texts []string
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n"), true
}
