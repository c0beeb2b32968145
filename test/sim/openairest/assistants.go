package openairest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// thread is an Assistants API thread.
type thread struct {
	id       string
	created  int64
	messages []*message
	runs     map[string]*run
	active   *run // the run that blocks new messages and runs, if any
	outputs  []ToolOutput
}

type message struct {
	id, role, text     string
	runID, assistantID string
	created            int64
}

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

// threadLocked finds the {thread} of r, answering 404 if there is none.
func (s *Server) threadLocked(w http.ResponseWriter, r *http.Request) (*thread, bool) {
	id := r.PathValue("thread")
	t, ok := s.threads[id]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", "", "No thread found with id '"+id+"'.")
	}
	return t, ok
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

// contentText reads CreateMessageRequest content: a string or text parts.
func contentText(raw json.RawMessage) (string, bool) { return partsText(raw, "text") }

// partsText reads message content: a string, or parts of which those of
// type partType hold text.
func partsText(raw json.RawMessage, partType string) (string, bool) {
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
		if p.Type == partType {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n"), true
}
