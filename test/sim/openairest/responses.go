package openairest

import (
	"encoding/json"
	"net/http"
)

// conversation is a Conversations API conversation.
type conversation struct {
	id       string
	items    []Item
	inFlight int        // responses being produced
	tool     *toolState // the model's tool calls in the current turn, if any
	outputs  []ToolOutput
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
	Tools        json.RawMessage `json:"tools"`
}

// turn is what one POST /v1/responses makes the model do, decided before
// it answers and applied once it has.
type turn struct {
	sc      Script
	in      input
	calling *toolState // the model calls tools (a new round of ts) instead of answering
	prompt  string     // what the answer replies to: the user's text or the last tool output
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
	in, ok := parseInput(req.Input)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_type", "Invalid 'input'.")
		return
	}
	convID, ok := conversationID(req.Conversation)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_type", "Invalid 'conversation'.")
		return
	}
	declared, ok := functionsOf(w, req.Tools)
	if !ok {
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
	tn, fail := s.planLocked(c, in, declared)
	if fail != nil {
		s.mu.Unlock()
		fail.write(w)
		return
	}
	if c != nil {
		if c.inFlight > 0 {
			s.overlaps++
		}
		c.inFlight++
		if in.text != "" || len(in.outputs) == 0 {
			c.items = append(c.items, Item{Role: "user", Text: in.text})
		}
	}
	reply := s.reply
	id, msgID := s.newIDLocked("resp"), s.newIDLocked("msg")
	s.mu.Unlock()

	finished := s.sleep(r, tn.sc.Delay)
	var answer string
	if tn.calling == nil {
		answer = reply(convID, tn.prompt)
	}

	s.mu.Lock()
	var calls []toolCall
	if c != nil {
		c.inFlight--
		if finished {
			calls = s.applyLocked(c, tn, answer)
		}
	}
	s.mu.Unlock()
	if !finished {
		return // the client gave up or the server is closing
	}
	writeJSON(w, http.StatusOK, responseJSON(id, msgID, req, c, tn.sc, answer, calls))
}

// planLocked decides what the model does with in on c (nil without a
// conversation): it takes the next script for a new turn (a request with a
// message or nothing to answer), not for tool outputs. It returns the
// error to answer when the request must fail. Call with s.mu held.
func (s *Server) planLocked(c *conversation, in input, declared []string) (turn, *apiError) {
	tn := turn{in: in, prompt: in.text}
	newTurn := in.text != "" || len(in.outputs) == 0
	if newTurn {
		tn.sc = s.nextScriptLocked()
	} else {
		tn.sc = Script{Status: "completed", Delay: s.delay}
		tn.prompt = in.outputs[len(in.outputs)-1].Output
	}
	if tn.sc.HTTPStatus != 0 {
		return tn, &apiError{tn.sc.HTTPStatus, tn.sc.ErrorCode, "simulated failure"}
	}
	var ts *toolState
	if c != nil {
		ts = c.tool
	}
	if msg := checkOutputs(ts, in.outputs, true); msg != "" {
		return tn, invalid(msg)
	}
	switch {
	case tn.sc.Status != "completed":
	case newTurn && tn.sc.Tool != nil && c != nil:
		tn.calling = newToolState(*tn.sc.Tool)
	case !newTurn && ts != nil && ts.rounds > 0:
		tn.calling = ts
	}
	if tn.calling != nil {
		if msg := undeclared(&tn.calling.script, declared); msg != "" {
			return tn, invalid(msg)
		}
	}
	return tn, nil
}

// applyLocked records a finished response on c and returns the calls the
// model made, if any. Call with s.mu held.
func (s *Server) applyLocked(c *conversation, tn turn, answer string) []toolCall {
	takeOutputs(c.tool, tn.in.outputs)
	c.outputs = append(c.outputs, tn.in.outputs...)
	if tn.calling != nil {
		c.tool = tn.calling
		return s.callLocked(c.tool)
	}
	c.tool = nil
	if tn.sc.Status == "completed" {
		c.items = append(c.items, Item{Role: "assistant", Text: answer})
	}
	return nil
}

// responseJSON is the Response object the request produced.
func responseJSON(id, msgID string, req responseRequest, c *conversation, sc Script, answer string, calls []toolCall) map[string]any {
	tools := req.Tools
	if len(tools) == 0 {
		tools = json.RawMessage("[]")
	}
	resp := map[string]any{
		"id": id, "object": "response", "created_at": now(), "status": sc.Status,
		"model": req.Model, "instructions": req.Instructions, "output": []any{},
		"error": nil, "incomplete_details": nil, "parallel_tool_calls": true,
		"tool_choice": "auto", "tools": tools, "metadata": map[string]string{},
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
	switch {
	case len(calls) > 0:
		out := make([]any, len(calls))
		for i, call := range calls {
			out[i] = map[string]any{
				"type": "function_call", "id": "fc_" + call.id, "call_id": call.id,
				"name": call.name, "arguments": call.arguments, "status": "completed",
			}
		}
		resp["output"] = out
	case sc.Status == "completed":
		resp["output"] = []any{map[string]any{
			"type": "message", "id": msgID, "status": "completed", "role": "assistant",
			"content": []any{map[string]any{"type": "output_text", "text": answer, "annotations": []any{}, "logprobs": []any{}}},
		}}
	case sc.Status == "failed":
		code := sc.ErrorCode
		if code == "" {
			code = "server_error"
		}
		resp["error"] = map[string]any{"code": code, "message": "The model failed to produce a response."}
	case sc.Status == "incomplete":
		resp["incomplete_details"] = map[string]any{"reason": "max_output_tokens"}
	}
	return resp
}
