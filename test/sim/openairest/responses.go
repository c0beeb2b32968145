package openairest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// conversation is a Conversations API conversation.
type conversation struct {
	id       string
	items    []Item
	inFlight int // responses being produced
}

func (s *Server) createConversation(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Metadata map[string]string `json:"metadata"`
	}
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	c := &conversation{id: s.newIDLocked("conv")}
	s.convs[c.id] = c
	s.mu.Unlock()
	md := req.Metadata
	if md == nil {
		md = map[string]string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": c.id, "object": "conversation", "created_at": now(), "metadata": md,
	})
}

// responseRequest is the part of CreateResponse the simulator reads.
type responseRequest struct {
	Model        string          `json:"model"`
	Instructions *string         `json:"instructions"`
	Input        json.RawMessage `json:"input"`
	Conversation json.RawMessage `json:"conversation"`
}

func (s *Server) createResponse(w http.ResponseWriter, r *http.Request) {
	var req responseRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "missing_required_parameter", "Missing required parameter: 'model'.")
		return
	}
	text, ok := inputText(req.Input)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_type", "Invalid 'input'.")
		return
	}
	convID, ok := conversationID(req.Conversation)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_type", "Invalid 'conversation'.")
		return
	}

	s.mu.Lock()
	var c *conversation
	if convID != "" {
		if c = s.convs[convID]; c == nil {
			s.mu.Unlock()
			writeError(w, http.StatusNotFound, "invalid_request_error", "", "Conversation with id '"+convID+"' not found.")
			return
		}
	}
	sc := s.nextScriptLocked()
	if sc.HTTPStatus != 0 {
		s.mu.Unlock()
		writeError(w, sc.HTTPStatus, errorType(sc.HTTPStatus), sc.ErrorCode, "simulated failure")
		return
	}
	if c != nil {
		if c.inFlight > 0 {
			s.overlaps++
		}
		c.inFlight++
		c.items = append(c.items, Item{Role: "user", Text: text})
	}
	reply := s.reply
	id, msgID := s.newIDLocked("resp"), s.newIDLocked("msg")
	s.mu.Unlock()

	finished := s.sleep(r, sc.Delay)
	answer := reply(convID, text)

	s.mu.Lock()
	if c != nil {
		c.inFlight--
		if finished && sc.Status == "completed" {
			c.items = append(c.items, Item{Role: "assistant", Text: answer})
		}
	}
	s.mu.Unlock()
	if !finished {
		return // the client gave up or the server is closing
	}

	resp := map[string]any{
		"id": id, "object": "response", "created_at": now(), "status": sc.Status,
		"model": req.Model, "instructions": req.Instructions, "output": []any{},
		"error": nil, "incomplete_details": nil, "parallel_tool_calls": true,
		"tool_choice": "auto", "tools": []any{}, "metadata": map[string]string{},
		"temperature": 1, "top_p": 1,
		"usage": map[string]any{
			"input_tokens": 1, "input_tokens_details": map[string]any{"cached_tokens": 0, "cache_write_tokens": 0},
			"output_tokens": 1, "output_tokens_details": map[string]any{"reasoning_tokens": 0},
			"total_tokens": 2,
		},
	}
	if c != nil {
		resp["conversation"] = map[string]any{"id": c.id}
	}
	switch sc.Status {
	case "completed":
		resp["output"] = []any{map[string]any{
			"type": "message", "id": msgID, "status": "completed", "role": "assistant",
			"content": []any{map[string]any{"type": "output_text", "text": answer, "annotations": []any{}, "logprobs": []any{}}},
		}}
	case "failed":
		code := sc.ErrorCode
		if code == "" {
			code = "server_error"
		}
		resp["error"] = map[string]any{"code": code, "message": "The model failed to produce a response."}
	case "incomplete":
		resp["incomplete_details"] = map[string]any{"reason": "max_output_tokens"}
	}
	writeJSON(w, http.StatusOK, resp)
}

// inputText extracts the user's text from a CreateResponse input: a string,
// or a list of messages whose content is a string or input_text parts.
func inputText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str, true
	}
	var items []struct {
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &items) != nil {
		return "", false
	}
	var parts []string
	for _, it := range items {
		if json.Unmarshal(it.Content, &str) == nil {
			parts = append(parts, str)
			continue
		}
		var content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if json.Unmarshal(it.Content, &content) != nil {
			return "", false
		}
		for _, p := range content {
			if p.Type == "input_text" {
				parts = append(parts, p.Text)
			}
		}
	}
	return strings.Join(parts, "\n"), true
}

// conversationID reads the conversation parameter: an id or {"id": ...}.
func conversationID(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var id string
	if json.Unmarshal(raw, &id) == nil {
		return id, true
	}
	var obj struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.ID != "" {
		return obj.ID, true
	}
	return "", false
}
