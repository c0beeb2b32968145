package openairest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// input is what a CreateResponse input (or a list of conversation items)
// holds: messages and tool outputs.
type input struct {
	text     string       // the texts of the messages, joined
	messages []Item       // the messages, with their roles
	outputs  []ToolOutput // function_call_output items
}

// parseInput reads a CreateResponse input: a string, or a list of items,
// each a message (content a string or input_text parts) or a
// function_call_output.
func parseInput(raw json.RawMessage) (input, bool) {
	var in input
	if len(raw) == 0 {
		return in, false
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		in.text = str
		in.messages = []Item{{Role: "user", Text: str}}
		return in, true
	}
	var items []struct {
		Type    string          `json:"type"`
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
		CallID  string          `json:"call_id"`
		Output  json.RawMessage `json:"output"`
	}
	if json.Unmarshal(raw, &items) != nil {
		return in, false
	}
	var texts []string
	for _, it := range items {
		switch it.Type {
		case "", "message":
			text, ok := messageText(it.Content)
			if !ok {
				return in, false
			}
			role := it.Role
			if role == "" {
				role = "user"
			}
			texts = append(texts, text)
			in.messages = append(in.messages, Item{Role: role, Text: text})
		case "function_call_output":
			var out string
			if it.CallID == "" || json.Unmarshal(it.Output, &out) != nil {
				return in, false // the simulator reads text outputs only
			}
			in.outputs = append(in.outputs, ToolOutput{CallID: it.CallID, Output: out})
		default:
			return in, false
		}
	}
	in.text = strings.Join(texts, "\n")
	return in, true
}

// messageText reads a message's content: a string or input_text parts.
func messageText(raw json.RawMessage) (string, bool) { return partsText(raw, "input_text") }

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

// createItems adds items (messages, tool outputs) to a conversation without
// a response. A tool output must name a call the model is waiting for.
func (s *Server) createItems(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Items json.RawMessage `json:"items"`
	}
	if !decode(w, r, &req) {
		return
	}
	in, ok := parseInput(req.Items)
	if !ok || req.Items[0] != '[' {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_type", "Invalid 'items'.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("conv")
	c := s.convs[id]
	if c == nil {
		writeError(w, http.StatusNotFound, "invalid_request_error", "", "Conversation with id '"+id+"' not found.")
		return
	}
	if msg := checkOutputs(c.tool, in.outputs, false); msg != "" {
		invalid(msg).write(w)
		return
	}
	takeOutputs(c.tool, in.outputs)
	c.outputs = append(c.outputs, in.outputs...)
	c.items = append(c.items, in.messages...)
	data := []any{}
	for _, m := range in.messages {
		data = append(data, map[string]any{
			"type": "message", "id": s.newIDLocked("msg"), "status": "completed", "role": m.Role,
			"content": []any{map[string]any{"type": "input_text", "text": m.Text}},
		})
	}
	for _, o := range in.outputs {
		data = append(data, map[string]any{
			"type": "function_call_output", "id": s.newIDLocked("fco"), "call_id": o.CallID,
			"output": o.Output, "status": "completed",
		})
	}
	list := map[string]any{"object": "list", "data": data, "first_id": nil, "last_id": nil, "has_more": false}
	if len(data) > 0 {
		list["first_id"] = data[0].(map[string]any)["id"]
		list["last_id"] = data[len(data)-1].(map[string]any)["id"]
	}
	writeJSON(w, http.StatusOK, list)
}

// apiError is an error answer of the API.
type apiError struct {
	status  int
	code    string
	message string
}

// invalid is a 400 invalid_request_error about the input.
func invalid(message string) *apiError {
	return &apiError{http.StatusBadRequest, "", message}
}

func (e *apiError) write(w http.ResponseWriter) {
	writeError(w, e.status, errorType(e.status), e.code, e.message)
}
